//! A whole task in one process: owners and a coordinator exchanging every message as bytes,
//! round after round, with optional dropouts, and each round re-verified from its blobs.
//!
//! It stands in for the ledger (the round seed comes from a simulated state root, selection is
//! [`deai_ledger::select`] over all owners) and for the blob store (a map by hash). It is the
//! integration test of this crate and the template the HTTP roles follow: per round,
//! plan → owners start (adverts) → four coordinator steps, each `handle_client_msg` all →
//! `advance` → deliver what `poll_transmit` gives → owners `handle_server_msg` → `finish` → store blobs → verify.

use std::collections::{BTreeMap, BTreeSet};

use deai_learn::data::Dataset;
use deai_ledger::{Digest, select, selection_seed};
use deai_secagg::msg::Step;
use ed25519_dalek::SigningKey;

use super::attack::OwnerAttack;
use super::coordinator::{CoordinatorRound, Phase, Rejected, RoundOutcome};
use super::groups::RoundPlan;
use super::owner::{OwnerRound, local_update};
use super::strategy::ServerState;
use super::verify::{RecordedRound, RoundCheck, verify_round};
use super::{FedError, RoundInfo, TaskSpec, weights};

/// One data owner: its dataset id, node key and local data.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Dataset id.
    pub dataset: u64,
    /// The owner's node identity.
    pub key: SigningKey,
    /// Local data (never leaves the owner's [`OwnerRound`]).
    pub data: Dataset,
}

/// An owner that stops answering at a step of a round (sends nothing from that step on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropout {
    /// This dataset's owner drops.
    Dataset {
        /// The dataset.
        dataset: u64,
        /// First step it does not send.
        step: Step,
    },
    /// The first `count` members of group `group` (plan order) drop.
    Group {
        /// Group index.
        group: usize,
        /// How many members.
        count: usize,
        /// First step they do not send.
        step: Step,
    },
}

/// How to run the task.
#[derive(Debug, Clone, Default)]
pub struct HarnessConfig {
    /// Task id.
    pub task: u64,
    /// Seeds the simulated ledger roots and the owners' round seeds.
    pub seed: u64,
    /// Dropouts by round number.
    pub dropouts: BTreeMap<u32, Vec<Dropout>>,
    /// Re-verify every round from its blobs.
    pub verify: bool,
    /// Coalitions of owners that attack the model (each with its own attack).
    pub attacks: Vec<Attackers>,
}

/// A coalition of attacking owners and what they do.
#[derive(Debug, Clone)]
pub struct Attackers {
    /// What every member does.
    pub attack: OwnerAttack,
    /// The members' dataset ids.
    pub members: BTreeSet<u64>,
}

/// What one round did.
#[derive(Debug, Clone)]
pub struct RoundReport {
    /// The round's public facts.
    pub info: RoundInfo,
    /// The coordinator's outcome.
    pub outcome: RoundOutcome,
    /// Owners that dropped, with the first step they skipped.
    pub dropped: BTreeMap<u64, Step>,
    /// Messages the coordinator refused.
    pub rejections: Vec<Rejected>,
    /// The independent re-verification (when asked for).
    pub check: Option<RoundCheck>,
}

/// What a task did.
#[derive(Debug, Clone)]
pub struct TaskReport {
    /// Per round.
    pub rounds: Vec<RoundReport>,
    /// Every blob, by hash (initial model included).
    pub blobs: BTreeMap<Digest, Vec<u8>>,
    /// Hash of the initial model.
    pub initial_model: Digest,
    /// Hash of the final model.
    pub final_model: Digest,
    /// Validation accuracy of the initial model.
    pub initial_accuracy: f64,
}

/// Runs `spec.rounds` rounds over `owners` (see the module docs).
pub fn run_task(
    spec: &TaskSpec,
    owners: &[Owner],
    validation: &Dataset,
    cfg: &HarnessConfig,
) -> Result<TaskReport, FedError> {
    spec.validate()?;
    let kind = spec.model_kind()?;
    let mut global = spec.initial_weights()?;
    let initial = weights::encode(&kind, &global)?;
    let initial_model = weights::model_hash(&initial);
    let mut blobs = BTreeMap::from([(initial_model, initial)]);
    let initial_accuracy = deai_learn::model::evaluate(&kind, &global, validation).accuracy;
    // Label-flipping attackers train on their poisoned copy from the start.
    let poisoned: Vec<Owner> = cfg
        .attacks
        .iter()
        .filter(|a| a.attack.flips_labels())
        .flat_map(|a| {
            owners
                .iter()
                .filter(|o| a.members.contains(&o.dataset))
                .map(|o| Owner {
                    data: a.attack.poison_data(&o.data),
                    ..o.clone()
                })
        })
        .collect();
    let by_id: BTreeMap<u64, &Owner> = owners
        .iter()
        .chain(&poisoned)
        .map(|o| (o.dataset, o))
        .collect();
    let eligible: Vec<u64> = by_id.keys().copied().collect();
    let mut global_hash = initial_model;
    let mut rounds = Vec::with_capacity(spec.rounds as usize);
    let mut server = ServerState::new(spec)?;
    let mut verifier = ServerState::new(spec)?;
    for r in 1..=spec.rounds {
        let info = round_info(cfg, r, global_hash, &eligible, spec, &by_id);
        let plan = RoundPlan::new(spec, &info)?;
        let dropped = dropouts(cfg.dropouts.get(&r).map_or(&[], Vec::as_slice), &plan);
        let (coordinator, rejections) = exchange(spec, &info, &by_id, &global, &dropped, cfg)?;
        let outcome = coordinator.finish(&mut server, validation)?;
        for (h, b) in outcome.blobs() {
            blobs.insert(*h, b.clone());
        }
        let check = cfg.verify.then(|| {
            let recorded = RecordedRound::from(&outcome.round_result(info.task, info.round));
            let fetch = |h: &Digest| blobs.get(h).cloned();
            verify_round(spec, &info, &recorded, &fetch, validation, &mut verifier)
        });
        global.clone_from(&outcome.new_weights);
        global_hash = outcome.new_model.0;
        rounds.push(RoundReport {
            info,
            outcome,
            dropped,
            rejections,
            check,
        });
    }
    Ok(TaskReport {
        rounds,
        blobs,
        initial_model,
        final_model: global_hash,
        initial_accuracy,
    })
}

