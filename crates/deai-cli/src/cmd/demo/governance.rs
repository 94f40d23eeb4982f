//! The demo's governance step: the task creator proposes a stricter privacy cap
//! (`task_epsilon_max` lowered to the ε the demo's task spent), the validators vote yes with
//! their stake, the ledger tallies, and after the timelock it is executed. A task asking for
//! more ε than the new cap is then refused, and the next task opens under it.

use std::time::Duration;

use deai_ledger::{
    Choice, Digest, Event, ParamSet, Proposal, ProposalKind, ProposalStatus, TxBody,
    epsilon_decimal,
};
use deai_node::{
    api::types::ProofView,
    client::Client,
    fed::TaskSpec,
    roles::{RoleContext, send_tx},
};
use ed25519_dalek::SigningKey;
use serde::Serialize;

/// Voting and timelock lengths the demo's genesis sets, blocks: a few seconds of a dev chain.
pub(super) const VOTING_BLOCKS: u64 = 8;
pub(super) const TIMELOCK_BLOCKS: u64 = 2;
/// The deposit a demo proposal locks, whole tokens.
pub(super) const DEPOSIT_TOKENS: u128 = 10;

/// Sets the demo genesis's governance parameters: short votes and timelocks, a small deposit.
pub(super) fn adjust(params: &mut deai_ledger::Params) {
    params.gov_voting_blocks = VOTING_BLOCKS;
    params.gov_timelock_blocks = TIMELOCK_BLOCKS;
    params.gov_deposit_min = DEPOSIT_TOKENS * deai_ledger::TOKEN;
}

/// What the governance step did.
#[derive(Debug, Clone, Serialize)]
pub struct Governance {
    /// The proposal's id.
    pub proposal: u64,
    /// The parameter it changed.
    pub parameter: String,
    /// Its value before, as ε.
    pub old_epsilon_max: String,
    /// Its value after, as ε.
    pub new_epsilon_max: String,
    /// How the vote ended.
    pub status: ProposalStatus,
    /// Yes weight and all power in the snapshot, base units.
    #[serde(with = "deai_ledger::amount")]
    pub yes: u128,
    /// All voting power when the proposal started, base units.
    #[serde(with = "deai_ledger::amount")]
    pub power: u128,
    /// Validators that voted.
    pub voters: usize,
    /// Height the change was executed at.
    pub executed_height: u64,
    /// The refusal of a task asking for the old ε after the change.
    pub refused: String,
    /// The task created under the new cap.
    pub next_task: u64,
    /// Its ε budget.
    pub next_task_epsilon: String,
}

