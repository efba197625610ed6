//! Apply progress: events arrive over a channel and one task draws them. On a terminal each
//! host gets an indicatif line showing its current resource; otherwise (CI, pipes, logs)
//! every event is one plain line.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::apply::Event;

/// Draws events until the channel closes.
pub async fn draw(mut events: mpsc::UnboundedReceiver<Event>) {
    // indicatif draws on stderr, so both must be a terminal for the live view.
    let fancy = std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal()
        && super::live_output_allowed();
    let multi = MultiProgress::new();
    let mut bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    let style = ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    while let Some(event) = events.recv().await {
        let line = event.to_string();
        if !fancy {
            println!("{line}");
            continue;
        }
        let machine = event.machine().to_owned();
        let bar = bars.entry(machine.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style.clone());
            bar.set_prefix(machine.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        match &event {
            Event::Started { address, step, .. } => bar.set_message(format!("{address}: {step}")),
            Event::Finished { .. } | Event::Skipped { .. } => {
                let _ = multi.println(&line);
                bar.set_message("waiting");
            }
        }
    }
    for bar in bars.values() {
        bar.finish_and_clear();
    }
}
