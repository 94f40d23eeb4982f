//! The coordinator's side of one round, sans-IO: one SecAgg+ server per scoring group,
//! multiplexed by dataset id, then aggregation, scoring and the blobs `RoundResult` records.
//!
//! Drive it in steps (the driver owns the clock and decides when a step's deadline passed):
//!
//! 1. [`CoordinatorRound::handle_client_msg`] each owner message as it arrives (bad ones are refused
//!    with a [`Rejected`] reason and never panic);
//! 2. at the deadline, [`CoordinatorRound::advance`]: every running group moves on with
//!    whoever answered (a group below its threshold aborts alone, its members count as
//!    dropped);
//! 3. deliver what [`CoordinatorRound::poll_transmit`] gives to the owners; repeat from 1 until `advance`
//!    returns [`Phase::Finished`] (four advances);
//! 4. [`CoordinatorRound::finish`] with the task's [`ServerState`] (the strategy, stepped once
//!    per round) and the validation set gives the [`RoundOutcome`].
//!
//! The coordinator keeps each survivor's masked vector (uniformly random on its own) so anyone
//! can later redo the unmasking from the blobs ([`crate::verify`]).

use std::collections::{BTreeMap, VecDeque};

use deai_learn::data::Dataset;
use deai_learn::model;
use deai_ledger::{Digest, RoundResult, Score};
use deai_secagg::msg::Step;
use deai_secagg::msg::{ClientBody, ClientMsg};
use deai_secagg::server::{Aggregate, Rejection, Server, ServerPhase};
use thiserror::Error;

use super::groups::RoundPlan;
use super::record::{AggregateBlob, GroupRecord, GroupResult, RoundRecord, masked_blob};
use super::strategy::ServerState;
use super::{FedError, RoundInfo, TaskSpec, owner, score, weights};

/// Where the round is after an [`CoordinatorRound::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Running groups wait for this step's messages.
    Collecting(Step),
    /// Every group completed or aborted: call [`CoordinatorRound::finish`].
    Finished,
}

/// Why an owner's message was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// The sender's dataset is not selected for this round.
    #[error("dataset {dataset} is not a member of any group of this round")]
    NotSelected {
        /// The dataset claimed.
        dataset: u64,
    },
    /// The sender's group already completed or aborted.
    #[error("dataset {dataset}: group {group} has ended")]
    GroupEnded {
        /// The dataset.
        dataset: u64,
        /// Its group.
        group: usize,
    },
    /// The group's SecAgg server refused the message (and excluded the sender).
    #[error("dataset {dataset} (group {group}): {reason}")]
    SecAgg {
        /// The dataset.
        dataset: u64,
        /// Its group.
        group: usize,
        /// The server's reason.
        reason: Rejection,
    },
}

enum Status {
    Running,
    Aborted(String),
    Done(Aggregate),
}

struct GroupState {
    server: Server,
    masked: BTreeMap<u32, Vec<u32>>,
    status: Status,
}

/// How one group ended, by dataset id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// Members, ascending.
    pub members: Vec<u64>,
    /// Members whose masked update is in the group sum, ascending (empty if aborted).
    pub survivors: Vec<u64>,
    /// The abort reason, if the group aborted.
    pub aborted: Option<String>,
    /// The group's score (`None` if aborted).
    pub score: Option<u64>,
}

/// Everything the coordinator publishes about a finished round: the blobs (hash, bytes) to
/// store and the fields of `RoundResult`.
#[derive(Debug, Clone)]
pub struct RoundOutcome {
    /// Datasets whose masked updates are in the sum, ascending.
    pub survivors: Vec<u64>,
    /// Each survivor's masked-update blob, aligned with `survivors`.
    pub masked: Vec<(Digest, Vec<u8>)>,
    /// The unmasking record blob.
    pub record: (Digest, Vec<u8>),
    /// The aggregate blob (per-group sums).
    pub aggregate: (Digest, Vec<u8>),
    /// The new global model, safetensors.
    pub new_model: (Digest, Vec<u8>),
    /// The new global model, flat.
    pub new_weights: Vec<f32>,
    /// Scores of survivors, ascending by dataset.
    pub scores: Vec<Score>,
    /// Validation accuracy of the new model.
    pub accuracy: f64,
    /// Validation loss of the new model.
    pub loss: f64,
    /// Per-group detail, in plan order.
    pub groups: Vec<GroupSummary>,
}

