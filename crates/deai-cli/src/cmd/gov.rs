//! `deai gov propose|vote|execute|show|list|params`: put protocol changes, ethics blocks and
//! treasury spends to a stake-weighted vote, vote, execute what passed, and follow the tally.
//!
//! A proposal locks a deposit (the chain's `gov_deposit_min` unless `--deposit` says more),
//! votes count for `gov_voting_blocks` blocks, the ledger tallies at the block after the last,
//! and a passed proposal is executed by anyone after `gov_timelock_blocks` (docs/governance.md
//! states each rule). A parameter change is checked here against the chain's current
//! parameters with the ledger's own rules before anything is sent.

use std::collections::BTreeSet;

use clap::Subcommand;
use deai_ledger::{
    Address, BlockTarget, Choice, Digest, Event, ParamSet, Params, ProposalKind, ProposalStatus,
    TxBody, TxId,
    tx::{Execute, Propose},
};
use deai_node::api::types::{GovernanceView, ProposalDetailView, ProposalView, TxState};
use serde::Serialize;

use super::common::{NodeArgs, SignArgs, block_on, report_sent, send};
use super::tx::parse_address;
use crate::output::{amount, emit};

/// Arguments of `deai gov`.
pub type Args = super::common::NodeGroup<Which>;

/// The governance subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Put a parameter change, a block decision or a treasury spend to a vote, locking a
    /// deposit (returned unless the vote misses quorum or is vetoed).
    Propose {
        /// What the proposal does.
        #[command(subcommand)]
        kind: ProposeKind,
    },
    /// Vote on a proposal while it is voting (weighed by stake bonded at its start; a later
    /// vote replaces an earlier one).
    #[command(after_help = "Example:\n  deai gov vote --proposal 1 --choice yes --key op.key")]
    Vote {
        /// The proposal.
        #[arg(long)]
        proposal: u64,
        /// yes, no, abstain (counts toward quorum only) or veto (against, and burns the
        /// deposit if enough agree).
        #[arg(long, value_parser = parse_choice)]
        choice: Choice,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// Carry out a passed proposal once its timelock is over (anyone may).
    #[command(after_help = "Example:\n  deai gov execute --proposal 1 --key .deai/dev.key")]
    Execute {
        /// The proposal.
        #[arg(long)]
        proposal: u64,
        /// Signing.
        #[command(flatten)]
        sign: SignArgs,
    },
    /// One proposal: what it does, its tally against quorum and threshold, blocks left, votes.
    #[command(after_help = "Example:\n  deai gov show 1")]
    Show {
        /// The proposal.
        id: u64,
    },
    /// Proposals, newest first, with their progress.
    #[command(after_help = "Examples:\n  deai gov list\n  deai gov list --status voting")]
    List {
        /// Only proposals in this status: voting, passed, rejected, vetoed, no_quorum or
        /// executed.
        #[arg(long)]
        status: Option<String>,
    },
    /// The parameters a proposal may change with their current values, and those fixed at
    /// genesis with the reason.
    #[command(after_help = "Example:\n  deai gov params")]
    Params,
}

