//! Options and helpers shared by the commands that talk to a node.

use std::{path::PathBuf, time::Duration};

use deai_ledger::{SignedTx, Tx, TxBody};
use deai_node::client::Client;

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
}

impl NodeArgs {
    /// A client for the node.
    pub fn client(&self) -> Client {
        Client::new(self.node.clone())
    }
}

/// How a transaction is signed and sent.
#[derive(Debug, Clone, clap::Args)]
pub struct SignArgs {
    /// Key file of the sender (made by `deai key new` or `deai init`).
    #[arg(long, global = true, env = "DEAI_KEY")]
    pub key: PathBuf,
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

/// Runs an async block on a small runtime of its own (the CLI is synchronous at its edges).
pub fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

/// Signs `body` with the key in `sign`, using the sender's next nonce from the node, submits it and
/// (unless `--no-wait`) waits for its final status. Returns `(tx id, final status or null)`.
pub async fn send(
    node: &NodeArgs,
    sign: &SignArgs,
    body: TxBody,
) -> anyhow::Result<(String, serde_json::Value)> {
    let key = deai_node::keyfile::read(&sign.key)?;
    let sender = deai_node::keyfile::address(&key);
    let client = node.client();
    let status = client.status().await?;
    let chain_id = status["chain_id"].as_str().unwrap_or_default().to_string();
    let account = client
        .get::<serde_json::Value>(&format!("/v1/accounts/{sender}"))
        .await?;
    let nonce = account["account"]["nonce"].as_u64().unwrap_or(0);
    let fee = match sign.fee {
        Some(fee) => fee,
        None => status["fee_min"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    };
    let tx = SignedTx::sign(
        Tx {
            chain_id,
            sender,
            nonce,
            fee,
            body,
        },
        &key,
    );
    let id = client.submit(&tx).await?;
    if sign.no_wait {
        return Ok((id.to_string(), serde_json::Value::Null));
    }
    let fin = client
        .wait_final(&id, Duration::from_secs(sign.wait_s))
        .await?;
    // Finalized is not enough: a transaction can be included in a block and refused there.
    if fin["status"] == "rejected" || fin["applied"] == false {
        anyhow::bail!("transaction {id} was rejected: {}", fin);
    }
    Ok((id.to_string(), fin))
}

/// Prints the outcome of a sent transaction.
pub fn report_sent(
    json: bool,
    what: &str,
    id: &str,
    status: &serde_json::Value,
) -> anyhow::Result<()> {
    let out = serde_json::json!({ "tx": id, "status": status });
    crate::output::emit(json, &out, |_| {
        let height = status["height"]
            .as_u64()
            .map(|h| format!(" at height {h}"))
            .unwrap_or_default();
        if status.is_null() {
            println!("{what}: submitted {id} (not waiting for finality)");
        } else {
            println!("{what}: finalized {id}{height}");
        }
    })
}
