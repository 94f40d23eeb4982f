//! Wiring: simplex consensus, marshal (ordered finalized blocks, dissemination and backfill),
//! the block application, and the executor, over whatever p2p network the caller provides.
//!
//! Channels (one per purpose, same numbers on every validator):
//! 0 votes, 1 certificates, 2 consensus resolver, 3 block broadcast, 4 marshal backfill,
//! 5 transaction gossip, 6 blobs by hash.
//!
//! Consensus signs with the validators' ed25519 keys (the `simplex` ed25519 scheme, attributable
//! certificates of up to n signatures) and rotates leaders round-robin over the participant set,
//! sorted by key so every validator agrees on the order. Each epoch of `epoch_blocks` heights has
//! the set the ledger chose for it by stake and its own engine ([`crate::epochs`]); votes,
//! certificates and consensus fetches travel on per-epoch subchannels.

use crate::epochs::{self, EpochSchemes, PeerSets};
use crate::{
    application::{App, Finalizer, now_ms},
    blob_exchange,
    block::{Block, BlockCfg, BlockDigest},
    config::Config,
    error::ChainError,
    executor,
    gossip::{self, GossipCfg},
    handle::Handle,
    history::History,
    mempool::{Mempool, MempoolLimits},
    replica::{PoolMeta, Shared},
    stores::{Shape, archive_config},
    telemetry::{Telemetry, set_count},
};
use commonware_broadcast::buffered;
use commonware_consensus::{
    BoundedBlock as _,
    marshal::{self, core::Actor as Marshal, resolver::p2p as marshal_resolver, standard::Inline},
    simplex::{
        self,
        config::{ForwardPolicy, SkipPolicy},
        elector::RoundRobin,
        scheme::ed25519::Scheme,
    },
    types::{Epoch, FixedEpocher, ViewDelta},
};
use commonware_cryptography::{
    Digested, Digestible as _, Signer as _, certificate::Verifier as _, ed25519,
};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Metrics, Spawner, Storage, buffer::paged::CacheRef};
use commonware_storage::archive::immutable;
use commonware_utils::{
    NZDuration, NZU16, NZU64, NZUsize, ordered::Set, sync::Mutex, sync::RwLock,
};
use rand_core_010::CryptoRng;
use std::{num::NonZeroUsize, sync::Arc, time::Duration};

/// The marshal mailbox a [`Handle`] reads finalized blocks and their certificates through.
pub(crate) type MarshalMailbox = marshal::core::Mailbox<Scheme, marshal::standard::Standard<Block>>;
/// A finalization certificate of this chain.
pub(crate) type FinalizationOf = simplex::types::Finalization<Scheme, BlockDigest>;

/// The p2p channels the chain runs on (each a sender/receiver pair of one registered channel).
pub struct Channels<S, R> {
    /// Consensus votes.
    pub votes: (S, R),
    /// Consensus certificates.
    pub certificates: (S, R),
    /// Consensus certificate fetching.
    pub resolver: (S, R),
    /// Block broadcast.
    pub broadcast: (S, R),
    /// Finalized block backfill.
    pub backfill: (S, R),
    /// Transaction gossip ([`crate::gossip`]).
    pub txs: (S, R),
    /// Blobs by hash ([`crate::blob_exchange`]).
    pub blobs: (S, R),
}

/// Channel numbers, fixed across validators.
pub mod channel {
    /// Consensus votes.
    pub const VOTES: u64 = 0;
    /// Consensus certificates.
    pub const CERTIFICATES: u64 = 1;
    /// Consensus certificate fetching.
    pub const RESOLVER: u64 = 2;
    /// Block broadcast.
    pub const BROADCAST: u64 = 3;
    /// Finalized block backfill.
    pub const BACKFILL: u64 = 4;
    /// Transaction gossip.
    pub const TXS: u64 = 5;
    /// Blobs by hash.
    pub const BLOBS: u64 = 6;
}

const MAILBOX: NonZeroUsize = NZUsize!(4096);
/// Finalized blocks marshal hands the executor before it waits for their acknowledgements; also
/// the capacity of the channel between them (see [`Finalizer`]).
pub(crate) const MAX_PENDING_ACKS: NonZeroUsize = NZUsize!(4);
/// Reads of old history waiting for the executor; senders wait beyond it.
const READS_QUEUE: usize = 256;
const WRITE_BUFFER: NonZeroUsize = NZUsize!(1 << 20);
const REPLAY_BUFFER: NonZeroUsize = NZUsize!(4 << 20);