impl RoundOutcome {
    /// The `RoundResult` transaction body recording this outcome.
    pub fn round_result(&self, task: u64, round: u32) -> RoundResult {
        RoundResult {
            task,
            round,
            masked_updates: self.masked.iter().map(|(h, _)| *h).collect(),
            survivors: self.survivors.clone(),
            unmasking: self.record.0,
            aggregate: self.aggregate.0,
            new_model: self.new_model.0,
            scores: self.scores.clone(),
        }
    }

    /// Every blob to store, with its hash.
    pub fn blobs(&self) -> impl Iterator<Item = (&Digest, &Vec<u8>)> {
        self.masked
            .iter()
            .chain([&self.record, &self.aggregate, &self.new_model])
            .map(|(h, b)| (h, b))
    }

    /// Groups that completed although some member dropped after sharing its keys.
    pub fn recovered_groups(&self) -> usize {
        self.groups
            .iter()
            .filter(|g| g.aborted.is_none() && g.survivors.len() < g.members.len())
            .count()
    }
}

/// The coordinator's state for one round.
pub struct CoordinatorRound {
    spec: TaskSpec,
    info: RoundInfo,
    plan: RoundPlan,
    global: Vec<f32>,
    groups: Vec<GroupState>,
    outbox: VecDeque<(u64, Vec<u8>)>,
    rejected: Vec<Rejected>,
}

fn step_of(phase: ServerPhase) -> Step {
    match phase {
        ServerPhase::CollectAdverts => Step::Advert,
        ServerPhase::CollectShares => Step::Shares,
        ServerPhase::CollectMasked => Step::Masked,
        ServerPhase::CollectConsistency => Step::Consistency,
        _ => Step::Unmask,
    }
}

impl CoordinatorRound {
    /// Plans the round and starts one SecAgg server per group, collecting adverts.
    pub fn new(spec: &TaskSpec, info: &RoundInfo, global: Vec<f32>) -> Result<Self, FedError> {
        let plan = RoundPlan::new(spec, info)?;
        owner::check_global(plan.kind.num_params(), &global)?;
        let groups = plan
            .groups
            .iter()
            .map(|g| GroupState {
                server: Server::new(g.config.clone()),
                masked: BTreeMap::new(),
                status: Status::Running,
            })
            .collect();
        Ok(Self {
            spec: spec.clone(),
            info: info.clone(),
            plan,
            global,
            groups,
            outbox: VecDeque::new(),
            rejected: Vec::new(),
        })
    }

    /// The round's plan (groups, SecAgg parameters for `RoundOpen`).
    pub fn plan(&self) -> &RoundPlan {
        &self.plan
    }

    /// Every message refused so far, in arrival order.
    pub fn rejections(&self) -> &[Rejected] {
        &self.rejected
    }

    /// Handles one message attributed (by the transport's authentication) to `dataset_id`.
    pub fn handle_client_msg(
        &mut self,
        dataset_id: u64,
        client_msg: &[u8],
    ) -> Result<(), Rejected> {
        let result = self.route(dataset_id, client_msg);
        if let Err(r) = &result {
            self.rejected.push(r.clone());
        }
        result
    }

    fn route(&mut self, dataset: u64, bytes: &[u8]) -> Result<(), Rejected> {
        let &(group, me) = self
            .plan
            .position
            .get(&dataset)
            .ok_or(Rejected::NotSelected { dataset })?;
        let limits = self.plan.groups[group].config.limits();
        let state = &mut self.groups[group];
        if !matches!(state.status, Status::Running) {
            return Err(Rejected::GroupEnded { dataset, group });
        }
        let secagg = |reason| Rejected::SecAgg {
            dataset,
            group,
            reason,
        };
        let msg = match ClientMsg::decode(bytes, &limits) {
            Ok(msg) => msg,
            // Let the server see the garbage too, so the sender is excluded for good.
            Err(_) => return state.server.handle_client_bytes(me, bytes).map_err(secagg),
        };
        let masked = match &msg.body {
            ClientBody::Masked { vector, .. } => Some(vector.clone()),
            _ => None,
        };
        state.server.handle_client_msg(me, msg).map_err(secagg)?;
        if let Some(v) = masked {
            state.masked.insert(me, v);
        }
        Ok(())
    }

