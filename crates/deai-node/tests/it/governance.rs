//! Issue 17 on a running node, through the HTTP API: proposals pass by the validator's stake,
//! wait out the timelock, execute, and then govern. A parameter change makes a task the old
//! value allowed refused; a block decision takes a registered dataset out of a task's eligible
//! set, another keeps a registered model off the market; a proposal nobody votes on misses quorum, burns its deposit and changes nothing. The
//! proposal routes show the live tally and progress while voting and the final one after.

use std::time::Duration;

use deai_ledger::{
    BlockTarget, Choice, Digest, EPSILON_SCALE, EpsilonStep, ParamSet, ProposalKind,
    ProposalStatus, TOKEN, TxBody,
    tx::{DatasetRegister, Execute, Propose, TaskCreate},
};
use deai_node::{
    api::types::ProposalView,
    client::{Client, ClientError},
    config::{NODE_KEY_FILE, NodeConfig},
    fed::TaskSpec,
    roles::setup::created_id,
};
use ed25519_dalek::SigningKey;

/// Votes count for this many blocks: a proposal decides in a few seconds of a dev chain.
const VOTING_BLOCKS: u64 = 8;
/// Blocks between the tally and the first height an `Execute` may land.
const TIMELOCK_BLOCKS: u64 = 2;
const DEPOSIT: u128 = TOKEN;
/// How long any one wait on the chain may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// The proposer, dataset owner and task creator (funded, no stake, so no voting power).
fn member() -> SigningKey {
    SigningKey::from_bytes(&[0x17; 32])
}

/// A validator whose genesis funds [`member`] and makes governance fast.
fn init_validator(tmp: &std::path::Path) -> std::path::PathBuf {
    let dir = tmp.join("validator");
    deai_node::init::init_with(&dir, NodeConfig::default(), |g| {
        g.balances
            .push((deai_node::keyfile::address(&member()), 10_000 * TOKEN));
        g.params.gov_voting_blocks = VOTING_BLOCKS;
        g.params.gov_timelock_blocks = TIMELOCK_BLOCKS;
        g.params.gov_execute_window_blocks = 1_000;
        g.params.gov_deposit_min = DEPOSIT;
    })
    .expect("init");
    dir
}

/// A task over `dataset` asking for `epsilon` (fixed point) in all.
fn task_create(dataset: u64, epsilon: u64) -> TxBody {
    let spec = TaskSpec::digits_default();
    TxBody::TaskCreate(TaskCreate {
        purpose: "digits".into(),
        model_spec: spec.hash(),
        datasets: vec![dataset],
        rounds: 2,
        epsilon,
        epsilon_schedule: (1..=2)
            .map(|rounds| EpsilonStep {
                rounds,
                epsilon: u64::from(rounds) * EPSILON_SCALE,
            })
            .collect(),
        delta: spec.delta_budget(),
        reward: 10 * TOKEN,
    })
}

fn propose(kind: ProposalKind, text: &str) -> TxBody {
    TxBody::Propose(Propose {
        kind,
        deposit: DEPOSIT,
        description: Digest::hash(text.as_bytes()),
    })
}

/// Sends `body` signed by `key` and waits until it is applied; the receipt's first event id of
/// kind `event`, if asked.
async fn send(client: &Client, key: &SigningKey, body: TxBody, event: &str) -> anyhow::Result<u64> {
    let sent = client.send(key, body, None, Some(WAIT)).await?;
    match (event, sent.state) {
        ("", _) => Ok(0),
        ("proposed", Some(deai_node::api::types::TxState::Finalized { receipt, .. })) => receipt
            .events
            .iter()
            .find_map(|e| match e {
                deai_ledger::Event::Proposed { id, .. } => Some(*id),
                _ => None,
            })
            .ok_or_else(|| anyhow::anyhow!("no proposed event")),
        (event, Some(deai_node::api::types::TxState::Finalized { receipt, .. })) => {
            created_id(&receipt, event)
        }
        (_, state) => anyhow::bail!("not finalized: {state:?}"),
    }
}

