//! `deai key new|show`: ed25519 key files.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

/// Arguments of `deai key`.
pub type Args = super::common::Group<Which>;

/// The key subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Make a new random key file (refuses to overwrite).
    #[command(after_help = "Example:\n  deai key new --out node.key")]
    New {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show the address of a key file.
    #[command(after_help = "Example:\n  deai key show .deai/dev.key")]
    Show {
        /// The key file.
        file: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct KeyReport {
    file: String,
    address: String,
}

/// Runs `deai key`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (file, key, json) = match args.which {
        Which::New { out, json } => {
            let key = deai_node::keyfile::create(&out)?;
            (out, key, json)
        }
        Which::Show { file, json } => {
            let key = deai_node::keyfile::read(&file)?;
            (file, key, json)
        }
    };
    let report = KeyReport {
        file: file.display().to_string(),
        address: deai_node::keyfile::address(&key).to_string(),
    };
    crate::output::emit(json, &report, |r| println!("{}  {}", r.address, r.file))
}