/// The kinds of proposal.
#[derive(Debug, Subcommand)]
pub enum ProposeKind {
    /// Change protocol parameters (all or none; `deai gov params` lists them).
    #[command(after_help = "Example:
  deai gov propose param --set task_epsilon_max=8000000 --set fee_min=20 \\
      --description 'cap ε per task at 8' --key .deai/dev.key")]
    Param {
        /// NAME=VALUE, the value a plain decimal in the parameter's unit (repeat for several).
        #[arg(long = "set", required = true, value_parser = parse_set)]
        changes: Vec<ParamSet>,
        /// The proposal's published text (its BLAKE3 hash goes on chain).
        #[arg(long)]
        description: String,
        /// Deposit and signing.
        #[command(flatten)]
        common: ProposeArgs,
    },
    /// Block (or with --unblock lift a block on) a dataset, model, offer or validator.
    #[command(after_help = "Example:
  deai gov propose block --target dataset:3 --reason 'collected without consent' --key .deai/dev.key")]
    Block {
        /// dataset:ID, model:ID, offer:ID or validator:ADDRESS.
        #[arg(long, value_parser = BlockTarget::parse)]
        target: BlockTarget,
        /// Lift an earlier block instead of blocking.
        #[arg(long)]
        unblock: bool,
        /// The published reasons (their BLAKE3 hash goes on chain with the decision).
        #[arg(long)]
        reason: String,
        /// The proposal's published text; default: the reasons.
        #[arg(long)]
        description: Option<String>,
        /// Deposit and signing.
        #[command(flatten)]
        common: ProposeArgs,
    },
    /// Pay from the treasury.
    #[command(after_help = "Example:
  deai gov propose spend --to ADDR --amount 1000000000000000000000 \\
      --description 'audit of the secagg crate' --key .deai/dev.key")]
    Spend {
        /// The payee's address.
        #[arg(long, value_parser = parse_address)]
        to: Address,
        /// Amount, base units.
        #[arg(long)]
        amount: u128,
        /// The proposal's published text (its BLAKE3 hash goes on chain).
        #[arg(long)]
        description: String,
        /// Deposit and signing.
        #[command(flatten)]
        common: ProposeArgs,
    },
}

/// What every proposal takes besides its kind.
#[derive(Debug, Clone, clap::Args)]
pub struct ProposeArgs {
    /// Deposit, base units; default: the chain's gov_deposit_min.
    #[arg(long)]
    pub deposit: Option<u128>,
    /// Signing and fee.
    #[command(flatten)]
    pub sign: SignArgs,
}

/// Runs `deai gov`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let node = &args.node;
    match args.which {
        Which::Propose { kind } => {
            let (kind, description, common) = proposal(kind);
            propose(node, kind, &description, &common)
        }
        Which::Vote {
            proposal,
            choice,
            sign,
        } => {
            let vote = deai_ledger::GovVote { proposal, choice };
            let sent = block_on(send(node, &sign, TxBody::Vote(vote)))??;
            let what = format!("vote {} on proposal {proposal}", choice.name());
            report_sent(node.json, &what, &sent)
        }
        Which::Execute { proposal, sign } => execute(node, proposal, &sign),
        Which::Show { id } => show(node, id),
        Which::List { status } => list(node, status.as_deref()),
        Which::Params => params(node),
    }
}

/// The ledger's proposal kind, the description text and the common flags of `kind`.
fn proposal(kind: ProposeKind) -> (ProposalKind, String, ProposeArgs) {
    match kind {
        ProposeKind::Param {
            changes,
            description,
            common,
        } => (ProposalKind::ParamChange { changes }, description, common),
        ProposeKind::Block {
            target,
            unblock,
            reason,
            description,
            common,
        } => {
            let kind = ProposalKind::Block {
                target,
                blocked: !unblock,
                reason: Digest::hash(reason.as_bytes()),
            };
            (kind, description.unwrap_or(reason), common)
        }
        ProposeKind::Spend {
            to,
            amount,
            description,
            common,
        } => (
            ProposalKind::TreasurySpend { to, amount },
            description,
            common,
        ),
    }
}

/// What `deai gov propose --json` prints.
#[derive(Debug, Serialize)]
struct Proposed {
    /// The new proposal's id (absent with `--no-wait`).
    proposal: Option<u64>,
    tx: TxId,
    height: Option<u64>,
    /// Last height a vote counts.
    end_height: Option<u64>,
    #[serde(with = "deai_ledger::amount")]
    deposit: u128,
    /// BLAKE3 of the description text: what the chain records.
    description_hash: Digest,
}

