//! The demo's federation: a coordinator and data-owner nodes on loopback (each its own HTTP
//! server, key and blob store, talking signed HTTP; past [`OWN_NODES_MAX`] owners, nodes hosting
//! [`OWNERS_PER_NODE`] owners each, every owner still its own key and account), around one
//! embedded validator or a network of validator processes (each role node then talks to its own
//! entry point).

use std::{collections::BTreeMap, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use deai_ledger::{
    Claim, ConsentPolicy, Digest, EPSILON_SCALE, TOKEN, TxBody, Verdict,
    tx::{ConsentRevoke, RoundChallenge},
};
use deai_node::{
    audit::task::{self as verify_task, TaskVerdict},
    client::Client,
    fed::{self, TaskSpec},
    roles::{
        self, RoleContext,
        coordinator::{CloseReport, CoordError, RoundReport},
        owner::{Fault, FaultAction, LocalDataset},
        serve::{self, RoleNodeConfig},
        setup as task_setup,
    },
};
use ed25519_dalek::SigningKey;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

/// The purpose every consent policy and the task agree on.
pub(super) const PURPOSE: &str = "digit-recognition";

/// What the scenario is asked to do.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Data-owner nodes.
    pub owners: usize,
    /// The task's spec.
    pub spec: TaskSpec,
    /// Before this round, one owner revokes consent.
    pub revoke_round: u32,
    /// From this round, one owner drops mid-round (after sharing its keys) in the first round it
    /// is selected for.
    pub drop_round: u32,
    /// Reward put in escrow, tokens.
    pub reward_tokens: u128,
    /// Owners 1..=`owners / 5` attack the model this way (`--attack`; name and attack).
    pub attack: Option<(String, fed::attack::OwnerAttack)>,
    /// The coordinator lies about this round's model and an owner challenges it (0: honest).
    pub lie_round: u32,
}

/// Owners hosted by one owner node when the federation is large (each its own key, dataset and
/// account; `[[roles.datasets]] key`): a thousand owners run on ten listeners.
pub(super) const OWNERS_PER_NODE: usize = 100;
/// Up to this many owners, each runs its own node (its own HTTP server), as a real federation
/// of separate machines would.
pub(super) const OWN_NODES_MAX: usize = 20;
/// Dataset registrations in flight at once (each owner signs its own; they share blocks).
const REGISTRATIONS_IN_FLIGHT: usize = 64;

/// The owners' data and the validation set for `setup`'s data family.
pub(super) fn split_for(setup: &Setup) -> anyhow::Result<fed::data::DigitsSplit> {
    Ok(match setup.spec.dataset.as_str() {
        "fashion-mnist" => fed::data::fashion_split(setup.owners, FASHION_VALIDATION)?,
        _ => fed::data::digits_split(setup.owners)?,
    })
}

/// Fashion-MNIST test images the task validates and scores on (the first ones).
pub(super) const FASHION_VALIDATION: usize = 2_000;

impl Setup {
    /// Whether owner `i` attacks (owners 1..=`owners / 5`: neither the dropper, owner 0, nor
    /// the revoker, the last).
    pub fn attacks(&self, i: usize) -> Option<&str> {
        let (name, _) = self.attack.as_ref()?;
        (1..=(self.owners / 5).max(1))
            .contains(&i)
            .then_some(name.as_str())
    }
}

/// The key of the creator (who also coordinates) and of owner `i`: fixed, so runs compare.
pub(super) fn creator_key() -> SigningKey {
    SigningKey::from_bytes(&[3u8; 32])
}

/// Owner `i`'s key.
pub(super) fn owner_key(i: usize) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[0] = 0x40;
    seed[1..9].copy_from_slice(&(i as u64).to_be_bytes());
    SigningKey::from_bytes(&seed)
}

/// The key of owner node `n` of a large federation (it owns nothing; its hosted owners do).
fn owner_node_key(n: usize) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[0] = 0x41;
    seed[1..9].copy_from_slice(&(n as u64).to_be_bytes());
    SigningKey::from_bytes(&seed)
}