    /// Closes the current step of every running group and queues the next step's messages.
    pub fn advance(&mut self) -> Result<Phase, FedError> {
        for (g, state) in self.groups.iter_mut().enumerate() {
            if !matches!(state.status, Status::Running) {
                continue;
            }
            match state.server.advance() {
                Ok(None) => {
                    let members = &self.plan.groups[g].members;
                    while let Some(msg) = state.server.poll_transmit() {
                        let to = members
                            .get(msg.to as usize)
                            .ok_or(FedError::Protocol("server addressed an unknown client"))?;
                        self.outbox.push_back((*to, msg.encode()));
                    }
                }
                Ok(Some(aggregate)) => state.status = Status::Done(aggregate),
                Err(e) => state.status = Status::Aborted(e.to_string()),
            }
        }
        Ok(self.phase())
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.groups
            .iter()
            .find(|s| matches!(s.status, Status::Running))
            .map_or(Phase::Finished, |s| {
                Phase::Collecting(step_of(s.server.phase()))
            })
    }

    /// The next server message to deliver, `(dataset id, bytes)`, of those the last
    /// [`Self::advance`] queued.
    pub fn poll_transmit(&mut self) -> Option<(u64, Vec<u8>)> {
        self.outbox.pop_front()
    }

    /// Aggregates, scores and packs the round's blobs. Call once [`Phase::Finished`].
    pub fn finish(
        &self,
        server: &mut ServerState,
        validation: &Dataset,
    ) -> Result<RoundOutcome, FedError> {
        if self.phase() != Phase::Finished {
            return Err(FedError::NotFinished);
        }
        let mut sums = Vec::with_capacity(self.groups.len());
        let mut records = Vec::with_capacity(self.groups.len());
        let mut survivors_by_group = Vec::with_capacity(self.groups.len());
        let mut masked = Vec::new();
        for (state, group) in self.groups.iter().zip(&self.plan.groups) {
            let (sum, result, survivors) = match &state.status {
                Status::Done(agg) => {
                    let ids = self.collect_masked(state, &group.members, agg, &mut masked)?;
                    (
                        Some(agg.sum.clone()),
                        GroupResult::Done(agg.record.clone()),
                        ids,
                    )
                }
                Status::Aborted(reason) => (
                    None,
                    GroupResult::Aborted {
                        reason: reason.clone(),
                    },
                    Vec::new(),
                ),
                Status::Running => return Err(FedError::NotFinished),
            };
            sums.push(sum);
            survivors_by_group.push(survivors);
            records.push(GroupRecord {
                members: group.members.clone(),
                secagg_round: group.config.round,
                degree: group.params.degree,
                threshold: group.params.threshold,
                modulus_bits: group.config.modulus_bits,
                result,
            });
        }
        masked.sort_unstable_by_key(|(id, _, _)| *id);
        let record = RoundRecord {
            task: self.info.task,
            round: self.info.round,
            spec_hash: self.spec.hash(),
            global_model: self.info.global_model,
            quantizer: self.plan.quantizer,
            groups: records,
        }
        .encode();
        let aggregate = AggregateBlob {
            groups: sums.clone(),
        }
        .encode();
        let q = &self.plan.quantizer;
        let lr = self.spec.server_lr;
        let group_scores =
            score::group_scores(&self.plan.kind, &self.global, q, &sums, lr, validation)?;
        let new_weights = server.step(self.info.round, &self.global, q, &sums, &group_scores)?;
        let new_model = weights::encode(&self.plan.kind, &new_weights)?;
        let metrics = model::evaluate(&self.plan.kind, &new_weights, validation);
        let groups = self.summaries(&survivors_by_group, &group_scores);
        Ok(RoundOutcome {
            survivors: masked.iter().map(|(id, _, _)| *id).collect(),
            masked: masked.into_iter().map(|(_, h, b)| (h, b)).collect(),
            record: (Digest::hash(&record), record),
            aggregate: (Digest::hash(&aggregate), aggregate),
            new_model: (weights::model_hash(&new_model), new_model),
            new_weights,
            scores: score::survivor_scores(&survivors_by_group, &group_scores),
            accuracy: metrics.accuracy,
            loss: metrics.loss,
            groups,
        })
    }

