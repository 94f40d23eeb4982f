//! Listing and showing ledger entities (datasets, tasks, models) for the group commands.

use deai_ledger::Committed;
use serde::{Serialize, de::DeserializeOwned};

use super::{
    common::{NodeArgs, block_on},
    listing::Listed,
};

/// The read commands every entity group has.
#[derive(Debug, clap::Subcommand)]
pub enum Query {
    /// List them all, a row each (`--json`: the ledger's entities).
    #[command(after_help = "Examples:
  deai dataset list
  deai task list --full
  deai model list --json")]
    List {
        /// Full hashes and addresses instead of their first characters.
        #[arg(long)]
        full: bool,
    },
    /// Show one by id, with its history.
    #[command(after_help = "Examples:
  deai task show 1
  deai dataset show 1 --full
  deai model show 1 --verify testnet/node0/genesis.json")]
    Show {
        /// The id.
        id: u64,
        /// Full hashes and addresses instead of their first characters.
        #[arg(long)]
        full: bool,
    },
}

impl Query {
    /// Runs it against `GET /v1/{what}`, reading the ledger's `T`.
    pub fn run<T: DeserializeOwned + Serialize + Committed + Listed>(
        &self,
        node: &NodeArgs,
        what: &str,
    ) -> anyhow::Result<()> {
        match self {
            Self::List { full } => list::<T>(node, what, *full),
            Self::Show { id, full } => show::<T>(node, what, *id, *full),
        }
    }
}

/// `GET /v1/{what}`, read as the ledger's `T` (a missing field is an error), printed as a table
/// or JSON.
pub fn list<T: DeserializeOwned + Serialize + Listed>(
    node: &NodeArgs,
    what: &str,
    full: bool,
) -> anyhow::Result<()> {
    let client = node.client();
    let path = format!("/v1/{what}");
    let items: Vec<T> = block_on(async move { client.get(&path).await })??;
    crate::output::emit(node.json, &items, |items| {
        super::listing::print_table(what, items, full)
    })
}

/// `GET /v1/{what}/{id}`, read as the ledger's `T`, printed as labelled fields or JSON. With
/// `--verify`, read with its proof instead and checked as a light client.
pub fn show<T: DeserializeOwned + Serialize + Committed + Listed>(
    node: &NodeArgs,
    what: &str,
    id: u64,
    full: bool,
) -> anyhow::Result<()> {
    let item = fetch::<T>(node, what, id)?;
    crate::output::emit(node.json, &item.0, |entry| {
        if let Some((height, root)) = item.1 {
            crate::output::write_stdout(format_args!(
                "verified: the state at height {height} (root {root}, certified by the validators' finalization of block {})\n",
                height + 1
            ));
        }
        let fields = entry.fields(full);
        let width = fields
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (k, v) in fields {
            let pad = width - k.chars().count();
            crate::output::write_stdout(format_args!("{k}{}  {v}\n", " ".repeat(pad)));
        }
    })
}

/// Reads entity `id`, and with `--verify` its proof: the entity and, when verified, the height
/// and state root it was checked at.
#[allow(clippy::type_complexity)]
fn fetch<T: DeserializeOwned + Committed>(
    node: &NodeArgs,
    what: &str,
    id: u64,
) -> anyhow::Result<(T, Option<(u64, deai_ledger::Digest)>)> {
    let client = node.client();
    let path = format!("/v1/{what}/{id}");
    let light = node.light_client()?;
    let kind = what.trim_end_matches('s').to_string();
    block_on(async move {
        match light {
            Some(light) => {
                light.check_chain().await?;
                let v = light.entry::<T>(&kind, &id.to_string()).await?;
                anyhow::Ok((v.entry, Some((v.height, v.root))))
            }
            None => Ok((client.get::<T>(&path).await?, None)),
        }
    })?
}