/// Polls proposal `id` until `done` holds of it.
async fn wait_for(
    client: &Client,
    id: u64,
    done: impl Fn(&ProposalView) -> bool,
) -> anyhow::Result<ProposalView> {
    let start = std::time::Instant::now();
    loop {
        let p = client.proposal(id).await?.summary;
        if done(&p) {
            return Ok(p);
        }
        anyhow::ensure!(start.elapsed() < WAIT, "proposal {id} stuck at {p:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Proposal `id` once it passed and an `Execute` sent now lands inside its window.
async fn executable(client: &Client, id: u64) -> anyhow::Result<ProposalView> {
    // The next block is tip + 1: that is where an Execute sent now lands at the earliest.
    wait_for(client, id, |p| {
        p.status == ProposalStatus::Passed && p.executable_from.is_some_and(|f| p.height + 1 >= f)
    })
    .await
}

#[test]
fn proposals_pass_execute_after_the_timelock_and_then_govern() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = init_validator(tmp.path());
    let validator = deai_node::keyfile::read(&dir.join(NODE_KEY_FILE)).unwrap();
    deai_node::run::with_embedded(&dir, |v| async move {
        let client = Client::new(format!("http://{}", v.http_addr));
        let who = member();
        let dataset = send(
            &client,
            &who,
            TxBody::DatasetRegister(DatasetRegister {
                commitment: Digest::hash(b"governance dataset"),
                samples: 100,
                schema: "digits-8x8".into(),
                policy: crate::common::digits_consent(0),
            }),
            "dataset_registered",
        )
        .await?;
        let task = send(
            &client,
            &who,
            task_create(dataset, 10 * EPSILON_SCALE),
            "task_created",
        )
        .await?;
        assert_eq!(client.eligible(task).await?.eligible, vec![dataset]);
        let member_ctx =
            deai_node::roles::RoleContext::connect(who.clone(), client.clone()).await?;
        let model =
            deai_node::roles::setup::register_untrained_model(&member_ctx, &member_ctx, "digits")
                .await?;

        let epsilon_max = ProposalKind::ParamChange {
            changes: vec![ParamSet {
                name: "task_epsilon_max".into(),
                value: (5 * EPSILON_SCALE).to_string(),
            }],
        };
        let change = send(
            &client,
            &who,
            propose(epsilon_max, "cap ε at 5"),
            "proposed",
        )
        .await?;
        let block = ProposalKind::Block {
            target: BlockTarget::Dataset(dataset),
            blocked: true,
            reason: Digest::hash(b"collected without consent"),
        };
        let blocked = send(&client, &who, propose(block, "block it"), "proposed").await?;
        let model_block = ProposalKind::Block {
            target: BlockTarget::Model(model),
            blocked: true,
            reason: Digest::hash(b"trained for surveillance"),
        };
        let model_blocked = send(
            &client,
            &who,
            propose(model_block, "block the model"),
            "proposed",
        )
        .await?;
        let fee = ProposalKind::ParamChange {
            changes: vec![ParamSet {
                name: "fee_min".into(),
                value: "1000".into(),
            }],
        };
        let ignored = send(&client, &who, propose(fee, "raise fees"), "proposed").await?;
        let fee_before = client.status().await?.fee_min;

        for id in [change, blocked, model_blocked] {
            let vote = TxBody::Vote(deai_ledger::GovVote {
                proposal: id,
                choice: Choice::Yes,
            });
            send(&client, &validator, vote, "").await?;
        }
        check_while_voting(&client, change, ignored).await?;

        for id in [change, blocked, model_blocked] {
            executable(&client, id).await?;
            send(&client, &who, TxBody::Execute(Execute { proposal: id }), "").await?;
        }
        // The new cap governs: what the old one allowed is refused, with the ledger's reason.
        let refused = send(
            &client,
            &who,
            task_create(dataset, 10 * EPSILON_SCALE),
            "task_created",
        )
        .await
        .expect_err("above the new task_epsilon_max");
        assert!(
            refused.to_string().contains("task_epsilon_max"),
            "{refused}"
        );
        // The blocked dataset is no longer eligible, though its consent still admits the task.
        assert_eq!(client.eligible(task).await?.eligible, Vec::<u64>::new());
        // The blocked model cannot be offered.
        let offer = TxBody::OfferCreate(deai_ledger::tx::OfferCreate {
            model,
            quant_hash: Digest::hash(b"a quantized blob"),
            ops: 1_000,
            price_per_query: 1,
            bond: deai_ledger::OFFER_BOND_MIN_DEFAULT,
            endpoint: "http://127.0.0.1:9".into(),
            royalty_bps: 0,
        });
        let refused = send(&client, &who, offer, "offer_created")
            .await
            .expect_err("the model is blocked");
        assert!(refused.to_string().contains("blocked"), "{refused}");

        check_after(&client, [change, blocked, ignored], dataset, fee_before).await
    })
    .unwrap();
}

/// While voting: the list (filtered too) and the detail show the live tally and progress.
async fn check_while_voting(client: &Client, change: u64, ignored: u64) -> anyhow::Result<()> {
    let voting = client.proposals(Some("voting")).await?;
    let ids: Vec<u64> = voting.iter().map(|p| p.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let p = client.proposal(change).await?;
    let s = &p.summary;
    if s.status == ProposalStatus::Voting {
        assert!(ids.contains(&change), "{ids:?}");
        assert!(!s.tally_final);
        assert_eq!(s.blocks_left, s.end_height - s.height);
    }
    assert_eq!(s.end_height, s.start_height + VOTING_BLOCKS - 1);
    assert_eq!(s.tally.yes, s.tally.power, "the only staker voted yes");
    assert_eq!(
        (s.voted_bps, s.yes_bps, s.veto_share_bps),
        (10_000, 10_000, 0)
    );
    assert_eq!(s.outcome, ProposalStatus::Passed);
    assert_eq!(p.votes.len(), 1);
    assert_eq!(
        (p.votes[0].choice, p.votes[0].weight),
        (Choice::Yes, s.tally.power)
    );
    assert_eq!(p.description, Digest::hash("cap ε at 5".as_bytes()));
    assert!(matches!(p.proposal, ProposalKind::ParamChange { .. }));
    let none = client.proposal(ignored).await?.summary;
    assert_eq!(
        (none.voted_bps, none.outcome),
        (0, ProposalStatus::NoQuorum)
    );
    match client.proposal(999).await {
        Err(ClientError::Api {
            status: 404, code, ..
        }) => assert_eq!(code, "proposal_not_found"),
        other => panic!("an unknown proposal: {other:?}"),
    }
    match client.proposals(Some("open")).await {
        Err(ClientError::Api {
            status: 400, code, ..
        }) => assert_eq!(code, "bad_status"),
        other => panic!("an unknown status: {other:?}"),
    }
    Ok(())
}

/// After: both executed with their final tallies; the ignored one missed quorum and changed
/// nothing; `/v1/governance` shows the new value and the block decision.
async fn check_after(
    client: &Client,
    [change, blocked, ignored]: [u64; 3],
    dataset: u64,
    fee_before: u128,
) -> anyhow::Result<()> {
    for id in [change, blocked] {
        let p = client.proposal(id).await?.summary;
        assert_eq!(p.status, ProposalStatus::Executed, "{p:?}");
        assert!(p.tally_final && p.blocks_left == 0);
        let (from, until, at) = (p.executable_from, p.executable_until, p.executed_at);
        assert_eq!(from, Some(p.end_height + 1 + TIMELOCK_BLOCKS));
        assert!(at.is_some_and(|h| from.is_some_and(|f| h >= f) && until.is_some_and(|u| h <= u)));
    }
    let ignored = wait_for(client, ignored, |p| p.status != ProposalStatus::Voting).await?;
    assert_eq!(ignored.status, ProposalStatus::NoQuorum);
    assert_eq!(client.status().await?.fee_min, fee_before);
    let executed = client.proposals(Some("executed")).await?;
    let ids: Vec<u64> = executed.iter().map(|p| p.id).collect();
    assert!(ids.contains(&blocked) && ids.contains(&change) && !ids.contains(&ignored.id));
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let gov = client.governance().await?;
    assert_eq!(
        gov.rules["task_epsilon_max"],
        (5 * EPSILON_SCALE).to_string()
    );
    assert_eq!(gov.params.task_epsilon_max, 5 * EPSILON_SCALE);
    assert_eq!(gov.treasury, deai_ledger::treasury());
    let decision = &gov.block_decisions[0];
    assert_eq!(decision.target, BlockTarget::Dataset(dataset).path());
    assert!(decision.blocked);
    assert!(gov.governable.iter().any(|n| n == "fee_min"));
    assert!(
        gov.fixed
            .iter()
            .any(|f| f.name == "epoch_blocks" && !f.reason.is_empty())
    );
    Ok(())
}
