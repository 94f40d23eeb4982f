//! Progress bars for long work: shown on a terminal, hidden with `--json` or when piped.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps labelled `msg`, hidden when `json` is set or stderr is not a terminal.
pub fn bar(json: bool, len: u64, msg: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} ({elapsed})")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(msg);
    bar
}
