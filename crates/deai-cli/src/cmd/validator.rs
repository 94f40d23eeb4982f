//! `deai validator`: declare a node's consensus key for an account's stake, and show the sets.
//!
//! A node becomes a validator at the first epoch boundary after its operator's account holds at
//! least `validator_stake_min` bonded (`deai tx stake`) and has declared the node's key (`deai
//! validator declare`); unbonding (`deai tx unstake`) removes it at the next boundary.

use std::path::PathBuf;

use clap::Subcommand;
use deai_ledger::{Member, TxBody, ValidatorDeclare, ValidatorSet};
use deai_node::api::types::ValidatorsView;

use super::common::{NodeArgs, SignArgs, block_on, report_sent};

/// Arguments of `deai validator`.
pub type Args = super::common::NodeGroup<Which>;

/// The validator subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Declare the consensus key of the node in `--dir` for the account of `--key` (signed by
    /// both: the node key proves it agrees).
    #[command(after_help = "Example:
  deai tx stake --amount 200000000000000000000 --key op.key
  deai validator declare --dir NODE_DIR --key op.key
(the node joins the validators at the next epoch boundary)")]
    Declare {
        /// The node's data directory (its `node.key` and `config.toml`).
        #[arg(long)]
        dir: PathBuf,
        /// Where other validators reach the node (`ip:port`); default: its `p2p_listen`.
        #[arg(long)]
        p2p: Option<String>,
        /// Signing and fee (the account whose stake the node validates with).
        #[command(flatten)]
        sign: SignArgs,
    },
    /// The validator set of the current epoch, the next one once chosen, and the candidates.
    #[command(after_help = "Example:\n  deai validator list --node http://127.0.0.1:7650")]
    List,
}

/// Runs `deai validator`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Declare { dir, p2p, sign } => declare(&args.node, &dir, p2p, &sign),
        Which::List => list(&args.node),
    }
}

fn declare(
    node: &NodeArgs,
    dir: &std::path::Path,
    p2p: Option<String>,
    sign: &SignArgs,
) -> anyhow::Result<()> {
    use deai_node::config::{NODE_KEY_FILE, NodeConfig};
    let node_key = deai_node::keyfile::read(&dir.join(NODE_KEY_FILE)).map_err(|e| {
        anyhow::anyhow!(
            "{e}; --dir must be the node's data directory (made by deai init or deai testnet init)"
        )
    })?;
    let p2p = match p2p {
        Some(p) => p,
        None => NodeConfig::load(dir)?.p2p_listen.to_string(),
    };
    match p2p.parse::<std::net::SocketAddr>() {
        Ok(a) if a.port() != 0 && !a.ip().is_unspecified() => {}
        _ => anyhow::bail!(
            "--p2p {p2p:?} is not an address other validators can dial (ip:port, no 0.0.0.0, no \
             port 0); give the node's reachable address"
        ),
    }
    let account = deai_node::keyfile::address(&deai_node::keyfile::read(sign.key_file()?)?);
    let client = node.client();
    let sent = block_on(async {
        let chain_id = client.status().await?.chain_id;
        let body = ValidatorDeclare::new(&chain_id, &account, &node_key, p2p);
        super::common::send(node, sign, TxBody::ValidatorDeclare(body)).await
    })??;
    report_sent(node.json, "validator declare", &sent)
}

fn list(node: &NodeArgs) -> anyhow::Result<()> {
    let client = node.client();
    let v: ValidatorsView = block_on(async move { client.validators().await })??;
    crate::output::emit(node.json, &v, |v| {
        println!(
            "epoch {} (blocks of {}; the next starts at height {})",
            v.epoch, v.epoch_blocks, v.next_epoch_height
        );
        print_set("validators", &v.set);
        match &v.next {
            Some(next) => print_set("next epoch", next),
            None => println!("next epoch: not chosen yet"),
        }
        if !v.candidates.is_empty() {
            println!("candidates now ({}):", v.candidates.len());
            for m in &v.candidates {
                print_member(m);
            }
        }
    })
}

fn print_set(title: &str, set: &ValidatorSet) {
    println!(
        "{title} (epoch {}, {} chosen at height {}):",
        set.epoch,
        set.members.len(),
        set.chosen_at
    );
    for m in &set.members {
        print_member(m);
    }
}

fn print_member(m: &Member) {
    let p2p = if m.p2p.is_empty() { "-" } else { &m.p2p };
    println!(
        "  {}  account {}  stake {}  p2p {p2p}",
        m.key, m.account, m.stake
    );
}