fn propose(
    node: &NodeArgs,
    kind: ProposalKind,
    description: &str,
    common: &ProposeArgs,
) -> anyhow::Result<()> {
    let gov = block_on(node.client().governance())??;
    let rules = &gov.params;
    let deposit = common.deposit.unwrap_or(rules.gov_deposit_min);
    if deposit < rules.gov_deposit_min {
        anyhow::bail!(
            "--deposit {deposit} is below the chain's gov_deposit_min {}; give at least that, or \
             leave --deposit out to lock exactly that",
            rules.gov_deposit_min
        );
    }
    if let ProposalKind::ParamChange { changes } = &kind {
        check_changes(rules, changes)?;
    }
    let description_hash = Digest::hash(description.as_bytes());
    let body = TxBody::Propose(Propose {
        kind,
        deposit,
        description: description_hash,
    });
    let sent = block_on(send(node, &common.sign, body))??;
    let created = match sent.state.as_ref() {
        Some(TxState::Finalized { receipt, .. }) => receipt.events.iter().find_map(|e| match e {
            Event::Proposed { id, end_height, .. } => Some((*id, *end_height)),
            _ => None,
        }),
        _ => None,
    };
    let out = Proposed {
        proposal: created.map(|(id, _)| id),
        tx: sent.id,
        height: sent.state.as_ref().and_then(TxState::height),
        end_height: created.map(|(_, end)| end),
        deposit,
        description_hash,
    };
    emit(node.json, &out, |p| {
        match (p.proposal, p.end_height) {
            (Some(id), Some(end)) => {
                println!(
                    "proposal {id} opened at height {}: votes count until height {end}; deposit {} locked",
                    p.height.unwrap_or(0),
                    amount(deposit)
                );
                println!("  vote: deai gov vote --proposal {id} --choice yes|no|abstain|veto");
            }
            _ => println!("proposal submitted in {} (not waiting for finality)", p.tx),
        }
        println!(
            "  description hash {description_hash} (BLAKE3 of the text; publish the text with it)"
        );
    })
}

/// Applies `changes` to the chain's `current` parameters with the ledger's own rules
/// ([`Params::with_change`], each name once), so a change the ledger would refuse is refused
/// here with its reason before a deposit is at stake.
fn check_changes(current: &Params, changes: &[ParamSet]) -> anyhow::Result<Params> {
    let mut seen = BTreeSet::new();
    let mut params = current.clone();
    for c in changes {
        if !seen.insert(c.name.as_str()) {
            anyhow::bail!("--set {}: named twice; give each parameter once", c.name);
        }
        params = params.with_change(&c.name, &c.value).map_err(|reason| {
            anyhow::anyhow!(
                "--set {}={}: {reason}; `deai gov params` lists what may change and the current \
                 values",
                c.name,
                c.value
            )
        })?;
    }
    Ok(params)
}

/// Refuses an `Execute` the ledger would refuse for a reason known now (not passed, timelock
/// not over, window closed), saying when it can run; then sends it.
fn execute(node: &NodeArgs, id: u64, sign: &SignArgs) -> anyhow::Result<()> {
    let p = block_on(node.client().proposal(id))??.summary;
    let next = p.height.saturating_add(1);
    match (p.status, p.executable_from, p.executable_until) {
        (ProposalStatus::Passed, Some(from), _) if next < from => anyhow::bail!(
            "proposal {id} is in its timelock: it executes from height {from} (the chain is at \
             {}); run this again in {} blocks",
            p.height,
            from - next
        ),
        (ProposalStatus::Passed, _, Some(until)) if next > until => {
            anyhow::bail!("proposal {id} expired: its execution window closed at height {until}")
        }
        (ProposalStatus::Passed, ..) => {}
        (ProposalStatus::Voting, ..) => anyhow::bail!(
            "proposal {id} is still voting (until height {}): only a passed proposal executes",
            p.end_height
        ),
        (status, ..) => anyhow::bail!(
            "proposal {id} is {}: only a passed proposal executes",
            status.name()
        ),
    }
    let sent = block_on(send(node, sign, TxBody::Execute(Execute { proposal: id })))??;
    report_sent(node.json, &format!("proposal {id} executed"), &sent)
}

