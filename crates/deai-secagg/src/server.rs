//! The server state machine.
//!
//! ```text
//! CollectAdverts ─advance─► CollectShares ─advance─► CollectMasked ─advance─► CollectConsistency ─advance─► CollectUnmask ─advance─► Done
//!   U1 = advertised          U2 = shared              U3 = masked input in      U4 = signed U3             U5 = revealed: aggregate
//! any phase ─advance with too few clients or shares─► Aborted
//! ```
//!
//! Feed each client message to [`Server::handle_client_msg`] (or raw bytes to [`Server::handle_client_bytes`]);
//! when the step's deadline passes (the driver's clock, not ours) call [`Server::advance`], then
//! drain [`Server::poll_transmit`]. After the last `advance`, [`Server::advance`] returns the
//! [`Aggregate`].
//!
//! Who counts. Each set is a subset of the one before:
//! - `U1`: clients whose signed advert arrived, and that have at least `t - 1` neighbours in
//!   `U1` (pruned to a fixed point: a client with fewer could not reach the threshold and would
//!   refuse the adverts anyway);
//! - `U2`: members of `U1` whose shares arrived, addressed to exactly their neighbours in
//!   `U1`, with at least `t - 1` neighbours in `U2` (pruned likewise);
//! - `U3`: members of `U2` whose signed masked input arrived, with at least `t - 1` neighbours
//!   in `U3` (pruned likewise: a pruned client counts as dropped, its input stays out of the
//!   sum and its mask key is recovered instead). **The sum is over `U3`**, the survivor list
//!   sent to every member of `U3` in the consistency step;
//! - `U4`: members of `U3` whose signature on that list arrived and verified. Each member of
//!   `U4` with at least `t` signers among its holders (neighbours and itself) gets the
//!   unmasking request with those signatures. A member of `U3` that drops at the consistency
//!   step (or later) still counts: its self seed is rebuilt from its holders' shares;
//! - `U5`: those whose revealed shares arrived and check.
//!
//! A message that is malformed, misaddressed, repeated, late or inconsistent with what the
//! server knows (among others: a bad advert, masked-input or consistency signature) excludes its
//! sender: from then on the sender counts as dropped (or, once its masked input is in the sum,
//! only its later messages are ignored). Other clients are not affected. The round aborts,
//! revealing no share, if fewer than `t` clients remain at a step, and fails if some secret
//! gets fewer than `t` shares or a rebuilt secret does not match what its owner committed to.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rayon::prelude::*;
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::config::RoundConfig;
use crate::crypto;
use crate::graph::Graph;
use crate::msg::{
    Advert, ClientBody, ClientMsg, RevealedShare, SealedShares, ServerBody, ServerMsg, ShareKind,
    SignatureBy,
};
use crate::prg;
use crate::shamir::{self, Share};
use crate::unmask::{self, hash_vector};
use crate::wire::DecodeError;

/// Where the server is in the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerPhase {
    /// Collecting key adverts.
    CollectAdverts,
    /// Collecting encrypted shares.
    CollectShares,
    /// Collecting masked inputs.
    CollectMasked,
    /// Collecting signatures on the survivor list.
    CollectConsistency,
    /// Collecting revealed shares.
    CollectUnmask,
    /// The aggregate is out.
    Done,
    /// The round failed.
    Aborted,
}

