//! The `deai` binary: parses the command line and hands it to [`deai_cli::run`].

use clap::Parser;

fn main() {
    let cli = deai_cli::Cli::parse();
    if let Err(err) = deai_cli::run(cli) {
        deai_cli::output::write_stderr(format_args!("error: {err:#}\n"));
        std::process::exit(1);
    }
}