/// One owner at the end.
#[derive(Debug, Clone, Serialize)]
pub struct OwnerSummary {
    /// Position (0-based).
    pub owner: usize,
    /// Its address.
    pub address: String,
    /// Its dataset.
    pub dataset: u64,
    /// Samples it holds (never sent anywhere).
    pub samples: usize,
    /// Rounds whose aggregate includes it.
    pub rounds_in_aggregate: u32,
    /// Reward paid, base units.
    #[serde(with = "deai_ledger::amount")]
    pub reward: u128,
    /// The same in tokens, an exact decimal.
    pub reward_decimal: String,
    /// The attack it ran (`deai demo --attack`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
}

/// A challenge of the coordinator's lie (`deai demo --coordinator-lies-in`), as decided.
#[derive(Debug, Clone, Serialize)]
pub struct ChallengeSummary {
    /// The round it named.
    pub round: u32,
    /// The claim: the round's model.
    pub claim: &'static str,
    /// The owner that challenged.
    pub challenger_owner: usize,
    /// `upheld`, `rejected` or `undecided`.
    pub verdict: Verdict,
    /// Validators that voted it up, and in all.
    pub votes_upheld: usize,
    /// Votes cast before it was decided.
    pub votes: usize,
    /// Taken from the coordinator's bond, base units.
    #[serde(with = "deai_ledger::amount")]
    pub slashed: u128,
    /// Of that, paid to the challenger.
    #[serde(with = "deai_ledger::amount")]
    pub reward: u128,
    /// Of that, added to the task's escrow (paid to the owners at the close).
    #[serde(with = "deai_ledger::amount")]
    pub to_escrow: u128,
    /// Seconds from the challenge to the decision (the validators' re-checks and votes).
    pub seconds: f64,
}

