//! `deai ledger status|block|tx|prove|verify`: read the chain (with the treasury and emissions),
//! check proofs, audit the whole history.

use clap::Subcommand;

use super::common::block_on;
use crate::output::emit;

/// Arguments of `deai ledger`.
pub type Args = super::common::NodeGroup<Which>;

/// The ledger subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Chain id, finalized height, state root, peers, mempool size, the treasury's balance and
    /// the tokens emitted.
    #[command(after_help = "Example:\n  deai ledger status --node http://127.0.0.1:7650")]
    Status,
    /// A finalized block with its transactions and receipts.
    #[command(after_help = "Example:\n  deai ledger block 12")]
    Block {
        /// The height.
        height: u64,
    },
    /// A transaction's status and receipt.
    #[command(after_help = "Example:
  deai ledger tx ID                           ID: the transaction id `deai tx` printed")]
    Tx {
        /// The transaction id (hex).
        id: String,
    },
    /// Fetch an inclusion proof for a state entry and check it as a light client: against the
    /// state root of the block above it, whose finalization certificate must verify.
    #[command(after_help = "Examples:
  deai ledger prove dataset 1 --verify testnet/node0/genesis.json
  deai ledger prove account ADDR")]
    Prove {
        /// account, dataset, task, model or epoch (a validator set).
        kind: String,
        /// The address (accounts) or numeric id.
        id: String,
    },
    /// Replay every finalized block from genesis in a fresh state and check every state root.
    #[command(after_help = "Example:\n  deai ledger verify --node http://127.0.0.1:7650")]
    Verify,
}

/// Runs `deai ledger`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let node = args.node;
    let json_out = node.json;
    block_on(async move {
        let client = node.client();
        match args.which {
            Which::Status => status(&client, json_out).await,
            Which::Block { height } => {
                let b = client.block(height).await?;
                emit(json_out, &b, |b| {
                    let n = b.txs.len();
                    println!("block {height}  digest {}  txs {n}", b.digest);
                    println!("  parent state root {}", b.parent_state_root);
                    println!("  state root        {}", b.state_root);
                })
            }
            Which::Tx { id } => {
                let tx_id: deai_ledger::TxId = id
                    .parse()
                    .map_err(|e| anyhow::anyhow!("{id:?} is not a transaction id: {e}"))?;
                let t = client.tx(&tx_id).await?.ok_or_else(|| {
                    anyhow::anyhow!("no transaction {id} is known to {}", client.base())
                })?;
                emit(json_out, &t, |t| {
                    println!("{}", serde_json::to_string_pretty(t).unwrap_or_default())
                })
            }
            Which::Prove { kind, id } => {
                let trusted = node.trusted_genesis()?;
                prove(&client, trusted.as_ref(), &kind, &id, json_out).await
            }
            Which::Verify => verify(&client, json_out).await,
        }
    })?
}

/// What `deai ledger status --json` prints: the node's status with the treasury and emissions
/// beside it.
#[derive(serde::Serialize)]
struct StatusReport {
    #[serde(flatten)]
    status: deai_node::api::types::StatusView,
    /// The treasury's account.
    treasury: deai_ledger::Address,
    /// Its balance, base units.
    #[serde(with = "deai_ledger::amount")]
    treasury_balance: u128,
    /// Minted by emissions since genesis, base units.
    #[serde(with = "deai_ledger::amount")]
    emitted: u128,
    /// Emitted for this epoch's validators, not yet paid, base units.
    #[serde(with = "deai_ledger::amount")]
    emission_pool: u128,
}

async fn status(client: &deai_node::client::Client, json_out: bool) -> anyhow::Result<()> {
    let status = client.status().await?;
    let gov = client.governance().await?;
    let report = StatusReport {
        status,
        treasury: gov.treasury,
        treasury_balance: gov.treasury_balance,
        emitted: gov.emitted,
        emission_pool: gov.emission_pool,
    };
    emit(json_out, &report, |r| {
        let s = &r.status;
        println!(
            "chain {}  height {}  root {}",
            s.chain_id, s.height, s.state_root
        );
        println!("peers {}  mempool {}", s.peers, s.mempool_size);
        println!(
            "treasury {} ({})  emitted {}  emission pool {}",
            crate::output::amount(r.treasury_balance),
            crate::output::short(&r.treasury.to_string()),
            crate::output::amount(r.emitted),
            crate::output::amount(r.emission_pool)
        );
    })
}

async fn prove(
    client: &deai_node::client::Client,
    trusted: Option<&deai_ledger::Genesis>,
    kind: &str,
    id: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let check = deai_node::audit::chain::check_proof(client, trusted, kind, id).await?;
    emit(json_out, &check, |c| {
        let ok = if c.valid { "VALID" } else { "INVALID" };
        println!(
            "{ok}: {kind} {id} at height {} against root {}, certified by the finalization of block {}",
            c.height, c.root, c.certified_by
        );
        if c.validator_set == "node" {
            println!(
                "  (validator set from the node's own genesis; pass --verify GENESIS to pin it)"
            );
        }
    })?;
    match check.error {
        Some(e) => anyhow::bail!("proof does not verify: {e}"),
        None => Ok(()),
    }
}

async fn verify(client: &deai_node::client::Client, json_out: bool) -> anyhow::Result<()> {
    let bar = crate::progress::bar(json_out, 0, "replaying blocks");
    let report = deai_node::audit::chain::verify_chain(client, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish_and_clear();
    emit(json_out, &report, |r| {
        if r.ok {
            println!(
                "OK: replayed {} blocks ({} txs) from genesis; every state root matches ({})",
                r.blocks, r.txs, r.state_root
            );
        } else if let Some(m) = &r.mismatch {
            println!(
                "MISMATCH at height {}: {} expected {} computed {}",
                m.height, m.what, m.expected, m.computed
            );
        }
    })?;
    if !report.ok {
        anyhow::bail!("ledger verification failed");
    }
    Ok(())
}
