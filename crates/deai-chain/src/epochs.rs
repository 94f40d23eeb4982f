//! Epochs: one simplex engine per validator set.
//!
//! The ledger chooses each epoch's set by stake ([`deai_ledger::ValidatorSet`]) at the
//! second-to-last block of the epoch before. This module turns those sets into consensus:
//!
//! - [`EpochSchemes`] holds the certificate scheme of every epoch this replica has reached (a
//!   signing scheme where it is a member, a verifying one elsewhere). Marshal verifies each
//!   finalization with its epoch's scheme, so a certificate of an epoch whose set this replica
//!   has not applied yet is ignored, not trusted; the executor installs a set as soon as the
//!   block that chose it is applied.
//! - [`run`] (the orchestrator) starts the simplex engine of the epoch the next block belongs to
//!   when this replica is in its set, on per-epoch subchannels of the vote, certificate and
//!   resolver channels, starting from the previous epoch's last block (its floor); once that
//!   epoch's last block is applied here it stops the engine and enters the next epoch, and
//!   deletes the vote journal of the epoch before the one it left (an epoch whose blocks are all
//!   finalized here is never voted in again, so its journal guards nothing). Marshal's
//!   `Inline` wrapper re-proposes an epoch's last block until it finalizes, so no block belongs
//!   to two epochs.
//! - A replica outside the set (a new validator syncing before its first epoch, one that left)
//!   runs no engine; it follows by asking the set's members for the next finalized block, and a
//!   member that lags behind an epoch change is pointed at it by the messages of the epoch it
//!   has not entered (the muxers' backup channel), the way Commonware's reshare example does.

use crate::{block::BlockDigest, engine::MarshalMailbox, error::ChainError, replica::Shared};
use commonware_consensus::{
    simplex::scheme::ed25519::Scheme,
    types::{Epoch, Height},
};
use commonware_cryptography::{
    Digestible as _, Signer as _,
    certificate::{Provider, Scoped},
    ed25519,
};
use commonware_macros::select;
use commonware_p2p::{
    Receiver, Sender,
    utils::mux::{Builder as _, Muxer, SubReceiver, SubSender},
};
use commonware_runtime::{Clock, Handle, Metrics, Spawner};
use commonware_utils::{ordered::Set, sync::RwLock, vec::NonEmptyVec};
use deai_ledger::{Member, ValidatorSet};
use std::{collections::BTreeMap, sync::Arc};
use tracing::{debug, error, info};

/// Epochs of schemes kept below the newest: marshal may still verify a late certificate of the
/// epoch just left; older ones are finalized history.
const SCHEMES_KEPT: u64 = 4;

/// Each epoch's certificate scheme (see the module docs).
#[derive(Clone)]
pub(crate) struct EpochSchemes(Arc<Inner>);

struct Inner {
    namespace: Vec<u8>,
    signer: ed25519::PrivateKey,
    by_epoch: RwLock<BTreeMap<u64, (Arc<Scheme>, bool)>>,
}

/// The consensus keys of `set`, as the scheme orders them.
pub(crate) fn participants(set: &ValidatorSet) -> Result<Set<ed25519::PublicKey>, ChainError> {
    let keys = set
        .members
        .iter()
        .map(public_key)
        .collect::<Result<Vec<_>, _>>()?;
    let n = keys.len();
    if n == 0 {
        return Err(ChainError::Participants(format!(
            "the set of epoch {} is empty",
            set.epoch
        )));
    }
    Set::try_from(keys).map_err(|_| {
        ChainError::Participants(format!("epoch {}: {n} keys with a duplicate", set.epoch))
    })
}

/// A member's consensus key as a Commonware public key.
pub(crate) fn public_key(m: &Member) -> Result<ed25519::PublicKey, ChainError> {
    use commonware_codec::DecodeExt as _;
    ed25519::PublicKey::decode(m.key.0.to_vec())
        .map_err(|e| ChainError::Participants(format!("{} is not an ed25519 key: {e}", m.key)))
}

impl EpochSchemes {
    pub(crate) fn new(namespace: Vec<u8>, signer: ed25519::PrivateKey) -> Self {
        Self(Arc::new(Inner {
            namespace,
            signer,
            by_epoch: RwLock::new(BTreeMap::new()),
        }))
    }

    /// Installs the scheme of `set`'s epoch (once); returns whether this replica signs in it.
    pub(crate) fn install(&self, set: &ValidatorSet) -> Result<bool, ChainError> {
        if let Some((_, signs)) = self.0.by_epoch.read().get(&set.epoch) {
            return Ok(*signs);
        }
        let participants = participants(set)?;
        let me = self.0.signer.public_key();
        let signs = participants.position(&me).is_some();
        let scheme = if signs {
            Scheme::signer(&self.0.namespace, participants, self.0.signer.clone())
                .ok_or_else(|| ChainError::Participants("signer not in its own set".into()))?
        } else {
            Scheme::verifier(&self.0.namespace, participants)
        };
        let mut by_epoch = self.0.by_epoch.write();
        by_epoch.insert(set.epoch, (Arc::new(scheme), signs));
        let newest = by_epoch.keys().next_back().copied().unwrap_or(0);
        by_epoch.retain(|e, _| e + SCHEMES_KEPT >= newest);
        Ok(signs)
    }