fn show(node: &NodeArgs, id: u64) -> anyhow::Result<()> {
    let p: ProposalDetailView = block_on(node.client().proposal(id))??;
    emit(node.json, &p, |p| {
        let s = &p.summary;
        println!(
            "proposal {}: {}  [{}]  by {}",
            s.id,
            describe(&p.proposal),
            s.status.name(),
            s.proposer
        );
        println!(
            "  deposit {}  description {}",
            amount(s.deposit),
            p.description
        );
        print_progress(s);
        if p.votes.is_empty() {
            println!("  no votes");
        }
        for v in &p.votes {
            println!(
                "  {}  {:<7}  weight {}",
                v.voter,
                v.choice.name(),
                amount(v.weight)
            );
        }
    })
}

/// The tally against the rules, the time left and the execution window.
fn print_progress(s: &ProposalView) {
    let t = &s.tally;
    println!(
        "  votes count at heights {}..={}: {}",
        s.start_height,
        s.end_height,
        match s.blocks_left {
            0 => format!("ended (the chain is at {})", s.height),
            n => format!("{n} blocks left (the chain is at {})", s.height),
        }
    );
    println!(
        "  tally{}: yes {}  no {}  abstain {}  veto {}  of power {}",
        if s.tally_final { "" } else { " so far" },
        amount(t.yes),
        amount(t.no),
        amount(t.abstain),
        amount(t.veto),
        amount(t.power)
    );
    println!(
        "  voted {} of the power (quorum {}); yes {} of yes+no+veto (passes above {}); veto {} \
         (vetoes above {})",
        percent(s.voted_bps),
        percent(s.quorum_bps),
        percent(s.yes_bps),
        percent(s.threshold_bps),
        percent(s.veto_share_bps),
        percent(s.veto_bps)
    );
    if s.status == ProposalStatus::Voting {
        println!("  if it ended now: {}", s.outcome.name());
    }
    match (s.executed_at, s.executable_from, s.executable_until) {
        (Some(h), ..) => println!("  executed at height {h}"),
        (None, Some(from), Some(until)) => {
            println!(
                "  executable at heights {from}..={until} (deai gov execute --proposal {})",
                s.id
            )
        }
        _ => {}
    }
}

fn list(node: &NodeArgs, status: Option<&str>) -> anyhow::Result<()> {
    let proposals: Vec<ProposalView> = block_on(node.client().proposals(status))??;
    emit(node.json, &proposals, |ps| {
        if ps.is_empty() {
            println!("no proposals");
            return;
        }
        let mut table = crate::table::Table::new(&[
            "ID", "KIND", "STATUS", "ENDS", "LEFT", "VOTED", "YES", "OUTCOME",
        ]);
        for p in ps {
            table.row(vec![
                p.id.to_string(),
                p.kind.clone(),
                p.status.name().to_string(),
                p.end_height.to_string(),
                p.blocks_left.to_string(),
                percent(p.voted_bps),
                percent(p.yes_bps),
                p.outcome.name().to_string(),
            ]);
        }
        print!("{}", table.render());
    })
}

/// What `deai gov params --json` prints.
#[derive(Debug, Serialize)]
struct ParamsReport {
    height: u64,
    governable: Vec<ParamValue>,
    fixed: Vec<ParamValue>,
}

/// One parameter and its current value (a decimal string), and why it is fixed if it is.
#[derive(Debug, Serialize)]
struct ParamValue {
    name: String,
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed_because: Option<String>,
}