/// The largest message the chain sends: a whole block at its bound, plus certificate overhead
/// for the largest set the ledger may choose (`validators_max`), not only the genesis one.
pub fn max_message_size(cfg: &Config) -> u32 {
    let block_cfg = BlockCfg::from_params(&cfg.genesis.params);
    let largest = (cfg.genesis.params.validators_max as usize).max(cfg.participants.len());
    let participants = u32::try_from(largest).unwrap_or(u32::MAX);
    let marshal = marshal::max_payload_size::<marshal::standard::Standard<Block>, Scheme>(
        participants,
        &block_cfg,
    );
    let consensus = simplex::max_payload_size::<Scheme, BlockDigest>(participants);
    u32::try_from(marshal.max(consensus) + 1024).unwrap_or(u32::MAX)
}

fn check_participants(cfg: &Config) -> Result<Set<ed25519::PublicKey>, ChainError> {
    let n = cfg.participants.len();
    let set = Set::try_from(cfg.participants.clone())
        .map_err(|_| ChainError::Participants(format!("{n} keys with a duplicate")))?;
    if set.is_empty() {
        return Err(ChainError::Participants("empty".into()));
    }
    Ok(set)
}

/// Starts a validator over caller-provided p2p channels (the simulated network in tests; the
/// authenticated network via [`crate::start`]). Replays the stored blocks after the newest snapshot first, so the returned
/// handle already serves the last durable state.
pub async fn start_with_network<E, S, R, P, B>(
    context: E,
    cfg: Config,
    channels: Channels<S, R>,
    peer_provider: P,
    blocker: B,
    peer_sets: Box<dyn PeerSets>,
) -> Result<Handle, ChainError>
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
    P: Provider<PublicKey = ed25519::PublicKey>,
    B: Blocker<PublicKey = ed25519::PublicKey>,
{
    check_participants(&cfg)?;
    let opened = context.current();
    let state = deai_ledger::State::from_genesis(&cfg.genesis)
        .map_err(|e| ChainError::Genesis(e.to_string()))?;
    let genesis = Block::genesis(state.root());
    let genesis_digest = genesis.digest();
    let block_cfg = BlockCfg::from_params(&cfg.genesis.params);
    let telemetry = Telemetry::register(&context);
    let (history, finalized) = History::open(
        context.child("history"),
        &cfg.partition_prefix,
        block_cfg.clone(),
        state,
        genesis_digest,
        cfg.snapshots,
        &telemetry,
    )
    .await?;
    let height = finalized.height();
    let (reads_tx, reads_rx) = futures::channel::mpsc::channel(READS_QUEUE);
    let (gossip_tx, gossip_rx) = tokio::sync::mpsc::channel(gossip::OUTBOX);
    let (blobs_tx, blobs_rx) = tokio::sync::mpsc::channel(blob_exchange::COMMANDS);
    set_count(&telemetry.height, height);
    let clock = context.child("clock");
    let schemes = EpochSchemes::new(cfg.namespace(), cfg.signer.clone());
    {
        let params = finalized.state.params();
        let current = params.epoch_of(height + 1);
        schemes.install_from(&finalized.state, current.saturating_sub(1))?;
    }
    let shared = Arc::new(Shared {
        finalized: RwLock::new(finalized),
        mempool: Mutex::new(Mempool::new(MempoolLimits {
            txs_max: cfg.mempool_txs_max,
            bytes_max: cfg.mempool_bytes_max,
            nonce_window: cfg.mempool_nonce_window,
            sender_txs_max: cfg.mempool_sender_txs_max,
            expiry_blocks: cfg.mempool_expiry_blocks,
        })),
        pool_meta: Mutex::new(PoolMeta::new(cfg.genesis.params.block_txs_max as usize)),
        speculated: Mutex::default(),
        height_tx: tokio::sync::watch::Sender::new(height),
        tx_arrived: tokio::sync::Notify::new(),
        block_requested: std::sync::atomic::AtomicBool::new(false),
        peers: std::sync::atomic::AtomicUsize::new(0),
        epoch: std::sync::atomic::AtomicU64::new(0),
        schemes: schemes.clone(),
        now_ms: Box::new(move || now_ms(&clock)),
        telemetry,
        reads: reads_tx,
        gossip: gossip_tx,
        blobs: cfg.blob_store.is_some().then_some(blobs_tx),
    });
    let gossip_cfg = GossipCfg {
        limits: block_cfg.limits,
        tx_bytes_max: block_cfg.tx_bytes_max,
        message_bytes_max: Block::max_encode_size(&block_cfg),
    };
    let (txs_sender, txs_receiver) = channels.txs;
    context.child("gossip_out").spawn({
        let (shared, cfg) = (shared.clone(), gossip_cfg.clone());
        move |ctx| gossip::send_loop(ctx, shared, gossip_rx, txs_sender, cfg)
    });
    context.child("gossip_in").spawn({
        let shared = shared.clone();
        move |ctx| gossip::receive_loop(ctx, shared, txs_receiver, gossip_cfg)
    });

    let me = cfg.signer.public_key();
    let (blobs_sender, blobs_receiver) = channels.blobs;
    if let Some(store) = cfg.blob_store.clone() {
        let peers = cfg
            .participants
            .iter()
            .filter(|p| **p != me)
            .cloned()
            .collect();
        let exchange = blob_exchange::Exchange::new(store.0, peers);
        let metrics = blob_exchange::ExchangeMetrics::register(&context);
        context.child("blobs").spawn(move |ctx| {
            blob_exchange::run(
                ctx,
                metrics,
                exchange,
                blobs_rx,
                blobs_sender,
                blobs_receiver,
            )
        });
    }
    let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(1024));
    let prefix = cfg.partition_prefix.clone();

    // Block dissemination.
    let (broadcast_engine, buffer) = buffered::Engine::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size: MAILBOX,
            deque_size: 16,
            priority: false,
            codec_config: block_cfg.clone(),
            peer_provider: peer_provider.clone(),
            strategy: Sequential,
        },
    );
    broadcast_engine.start(channels.broadcast);

    // Backfill of finalized blocks and certificates.
    let resolver = marshal_resolver::init(
        context.child("backfill"),
        marshal_resolver::Config {
            public_key: me.clone(),
            peer_provider,
            blocker: blocker.clone(),
            mailbox_size: MAILBOX,
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );

    let finalizations_by_height = immutable::Archive::init(
        context.child("finalizations"),
        archive_config(
            &prefix,
            "finalizations",
            &page_cache,
            Scheme::certificate_codec_config_unbounded(),
            Shape::PER_BLOCK,
        ),
    )
    .await
    .map_err(|e| ChainError::Replay {
        height,
        reason: format!("finalizations archive: {e}"),
    })?;
    let finalized_blocks = immutable::Archive::init(
        context.child("blocks"),
        archive_config(
            &prefix,
            "blocks",
            &page_cache,
            block_cfg.clone(),
            Shape::PER_BLOCK,
        ),
    )
    .await
    .map_err(|e| ChainError::Replay {
        height,
        reason: format!("blocks archive: {e}"),
    })?;

    let epoch_blocks = std::num::NonZeroU64::new(cfg.genesis.params.epoch_blocks)
        .ok_or_else(|| ChainError::Genesis("epoch_blocks is zero".into()))?;
    let epocher = FixedEpocher::new(epoch_blocks);
    let (marshal_actor, marshal_mailbox, _floor) = Marshal::init(
        context.child("marshal"),
        finalizations_by_height,
        finalized_blocks,
        marshal::Config {
            provider: schemes.clone(),
            epocher: epocher.clone(),
            start: marshal::Start::Genesis(Digested::precomputed(genesis, genesis_digest)),
            partition_prefix: format!("{prefix}-marshal"),
            mailbox_size: MAILBOX,
            view_retention: ViewDelta::new(64),
            prunable_items_per_section: NZU64!(256),
            page_cache: page_cache.clone(),
            replay_buffer: REPLAY_BUFFER,
            key_write_buffer: WRITE_BUFFER,
            value_write_buffer: WRITE_BUFFER,
            block_codec_config: block_cfg.clone(),
            max_repair: NZUsize!(16),
            max_pending_acks: MAX_PENDING_ACKS,
            strategy: Sequential,
        },
    )
    .await;
    tracing::info!(
        ms = context
            .current()
            .duration_since(opened)
            .map_or(0, |d| d.as_millis()),
        "opened consensus and marshal storage"
    );

    let app = App {
        shared: shared.clone(),
        txs_max: block_cfg.txs_max,
        block_bytes_max: block_cfg.bytes_max,
        idle_wait: cfg.block_idle_wait,
    };
    let marshal_reads = marshal_mailbox.clone();
    let inline = Inline::new(context.child("application"), app, marshal_mailbox, epocher);

    // futures' channel holds `buffer` messages plus one per sender; marshal keeps the one
    // finalizer it is given (`Reporter` is `Clone`, but marshal never clones it), so the capacity
    // is exactly MAX_PENDING_ACKS.
    let (updates_tx, updates_rx) = futures::channel::mpsc::channel(MAX_PENDING_ACKS.get() - 1);
    let executor_shared = shared.clone();
    #[cfg(feature = "test-utils")]
    let delay = cfg.executor_delay;
    #[cfg(not(feature = "test-utils"))]
    let delay = Duration::ZERO;
    // Its own thread: recording a block takes a storage round trip per index entry, and on the
    // shared workers each waited behind consensus, p2p and API tasks (1-2 ms per entry under load
    // against 40 us alone), which held the next block's application back.
    context.child("executor").dedicated().spawn(move |ctx| {
        executor::run(ctx, executor_shared, history, updates_rx, reads_rx, delay)
    });
    let finalizer = Finalizer {
        sender: updates_tx,
        queued: shared.telemetry.executor_queue_blocks.metric().clone(),
    };
    marshal_actor.start(finalizer, buffer, resolver);

    let settings = EngineSettings {
        blocker,
        inline,
        prefix,
        page_cache,
        leader_timeout: cfg.leader_timeout,
        certification_timeout: cfg.certification_timeout,
        timeout_retry: cfg.timeout_retry,
    };
    let engines = context.child("consensus");
    let retiring = context.child("retired_journals");
    let journal_prefix = settings.prefix.clone();
    context.child("epochs").spawn({
        let (shared, marshal) = (shared.clone(), marshal_reads.clone());
        move |ctx| {
            epochs::run(
                ctx,
                shared,
                schemes,
                marshal,
                genesis_digest,
                (channels.votes, channels.certificates, channels.resolver),
                peer_sets,
                move |epoch, scheme, floor, (votes, certificates, resolver)| {
                    settings.start(
                        engines.child("epoch").with_attribute("epoch", epoch),
                        epoch,
                        scheme,
                        floor,
                        (votes, certificates, resolver),
                    )
                },
                move |epoch| {
                    let partition = consensus_partition(&journal_prefix, epoch);
                    let context = retiring.child("epoch");
                    async move {
                        // Absent already (a replica that never signed in that epoch, or a
                        // restart after deleting it): nothing to do.
                        match context.remove(&partition, None).await {
                            Ok(()) => tracing::debug!(epoch, partition, "old epoch's vote journal deleted"),
                            Err(e) => tracing::debug!(epoch, partition, error = %e, "no vote journal to delete"),
                        }
                    }
                },
            )
        }
    });
    Ok(Handle {
        shared,
        marshal: marshal_reads,
    })
}