/// Runs the step on the chain at `url`: `creator` proposes and creates the tasks, each of
/// `validators` votes, `datasets` are the demo's (the next task names them).
pub(super) async fn run(
    url: &str,
    creator: SigningKey,
    validators: &[SigningKey],
    spec: &TaskSpec,
    datasets: &[u64],
    spent: u64,
) -> anyhow::Result<Governance> {
    let ledger = Client::new(url.to_string());
    let creator = RoleContext::connect(creator, ledger.clone()).await?;
    let old = creator
        .ledger
        .get::<deai_ledger::Genesis>("/v1/genesis")
        .await?
        .params
        .task_epsilon_max;
    // The cap the validators adopt: what the demo's task spent (the owners' consent admits it).
    let cap = spent.max(1);
    let kind = ProposalKind::ParamChange {
        changes: vec![ParamSet {
            name: "task_epsilon_max".into(),
            value: cap.to_string(),
        }],
    };
    let proposed = send_tx(
        &creator,
        TxBody::Propose(deai_ledger::Propose {
            kind,
            deposit: DEPOSIT_TOKENS * deai_ledger::TOKEN,
            description: Digest::hash(
                b"deai demo: cap every task's privacy budget at what the demo task spent",
            ),
        }),
    )
    .await?;
    let proposal = proposed
        .receipt
        .events
        .iter()
        .find_map(|e| match e {
            Event::Proposed { id, .. } => Some(*id),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("the Propose receipt carries no proposed event"))?;
    // All validators vote at once: one after another, a network of four could see the vote end
    // before the last arrives. A vote that lands too late only counts less.
    let votes = futures::future::join_all(validators.iter().map(|key| {
        let voter = creator.as_identity(key.clone());
        async move {
            send_tx(
                &voter,
                TxBody::Vote(deai_ledger::GovVote {
                    proposal,
                    choice: Choice::Yes,
                }),
            )
            .await
        }
    }))
    .await;
    let voters = votes.iter().filter(|v| v.is_ok()).count();
    if voters == 0 {
        let why = votes
            .into_iter()
            .find_map(Result::err)
            .map_or_else(|| "no validator".to_string(), |e| e.to_string());
        anyhow::bail!("no validator's vote on proposal {proposal} landed: {why}");
    }
    let passed = wait_for(&ledger, proposal, |p| p.status != ProposalStatus::Voting).await?;
    anyhow::ensure!(
        passed.status == ProposalStatus::Passed,
        "the demo's proposal {proposal} ended {:?}, not passed (tally {:?})",
        passed.status,
        passed.tally
    );
    let from = passed
        .executable_from
        .ok_or_else(|| anyhow::anyhow!("passed proposal {proposal} has no execution height"))?;
    wait_for_height(&ledger, from.saturating_sub(1)).await?;
    let executed = send_tx(&creator, TxBody::Execute(deai_ledger::Execute { proposal })).await?;
    let refused = match send_tx(&creator, task_create(spec, datasets, old.min(cap * 2))).await {
        Ok(applied) => anyhow::bail!(
            "a task asking for more ε than the new cap was accepted at height {}",
            applied.height
        ),
        Err(e) => e.to_string(),
    };
    let created = send_tx(&creator, task_create(spec, datasets, cap)).await?;
    let next_task = created
        .receipt
        .events
        .iter()
        .find_map(|e| match e {
            Event::TaskCreated { id, .. } => Some(*id),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("the TaskCreate receipt carries no task_created event"))?;
    let tally = passed.tally.unwrap_or_default();
    Ok(Governance {
        proposal,
        parameter: "task_epsilon_max".into(),
        old_epsilon_max: epsilon_decimal(old),
        new_epsilon_max: epsilon_decimal(cap),
        status: ProposalStatus::Executed,
        yes: tally.yes,
        power: tally.power,
        voters,
        executed_height: executed.height,
        refused,
        next_task,
        next_task_epsilon: epsilon_decimal(cap),
    })
}

/// A one-round task over `datasets` with budget `epsilon` (the governed cap is what it tests).
fn task_create(spec: &TaskSpec, datasets: &[u64], epsilon: u64) -> TxBody {
    TxBody::TaskCreate(deai_ledger::TaskCreate {
        purpose: super::scenario::PURPOSE.into(),
        model_spec: spec.hash(),
        datasets: datasets.to_vec(),
        rounds: 1,
        epsilon,
        epsilon_schedule: vec![deai_ledger::EpsilonStep { rounds: 1, epsilon }],
        delta: spec.delta_budget(),
        reward: 100 * deai_ledger::TOKEN,
    })
}

/// Polls proposal `id` (from its proven entry) until `done` holds, for at most a minute.
async fn wait_for(
    ledger: &Client,
    id: u64,
    done: impl Fn(&Proposal) -> bool,
) -> anyhow::Result<Proposal> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let view: ProofView = ledger.get(&format!("/v1/proofs/proposal/{id}")).await?;
        deai_ledger::verify_proof(&view.root, &view.proof)?;
        let entry = view
            .entry
            .ok_or_else(|| anyhow::anyhow!("the proof of proposal {id} carries no entry"))?;
        let p: Proposal = serde_json::from_value(entry)?;
        if done(&p) {
            return Ok(p);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "proposal {id} did not end within a minute (status {:?}, ends at {})",
            p.status,
            p.end_height
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the chain has finalized `height`.
async fn wait_for_height(ledger: &Client, height: u64) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while ledger.status().await?.height < height {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the chain did not reach height {height} within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
