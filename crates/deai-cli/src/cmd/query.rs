//! Listing and showing ledger entities (datasets, tasks, models) for the group commands.

use deai_ledger::Committed;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::common::{NodeArgs, block_on};

/// The read commands every entity group has.
#[derive(Debug, clap::Subcommand)]
pub enum Query {
    /// List them all.
    List,
    /// Show one by id, with its history.
    Show {
        /// The id.
        id: u64,
    },
}

impl Query {
    /// Runs it against `GET /v1/{what}`, reading the ledger's `T`.
    pub fn run<T: DeserializeOwned + Serialize + Committed>(
        &self,
        node: &NodeArgs,
        what: &str,
    ) -> anyhow::Result<()> {
        match self {
            Self::List => list::<T>(node, what),
            Self::Show { id } => show::<T>(node, what, *id),
        }
    }
}

/// `GET /v1/{what}`, read as the ledger's `T` (a missing field is an error), printed as one
/// line per entity or JSON.
pub fn list<T: DeserializeOwned + Serialize>(node: &NodeArgs, what: &str) -> anyhow::Result<()> {
    let client = node.client();
    let path = format!("/v1/{what}");
    let items: Vec<T> = block_on(async move { client.get(&path).await })??;
    crate::output::emit(node.json, &items, |items| {
        if items.is_empty() {
            println!("no {what}");
        }
        for item in items {
            println!("{}", one_line(item));
        }
    })
}

/// `GET /v1/{what}/{id}`, read as the ledger's `T`, printed as JSON (the human form is the
/// pretty JSON). With `--verify`, read with its proof instead and checked as a light client.
pub fn show<T: DeserializeOwned + Serialize + Committed>(
    node: &NodeArgs,
    what: &str,
    id: u64,
) -> anyhow::Result<()> {
    let client = node.client();
    let path = format!("/v1/{what}/{id}");
    let light = node.light_client()?;
    let kind = what.trim_end_matches('s').to_string();
    let (item, verified) = block_on(async move {
        match light {
            Some(light) => {
                light.check_chain().await?;
                let v = light.entry::<T>(&kind, &id.to_string()).await?;
                anyhow::Ok((v.entry, Some((v.height, v.root))))
            }
            None => Ok((client.get::<T>(&path).await?, None)),
        }
    })??;
    crate::output::emit(node.json, &item, |item| {
        if let Some((height, root)) = verified {
            println!(
                "verified: the state at height {height} (root {root}, certified by the validators' finalization of block {})",
                height + 1
            );
        }
        println!("{}", serde_json::to_string_pretty(item).unwrap_or_default())
    })
}

/// The entity's scalar fields as `key=value`.
fn one_line(item: &impl Serialize) -> String {
    let mut parts = Vec::new();
    if let Ok(Value::Object(obj)) = serde_json::to_value(item) {
        let obj = &obj;
        for (k, v) in obj {
            if matches!(v, Value::Array(_) | Value::Object(_)) {
                continue;
            }
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join("  ")
}