fn params(node: &NodeArgs) -> anyhow::Result<()> {
    let gov: GovernanceView = block_on(node.client().governance())??;
    let report = params_report(&gov);
    emit(node.json, &report, |r| {
        println!(
            "governable at height {} (deai gov propose param --set NAME=VALUE):",
            r.height
        );
        let width = r.governable.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for p in &r.governable {
            println!("  {:<width$}  {}", p.name, p.value);
        }
        println!("fixed at genesis:");
        for p in &r.fixed {
            let why = p.fixed_because.as_deref().unwrap_or_default();
            println!("  {} = {}  ({why})", p.name, p.value);
        }
    })
}

/// The chain's parameters split into governable and fixed, as the node names them.
fn params_report(gov: &GovernanceView) -> ParamsReport {
    let values = gov.params.named_values();
    let value = |name: &str| {
        values
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| "?".to_string(), |(_, v)| v.clone())
    };
    ParamsReport {
        height: gov.height,
        governable: gov
            .governable
            .iter()
            .map(|name| ParamValue {
                name: name.clone(),
                value: value(name),
                fixed_because: None,
            })
            .collect(),
        fixed: gov
            .fixed
            .iter()
            .map(|f| ParamValue {
                name: f.name.clone(),
                value: value(&f.name),
                fixed_because: Some(f.reason.clone()),
            })
            .collect(),
    }
}

/// One line saying what a proposal does.
fn describe(kind: &ProposalKind) -> String {
    match kind {
        ProposalKind::ParamChange { changes } => {
            let sets: Vec<String> = changes
                .iter()
                .map(|c| format!("{} = {}", c.name, c.value))
                .collect();
            format!("set {}", sets.join(", "))
        }
        ProposalKind::Block {
            target,
            blocked,
            reason,
        } => format!(
            "{} {target} (reasons {})",
            if *blocked { "block" } else { "unblock" },
            crate::output::short(&reason.to_string())
        ),
        ProposalKind::TreasurySpend { to, amount: a } => {
            format!("pay {} from the treasury to {to}", amount(*a))
        }
    }
}

/// `NAME=VALUE`.
fn parse_set(s: &str) -> Result<ParamSet, String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() && !value.is_empty() => Ok(ParamSet {
            name: name.trim().to_string(),
            value: value.trim().to_string(),
        }),
        _ => Err(format!("{s:?}: expected NAME=VALUE, e.g. fee_min=20")),
    }
}

fn parse_choice(s: &str) -> Result<Choice, String> {
    Choice::parse(s).ok_or_else(|| format!("{s:?}: use yes, no, abstain or veto"))
}

/// Basis points as a percentage with two decimals (`3340` is `33.40%`).
fn percent(bps: u32) -> String {
    format!("{}.{:02}%", bps / 100, bps % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_parse_as_name_and_value() {
        let s = parse_set("fee_min=20").expect("valid");
        assert_eq!((s.name.as_str(), s.value.as_str()), ("fee_min", "20"));
        for bad in ["fee_min", "=20", "fee_min=", ""] {
            assert!(parse_set(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_choice("veto"), Ok(Choice::Veto));
        assert!(parse_choice("maybe").is_err());
        assert_eq!(percent(3_340), "33.40%");
        assert_eq!(percent(10_000), "100.00%");
    }

    #[test]
    fn a_change_the_ledger_would_refuse_is_refused_with_its_reason() {
        let p = Params::default();
        let set = |name: &str, value: &str| ParamSet {
            name: name.into(),
            value: value.into(),
        };
        let changed = check_changes(&p, &[set("fee_min", "20")]).expect("governable");
        assert_eq!(changed.fee_min, 20);
        for (changes, why) in [
            (vec![set("epoch_blocks", "10")], "fixed at genesis"),
            (vec![set("gov_quorum_bps", "10001")], "at most 10000"),
            (
                vec![set("fee_min", "1"), set("fee_min", "2")],
                "named twice",
            ),
            (vec![set("no_such", "1")], "no parameter"),
        ] {
            let err = check_changes(&p, &changes).expect_err(why).to_string();
            assert!(err.contains(why), "{err}");
            assert!(err.contains("--set"), "{err}");
        }
    }
}