/// Why a client's message was refused (the client is then excluded).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The bytes did not decode.
    /// (The codec's error, as text: it is kept in records and compared in tests.)
    #[error("undecodable: {0}")]
    Decode(String),
    /// The transport sender is not a client of the round.
    #[error("unknown sender {0}")]
    UnknownSender(u32),
    /// The client was excluded earlier.
    #[error("client {0} is excluded")]
    Excluded(u32),
    /// The message names another sender or round.
    #[error("message claims client {from} round {round}")]
    Misaddressed {
        /// Sender claimed.
        from: u32,
        /// Round claimed.
        round: u64,
    },
    /// The message does not belong to the current phase, or repeats one.
    #[error("unexpected or repeated message in phase {0:?}")]
    WrongPhase(ServerPhase),
    /// The client is not in the set allowed to send this message.
    #[error("client {0} did not complete the previous step")]
    NotParticipating(u32),
    /// The advert's signature does not verify.
    #[error("bad advert signature")]
    BadSignature,
    /// The masked input's signature does not verify.
    #[error("bad masked-input signature")]
    BadMaskedSignature,
    /// The signature on the survivor list does not verify (forged, replayed from another round
    /// or list, or made by another client).
    #[error("bad consistency signature")]
    BadConsistencySignature,
    /// Encrypted shares are not addressed to exactly the live neighbours.
    #[error("shares addressed to {got:?}, expected {expected:?}")]
    BadRecipients {
        /// Recipients given.
        got: Vec<u32>,
        /// Recipients expected.
        expected: Vec<u32>,
    },
    /// Masked vector of the wrong length or with a word at or above 2^b.
    #[error("masked vector of {len} words, or a word out of range")]
    BadVector {
        /// Length given.
        len: usize,
    },
    /// A revealed share is about a non-neighbour, of the wrong kind, or not a valid share.
    #[error("bad revealed share about client {owner}")]
    BadShare {
        /// The owner named.
        owner: u32,
    },
}

/// Why the round failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ServerError {
    /// Too few clients remained at a step.
    #[error("only {have} clients left at {phase:?}, threshold {need}")]
    TooFewClients {
        /// The step.
        phase: ServerPhase,
        /// Clients left.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// A secret got too few (valid) shares.
    #[error("{kind:?} of client {owner}: {got} shares, threshold {need}")]
    TooFewShares {
        /// Whose secret.
        owner: u32,
        /// Which secret.
        kind: ShareKind,
        /// Shares received.
        got: usize,
        /// Threshold.
        need: usize,
    },
    /// Shares reconstructed to garbage or to a key that does not match the advert.
    #[error("shares of client {0} are inconsistent")]
    BadReconstruction(u32),
    /// Shares of a self seed reconstructed to a seed that does not match the owner's advertised
    /// commitment (a share holder lied).
    #[error("self seed of client {0} does not match its commitment")]
    BadSelfSeed(u32),
    /// `advance` after the round ended.
    #[error("round already ended in phase {0:?}")]
    Ended(ServerPhase),
}

/// The public record of how the aggregate was unmasked: with the masked inputs (by hash) anyone
/// can recompute the aggregate ([`crate::verify::verify_aggregate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmaskRecord {
    /// The round.
    pub round: u64,
    /// Adverts of the clients that shared (`U2`), ascending.
    pub adverts: Vec<Advert>,
    /// Clients whose masked input is in the sum (`U3`), ascending.
    pub survivors: Vec<u32>,
    /// BLAKE3 of each survivor's masked vector ([`hash_vector`]), aligned with `survivors`.
    pub masked_hashes: Vec<[u8; 32]>,
    /// Each survivor's signature on its masked vector ([`crypto::sign_masked`]), aligned with
    /// `survivors`.
    pub masked_signatures: Vec<[u8; 64]>,
    /// Signatures on `survivors` ([`crypto::sign_consistency`]) by the clients that signed it
    /// (`U4`), ascending by signer.
    pub consistency: Vec<(u32, [u8; 64])>,
    /// Reconstructed self-mask seed of each survivor, aligned with `survivors`.
    pub self_seeds: Vec<[u8; 32]>,
    /// Reconstructed mask secret key of each client in `U2 \ U3`, ascending.
    pub dropped_keys: Vec<(u32, [u8; 32])>,
}

/// The result of a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// `Σ_{i ∈ U3} x_i mod 2^b`.
    pub sum: Vec<u32>,
    /// How it was obtained.
    pub record: UnmaskRecord,
}

struct Masked {
    vector: Vec<u32>,
    hash: [u8; 32],
    signature: [u8; 64],
}