    /// Pushes `(dataset, hash, blob)` of each survivor of a completed group; returns the
    /// survivors' dataset ids.
    fn collect_masked(
        &self,
        state: &GroupState,
        members: &[u64],
        agg: &Aggregate,
        out: &mut Vec<(u64, Digest, Vec<u8>)>,
    ) -> Result<Vec<u64>, FedError> {
        let mut ids = Vec::with_capacity(agg.record.survivors.len());
        for (c, hash) in agg.record.survivors.iter().zip(&agg.record.masked_hashes) {
            let words = state
                .masked
                .get(c)
                .ok_or(FedError::Protocol("a survivor's masked input was not kept"))?;
            let blob = masked_blob(words);
            let digest = Digest::hash(&blob);
            if digest.0 != *hash {
                return Err(FedError::Protocol(
                    "kept masked input differs from the server's",
                ));
            }
            let id = *members
                .get(*c as usize)
                .ok_or(FedError::Protocol("survivor outside the group"))?;
            ids.push(id);
            out.push((id, digest, blob));
        }
        Ok(ids)
    }

    fn summaries(&self, survivors: &[Vec<u64>], scores: &[Option<u64>]) -> Vec<GroupSummary> {
        self.groups
            .iter()
            .zip(&self.plan.groups)
            .zip(survivors.iter().zip(scores))
            .map(|((state, group), (survivors, score))| GroupSummary {
                members: group.members.clone(),
                survivors: survivors.clone(),
                aborted: match &state.status {
                    Status::Aborted(r) => Some(r.clone()),
                    _ => None,
                },
                score: *score,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::tests::{first_round, owners, spec};
    use deai_secagg::server::Rejection;

    /// Owner `o`'s side of the round, started, and its advert.
    fn start(
        spec: &TaskSpec,
        info: &RoundInfo,
        o: &crate::harness::Owner,
        global: &[f32],
    ) -> (crate::OwnerRound, Vec<u8>) {
        crate::OwnerRound::start(
            spec,
            info,
            o.dataset,
            &o.data,
            global,
            &o.key,
            [o.dataset as u8; 32],
        )
        .map(|mut owner| {
            let advert = owner.poll_transmit().expect("an advert");
            (owner, advert)
        })
        .expect("starts")
    }

    /// A coordinator for round 1 and each selected owner's advert.
    fn setup() -> (CoordinatorRound, Vec<(u64, Vec<u8>)>) {
        let spec = spec();
        let (owners, _) = owners(10);
        let (info, global) = first_round(&spec, &owners);
        let adverts = owners
            .iter()
            .filter(|o| info.selected.contains(&o.dataset))
            .map(|o| (o.dataset, start(&spec, &info, o, &global).1))
            .collect();
        (
            CoordinatorRound::new(&spec, &info, global).expect("plans"),
            adverts,
        )
    }

    #[test]
    fn bad_messages_are_refused_with_a_reason() {
        let (mut c, adverts) = setup();
        let (a, b) = (adverts[0].0, adverts[1].0);
        assert_eq!(
            c.handle_client_msg(999, &adverts[0].1),
            Err(Rejected::NotSelected { dataset: 999 })
        );
        let garbage = c.handle_client_msg(a, b"\x07garbage");
        assert!(
            matches!(&garbage, Err(Rejected::SecAgg { dataset, reason: Rejection::Decode(_), .. }) if *dataset == a),
            "{garbage:?}"
        );
        // The garbage excluded `a` for the round: even its real advert is refused now.
        assert!(matches!(
            c.handle_client_msg(a, &adverts[0].1),
            Err(Rejected::SecAgg {
                reason: Rejection::Excluded(_),
                ..
            })
        ));
        // A message for another round (or claiming another member) is misaddressed.
        let limits = c.plan().groups[c.plan().position[&b].0].config.limits();
        let mut msg = ClientMsg::decode(&adverts[1].1, &limits).expect("decodes");
        msg.round += 1;
        assert!(matches!(
            c.handle_client_msg(b, &msg.encode()),
            Err(Rejected::SecAgg {
                reason: Rejection::Misaddressed { .. },
                ..
            })
        ));
        let (c_id, c_advert) = &adverts[2];
        let other = adverts.iter().find(|(id, _)| {
            c.plan().position[id].0 == c.plan().position[c_id].0 && ![a, b, *c_id].contains(id)
        });
        let (other, _) = other.expect("groups have 4 members, at most 3 used");
        assert!(matches!(
            c.handle_client_msg(*other, c_advert),
            Err(Rejected::SecAgg {
                reason: Rejection::Misaddressed { .. },
                ..
            })
        ));
        assert_eq!(c.rejections().len(), 5);
        assert!(matches!(
            c.finish(
                &mut ServerState::new(&spec()).expect("builds"),
                &owners(10).1
            ),
            Err(FedError::NotFinished)
        ));
    }

    #[test]
    fn adverts_advance_to_the_shares_step() {
        let (mut c, adverts) = setup();
        assert_eq!(c.phase(), Phase::Collecting(Step::Advert));
        for (id, bytes) in &adverts {
            c.handle_client_msg(*id, bytes).expect("a valid advert");
        }
        assert_eq!(
            c.advance().expect("advances"),
            Phase::Collecting(Step::Shares)
        );
        let out: Vec<_> = std::iter::from_fn(|| c.poll_transmit()).collect();
        let mut to: Vec<u64> = out.iter().map(|(id, _)| *id).collect();
        to.sort_unstable();
        assert_eq!(to, adverts.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        assert!(c.poll_transmit().is_none(), "the queue drains");
    }

    #[test]
    fn a_bad_global_model_is_refused() {
        let spec = spec();
        let (owners, _) = owners(10);
        let (info, mut global) = first_round(&spec, &owners);
        let short = global[1..].to_vec();
        assert!(matches!(
            CoordinatorRound::new(&spec, &info, short),
            Err(FedError::GlobalLength { .. })
        ));
        global[5] = f32::NAN;
        assert!(matches!(
            CoordinatorRound::new(&spec, &info, global),
            Err(FedError::GlobalNonFinite { index: 5 })
        ));
    }

    /// A member whose masked update has the wrong length is refused by name and excluded; its
    /// group completes by dropout recovery (it had shared its keys) and the round verifies.
    #[test]
    fn a_malformed_update_is_refused_and_the_round_recovers() {
        let spec = spec();
        let (owners, validation) = owners(10);
        let (info, global) = first_round(&spec, &owners);
        let mut c = CoordinatorRound::new(&spec, &info, global.clone()).expect("plans");
        let mut live = BTreeMap::new();
        let mut uplink = Vec::new();
        for o in owners.iter().filter(|o| info.selected.contains(&o.dataset)) {
            let (state, advert) = start(&spec, &info, o, &global);
            live.insert(o.dataset, state);
            uplink.push((o.dataset, advert));
        }
        let cheat = info.selected[0];
        let mut refused = Vec::new();
        loop {
            for (id, bytes) in uplink.drain(..) {
                let limits = c.plan().groups[c.plan().position[&id].0].config.limits();
                let mut msg = ClientMsg::decode(&bytes, &limits).expect("owners send valid bytes");
                if let (true, ClientBody::Masked { vector, .. }) = (id == cheat, &mut msg.body) {
                    vector.pop();
                }
                if let Err(r) = c.handle_client_msg(id, &msg.encode()) {
                    refused.push(r);
                }
            }
            if c.advance().expect("advances") == Phase::Finished {
                break;
            }
            while let Some((id, bytes)) = c.poll_transmit() {
                let Some(o) = live.get_mut(&id) else { continue };
                if o.handle_server_msg(&bytes).is_ok() {
                    uplink.extend(o.poll_transmit().map(|reply| (id, reply)));
                }
            }
        }
        assert!(
            matches!(&refused[..], [Rejected::SecAgg { dataset, reason: Rejection::BadVector { .. }, .. }] if *dataset == cheat),
            "{refused:?}"
        );
        let mut server = ServerState::new(&spec).expect("builds");
        let outcome = c.finish(&mut server, &validation).expect("finishes");
        assert!(!outcome.survivors.contains(&cheat));
        assert_eq!(outcome.survivors.len(), 7);
        assert_eq!(outcome.recovered_groups(), 1);
        let kind = spec.model_kind().expect("valid");
        let mut blobs: BTreeMap<Digest, Vec<u8>> =
            outcome.blobs().map(|(h, b)| (*h, b.clone())).collect();
        blobs.insert(
            info.global_model,
            weights::encode(&kind, &global).expect("encodes"),
        );
        let fetch = |h: &Digest| blobs.get(h).cloned();
        let recorded = crate::RecordedRound::from(&outcome.round_result(1, 1));
        let mut verifier = ServerState::new(&spec).expect("builds");
        let check =
            crate::verify_round(&spec, &info, &recorded, &fetch, &validation, &mut verifier);
        assert!(check.is_ok(), "{:?}", check.mismatches);
    }
}