/// The partition of `epoch`'s vote journal (what stops a restarted validator from voting twice).
/// Epoch 0 keeps the name of chains from before epochs, so their journal is still found.
pub(crate) fn consensus_partition(prefix: &str, epoch: u64) -> String {
    match epoch {
        0 => format!("{prefix}-consensus"),
        e => format!("{prefix}-consensus-{e}"),
    }
}

/// What every epoch's simplex engine shares.
struct EngineSettings<E, B>
where
    E: Spawner + Clock + Metrics + CryptoRng,
{
    blocker: B,
    inline: Inline<E, Scheme, App, Block, FixedEpocher>,
    prefix: String,
    page_cache: CacheRef,
    leader_timeout: Duration,
    certification_timeout: Duration,
    timeout_retry: Duration,
}

impl<E, B> EngineSettings<E, B>
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng,
    B: Blocker<PublicKey = ed25519::PublicKey>,
{
    /// Starts the engine of `epoch`, from the block `floor` (the previous epoch's last).
    fn start<S, R>(
        &self,
        context: E,
        epoch: u64,
        scheme: Arc<Scheme>,
        floor: BlockDigest,
        (votes, certificates, resolver): ((S, R), (S, R), (S, R)),
    ) -> commonware_runtime::Handle<()>
    where
        S: Sender<PublicKey = ed25519::PublicKey>,
        R: Receiver<PublicKey = ed25519::PublicKey>,
    {
        let partition = consensus_partition(&self.prefix, epoch);
        simplex::Engine::new(
            context,
            simplex::config::Config {
                scheme: scheme.as_ref().clone(),
                elector: RoundRobin::<commonware_cryptography::sha256::Sha256>::default(),
                blocker: self.blocker.clone(),
                automaton: self.inline.clone(),
                relay: self.inline.clone(),
                reporter: self.inline.clone(),
                track_historical_votes: false,
                strategy: Sequential,
                partition,
                mailbox_size: MAILBOX,
                epoch: Epoch::new(epoch),
                floor: simplex::config::Floor::Genesis(floor),
                replay_buffer: REPLAY_BUFFER,
                write_buffer: WRITE_BUFFER,
                page_cache: self.page_cache.clone(),
                leader_timeout: self.leader_timeout,
                certification_timeout: self.certification_timeout,
                timeout_retry: self.timeout_retry,
                view_retention: ViewDelta::new(64),
                skip: SkipPolicy::Disabled,
                fetch_timeout: NZDuration!(Duration::from_secs(2)),
                fetch_retry_delay: Duration::from_millis(100),
                forward: ForwardPolicy::SilentVoters,
            },
        )
        .start(votes, certificates, resolver)
    }
}