/// The server's side of a SecAgg+ round.
pub struct Server {
    config: Arc<RoundConfig>,
    graph: Graph,
    phase: ServerPhase,
    adverts: BTreeMap<u32, Advert>,
    sealed: BTreeMap<u32, Vec<SealedShares>>,
    masked: BTreeMap<u32, Masked>,
    consistency: BTreeMap<u32, [u8; 64]>,
    revealed: BTreeMap<u32, Vec<RevealedShare>>,
    u1: Vec<u32>,
    u2: Vec<u32>,
    u3: Vec<u32>,
    /// [`crypto::survivors_hash`] of `u3`, which every consistency signature covers.
    u3_hash: [u8; 32],
    /// Members of `U4` sent the unmasking request: the only ones whose shares are taken.
    asked: Vec<u32>,
    excluded: BTreeMap<u32, Rejection>,
    outbox: VecDeque<ServerMsg>,
}

impl Server {
    /// A server waiting for adverts.
    pub fn new(config: Arc<RoundConfig>) -> Self {
        let graph = config.graph();
        Self {
            config,
            graph,
            phase: ServerPhase::CollectAdverts,
            adverts: BTreeMap::new(),
            sealed: BTreeMap::new(),
            masked: BTreeMap::new(),
            consistency: BTreeMap::new(),
            revealed: BTreeMap::new(),
            u1: Vec::new(),
            u2: Vec::new(),
            u3: Vec::new(),
            u3_hash: [0; 32],
            asked: Vec::new(),
            excluded: BTreeMap::new(),
            outbox: VecDeque::new(),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> ServerPhase {
        self.phase
    }

    /// Clients excluded so far, with the reason.
    pub fn excluded(&self) -> &BTreeMap<u32, Rejection> {
        &self.excluded
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<ServerMsg> {
        self.outbox.pop_front()
    }

    /// Decodes and handles a message that the transport attributes to client `from`.
    pub fn handle_client_bytes(&mut self, from: u32, bytes: &[u8]) -> Result<(), Rejection> {
        self.handle_client_decoded(from, ClientMsg::decode(bytes, &self.config.limits()))
    }

    /// Handles the result of decoding a message from `from` with this round's limits
    /// ([`RoundConfig::limits`]): what a transport that decodes on its own threads calls.
    pub fn handle_client_decoded(
        &mut self,
        from: u32,
        decoded: Result<ClientMsg, DecodeError>,
    ) -> Result<(), Rejection> {
        match decoded {
            Ok(msg) => self.handle_client_msg(from, msg),
            Err(e) => self.reject(from, Rejection::Decode(e.to_string())),
        }
    }

    /// Handles a message that the transport attributes to client `from`. A rejection excludes
    /// the client.
    pub fn handle_client_msg(&mut self, from: u32, msg: ClientMsg) -> Result<(), Rejection> {
        if from >= self.config.clients() {
            return Err(Rejection::UnknownSender(from));
        }
        if self.excluded.contains_key(&from) {
            return Err(Rejection::Excluded(from));
        }
        match self.check(from, msg) {
            Ok(()) => Ok(()),
            Err(r) => self.reject(from, r),
        }
    }

    fn reject(&mut self, from: u32, reason: Rejection) -> Result<(), Rejection> {
        if from < self.config.clients() {
            self.excluded.entry(from).or_insert_with(|| reason.clone());
            // Shares already stored from an excluded client are no longer trusted.
            self.revealed.remove(&from);
        }
        Err(reason)
    }

    fn check(&mut self, from: u32, msg: ClientMsg) -> Result<(), Rejection> {
        if msg.from != from || msg.round != self.config.round {
            return Err(Rejection::Misaddressed {
                from: msg.from,
                round: msg.round,
            });
        }
        match (self.phase, msg.body) {
            (ServerPhase::CollectAdverts, ClientBody::Advert(a))
                if !self.adverts.contains_key(&from) =>
            {
                self.check_advert(from, a)
            }
            (ServerPhase::CollectShares, ClientBody::Shares(s))
                if !self.sealed.contains_key(&from) =>
            {
                self.check_shares(from, s)
            }
            (ServerPhase::CollectMasked, ClientBody::Masked { vector, signature })
                if !self.masked.contains_key(&from) =>
            {
                self.check_masked(from, vector, signature)
            }
            (ServerPhase::CollectConsistency, ClientBody::ConsistencySig(signature))
                if !self.consistency.contains_key(&from) =>
            {
                self.check_consistency(from, signature)
            }
            (ServerPhase::CollectUnmask, ClientBody::Unmask(r))
                if !self.revealed.contains_key(&from) =>
            {
                self.check_revealed(from, r)
            }
            (phase, _) => Err(Rejection::WrongPhase(phase)),
        }
    }

    fn check_advert(&mut self, from: u32, a: Advert) -> Result<(), Rejection> {
        let id = &self.config.identities[from as usize];
        if a.from != from || !crypto::verify_advert(id, self.config.round, &a) {
            return Err(Rejection::BadSignature);
        }
        self.adverts.insert(from, a);
        Ok(())
    }

    fn check_shares(&mut self, from: u32, shares: Vec<SealedShares>) -> Result<(), Rejection> {
        if self.u1.binary_search(&from).is_err() {
            return Err(Rejection::NotParticipating(from));
        }
        let expected = self.live_neighbours(from, &self.u1);
        let got: Vec<u32> = shares.iter().map(|s| s.peer).collect();
        if got != expected {
            return Err(Rejection::BadRecipients { got, expected });
        }
        self.sealed.insert(from, shares);
        Ok(())
    }

    fn check_masked(
        &mut self,
        from: u32,
        vector: Vec<u32>,
        signature: [u8; 64],
    ) -> Result<(), Rejection> {
        if self.u2.binary_search(&from).is_err() {
            return Err(Rejection::NotParticipating(from));
        }
        let max = prg::modulus_mask(self.config.modulus_bits);
        if vector.len() != self.config.vector_len as usize || vector.iter().any(|&w| w > max) {
            return Err(Rejection::BadVector { len: vector.len() });
        }
        let hash = hash_vector(&vector);
        let id = &self.config.identities[from as usize];
        if !crypto::verify_masked(id, self.config.round, from, &hash, &signature) {
            return Err(Rejection::BadMaskedSignature);
        }
        let masked = Masked {
            vector,
            hash,
            signature,
        };
        self.masked.insert(from, masked);
        Ok(())
    }

    fn check_consistency(&mut self, from: u32, signature: [u8; 64]) -> Result<(), Rejection> {
        if self.u3.binary_search(&from).is_err() {
            return Err(Rejection::NotParticipating(from));
        }
        let id = &self.config.identities[from as usize];
        let round = self.config.round;
        if !crypto::verify_consistency(id, round, from, &self.u3_hash, &signature) {
            return Err(Rejection::BadConsistencySignature);
        }
        self.consistency.insert(from, signature);
        Ok(())
    }

    fn check_revealed(&mut self, from: u32, shares: Vec<RevealedShare>) -> Result<(), Rejection> {
        if self.asked.binary_search(&from).is_err() {
            return Err(Rejection::NotParticipating(from));
        }
        let mut last = None;
        for s in &shares {
            let owner = s.owner;
            let related = owner == from
                || (self.graph.are_neighbours(owner, from)
                    && self.u2.binary_search(&owner).is_ok());
            let alive = self.u3.binary_search(&owner).is_ok();
            let kind = if alive {
                ShareKind::SelfMask
            } else {
                ShareKind::MaskKey
            };
            let valid = Share::from_value_bytes(from + 1, &s.value).is_ok();
            if !related || s.kind != kind || !valid || last >= Some(owner) {
                return Err(Rejection::BadShare { owner });
            }
            last = Some(owner);
        }
        self.revealed.insert(from, shares);
        Ok(())
    }

    /// Neighbours of `client` that are in `set` (ascending).
    fn live_neighbours(&self, client: u32, set: &[u32]) -> Vec<u32> {
        self.graph
            .neighbours(client)
            .into_iter()
            .filter(|c| set.binary_search(c).is_ok())
            .collect()
    }

    fn included<V>(&self, map: &BTreeMap<u32, V>) -> Vec<u32> {
        map.keys()
            .copied()
            .filter(|c| !self.excluded.contains_key(c))
            .collect()
    }

    /// The largest subset of `set` (ascending) in which every member has at least `t - 1`
    /// neighbours: those it leaves out could not reach the threshold, and the honest ones would
    /// refuse to go on (so the next step's messages are not even sent to them).
    fn prune(&self, mut set: Vec<u32>) -> Vec<u32> {
        let need = self.config.threshold().saturating_sub(1);
        loop {
            let before = set.len();
            let keep: Vec<bool> = set
                .iter()
                .map(|&c| self.live_neighbours(c, &set).len() >= need)
                .collect();
            let mut keep = keep.into_iter();
            set.retain(|_| keep.next().unwrap_or(false));
            if set.len() == before {
                return set;
            }
        }
    }

    /// `arrived`, pruned; fails if fewer than `t` arrived or remain.
    fn pruned(&mut self, arrived: Vec<u32>) -> Result<Vec<u32>, ServerError> {
        self.require(arrived.len())?;
        let kept = self.prune(arrived);
        self.require(kept.len())?;
        Ok(kept)
    }

    fn require(&mut self, have: usize) -> Result<(), ServerError> {
        let need = self.config.threshold();
        if have < need {
            let phase = self.phase;
            self.phase = ServerPhase::Aborted;
            return Err(ServerError::TooFewClients { phase, have, need });
        }
        Ok(())
    }

    fn send(&mut self, to: u32, body: ServerBody) {
        self.outbox.push_back(ServerMsg {
            round: self.config.round,
            to,
            body,
        });
    }

    /// Closes the current step: computes who is still in, queues the next step's messages, and
    /// after the last step returns the aggregate.
    pub fn advance(&mut self) -> Result<Option<Aggregate>, ServerError> {
        match self.phase {
            ServerPhase::CollectAdverts => {
                let arrived = self.included(&self.adverts);
                self.u1 = self.pruned(arrived)?;
                for i in self.u1.clone() {
                    let adverts = self
                        .live_neighbours(i, &self.u1)
                        .iter()
                        .map(|j| self.adverts[j].clone())
                        .collect();
                    self.send(i, ServerBody::Neighbours(adverts));
                }
                self.phase = ServerPhase::CollectShares;
            }
            ServerPhase::CollectShares => {
                let arrived = self.included(&self.sealed);
                self.u2 = self.pruned(arrived)?;
                for i in self.u2.clone() {
                    let shares = self.shares_for(i);
                    self.send(i, ServerBody::Shares(shares));
                }
                self.phase = ServerPhase::CollectMasked;
            }
            ServerPhase::CollectMasked => {
                let arrived = self.included(&self.masked);
                self.u3 = self.pruned(arrived)?;
                self.u3_hash = crypto::survivors_hash(&self.u3);
                for i in self.u3.clone() {
                    self.send(i, ServerBody::Consistency(self.u3.clone()));
                }
                self.phase = ServerPhase::CollectConsistency;
            }
            ServerPhase::CollectConsistency => {
                let u4 = self.included(&self.consistency);
                self.require(u4.len())?;
                let t = self.config.threshold();
                let requests: Vec<(u32, Vec<SignatureBy>)> = u4
                    .into_iter()
                    .map(|i| (i, self.holder_signatures(i)))
                    // The client would refuse a request with fewer: do not ask it.
                    .filter(|(_, signatures)| signatures.len() >= t)
                    .collect();
                // Checked before anything is queued: an aborted round asks for no share.
                self.require(requests.len())?;
                for (i, signatures) in requests {
                    self.asked.push(i);
                    let survivors = self.u3.clone();
                    self.send(
                        i,
                        ServerBody::Unmask {
                            survivors,
                            signatures,
                        },
                    );
                }
                self.phase = ServerPhase::CollectUnmask;
            }
            ServerPhase::CollectUnmask => {
                let result = self.finish();
                self.phase = if result.is_ok() {
                    ServerPhase::Done
                } else {
                    ServerPhase::Aborted
                };
                return result.map(Some);
            }
            phase @ (ServerPhase::Done | ServerPhase::Aborted) => {
                return Err(ServerError::Ended(phase));
            }
        }
        Ok(None)
    }

    /// The valid consistency signatures of `client`'s holders (its neighbours in `U3` and
    /// itself), ascending by signer.
    fn holder_signatures(&self, client: u32) -> Vec<SignatureBy> {
        let mut holders = self.live_neighbours(client, &self.u3);
        let at = holders.partition_point(|&h| h < client);
        holders.insert(at, client);
        holders
            .into_iter()
            .filter_map(|h| Some((h, *self.consistency.get(&h)?)))
            .collect()
    }

    fn shares_for(&self, to: u32) -> Vec<SealedShares> {
        self.live_neighbours(to, &self.u2)
            .into_iter()
            .filter_map(|from| {
                let list = &self.sealed[&from];
                let at = list.binary_search_by_key(&to, |s| s.peer).ok()?;
                Some(SealedShares {
                    peer: from,
                    ciphertext: list[at].ciphertext,
                })
            })
            .collect()
    }

    /// Shares of `owner`'s secret of `kind`, from non-excluded survivors, ascending by holder.
    fn shares_of(&self, owner: u32, kind: ShareKind) -> Vec<Share> {
        let mut holders = self.graph.neighbours(owner);
        holders.push(owner);
        holders.sort_unstable();
        holders
            .into_iter()
            .filter_map(|h| {
                let list = self.revealed.get(&h)?;
                let s = list.iter().find(|s| s.owner == owner && s.kind == kind)?;
                Share::from_value_bytes(h + 1, &s.value).ok()
            })
            .collect()
    }

    fn reconstruct(&self, owner: u32, kind: ShareKind) -> Result<[u8; 32], ServerError> {
        let shares = self.shares_of(owner, kind);
        let need = self.config.threshold();
        if shares.len() < need {
            return Err(ServerError::TooFewShares {
                owner,
                kind,
                got: shares.len(),
                need,
            });
        }
        shamir::reconstruct(&shares, need).map_err(|_| ServerError::BadReconstruction(owner))
    }

    fn finish(&mut self) -> Result<Aggregate, ServerError> {
        let self_seeds = self
            .u3
            .par_iter()
            .map(|&i| {
                let seed = self.reconstruct(i, ShareKind::SelfMask)?;
                let commitment = crypto::seed_commitment(self.config.round, i, &seed);
                if commitment != self.adverts[&i].seed_commitment {
                    return Err(ServerError::BadSelfSeed(i));
                }
                Ok(seed)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut dropped_keys = Vec::new();
        for &j in self.u2.iter().filter(|j| self.u3.binary_search(j).is_err()) {
            let key = self.reconstruct(j, ShareKind::MaskKey)?;
            if PublicKey::from(&StaticSecret::from(key)).to_bytes() != self.adverts[&j].mask_pk {
                return Err(ServerError::BadReconstruction(j));
            }
            dropped_keys.push((j, key));
        }
        let adverts = &self.adverts;
        let removals = unmask::removals(
            &self.graph,
            self.config.round,
            &self.u3,
            &self_seeds,
            &dropped_keys,
            |i| PublicKey::from(adverts[&i].mask_pk),
        );
        let inputs: Vec<&[u32]> = self
            .u3
            .iter()
            .map(|i| self.masked[i].vector.as_slice())
            .collect();
        let sum = unmask::unmasked_sum(
            self.config.vector_len as usize,
            &inputs,
            &removals,
            self.config.modulus_bits,
        );
        let record = UnmaskRecord {
            round: self.config.round,
            adverts: self.u2.iter().map(|j| self.adverts[j].clone()).collect(),
            survivors: self.u3.clone(),
            masked_hashes: self.u3.iter().map(|i| self.masked[i].hash).collect(),
            masked_signatures: self.u3.iter().map(|i| self.masked[i].signature).collect(),
            // Every signature kept verified on receipt; one by a client excluded later (for its
            // shares) is still its valid statement about the list.
            consistency: self.consistency.iter().map(|(&c, &s)| (c, s)).collect(),
            self_seeds,
            dropped_keys,
        };
        Ok(Aggregate { sum, record })
    }
}
