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

/// Prints `value` as pretty JSON when `json` is set, otherwise calls `human` to print a summary.
pub fn emit<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human(value);
    }
    Ok(())
}
