//! How commands report: a human summary on stdout, or exactly one JSON document with `--json`.

use std::fmt;
use std::io::{self, Write as _};

use serde::Serialize;

/// Writes to stdout. A reader that went away (a closed pipe: `deai task list | head -1`) ends
/// the process quietly with success, since the reader has what it wanted; any other failure (a
/// full disk) ends it with a message and exit code 1. Commands print their results after their
/// work is done, so ending here leaves nothing half done.
pub fn write_stdout(args: fmt::Arguments<'_>) {
    if let Err(e) = io::stdout().lock().write_fmt(args) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        write_stderr(format_args!("error: cannot write to stdout: {e}\n"));
        std::process::exit(1);
    }
}

/// Writes to stderr; if even that fails there is nobody left to tell.
pub fn write_stderr(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// Whether a command printed its JSON document (so a failure after it adds none).
static EMITTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether [`emit`] printed a JSON document in this process.
pub fn emitted_json() -> bool {
    EMITTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// What `--json` prints on stdout when a command fails before printing its document.
pub fn json_error(message: &str) -> String {
    serde_json::json!({ "ok": false, "error": message }).to_string()
}

/// Prints `value` as pretty JSON when `json` is set, otherwise calls `human` to print a summary.
pub fn emit<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) -> anyhow::Result<()> {
    if json {
        EMITTED.store(true, std::sync::atomic::Ordering::Relaxed);
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human(value);
    }
    Ok(())
}

/// An amount of base units as tokens, exactly (`12.5`, `0.000000000000000003`): the unit the
/// flags that take tokens use.
pub fn tokens(base_units: u128) -> String {
    decimal(base_units, deai_ledger::TOKEN)
}

/// A fixed-point value (`value / scale`, `scale` a power of ten) as an exact decimal: ε of
/// `1_500_000` at scale 10⁶ is `1.5`.
pub use deai_ledger::decimal;

/// A fixed-point ε ([`deai_ledger::EPSILON_SCALE`]) as an exact decimal.
pub use deai_ledger::epsilon_decimal as epsilon;

/// An amount for a person: in tokens when it is at least a millionth of one, else in base
/// units (prices per query are often a few base units).
pub fn amount(base_units: u128) -> String {
    if base_units >= deai_ledger::TOKEN / 1_000_000 {
        format!("{} tokens", tokens(base_units))
    } else {
        format!("{base_units} units")
    }
}

/// The first characters of a long hex string, for one-line summaries.
pub fn short(hex: &str) -> String {
    match hex.get(..12) {
        Some(head) if hex.len() > 12 => format!("{head}…"),
        _ => hex.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_exact() {
        let t = deai_ledger::TOKEN;
        assert_eq!(tokens(0), "0");
        assert_eq!(tokens(12 * t + t / 2), "12.5");
        assert_eq!(
            tokens(3),
            format!("0.{}3", "0".repeat(t.ilog10() as usize - 1))
        );
        assert_eq!(short("0123456789abcdef"), "0123456789ab…");
        assert_eq!(epsilon(1_500_000), "1.5");
        assert_eq!(epsilon(168_027_165), "168.027165");
        assert_eq!(decimal(7, 1000), "0.007");
        assert_eq!(short("abc"), "abc");
        assert_eq!(amount(10 * t), "10 tokens");
        assert_eq!(amount(7), "7 units");
    }
}