fn round_info(
    cfg: &HarnessConfig,
    round: u32,
    global: Digest,
    eligible: &[u64],
    spec: &TaskSpec,
    owners: &BTreeMap<u64, &Owner>,
) -> RoundInfo {
    let mut h = blake3::Hasher::new();
    h.update(b"deai/fed/harness/root/v1");
    h.update(&cfg.seed.to_be_bytes());
    h.update(&global.0);
    let root = Digest(*h.finalize().as_bytes());
    let seed = selection_seed(cfg.task, round, &root);
    let selected = select(&seed, eligible, spec.datasets_per_round as usize);
    let identities = selected
        .iter()
        .map(|id| (*id, owners[id].key.verifying_key()))
        .collect();
    RoundInfo {
        task: cfg.task,
        round,
        seed,
        global_model: global,
        selected,
        identities,
    }
}

fn dropouts(rules: &[Dropout], plan: &RoundPlan) -> BTreeMap<u64, Step> {
    let mut out = BTreeMap::new();
    for rule in rules {
        match *rule {
            Dropout::Dataset { dataset, step } => {
                out.insert(dataset, step);
            }
            Dropout::Group { group, count, step } => {
                for id in plan
                    .groups
                    .get(group)
                    .map_or(&[][..], |g| &g.members[..])
                    .iter()
                    .take(count)
                {
                    out.insert(*id, step);
                }
            }
        }
    }
    out
}

/// Drives one round's messages: every selected owner starts, then the coordinator's four
/// steps; owners in `dropped` go silent from their step on. Returns the coordinator, ready to
/// [`CoordinatorRound::finish`], and the refused messages.
fn exchange(
    spec: &TaskSpec,
    info: &RoundInfo,
    owners: &BTreeMap<u64, &Owner>,
    global: &[f32],
    dropped: &BTreeMap<u64, Step>,
    cfg: &HarnessConfig,
) -> Result<(CoordinatorRound, Vec<Rejected>), FedError> {
    let seed = cfg.seed;
    let sends = |id: u64, step: Step| dropped.get(&id).is_none_or(|d| step < *d);
    let mut coordinator = CoordinatorRound::new(spec, info, global.to_vec())?;
    let mut poisoned = poisoned_updates(spec, info, owners, global, cfg)?;
    let mut live = BTreeMap::new();
    let mut uplink = Vec::new();
    for &id in &info.selected {
        let Some(owner) = owners.get(&id) else {
            continue;
        };
        let round_seed = owner_seed(seed, info, id);
        let words = match cfg.attacks.iter().find(|a| a.members.contains(&id)) {
            Some(a) => a.attack.words(coordinator.plan(), id)?,
            None => None,
        };
        let mut state = match (words, poisoned.remove(&id)) {
            (Some(words), _) => {
                OwnerRound::start_with_words(spec, info, id, words, global, &owner.key, round_seed)?
            }
            (None, Some(update)) => OwnerRound::start_with_update(
                spec, info, id, update, global, &owner.key, round_seed,
            )?,
            (None, None) => {
                OwnerRound::start(spec, info, id, &owner.data, global, &owner.key, round_seed)?
            }
        };
        let advert = state.poll_transmit();
        if sends(id, Step::Advert) {
            uplink.extend(advert.map(|a| (id, a)));
        }
        live.insert(id, state);
    }
    // Four steps; the cap guards against a coordinator that never finishes.
    for _ in 0..Step::ALL.len() {
        for (id, bytes) in uplink.drain(..) {
            // A refusal is logged by the coordinator; the harness goes on like a real driver.
            let _ = coordinator.handle_client_msg(id, &bytes);
        }
        let phase = coordinator.advance()?;
        while let Some((id, bytes)) = coordinator.poll_transmit() {
            let Some(state) = live.get_mut(&id) else {
                continue;
            };
            // An owner that refuses a server message stops, like a dropout.
            if state.handle_server_msg(&bytes).is_err() {
                continue;
            }
            if let Some(reply) = state.poll_transmit() {
                let step = match phase {
                    Phase::Collecting(step) => step,
                    Phase::Finished => continue,
                };
                if sends(id, step) {
                    uplink.push((id, reply));
                }
            }
        }
        if phase == Phase::Finished {
            break;
        }
    }
    let rejections = coordinator.rejections().to_vec();
    Ok((coordinator, rejections))
}