    /// Whether this replica signs in `epoch` (false when its scheme is not installed).
    pub(crate) fn signs(&self, epoch: u64) -> bool {
        self.0
            .by_epoch
            .read()
            .get(&epoch)
            .is_some_and(|(_, signs)| *signs)
    }

    /// The scheme of `epoch`, if installed.
    pub(crate) fn get(&self, epoch: u64) -> Option<Arc<Scheme>> {
        self.0.by_epoch.read().get(&epoch).map(|(s, _)| s.clone())
    }

    /// Installs every set `state` records from `from` on (after a restart or a block).
    pub(crate) fn install_from(
        &self,
        state: &deai_ledger::State,
        from: u64,
    ) -> Result<(), ChainError> {
        let mut epoch = from;
        while let Some(set) = state.validator_set(epoch) {
            self.install(set)?;
            epoch += 1;
        }
        Ok(())
    }
}

impl Provider for EpochSchemes {
    type Scope = Epoch;
    type Scheme = Scheme;

    fn scoped(&self, epoch: Epoch) -> Option<Scoped<Scheme>> {
        // A verifying scheme is handed out as a full one too: marshal reads the participant set
        // from it, and it cannot sign anything.
        self.get(epoch.get()).map(Scoped::scheme)
    }
}

/// Who the p2p layer keeps connections with (the authenticated network tracks peer sets by id;
/// the simulated one in tests knows every peer up front).
pub trait PeerSets: Send + 'static {
    /// This replica entered `epoch`, validated by `validators`; `candidates` may join at the
    /// next boundary (both carry their declared p2p addresses, possibly empty).
    fn track(&mut self, epoch: u64, validators: &[Member], candidates: &[Member]);
}

/// Tracks nothing: every peer is known up front.
impl PeerSets for () {
    fn track(&mut self, _: u64, _: &[Member], _: &[Member]) {}
}

/// The replica's position: the epoch the next block belongs to and that epoch's set.
pub(crate) fn next_epoch(shared: &Shared) -> (u64, u64, Option<ValidatorSet>, Vec<Member>) {
    let f = shared.finalized.read();
    let params = f.state.params();
    let applied = f.height();
    let epoch = params.epoch_of(applied + 1);
    let set = f.state.validator_set(epoch).cloned();
    let candidates = f
        .state
        .validator_candidates(2 * params.validators_max as usize);
    (applied, epoch, set, candidates)
}

/// The members of `set` as fetch targets (everyone but `me`).
pub(crate) fn targets(
    set: &ValidatorSet,
    me: &ed25519::PublicKey,
) -> Option<NonEmptyVec<ed25519::PublicKey>> {
    let others: Vec<_> = set
        .members
        .iter()
        .filter_map(|m| public_key(m).ok())
        .filter(|k| k != me)
        .collect();
    NonEmptyVec::try_from(others).ok()
}

/// The height of the floor an epoch's engine starts from: the previous epoch's last block
/// (genesis for epoch 0).
pub(crate) fn floor_height(params: &deai_ledger::Params, epoch: u64) -> Height {
    Height::new(
        epoch
            .checked_sub(1)
            .and_then(|e| params.epoch_last(e))
            .unwrap_or(0),
    )
}

/// How often the orchestrator looks at the applied height (an epoch change waits at most this).
const POLL: std::time::Duration = std::time::Duration::from_millis(25);
/// Polls between a follower's requests for the blocks after its tip (every 200 ms).
const FOLLOW_EVERY: u64 = 8;
/// Heights a follower asks for at once (marshal fetches them in parallel).
const FOLLOW_AHEAD: u64 = 16;
/// Peers a replica behind an epoch change asks for the blocks it lacks.
const AHEAD_PEERS_MAX: usize = 8;

/// The channels one epoch's engine runs on.
pub(crate) type EpochChannels<S> = (
    (SubSender<S>, SubReceiver<ed25519::PublicKey>),
    (SubSender<S>, SubReceiver<ed25519::PublicKey>),
    (SubSender<S>, SubReceiver<ed25519::PublicKey>),
);

