//! The `deai` binary: parses the command line and hands it to [`deai_cli::run`]. With `--json`,
//! a failure is also one JSON object on stdout (`{"ok": false, "error": ...}`) unless the
//! command already printed its document; the exit code is non-zero either way.

use clap::Parser;

fn main() {
    let json = std::env::args_os().any(|a| a == "--json");
    let cli = match deai_cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version are not failures; usage errors under --json are.
        Err(e) if json && e.use_stderr() => {
            let message = e.render().to_string();
            deai_cli::output::write_stdout(format_args!(
                "{}\n",
                deai_cli::output::json_error(message.trim())
            ));
            deai_cli::output::write_stderr(format_args!("{message}"));
            std::process::exit(2);
        }
        Err(e) => e.exit(),
    };
    if let Err(err) = deai_cli::run(cli) {
        let message = format!("{err:#}");
        if json && !deai_cli::output::emitted_json() {
            deai_cli::output::write_stdout(format_args!(
                "{}\n",
                deai_cli::output::json_error(&message)
            ));
        }
        deai_cli::output::write_stderr(format_args!("error: {message}\n"));
        std::process::exit(1);
    }
}
