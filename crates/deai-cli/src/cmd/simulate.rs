//! `deai simulate` (being built).

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