/// Runs the epochs (see the module docs) until the replica stops. `start_engine` starts the
/// simplex engine of an epoch with its scheme, the digest of its floor block and its channels.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<E, S, R, F, G, GF>(
    context: E,
    shared: Arc<Shared>,
    schemes: EpochSchemes,
    marshal: MarshalMailbox,
    genesis: BlockDigest,
    (votes, certificates, resolver): ((S, R), (S, R), (S, R)),
    mut peers: Box<dyn PeerSets>,
    mut start_engine: F,
    mut retire_journal: G,
) where
    E: Spawner + Clock + Metrics,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
    F: FnMut(u64, Arc<Scheme>, BlockDigest, EpochChannels<S>) -> Handle<()>,
    G: FnMut(u64) -> GF,
    GF: std::future::Future<Output = ()>,
{
    let me = schemes.0.signer.public_key();
    let (mux, mut votes, mut votes_backup) =
        Muxer::builder(context.child("votes_mux"), votes.0, votes.1)
            .with_backup()
            .build();
    mux.start();
    let (mux, mut certificates, mut certificates_backup) = Muxer::builder(
        context.child("certificates_mux"),
        certificates.0,
        certificates.1,
    )
    .with_backup()
    .build();
    mux.start();
    let (mux, mut resolver) = Muxer::new(context.child("resolver_mux"), resolver.0, resolver.1);
    mux.start();

    loop {
        let (applied, epoch, set, candidates) = next_epoch(&shared);
        let Some(set) = set else {
            error!(
                epoch,
                applied, "no validator set recorded for the next block's epoch"
            );
            return;
        };
        let signs = match schemes.install(&set) {
            Ok(signs) => signs,
            Err(e) => {
                error!(epoch, error = %e, "cannot use the epoch's validator set");
                return;
            }
        };
        peers.track(epoch, &set.members, &candidates);
        if let Some(blobs) = &shared.blobs {
            let keys = set
                .members
                .iter()
                .chain(&candidates)
                .filter_map(|m| public_key(m).ok())
                .filter(|k| *k != me)
                .collect::<std::collections::BTreeSet<_>>();
            // Full only when the exchange is far behind; it then keeps the previous set's peers
            // until the next epoch (fetches still work from them).
            let _ = blobs.try_send(crate::blob_exchange::Command::Peers(
                keys.into_iter().collect(),
            ));
        }
        let params = shared.finalized.read().state.params().clone();
        let mut engine = None;
        if signs {
            let Some(scheme) = schemes.get(epoch) else {
                return;
            };
            let floor_at = floor_height(&params, epoch);
            let floor = if floor_at.is_zero() {
                Some(genesis)
            } else {
                let known = shared.finalized.read().digest_at(floor_at.get());
                match known {
                    Some(d) => Some(d),
                    None => marshal.get_block(floor_at).await.map(|b| b.digest()),
                }
            };
            let Some(floor) = floor else {
                error!(
                    epoch,
                    floor = floor_at.get(),
                    "the epoch's floor block is not stored"
                );
                return;
            };
            let (Ok(v), Ok(c), Ok(r)) = (
                votes.register(epoch).await,
                certificates.register(epoch).await,
                resolver.register(epoch).await,
            ) else {
                debug!(epoch, "consensus channels closed");
                return;
            };
            engine = Some(start_engine(epoch, scheme, floor, (v, c, r)));
        }
        shared
            .epoch
            .store(epoch, std::sync::atomic::Ordering::Relaxed);
        info!(
            epoch,
            validators = set.members.len(),
            member = signs,
            from_height = applied + 1,
            "entered epoch"
        );

        let last = params.epoch_last(epoch).unwrap_or(u64::MAX);
        let targets = targets(&set, &me);
        // Peers heard in a later epoch: this replica is behind an epoch change and its engine
        // will never hear of the blocks it lacks, so it asks them (as a follower asks the set).
        let mut ahead: Vec<ed25519::PublicKey> = Vec::new();
        // Polled, not awaited on the height watch: the deterministic runtime replays a seed
        // exactly only if every wake-up is deterministic, and tokio's watch spreads waiters over
        // shards picked at random.
        let mut polls = 0u64;
        loop {
            let applied = shared.finalized.read().height();
            if applied >= last {
                break;
            }
            let mut note_ahead = |from: ed25519::PublicKey| {
                if ahead.len() < AHEAD_PEERS_MAX && !ahead.contains(&from) {
                    ahead.push(from);
                }
            };
            select! {
                message = votes_backup.recv() => match message {
                    Some((ch, (from, _))) if ch > epoch => note_ahead(from),
                    Some(_) => {},
                    None => return,
                },
                message = certificates_backup.recv() => match message {
                    Some((ch, (from, _))) if ch > epoch => note_ahead(from),
                    Some(_) => {},
                    None => return,
                },
                _ = context.sleep(POLL) => {
                    polls += 1;
                    if !polls.is_multiple_of(FOLLOW_EVERY) {
                        continue;
                    }
                    let ask = if ahead.is_empty() {
                        targets.clone().filter(|_| !signs)
                    } else {
                        NonEmptyVec::try_from(ahead.clone()).ok()
                    };
                    if let Some(ask) = ask {
                        // The epoch's last block always has its own certificate; a block between
                        // may have finalized only through a descendant, and marshal repairs it
                        // from the next certified one by parent links.
                        let to = (applied + FOLLOW_AHEAD).min(last);
                        for h in (applied + 1..=to).chain((to < last).then_some(last)) {
                            marshal.hint_finalized(Height::new(h), ask.clone());
                        }
                    }
                },
            }
        }
        if let Some(engine) = engine {
            engine.abort();
        }
        // One epoch of lag: the journal of the epoch just left stays until the next boundary.
        if let Some(old) = epoch.checked_sub(1) {
            retire_journal(old).await;
        }
    }
}
