//! How commands report: a human summary on stdout, or exactly one JSON document with `--json`.

use serde::Serialize;

/// Prints `value` as pretty JSON when `json` is set, otherwise calls `human` to print a summary.
pub fn emit<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human(value);
    }
    Ok(())
}