/// What the scenario did.
#[derive(Debug)]
pub(super) struct Outcome {
    /// The task.
    pub task: u64,
    /// Every round.
    pub rounds: Vec<RoundReport>,
    /// Accuracy of the initial model.
    pub initial_accuracy: f64,
    /// The close.
    pub close: CloseReport,
    /// Per owner.
    pub owners: Vec<OwnerSummary>,
    /// `(owner, dataset)` that revoked consent before round `setup.revoke_round`.
    pub revoked: (usize, u64),
    /// Whether its dataset was absent from every round opened after the revocation.
    pub revoked_never_selected_again: bool,
    /// `(owner, dataset)` that dropped mid-round.
    pub dropped: (usize, u64),
    /// Rounds in which it dropped.
    pub drop_rounds: Vec<u32>,
    /// The independent verification.
    pub verify: TaskVerdict,
    /// Task ε budget, fixed point.
    pub epsilon_budget: u64,
    /// ε the ledger charged, fixed point.
    pub epsilon_spent: u64,
    /// δ the ledger charged, fixed point.
    pub delta_spent: u64,
    /// Blobs published to the validator.
    pub blobs_published: usize,
    /// The challenge of the coordinator's lie, if it lied.
    pub challenge: Option<ChallengeSummary>,
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn role_config(
    dir: &Path,
    name: &str,
    key: SigningKey,
    validator: &str,
    datasets: Vec<LocalDataset>,
    coordinator: Option<&str>,
    genesis: &deai_ledger::Genesis,
) -> RoleNodeConfig {
    RoleNodeConfig {
        key,
        upstream: validator.to_string(),
        listen: loopback(),
        blobs_dir: dir.join(name).join("blobs"),
        state_dir: dir.join(name),
        blob_max_bytes: 64 << 20,
        coordinator: coordinator.is_none(),
        announce_to: coordinator.map(|c| vec![c.to_string()]).unwrap_or_default(),
        datasets,
        peer_timeout: Duration::from_secs(20),
        access: Default::default(),
        // Every role node reads the ledger as a light client: each answer is checked against
        // the validators' finalization certificates.
        genesis: Some(genesis.clone()),
        provider: None,
        identities: vec![],
    }
}

/// The ε budget to put up: what a dataset selected in every round is charged (the last step of
/// the task's schedule), rounded up to a tenth.
pub(super) fn epsilon_budget(spec: &TaskSpec) -> anyhow::Result<u64> {
    let schedule = fed::privacy::schedule(spec)?;
    let total = schedule.last().map_or(0, |s| s.epsilon);
    let tenth = EPSILON_SCALE / 10;
    Ok(total.div_ceil(tenth) * tenth)
}

/// Runs the federation against the validators at `validators`: the creator and coordinator use
/// the first (where the coordinator publishes the task's blobs), owner `i` validator `i mod N`,
/// and the independent verification the last (its ledger and the blobs the validators exchanged).
/// `on_round` is told each round.
pub(super) async fn run(
    validators: &[String],
    dir: &Path,
    setup: &Setup,
    mut on_round: impl FnMut(&RoundReport),
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(!validators.is_empty(), "the demo needs a validator");
    let entry = |i: usize| validators[i % validators.len()].as_str();
    let validator = entry(0);
    let ledger = Client::new(validator.to_string());
    let split = split_for(setup)?;
    let creator = RoleContext::connect(creator_key(), ledger.clone()).await?;
    // The demo made the network, so it takes the genesis from its first validator; the role
    // nodes then check what every validator tells them against that genesis's validator set.
    let genesis: deai_ledger::Genesis = ledger.get("/v1/genesis").await?;

    // The coordinator (run by the task's creator).
    let coord_node = serve::start(role_config(
        dir,
        "coordinator",
        creator_key(),
        validator,
        vec![],
        None,
        &genesis,
    ))
    .await?;
    let coordinator = coord_node
        .coordinator
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the coordinator node has no coordinator role"))?;

    // Each owner registers a commitment to its data (the data stays on its node), many at once.
    let schema = fed::schema::for_family(&setup.spec.dataset)
        .ok_or_else(|| anyhow::anyhow!("no schema for data family {}", setup.spec.dataset))?;
    let mut entries = Vec::new();
    for v in validators {
        entries.push(RoleContext::connect(creator_key(), Client::new(v.clone())).await?);
    }
    let owner_ctx: Vec<RoleContext> = (0..setup.owners)
        .map(|i| entries[i % entries.len()].as_identity(owner_key(i)))
        .collect();
    let salts: Vec<Digest> = (0..setup.owners)
        .map(|_| task_setup::fresh_salt())
        .collect();
    let policy = ConsentPolicy {
        purposes: vec![PURPOSE.into()],
        creators: None,
        reward_min: 100 * TOKEN,
        // Each owner consents to what the task may spend at most, and no more.
        epsilon_max: epsilon_budget(&setup.spec)?,
        expiry_height: 10_000_000,
        epsilon_round_max: 0,
        noise_multiplier_min: 0,
        royalty_bps_min: 0,
    };
    let datasets: Vec<u64> = futures::stream::iter(0..setup.owners)
        .map(|i| {
            let (ctx, data, salt, policy) =
                (&owner_ctx[i], &split.owners[i], &salts[i], policy.clone());
            task_setup::register_dataset(ctx, data, salt, schema.name, policy)
        })
        .buffered(REGISTRATIONS_IN_FLIGHT)
        .try_collect()
        .await?;

    // The creator posts the task with escrow and a DP budget, commits to validation data, and
    // hands the coordinator its inputs over the coordinator's signed API.
    let spec = &setup.spec;
    let budget = epsilon_budget(spec)?;
    let salt = Digest(*blake3::hash(b"demo validation salt").as_bytes());
    let terms = task_setup::TaskTerms {
        purpose: PURPOSE,
        spec,
        datasets: datasets.clone(),
        epsilon: Some(budget),
        reward: setup.reward_tokens * TOKEN,
    };
    let task = task_setup::create_task(&creator, terms, &split.validation, salt).await?;
    task_setup::assign(
        &creator,
        &coord_node.url,
        task,
        spec,
        &split.validation,
        salt,
    )
    .await?;

    // Owner nodes come up and announce themselves to the coordinator: one node per owner in a
    // small federation, else nodes hosting OWNERS_PER_NODE owners each.
    let local = |i: usize| LocalDataset {
        id: datasets[i],
        data: Arc::new(split.owners[i].clone()),
        commitment: task_setup::salted_commitment(&salts[i], &split.owners[i]),
    };
    let mut owner_nodes = Vec::new();
    let mut owner_roles = Vec::new();
    if setup.owners <= OWN_NODES_MAX {
        for i in 0..setup.owners {
            let (name, key) = (format!("owner-{i}"), owner_key(i));
            let node = serve::start(role_config(
                dir,
                &name,
                key,
                entry(i),
                vec![local(i)],
                Some(&coord_node.url),
                &genesis,
            ))
            .await?;
            owner_roles.extend(node.owner.clone());
            owner_nodes.push(node);
        }
    } else {
        let chunks: Vec<Vec<usize>> = (0..setup.owners)
            .collect::<Vec<_>>()
            .chunks(OWNERS_PER_NODE)
            .map(<[usize]>::to_vec)
            .collect();
        for (n, chunk) in chunks.into_iter().enumerate() {
            let identities = chunk
                .iter()
                .map(|&i| serve::OwnerIdentity {
                    key: owner_key(i),
                    datasets: vec![local(i)],
                })
                .collect();
            let mut cfg = role_config(
                dir,
                &format!("owners-{n}"),
                owner_node_key(n),
                entry(n),
                vec![],
                Some(&coord_node.url),
                &genesis,
            );
            cfg.identities = identities;
            let node = serve::start(cfg).await?;
            owner_roles.extend(node.identities.iter().map(|(o, _)| o.clone()));
            owner_nodes.push(node);
        }
    }
    anyhow::ensure!(
        owner_roles.len() == setup.owners,
        "{} of {} owners came up",
        owner_roles.len(),
        setup.owners
    );
    for node in &owner_nodes {
        serve::announce(node, &coord_node.url).await?;
    }
    for (i, o) in owner_roles.iter().enumerate() {
        if let Some((_, attack)) = &setup.attack
            && setup.attacks(i).is_some()
        {
            o.set_attack(Some(*attack));
        }
    }

    // Training.
    let revoker = setup.owners - 1;
    let dropper = 0;
    let mut rounds = Vec::new();
    let mut challenge = None;
    coordinator.set_lies(
        (setup.lie_round > 0)
            .then_some((setup.lie_round, fed::lies::Lie::Model))
            .into_iter()
            .collect(),
    );
    for r in 1..=spec.rounds {
        if r == setup.revoke_round {
            roles::send_tx(
                &owner_ctx[revoker],
                TxBody::ConsentRevoke(ConsentRevoke {
                    dataset: datasets[revoker],
                }),
            )
            .await?;
        }
        if r == setup.drop_round {
            owner_roles[dropper].inject(Fault {
                task,
                from_round: r,
                step: 1,
                action: FaultAction::Offline,
            });
        }
        let report = match coordinator.run_round(task).await {
            Ok(report) => report,
            // Every owner's consent caps its ε: once too few may take part, the task ends.
            Err(CoordError::Exhausted { round, .. }) if round > 1 => break,
            Err(e) => return Err(e.into()),
        };
        owner_roles[dropper].go_online();
        on_round(&report);
        rounds.push(report);
        if r == setup.lie_round {
            let challenger = 1 % setup.owners;
            challenge = Some(challenge_model(&owner_ctx[challenger], challenger, task, r).await?);
        }
    }
    let blobs_published = coordinator.publish_task(&ledger, task).await?;
    let close = coordinator.close_task(task).await?;
    // A node that took no part re-verifies from the ledger and a validator's blob store.
    let verifier = Client::new(entry(validators.len() - 1).to_string());
    let verify = verify_task::verify_task(&verifier, &verifier, task, |_| {}).await?;

    let drop_rounds = owner_roles[dropper]
        .fired()
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    drop(owner_nodes);
    let revoked_never_selected_again = rounds
        .iter()
        .filter(|r| r.round >= setup.revoke_round)
        .all(|r| !r.selected.contains(&datasets[revoker]));
    let task_view: deai_ledger::Task = ledger.get(&format!("/v1/tasks/{task}")).await?;
    let mut in_aggregate: BTreeMap<u64, u32> = BTreeMap::new();
    for r in &rounds {
        for d in &r.survivors {
            *in_aggregate.entry(*d).or_default() += 1;
        }
    }
    let reward = |d: &u64| {
        close
            .rewards
            .get(d)
            .and_then(|a| a.parse::<u128>().ok())
            .unwrap_or(0)
    };
    let owners = split
        .owners
        .iter()
        .enumerate()
        .map(|(i, data)| (i, data, reward(&datasets[i])))
        .map(|(i, data, reward)| OwnerSummary {
            owner: i,
            address: owner_ctx[i].address().to_string(),
            dataset: datasets[i],
            samples: data.len(),
            rounds_in_aggregate: in_aggregate.get(&datasets[i]).copied().unwrap_or(0),
            reward,
            reward_decimal: crate::output::tokens(reward),
            attack: setup.attacks(i).map(str::to_string),
        })
        .collect();
    let initial_accuracy = deai_learn::model::evaluate(
        &spec.model_kind()?,
        &spec.initial_weights()?,
        &split.validation,
    )
    .accuracy;
    Ok(Outcome {
        task,
        rounds,
        initial_accuracy,
        close,
        owners,
        revoked: (revoker, datasets[revoker]),
        revoked_never_selected_again,
        dropped: (dropper, datasets[dropper]),
        drop_rounds,
        verify,
        epsilon_budget: budget,
        epsilon_spent: task_view.epsilon_spent,
        delta_spent: task_view.delta_spent,
        blobs_published,
        challenge,
    })
}

/// How long the validators get to re-check and decide a challenge.
const CHALLENGE_DECISION_MAX: Duration = Duration::from_secs(120);

/// Owner `owner` (through `ctx`) challenges the model claim of round `round` of `task`, then
/// waits for the validators' own votes to decide it.
async fn challenge_model(
    ctx: &RoleContext,
    owner: usize,
    task: u64,
    round: u32,
) -> anyhow::Result<ChallengeSummary> {
    let started = std::time::Instant::now();
    roles::send_tx(
        ctx,
        TxBody::RoundChallenge(RoundChallenge {
            task,
            round,
            claim: Claim::Model,
        }),
    )
    .await?;
    loop {
        let t: deai_ledger::Task = ctx.ledger.get(&format!("/v1/tasks/{task}")).await?;
        let c = t
            .challenges
            .iter()
            .rev()
            .find(|c| c.round == round)
            .ok_or_else(|| anyhow::anyhow!("the ledger lost the challenge of round {round}"))?;
        if let Some(verdict) = c.verdict {
            let (slashed, reward, to_escrow) = t
                .history
                .iter()
                .find_map(|h| match h.event {
                    deai_ledger::Event::ChallengeResolved {
                        challenge,
                        slashed,
                        reward,
                        to_escrow,
                        ..
                    } if challenge == c.id => Some((slashed, reward, to_escrow)),
                    _ => None,
                })
                .unwrap_or_default();
            return Ok(ChallengeSummary {
                round,
                claim: "model",
                challenger_owner: owner,
                verdict,
                votes_upheld: c.votes.iter().filter(|v| v.upheld).count(),
                votes: c.votes.len(),
                slashed,
                reward,
                to_escrow,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        anyhow::ensure!(
            started.elapsed() < CHALLENGE_DECISION_MAX,
            "the validators did not decide the challenge of round {round} within {} s; their \
             logs say why (is `[roles] vote_challenges` off?)",
            CHALLENGE_DECISION_MAX.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The same training without DP noise, in one process (the privacy cost's reference):
/// accuracy after each round.
pub(super) fn without_dp(setup: &Setup) -> anyhow::Result<Vec<f64>> {
    let split = split_for(setup)?;
    let mut spec = setup.spec.clone();
    // The spec requires σ > 0; at 1e-9 the noise is far below the quantization step.
    spec.noise_multiplier = 1e-9;
    let owners: Vec<fed::harness::Owner> = split
        .owners
        .into_iter()
        .enumerate()
        .map(|(i, data)| fed::harness::Owner {
            dataset: i as u64 + 1,
            key: owner_key(i),
            data,
        })
        .collect();
    let report = fed::harness::run_task(
        &spec,
        &owners,
        &split.validation,
        &fed::harness::HarnessConfig {
            task: 1,
            seed: 1,
            ..Default::default()
        },
    )?;
    Ok(report.rounds.iter().map(|r| r.outcome.accuracy).collect())
}