/// What this round's selected attackers submit instead of their clipped updates (none for
/// data attacks, whose members run the honest protocol on poisoned data, or for attacks that
/// send raw words).
fn poisoned_updates(
    spec: &TaskSpec,
    info: &RoundInfo,
    owners: &BTreeMap<u64, &Owner>,
    global: &[f32],
    cfg: &HarnessConfig,
) -> Result<BTreeMap<u64, Vec<f32>>, FedError> {
    let kind = spec.model_kind()?;
    let round_seed = u64::from_le_bytes(info.seed.0[..8].try_into().unwrap_or_default());
    let mut out = BTreeMap::new();
    for coalition in cfg.attacks.iter().filter(|a| a.attack.submits_update()) {
        let mut honest = BTreeMap::new();
        for &id in info
            .selected
            .iter()
            .filter(|id| coalition.members.contains(id))
        {
            if let Some(owner) = owners.get(&id) {
                let seed = owner_seed(cfg.seed, info, id);
                honest.insert(id, local_update(spec, &kind, &owner.data, global, &seed)?.0);
            }
        }
        out.extend(coalition.attack.coalition_updates(
            global,
            &honest,
            info.selected.len(),
            round_seed,
        ));
    }
    Ok(out)
}

/// The owner's secret round seed in the harness (a real owner derives it from its own secret,
/// [`super::owner::round_seed`]).
fn owner_seed(seed: u64, info: &RoundInfo, dataset: u64) -> [u8; 32] {
    let mut secret = [0u8; 32];
    secret[..8].copy_from_slice(&seed.to_le_bytes());
    secret[8..16].copy_from_slice(&dataset.to_le_bytes());
    super::owner::round_seed(&secret, info, dataset)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::digits_split;
    use crate::groups::group_params;
    use crate::record::{GroupResult, RecordLimits, RoundRecord};
    use crate::verify::Mismatch;
    use std::sync::OnceLock;

    /// `n` owners with digits slices (datasets 100, 101, ...) and the validation set.
    pub(crate) fn owners(n: usize) -> (Vec<Owner>, Dataset) {
        let split = digits_split(n).expect("vendored digits");
        let owners = split
            .owners
            .into_iter()
            .enumerate()
            .map(|(i, data)| Owner {
                dataset: 100 + i as u64,
                key: SigningKey::from_bytes(&[i as u8 + 1; 32]),
                data,
            })
            .collect();
        (owners, split.validation)
    }

    /// Logistic regression, 8 of 10 per round in groups of 4, light noise, 5 rounds.
    pub(crate) fn spec() -> TaskSpec {
        TaskSpec {
            rounds: 5,
            noise_multiplier: 0.1,
            ..TaskSpec::digits_default()
        }
    }

    /// The first round's info and initial weights for `owners`.
    pub(crate) fn first_round(spec: &TaskSpec, owners: &[Owner]) -> (RoundInfo, Vec<f32>) {
        let global = spec.initial_weights().expect("valid spec");
        let by_id: BTreeMap<u64, &Owner> = owners.iter().map(|o| (o.dataset, o)).collect();
        let eligible: Vec<u64> = by_id.keys().copied().collect();
        let hash = crate::owner::weights_hash(spec, &global).expect("encodes");
        let cfg = HarnessConfig {
            task: 1,
            seed: 1,
            ..HarnessConfig::default()
        };
        (round_info(&cfg, 1, hash, &eligible, spec, &by_id), global)
    }

    fn run(cfg: &HarnessConfig) -> TaskReport {
        let (owners, validation) = owners(10);
        run_task(&spec(), &owners, &validation, cfg).expect("task runs")
    }

    /// The plain 5-round task, shared by the tests that only read it.
    pub(crate) fn baseline() -> &'static TaskReport {
        static REPORT: OnceLock<TaskReport> = OnceLock::new();
        REPORT.get_or_init(|| {
            run(&HarnessConfig {
                task: 1,
                seed: 1,
                verify: true,
                ..HarnessConfig::default()
            })
        })
    }

    fn assert_verified(report: &TaskReport) {
        for r in &report.rounds {
            let check = r.check.as_ref().expect("verification asked for");
            assert!(
                check.is_ok(),
                "round {}: {:?}",
                r.info.round,
                check.mismatches
            );
        }
    }

    #[test]
    fn digits_task_learns_and_every_round_verifies() {
        let report = baseline();
        assert_eq!(report.rounds.len(), 5);
        assert_verified(report);
        let acc: Vec<f64> = report.rounds.iter().map(|r| r.outcome.accuracy).collect();
        assert!(
            report.initial_accuracy < 0.3,
            "untrained: {}",
            report.initial_accuracy
        );
        assert!(acc[4] > 0.8 && acc[4] > acc[0], "accuracy {acc:?}");
        for r in &report.rounds {
            assert_eq!(r.info.selected.len(), 8);
            let o = &r.outcome;
            assert_eq!(o.groups.len(), 2, "8 selected in groups of at least 4");
            assert!(
                o.groups
                    .iter()
                    .all(|g| g.members.len() == 4 && g.aborted.is_none())
            );
            assert_eq!(
                o.survivors, r.info.selected,
                "no dropout: everyone survives"
            );
            assert_eq!(o.scores.len(), 8);
            assert!(o.scores.iter().any(|s| s.value > 0), "{:?}", o.scores);
            assert!(r.rejections.is_empty(), "{:?}", r.rejections);
            let plan = RoundPlan::new(&spec(), &r.info).expect("plan");
            assert_eq!((plan.secagg.n, plan.secagg.k, plan.secagg.t), (8, 3, 3));
        }
        // Groups are redrawn every round from the seed.
        let members = |r: usize| report.rounds[r].outcome.groups[0].members.clone();
        assert!((1..5).any(|r| members(r) != members(0)));
        // Each round trains from the previous round's model.
        for w in report.rounds.windows(2) {
            assert_eq!(w[1].info.global_model, w[0].outcome.new_model.0);
        }
    }

    #[test]
    fn same_seed_gives_identical_models_and_blobs() {
        let cfg = HarnessConfig {
            task: 1,
            seed: 1,
            ..HarnessConfig::default()
        };
        let again = run(&cfg);
        let base = baseline();
        assert_eq!(again.final_model, base.final_model);
        for (a, b) in again.rounds.iter().zip(&base.rounds) {
            assert_eq!(
                a.outcome.round_result(1, a.info.round),
                b.outcome.round_result(1, b.info.round)
            );
        }
        let other = run(&HarnessConfig { seed: 2, ..cfg });
        assert_ne!(other.final_model, base.final_model);
    }

    #[test]
    fn an_owner_dropped_after_sharing_keys_is_recovered() {
        let cfg = HarnessConfig {
            task: 1,
            seed: 1,
            verify: true,
            dropouts: BTreeMap::from([(
                2,
                vec![Dropout::Group {
                    group: 0,
                    count: 1,
                    step: Step::Masked,
                }],
            )]),
            attacks: Vec::new(),
        };
        let report = run(&cfg);
        assert_verified(&report);
        let round = &report.rounds[1];
        let (&gone, _) = round.dropped.iter().next().expect("one dropout");
        let o = &round.outcome;
        assert!(
            o.groups.iter().all(|g| g.aborted.is_none()),
            "{:?}",
            o.groups
        );
        assert_eq!(o.recovered_groups(), 1);
        assert_eq!(o.survivors.len(), 7);
        assert!(!o.survivors.contains(&gone));
        assert!(o.scores.iter().all(|s| s.dataset != gone));
        let record = RoundRecord::decode(&o.record.1, &LIMITS).expect("decodes");
        let GroupResult::Done(u) = &record.groups[0].result else {
            panic!("group 0 completed")
        };
        assert_eq!(
            u.dropped_keys.len(),
            1,
            "the dropped owner's mask key was recovered"
        );
        // The other rounds had no dropout.
        assert_eq!(report.rounds[0].outcome.recovered_groups(), 0);
    }

    const LIMITS: RecordLimits = RecordLimits {
        datasets_max: 100,
        vector_len_max: 1000,
    };

    #[test]
    fn a_group_below_threshold_aborts_alone() {
        let drop = |group, count| Dropout::Group {
            group,
            count,
            step: Step::Masked,
        };
        let cfg = HarnessConfig {
            task: 1,
            seed: 1,
            verify: true,
            dropouts: BTreeMap::from([(1, vec![drop(1, 2)]), (2, vec![drop(0, 2), drop(1, 4)])]),
            attacks: Vec::new(),
        };
        let report = run(&cfg);
        assert_verified(&report);
        assert_eq!(
            group_params(4).threshold,
            3,
            "two of four dropping breaks a group"
        );
        let o = &report.rounds[0].outcome;
        assert!(o.groups[0].aborted.is_none());
        let reason = o.groups[1].aborted.as_deref().expect("group 1 aborted");
        assert!(reason.contains("threshold"), "{reason}");
        assert_eq!(
            o.survivors, o.groups[0].members,
            "only group 0 is in the sum"
        );
        assert_ne!(o.new_model.0, report.rounds[0].info.global_model);
        // Round 2: every group aborts, the model is unchanged and nothing is scored.
        let o = &report.rounds[1].outcome;
        assert!(o.groups.iter().all(|g| g.aborted.is_some()));
        assert!(o.survivors.is_empty() && o.scores.is_empty() && o.masked.is_empty());
        assert_eq!(o.new_model.0, report.rounds[1].info.global_model);
    }

    fn flip(blobs: &BTreeMap<Digest, Vec<u8>>, target: &Digest) -> BTreeMap<Digest, Vec<u8>> {
        let mut out = blobs.clone();
        let bytes = out.get_mut(target).expect("stored");
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        out
    }

    /// Every claim of a round of `groups` groups, in a fixed order.
    fn every_claim(groups: usize) -> Vec<deai_ledger::Claim> {
        use deai_ledger::Claim;
        let mut claims = vec![Claim::Aggregate, Claim::Model];
        for g in 0..groups as u32 {
            claims.push(Claim::GroupSum { group: g });
            claims.push(Claim::Score { group: g });
        }
        claims
    }

    /// `recorded` with `dataset`'s score one higher than computed.
    fn score_lie(recorded: &RecordedRound, dataset: u64) -> RecordedRound {
        let mut wrong = recorded.clone();
        let i = wrong
            .scores
            .iter()
            .position(|s| s.dataset == dataset)
            .expect("scored");
        wrong.scores[i].value += 1;
        wrong
    }

    pub(crate) fn check_with(
        report: &TaskReport,
        blobs: &BTreeMap<Digest, Vec<u8>>,
        recorded: &RecordedRound,
    ) -> Vec<Mismatch> {
        let (_, validation) = owners(10);
        let fetch = |h: &Digest| blobs.get(h).cloned();
        let info = &report.rounds[0].info;
        let mut verifier = ServerState::new(&spec()).expect("builds");
        verify_round(&spec(), info, recorded, &fetch, &validation, &mut verifier).mismatches
    }

    #[test]
    fn tampering_is_named() {
        let report = baseline();
        let o = &report.rounds[0].outcome;
        let recorded = RecordedRound::from(&o.round_result(1, 1));
        assert!(check_with(report, &report.blobs, &recorded).is_empty());

        let (victim, masked) = (o.survivors[2], o.masked[2].0);
        let m = check_with(report, &flip(&report.blobs, &masked), &recorded);
        assert!(
            matches!(&m[..], [Mismatch::BlobHash { what, .. }] if *what == format!("masked update of dataset {victim}")),
            "{m:?}"
        );
        let m = check_with(report, &flip(&report.blobs, &o.aggregate.0), &recorded);
        assert!(
            matches!(&m[..], [Mismatch::BlobHash { what, .. }] if what == "aggregate"),
            "{m:?}"
        );
        let m = check_with(report, &flip(&report.blobs, &o.new_model.0), &recorded);
        assert!(
            matches!(&m[..], [Mismatch::BlobHash { what, .. }] if what == "new model"),
            "{m:?}"
        );

        let mut wrong = recorded.clone();
        wrong.aggregate = Digest([9; 32]);
        let m = check_with(report, &report.blobs, &wrong);
        assert!(matches!(&m[..], [Mismatch::Aggregate { .. }]), "{m:?}");

        let mut wrong = recorded.clone();
        wrong.new_model = o.masked[0].0;
        let m = check_with(report, &report.blobs, &wrong);
        assert!(matches!(&m[..], [Mismatch::NewModel { .. }]), "{m:?}");

        let mut wrong = recorded.clone();
        wrong.scores[3].value += 1;
        let id = wrong.scores[3].dataset;
        let m = check_with(report, &report.blobs, &wrong);
        assert!(
            matches!(&m[..], [Mismatch::Score { dataset, .. }] if *dataset == id),
            "{m:?}"
        );
    }

    /// A coordinator that lies about one claim of a real round is refuted on that claim (and on
    /// what is computed from it), and not on the others: what a validator votes on each
    /// `RoundChallenge` against the lie.
    #[test]
    fn a_lie_refutes_its_claim_and_what_depends_on_it() {
        use deai_ledger::Claim;
        let report = baseline();
        let o = &report.rounds[0].outcome;
        let recorded = RecordedRound::from(&o.round_result(1, 1));
        let groups: Vec<Vec<u64>> = o.groups.iter().map(|g| g.members.to_vec()).collect();
        assert!(groups.len() >= 2, "the baseline has several groups");
        let refuted = |m: &[Mismatch]| -> Vec<Claim> {
            every_claim(groups.len())
                .into_iter()
                .filter(|c| {
                    let members = c.group().map_or(&[][..], |g| &groups[g as usize][..]);
                    m.iter().any(|x| x.refutes(c, members))
                })
                .collect()
        };
        assert!(refuted(&check_with(report, &report.blobs, &recorded)).is_empty());

        let mut wrong = recorded.clone();
        wrong.aggregate = Digest([9; 32]);
        assert_eq!(
            refuted(&check_with(report, &report.blobs, &wrong)),
            vec![Claim::Aggregate]
        );
        let mut wrong = recorded.clone();
        wrong.new_model = o.masked[0].0;
        assert_eq!(
            refuted(&check_with(report, &report.blobs, &wrong)),
            vec![Claim::Model]
        );
        // A score of a dataset of group g: only group g's score claim.
        let wrong = score_lie(&recorded, groups[1][0]);
        assert_eq!(
            refuted(&check_with(report, &report.blobs, &wrong)),
            vec![Claim::Score { group: 1 }]
        );
        // A masked update the coordinator cannot serve as recorded: every claim.
        let masked = o.masked[0].0;
        assert_eq!(
            refuted(&check_with(
                report,
                &flip(&report.blobs, &masked),
                &recorded
            ))
            .len(),
            2 + 2 * groups.len()
        );

        let mut wrong = recorded.clone();
        wrong.survivors.pop();
        wrong.masked_updates.pop();
        let m = check_with(report, &report.blobs, &wrong);
        assert!(matches!(&m[..], [Mismatch::Survivors { .. }, ..]), "{m:?}");

        let mut missing = report.blobs.clone();
        missing.remove(&o.record.0);
        let m = check_with(report, &missing, &recorded);
        assert!(
            matches!(&m[..], [Mismatch::BlobMissing { what, .. }] if what == "unmasking record"),
            "{m:?}"
        );
    }

    #[test]
    fn a_record_unmasking_a_group_below_threshold_fails_verification() {
        let report = baseline();
        let o = &report.rounds[0].outcome;
        let mut record = RoundRecord::decode(&o.record.1, &LIMITS).expect("decodes");
        let GroupResult::Done(u) = &mut record.groups[0].result else {
            panic!("done")
        };
        let keep = group_params(4).threshold as usize - 1;
        u.survivors.truncate(keep);
        u.masked_hashes.truncate(keep);
        u.masked_signatures.truncate(keep);
        u.self_seeds.truncate(keep);
        let bytes = record.encode();
        let mut blobs = report.blobs.clone();
        let hash = Digest::hash(&bytes);
        blobs.insert(hash, bytes);
        let mut recorded = RecordedRound::from(&o.round_result(1, 1));
        recorded.unmasking = hash;
        let m = check_with(report, &blobs, &recorded);
        assert!(
            matches!(&m[..], [Mismatch::Record(r)] if r.contains("threshold")),
            "{m:?}"
        );
    }

    /// Attacking owners follow the protocol, so every round completes and re-verifies; what
    /// they send still moves the model: a sign-flipping coalition leaves FedAvg below its
    /// attack-free accuracy, and label flippers change the model while sending honestly.
    #[test]
    fn attackers_pass_every_protocol_check_and_still_move_the_model() {
        let (owners, validation) = owners(10);
        let members: BTreeSet<u64> = [100, 103, 107].into();
        let run_with = |attack: Option<&str>| {
            let cfg = HarnessConfig {
                task: 1,
                seed: 1,
                verify: true,
                attacks: attack
                    .map(|a| Attackers {
                        attack: OwnerAttack::from_name(a).expect("known"),
                        members: members.clone(),
                    })
                    .into_iter()
                    .collect(),
                ..HarnessConfig::default()
            };
            let spec = TaskSpec {
                rounds: 8,
                ..spec()
            };
            run_task(&spec, &owners, &validation, &cfg).expect("task runs")
        };
        let clean = run_with(None);
        let accuracy = |r: &TaskReport| r.rounds.last().expect("rounds").outcome.accuracy;
        for attack in ["sign-flip", "label-flip", "colluding"] {
            let attacked = run_with(Some(attack));
            assert_verified(&attacked);
            assert!(
                attacked.rounds.iter().all(|r| r.rejections.is_empty()),
                "{attack}: a protocol message was refused"
            );
            assert_ne!(attacked.final_model, clean.final_model, "{attack}");
            if attack != "label-flip" {
                assert!(
                    accuracy(&attacked) < accuracy(&clean) - 0.1,
                    "{attack}: {} against {} without attackers",
                    accuracy(&attacked),
                    accuracy(&clean)
                );
            }
        }
    }

    /// A `screened-` rule leaves out every group whose own step would raise the validation
    /// loss: the group a sign flipper pulls backwards scores 0 every time and is not in the
    /// step (each round's model is FedAvg over the groups that scored, recomputed here apart
    /// from the rule's own code), every round re-verifies, and the model learns as well as it
    /// does without the attacker, where plain FedAvg does not.
    #[test]
    fn a_screened_rule_leaves_out_the_groups_an_attacker_turns_uphill() {
        let (owners, validation) = owners(10);
        let attacker = 103;
        let run_with = |strategy: &str, attack: bool| {
            let cfg = HarnessConfig {
                task: 1,
                seed: 1,
                verify: true,
                attacks: attack
                    .then(|| Attackers {
                        attack: OwnerAttack::from_name("sign-flip").expect("known"),
                        members: [attacker].into(),
                    })
                    .into_iter()
                    .collect(),
                ..HarnessConfig::default()
            };
            let spec = TaskSpec {
                rounds: 8,
                strategy: strategy.into(),
                ..spec()
            };
            let report = run_task(&spec, &owners, &validation, &cfg).expect("task runs");
            (spec, report)
        };
        let accuracy = |r: &TaskReport| r.rounds.last().expect("rounds").outcome.accuracy;
        let (screened_spec, screened) = run_with("screened-fedavg", true);
        assert_verified(&screened);
        let kind = screened_spec.model_kind().expect("valid");
        let mut seen = 0;
        for r in &screened.rounds {
            let plan = RoundPlan::new(&screened_spec, &r.info).expect("plan");
            let aggregate = crate::record::AggregateBlob::decode(
                &screened.blobs[&r.outcome.aggregate.0],
                &LIMITS,
            )
            .expect("decodes");
            let mut kept = aggregate.groups.clone();
            for (g, summary) in r.outcome.groups.iter().enumerate() {
                if summary.survivors.contains(&attacker) {
                    seen += 1;
                    assert_eq!(summary.score, Some(0), "round {}", r.info.round);
                }
                if summary.score == Some(0) {
                    kept[g] = None;
                }
            }
            let global =
                weights::decode(&kind, &screened.blobs[&r.info.global_model]).expect("decodes");
            let mut fedavg = ServerState::new(&spec()).expect("builds");
            for skipped in 1..r.info.round {
                fedavg.skip(skipped).expect("in order");
            }
            let expected = fedavg
                .step(r.info.round, &global, &plan.quantizer, &kept, &[])
                .expect("steps");
            let bytes = weights::encode(&kind, &expected).expect("encodes");
            assert_eq!(
                weights::model_hash(&bytes),
                r.outcome.new_model.0,
                "round {}: not FedAvg over the groups that scored",
                r.info.round
            );
        }
        assert!(seen >= 3, "the attacker was selected {seen} times");

        // The model claim is checked against the recorded scores (no validation set needed): it
        // holds as recorded, and a recorded score that lets the attacker's group through the
        // screen refutes the model as well as that group's score.
        let r = screened
            .rounds
            .iter()
            .find(|r| r.outcome.survivors.contains(&attacker))
            .expect("selected");
        let g = r
            .outcome
            .groups
            .iter()
            .position(|s| s.survivors.contains(&attacker))
            .expect("in a group");
        let recorded = RecordedRound::from(&r.outcome.round_result(1, r.info.round));
        let refuted = |rec: &RecordedRound| -> Vec<deai_ledger::Claim> {
            every_claim(r.outcome.groups.len())
                .into_iter()
                .filter(|c| {
                    let mut server = ServerState::new(&screened_spec).expect("builds");
                    for skipped in 1..r.info.round {
                        server.skip(skipped).expect("in order");
                    }
                    let fetch = |h: &Digest| screened.blobs.get(h).cloned();
                    let validation =
                        matches!(c, deai_ledger::Claim::Score { .. }).then_some(&validation);
                    let m = crate::check_claim(
                        &screened_spec,
                        &r.info,
                        rec,
                        c,
                        &fetch,
                        validation,
                        &mut server,
                    )
                    .expect("checkable");
                    !m.is_empty()
                })
                .collect()
        };
        assert!(refuted(&recorded).is_empty());
        let mut wrong = recorded.clone();
        for s in &mut wrong.scores {
            if r.outcome.groups[g].survivors.contains(&s.dataset) {
                s.value = 1;
            }
        }
        assert_eq!(
            refuted(&wrong),
            vec![
                deai_ledger::Claim::Model,
                deai_ledger::Claim::Score { group: g as u32 }
            ]
        );

        let (_, clean) = run_with("screened-fedavg", false);
        let (_, plain) = run_with("fedavg", true);
        assert!(
            accuracy(&screened) > accuracy(&clean) - 0.05,
            "screened under attack {} against {} without",
            accuracy(&screened),
            accuracy(&clean)
        );
        assert!(
            accuracy(&plain) < accuracy(&screened) - 0.05,
            "plain FedAvg under attack {} against screened {}",
            accuracy(&plain),
            accuracy(&screened)
        );
    }

    /// An owner that skips the quantizer and cancels its group's weight word makes the unmasked
    /// sum claim no contributors. The coordinator leaves that group out and scores it 0; the
    /// round finishes, re-verifies, and the other groups still train the model.
    #[test]
    fn a_group_whose_sum_no_honest_owners_could_give_is_left_out() {
        let (owners, validation) = owners(10);
        let cfg = HarnessConfig {
            task: 1,
            seed: 1,
            verify: true,
            attacks: vec![Attackers {
                attack: OwnerAttack::from_name("cancel-weight").expect("known"),
                members: [104].into(),
            }],
            ..HarnessConfig::default()
        };
        let report = run_task(&spec(), &owners, &validation, &cfg).expect("every round finishes");
        assert_verified(&report);
        let mut excluded = 0;
        for r in &report.rounds {
            for g in &r.outcome.groups {
                if g.survivors.contains(&104) {
                    assert_eq!(g.score, Some(0), "round {}: {g:?}", r.info.round);
                    excluded += 1;
                }
            }
        }
        assert!(excluded > 0, "the attacker was never selected");
        let last = report.rounds.last().expect("rounds").outcome.accuracy;
        assert!(last > report.initial_accuracy + 0.2, "{last}");
    }

    /// What a validator fetches before it checks a claim ([`crate::claim_blobs`]) is exactly
    /// what the check then reads, for every claim of a real round: nothing it needs is left
    /// out, nothing it does not need is fetched.
    #[test]
    fn claim_blobs_are_what_a_claim_check_reads() {
        let report = baseline();
        let (o, info) = (&report.rounds[0].outcome, &report.rounds[0].info);
        let recorded = RecordedRound::from(&o.round_result(1, 1));
        let (_, validation) = owners(10);
        for claim in every_claim(o.groups.len()) {
            let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
            let fetch = |h: &Digest| {
                read.borrow_mut().insert(*h);
                report.blobs.get(h).cloned()
            };
            let m = crate::check_claim(
                &spec(),
                info,
                &recorded,
                &claim,
                &fetch,
                Some(&validation),
                &mut ServerState::new(&spec()).expect("builds"),
            )
            .expect("checkable");
            assert!(m.is_empty(), "{claim:?}: {m:?}");
            let listed: std::collections::BTreeSet<Digest> =
                crate::claim_blobs(&spec(), info, &recorded, &claim)
                    .into_iter()
                    .collect();
            assert_eq!(*read.borrow(), listed, "{claim:?}");
        }
    }

    /// The bounded check of one claim (what a validator runs on a challenge) refutes the claim
    /// that lies and only what reads the lie: a wrong model is the model claim's; a wrong
    /// score, its group's score claim; a recorded aggregate whose group-0 sum was altered, the
    /// aggregate, group 0's sum, and the model and group 0's score computed from it (not group
    /// 1's); a masked update that cannot be served, its group's sum and the aggregate (the
    /// model and the scores read the recorded sums, not the masked updates).
    #[test]
    fn a_bounded_claim_check_refutes_only_what_reads_the_lie() {
        use crate::record::AggregateBlob;
        use deai_ledger::Claim;
        let report = baseline();
        let (o, info) = (&report.rounds[0].outcome, &report.rounds[0].info);
        let recorded = RecordedRound::from(&o.round_result(1, 1));
        let groups: Vec<Vec<u64>> = o.groups.iter().map(|g| g.members.to_vec()).collect();
        assert!(groups.len() >= 2, "the baseline has several groups");
        let (_, validation) = owners(10);
        let refuted = |blobs: &BTreeMap<Digest, Vec<u8>>, rec: &RecordedRound| -> Vec<Claim> {
            every_claim(groups.len())
                .into_iter()
                .filter(|c| {
                    let fetch = |h: &Digest| blobs.get(h).cloned();
                    let mut server = ServerState::new(&spec()).expect("builds");
                    let m = crate::check_claim(
                        &spec(),
                        info,
                        rec,
                        c,
                        &fetch,
                        Some(&validation),
                        &mut server,
                    )
                    .expect("checkable");
                    !m.is_empty()
                })
                .collect()
        };
        assert!(refuted(&report.blobs, &recorded).is_empty());

        let mut wrong = recorded.clone();
        wrong.new_model = o.masked[0].0;
        assert_eq!(refuted(&report.blobs, &wrong), vec![Claim::Model]);

        let wrong = score_lie(&recorded, groups[1][0]);
        assert_eq!(
            refuted(&report.blobs, &wrong),
            vec![Claim::Score { group: 1 }]
        );

        let mut aggregate = AggregateBlob::decode(&o.aggregate.1, &LIMITS).expect("decodes");
        let sum = aggregate.groups[0].as_mut().expect("group 0 completed");
        let half = sum.len() / 2;
        for w in sum.iter_mut().take(half) {
            *w = w.wrapping_add(1 << 12);
        }
        let bytes = aggregate.encode();
        let mut blobs = report.blobs.clone();
        let forged = Digest::hash(&bytes);
        blobs.insert(forged, bytes);
        let mut wrong = recorded.clone();
        wrong.aggregate = forged;
        let got = refuted(&blobs, &wrong);
        for c in [Claim::Aggregate, Claim::Model, Claim::GroupSum { group: 0 }] {
            assert!(got.contains(&c), "{c:?} not refuted: {got:?}");
        }
        for c in [Claim::GroupSum { group: 1 }, Claim::Score { group: 1 }] {
            assert!(!got.contains(&c), "{c:?} refuted: {got:?}");
        }

        let victim = o.survivors[0];
        let g = groups
            .iter()
            .position(|m| m.contains(&victim))
            .expect("in a group") as u32;
        assert_eq!(
            refuted(&flip(&report.blobs, &o.masked[0].0), &recorded),
            vec![Claim::Aggregate, Claim::GroupSum { group: g }]
        );
        assert_eq!(
            crate::check_claim(
                &spec(),
                info,
                &recorded,
                &Claim::Score { group: 0 },
                &|h: &Digest| report.blobs.get(h).cloned(),
                None,
                &mut ServerState::new(&spec()).expect("builds"),
            ),
            Err(crate::ClaimCheckError::NeedsValidation)
        );
    }
}
