//! Prints, as JSON, the script of the engine probe that asks every question it can answer
//! (`corral_core::facts::swarm_engine`) and the scripts of the CLI probes it answers for,
//! byte for byte as a fact script carries them: what `scripts/record-engine-fixtures.sh`
//! runs on lab hosts.

use std::collections::BTreeMap;

use corral_core::facts::swarm_engine::{answered, fold, KEY};

fn main() {
    // The objects probe of project `bench` (scripts/record-engine-fixtures.sh makes its key).
    let cli = answered("bench");
    let (folded, _) = fold(&cli);
    let engine = folded
        .iter()
        .find(|p| p.key == KEY)
        .expect("an engine probe");
    let scripts: BTreeMap<&str, &str> = cli
        .iter()
        .map(|p| (p.key.as_str(), p.script.as_str()))
        .collect();
    let json = serde_json::json!({ "engine": engine.script, "cli": scripts });
    println!("{json}");
}
