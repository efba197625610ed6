//! Output: the plan as text for people (`human`), as JSON for tools (`json`), and apply
//! progress (`progress`). Rendering never decides anything; it only shows plan data.

pub mod human;
pub mod json;
pub mod markdown;
pub mod progress;

use std::borrow::Cow;
use std::io::IsTerminal;

/// Text from hosts made safe for a terminal: control characters other than newline and tab
/// (escape sequences a hostile or odd host could plant in a file) are shown escaped.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\n' | '\t' => c.to_string(),
                c if c.is_control() => c.escape_default().to_string(),
                c => c.to_string(),
            })
            .collect(),
    )
}

/// Whether to colour output: only on a terminal, and never when `NO_COLOR` is set.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn detect() -> Style {
        Style {
            color: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }
    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }
    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
}
