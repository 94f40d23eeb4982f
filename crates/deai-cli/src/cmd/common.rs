//! Options and helpers shared by the commands that talk to a node.

use std::{path::PathBuf, time::Duration};

use deai_ledger::{TxBody, TxId};
use deai_node::api::types::TxState;
use deai_node::client::{Client, Sent};
use deai_node::light_client::LightClient;
use serde::Serialize;

/// Where the node's API is.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// The node's HTTP API.
    #[arg(
        long,
        global = true,
        env = "DEAI_NODE",
        default_value = "http://127.0.0.1:7650"
    )]
    pub node: String,
    /// Print one JSON object instead of a human summary.
    #[arg(long, global = true)]
    pub json: bool,
    /// Check state answers as a light client, against finalization certificates of the
    /// validators in this genesis file (the network's genesis.json) rather than the node's word.
    #[arg(long, global = true, value_name = "GENESIS", env = "DEAI_VERIFY")]
    pub verify: Option<PathBuf>,
}

impl NodeArgs {
    /// A client for the node.
    pub fn client(&self) -> Client {
        Client::new(self.node.clone())
    }

    /// The genesis given with `--verify`, if any.
    pub fn trusted_genesis(&self) -> anyhow::Result<Option<deai_ledger::Genesis>> {
        let Some(path) = &self.verify else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "--verify {}: cannot read the genesis file: {e}",
                path.display()
            )
        })?;
        let genesis = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("--verify {}: not a genesis file: {e}", path.display()))?;
        Ok(Some(genesis))
    }

    /// A light client of the node trusting the `--verify` genesis, if one was given.
    pub fn light_client(&self) -> anyhow::Result<Option<LightClient>> {
        let Some(genesis) = self.trusted_genesis()? else {
            return Ok(None);
        };
        let light = LightClient::new(self.client(), &genesis).map_err(|e| {
            anyhow::anyhow!(
                "--verify {}: {e}",
                self.verify
                    .as_deref()
                    .unwrap_or_else(|| std::path::Path::new(""))
                    .display()
            )
        })?;
        Ok(Some(light))
    }
}

/// A command group that talks to a node: its subcommand and where the node is.
#[derive(Debug, clap::Args)]
pub struct NodeGroup<W: clap::Subcommand> {
    /// What to do.
    #[command(subcommand)]
    pub which: W,
    /// The node.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// A command group of local tools: only its subcommand.
#[derive(Debug, clap::Args)]
pub struct Group<W: clap::Subcommand> {
    /// What to do.
    #[command(subcommand)]
    pub which: W,
}

/// How a transaction is signed and sent.
#[derive(Debug, Clone, clap::Args)]
pub struct SignArgs {
    /// Key file of the sender (made by `deai key new` or `deai init`); required.
    // Checked when used rather than by clap: clap forbids a global argument that is required,
    // and global is what lets `--key` come before or after the subcommand.
    #[arg(long, global = true, env = "DEAI_KEY")]
    pub key: Option<PathBuf>,
    /// Fee offered to the block proposer, base units (the genesis sets the minimum).
    #[arg(long, global = true)]
    pub fee: Option<u128>,
    /// Return once the node accepted it, without waiting for finality.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Seconds to wait for finality.
    #[arg(long, global = true, default_value_t = 30)]
    pub wait_s: u64,
}

impl SignArgs {
    /// The sender's key file, or an error saying how to give it.
    pub fn key_file(&self) -> anyhow::Result<&std::path::Path> {
        self.key.as_deref().ok_or_else(|| {
            anyhow::anyhow!("give the sender's key file with --key FILE (or DEAI_KEY=FILE)")
        })
    }
}

/// Runs an async block on a small runtime of its own (the CLI is synchronous at its edges).
pub fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

/// Signs `body` with the key in `sign`, using the sender's next nonce from the node, submits it and
/// (unless `--no-wait`) waits until it is final and applied ([`Client::send`]).
pub async fn send(node: &NodeArgs, sign: &SignArgs, body: TxBody) -> anyhow::Result<Sent> {
    let key = deai_node::keyfile::read(sign.key_file()?)?;
    let wait = (!sign.no_wait).then(|| Duration::from_secs(sign.wait_s));
    Ok(node.client().send(&key, body, sign.fee, wait).await?)
}

/// What `--json` prints for a sent transaction.
#[derive(Serialize)]
struct SentReport<'a> {
    tx: TxId,
    status: Option<&'a TxState>,
    /// The entity the transaction created, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<Created>,
}

/// An entity a transaction created.
#[derive(Serialize)]
struct Created {
    kind: &'static str,
    id: u64,
}

/// The entity an applied transaction created, read from its receipt's events.
fn created(state: Option<&TxState>) -> Option<Created> {
    use deai_ledger::Event;
    let Some(TxState::Finalized { receipt, .. }) = state else {
        return None;
    };
    receipt.events.iter().find_map(|e| {
        let (kind, id) = match e {
            Event::DatasetRegistered { id, .. } => ("dataset", *id),
            Event::TaskCreated { id, .. } => ("task", *id),
            Event::ModelRegistered { id, .. } => ("model", *id),
            Event::OfferCreated { id, .. } => ("offer", *id),
            Event::ChannelOpened { id, .. } => ("channel", *id),
            Event::Proposed { id, .. } => ("proposal", *id),
            _ => return None,
        };
        Some(Created { kind, id })
    })
}

/// Prints the outcome of a sent transaction, and the id of what it created.
pub fn report_sent(json: bool, what: &str, sent: &Sent) -> anyhow::Result<()> {
    let out = SentReport {
        tx: sent.id,
        status: sent.state.as_ref(),
        created: created(sent.state.as_ref()),
    };
    crate::output::emit(json, &out, |r| {
        match sent.state.as_ref().and_then(TxState::height) {
            None => println!("{what}: submitted {} (not waiting for finality)", sent.id),
            Some(h) => println!("{what}: finalized {} at height {h}", sent.id),
        }
        if let Some(c) = &r.created {
            println!("created {} {}", c.kind, c.id);
        }
    })
}
