//! Blobs by hash between validators: what one validator holds, every validator can serve.
//!
//! The ledger records only the hashes of models, updates and unmasking records; the bytes live in
//! each node's blob store. So that a blob published to one validator can be read from any (and
//! survives the loss of the one it was sent to), validators exchange blobs on the p2p channel
//! [`crate::channel::BLOBS`]:
//!
//! - a validator that stored a blob from a client announces it to every peer (`Have`); each peer
//!   that lacks it fetches it from the announcer (then from the others), so a published blob is
//!   replicated within moments. A peer acknowledges (`Held`) once it holds the blob; the announcer
//!   repeats its announcement to the peers that have not, with backoff, for
//!   [`ANNOUNCE_FOR`] (a message to a peer whose connection is being set up or replaced is lost);
//! - a validator asked for a blob it lacks ([`crate::Handle::fetch_blob`], e.g. an HTTP `GET` of an
//!   unknown hash) asks its peers one after another;
//! - a fetch asks one peer at a time for fixed-size chunks in order (`Want`), writes them to a
//!   [`BlobSink`] that hashes as it goes, and keeps the blob only if its BLAKE3 is the name asked
//!   for. A peer that answers `Lack`, goes silent for [`CHUNK_TIMEOUT`], sends a chunk of the wrong
//!   size, a size that differs from its announcement, or bytes that hash to something else is
//!   passed over for the next one; a peer passed over for silence alone is asked once more
//!   after the others (it may be busy, or reconnecting).
//!
//! Bounded everywhere: at most [`FETCHES_MAX`] fetches run and [`QUEUE_MAX`] wait; a chunk is at
//! most [`CHUNK_MAX`] bytes; a blob over the store's size limit is never fetched; the store decides
//! (per announcing peer quota, total quota, free-disk floor) whether it takes a blob at all; the
//! channel's rate quota limits what each peer can make this validator do; a hash nobody had is
//! not asked for again for [`MISS_MEMORY`].
//!
//! The state machine ([`Exchange`]) does no I/O of its own beyond the store it is given: it takes
//! messages and the time, and returns what to send, so tests play every peer, honest or not.

use crate::block::read_len;
use bytes::{Buf as _, BufMut as _, Bytes};
use commonware_codec::{EncodeSize as _, ReadExt as _, Write as _, varint::UInt};
use commonware_cryptography::ed25519::PublicKey;
use commonware_runtime::telemetry::metrics::Registered;
use deai_ledger::Digest;
use prometheus_client::metrics::counter::Counter;
use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::Duration,
};

/// Largest chunk of a blob in one message (far below the p2p message size).
pub const CHUNK_MAX: usize = 256 << 10;
/// Fetches running at once.
pub const FETCHES_MAX: usize = 4;
/// Fetches waiting to run; more are refused.
pub const QUEUE_MAX: usize = 1024;
/// A peer that has not answered a chunk request for this long is passed over.
pub const CHUNK_TIMEOUT: Duration = Duration::from_secs(2);
/// A hash no peer had is answered "not found" without asking again for this long.
pub const MISS_MEMORY: Duration = Duration::from_secs(5);
/// Hashes remembered as missing.
const MISSES_MAX: usize = 4096;
/// How long an announcement is repeated to peers that have not acknowledged it.
pub const ANNOUNCE_FOR: Duration = Duration::from_secs(60);
/// First delay before an announcement is repeated (doubling up to [`ANNOUNCE_BACKOFF_MAX`]).
const ANNOUNCE_BACKOFF: Duration = Duration::from_millis(500);
const ANNOUNCE_BACKOFF_MAX: Duration = Duration::from_secs(8);
/// Announcements being repeated at once; the oldest gives way (its peers still fetch on demand).
const ANNOUNCING_MAX: usize = 1024;

/// What the exchange needs of a node's blob store.
pub trait BlobStore: Send + Sync + 'static {
    /// The size of the blob named `hash`, if held.
    fn size(&self, hash: &Digest) -> Option<u64>;
    /// Up to `len` bytes of the blob `hash` from `offset` (fewer at its end), if held. Not
    /// re-hashed: the receiver checks the whole blob.
    fn read(&self, hash: &Digest, offset: u64, len: usize) -> Option<Vec<u8>>;
    /// Starts receiving the blob `hash` of `size` bytes from the validator `from`, or says why
    /// the store will not take it (its size limit, `from`'s quota, the disk's free-space floor).
    fn receive(
        &self,
        hash: &Digest,
        size: u64,
        from: &[u8; 32],
    ) -> Result<Box<dyn BlobSink>, String>;
    /// The largest blob the store takes.
    fn size_max(&self) -> u64;
}

/// A blob being received: hashed as it is written, kept only when [`BlobSink::finish`] finds
/// the hash it was started for. Dropped unfinished, it leaves nothing behind.
pub trait BlobSink: Send {
    /// Appends bytes.
    fn write(&mut self, chunk: &[u8]) -> Result<(), String>;
    /// Checks the bytes hash to the name and stores them (blocking I/O: an fsync).
    fn finish(self: Box<Self>) -> Result<(), String>;
}

/// A node's blob store as the chain's [`crate::Config`] carries it.
#[derive(Clone)]
pub struct SharedBlobStore(pub Arc<dyn BlobStore>);

impl std::fmt::Debug for SharedBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedBlobStore")
    }
}

/// Why a fetch ended without the blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No peer had it (or every one that claimed to failed to deliver it).
    #[error("no validator holds blob {0}")]
    NotFound(Digest),
    /// This node's store would not take it.
    #[error("this node's blob store refused blob {hash}: {reason}")]
    Refused {
        /// The blob.
        hash: Digest,
        /// The store's reason.
        reason: String,
    },
    /// Too many fetches are waiting.
    #[error("{QUEUE_MAX} blob fetches are already waiting; retry shortly")]
    Busy,
    /// This node exchanges no blobs (no store, or the chain stopped).
    #[error("this node does not fetch blobs from other validators")]
    Unavailable,
}

/// One message on the blob channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// "I hold this blob, of this size."
    Have {
        /// Its hash.
        hash: Digest,
        /// Its size in bytes.
        size: u64,
    },
    /// "Send me `len` bytes of this blob from `offset`."
    Want {
        /// Its hash.
        hash: Digest,
        /// First byte wanted.
        offset: u64,
        /// Bytes wanted (at most [`CHUNK_MAX`]).
        len: u32,
    },
    /// Bytes of a blob.
    Chunk {
        /// Its hash.
        hash: Digest,
        /// Where these bytes start.
        offset: u64,
        /// The blob's whole size.
        total: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// "I do not hold this blob."
    Lack {
        /// Its hash.
        hash: Digest,
    },
    /// "I hold this blob now" (the answer to `Have`).
    Held {
        /// Its hash.
        hash: Digest,
    },
}

const HAVE: u8 = 0;
const WANT: u8 = 1;
const CHUNK: u8 = 2;
const LACK: u8 = 3;
const HELD: u8 = 4;

impl Message {
    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Have { hash, size } => {
                out.put_u8(HAVE);
                out.put_slice(&hash.0);
                UInt(*size).write(&mut out);
            }
            Self::Want { hash, offset, len } => {
                out.put_u8(WANT);
                out.put_slice(&hash.0);
                UInt(*offset).write(&mut out);
                UInt(u64::from(*len)).write(&mut out);
            }
            Self::Chunk {
                hash,
                offset,
                total,
                bytes,
            } => {
                out.reserve(48 + bytes.len());
                out.put_u8(CHUNK);
                out.put_slice(&hash.0);
                UInt(*offset).write(&mut out);
                UInt(*total).write(&mut out);
                UInt(bytes.len() as u64).write(&mut out);
                out.put_slice(bytes);
            }
            Self::Lack { hash } => {
                out.put_u8(LACK);
                out.put_slice(&hash.0);
            }
            Self::Held { hash } => {
                out.put_u8(HELD);
                out.put_slice(&hash.0);
            }
        }
        out
    }

    /// Reads a message; anything malformed (unknown kind, a chunk over [`CHUNK_MAX`], trailing
    /// bytes) is refused whole.
    pub fn decode(mut buf: Bytes) -> Result<Self, String> {
        let fault = |what: &str, e: commonware_codec::Error| format!("{what}: {e}");
        if !buf.has_remaining() {
            return Err("empty message".into());
        }
        let kind = buf.get_u8();
        if buf.remaining() < 32 {
            return Err("truncated hash".into());
        }
        let mut hash = [0u8; 32];
        buf.copy_to_slice(&mut hash);
        let hash = Digest(hash);
        let message = match kind {
            HAVE => Self::Have {
                hash,
                size: UInt::<u64>::read(&mut buf).map_err(|e| fault("size", e))?.0,
            },
            WANT => {
                let offset = UInt::<u64>::read(&mut buf)
                    .map_err(|e| fault("offset", e))?
                    .0;
                let len = read_len(&mut buf, CHUNK_MAX).map_err(|e| fault("length", e))?;
                Self::Want {
                    hash,
                    offset,
                    len: len as u32,
                }
            }
            CHUNK => {
                let offset = UInt::<u64>::read(&mut buf)
                    .map_err(|e| fault("offset", e))?
                    .0;
                let total = UInt::<u64>::read(&mut buf)
                    .map_err(|e| fault("total", e))?
                    .0;
                let len = read_len(&mut buf, CHUNK_MAX).map_err(|e| fault("length", e))?;
                if buf.remaining() < len {
                    return Err(format!("{len} bytes announced, {} left", buf.remaining()));
                }
                let bytes = buf.split_to(len).to_vec();
                Self::Chunk {
                    hash,
                    offset,
                    total,
                    bytes,
                }
            }
            LACK => Self::Lack { hash },
            HELD => Self::Held { hash },
            other => return Err(format!("unknown message kind {other}")),
        };
        if buf.has_remaining() {
            return Err(format!("{} bytes after the message", buf.remaining()));
        }
        Ok(message)
    }

    /// Its kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Have { .. } => "have",
            Self::Want { .. } => "want",
            Self::Chunk { .. } => "chunk",
            Self::Lack { .. } => "lack",
            Self::Held { .. } => "held",
        }
    }

    /// The size of its encoding.
    pub fn encode_size(&self) -> usize {
        33 + match self {
            Self::Have { size, .. } => UInt(*size).encode_size(),
            Self::Want { offset, len, .. } => {
                UInt(*offset).encode_size() + UInt(u64::from(*len)).encode_size()
            }
            Self::Chunk {
                offset,
                total,
                bytes,
                ..
            } => {
                UInt(*offset).encode_size()
                    + UInt(*total).encode_size()
                    + UInt(bytes.len() as u64).encode_size()
                    + bytes.len()
            }
            Self::Lack { .. } | Self::Held { .. } => 0,
        }
    }
}

/// What the exchange asks its I/O to do.
#[derive(Debug)]
pub enum Out {
    /// Send `message` to `peer`.
    Send(PublicKey, Message),
    /// A fetch ended: tell whoever waits for `hash`.
    Done(Digest, Result<(), FetchError>),
}

/// Why a fetch of a blob started.
#[derive(Debug, Clone)]
enum Origin {
    /// A peer announced it, with this size.
    Announced { by: PublicKey, size: u64 },
    /// Someone here asked for it.
    Asked,
}

/// A fetch in progress.
struct Fetch {
    /// Peers still to ask, in order.
    candidates: VecDeque<PublicKey>,
    /// The peer being asked, and the size it announced (if it did).
    peer: PublicKey,
    announced: Option<u64>,
    /// Who announced the blob (told once it is held here).
    announcer: Option<PublicKey>,
    /// The blob's size, once the first chunk said it.
    total: Option<u64>,
    sink: Option<Box<dyn BlobSink>>,
    /// Next byte expected.
    next: u64,
    /// When the last request went out (ms).
    asked_ms: u64,
    /// Peers passed over for silence in this pass: a busy or reconnecting peer may hold the
    /// blob, so they are asked once more before the fetch gives up.
    silent: Vec<PublicKey>,
    /// Whether the silent peers were asked again already.
    retried: bool,
}

/// An announcement being repeated to the peers that have not acknowledged it.
struct Announcing {
    size: u64,
    waiting: Vec<PublicKey>,
    started_ms: u64,
    next_ms: u64,
    backoff_ms: u64,
}

/// Counts of what the exchange saw, for the node's metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeCounts {
    /// Blobs received, verified and stored.
    pub fetched: u64,
    /// Bytes of those.
    pub fetched_bytes: u64,
    /// Chunks served to peers.
    pub served_chunks: u64,
    /// Peers passed over: silent, lacking, or sending what was not asked or does not verify.
    pub peer_failures: u64,
    /// Blobs whose assembled bytes did not hash to their name.
    pub corrupt: u64,
    /// Fetches that ended without the blob.
    pub failed: u64,
}

/// The blob exchange of one validator (sans I/O).
pub struct Exchange {
    store: Arc<dyn BlobStore>,
    peers: Vec<PublicKey>,
    announcing: BTreeMap<Digest, Announcing>,
    running: BTreeMap<Digest, Fetch>,
    queue: VecDeque<(Digest, Origin)>,
    misses: BTreeMap<Digest, u64>,
    counts: ExchangeCounts,
}

impl Exchange {
    /// An exchange between this node's `store` and `peers` (every other validator).
    pub fn new(store: Arc<dyn BlobStore>, peers: Vec<PublicKey>) -> Self {
        Self {
            store,
            peers,
            announcing: BTreeMap::new(),
            running: BTreeMap::new(),
            queue: VecDeque::new(),
            misses: BTreeMap::new(),
            counts: ExchangeCounts::default(),
        }
    }

    /// The validator set changed: announcements, fetches and service from now on are between
    /// this node and `peers` (every other validator of the epoch it entered, and the candidates
    /// joining at the next boundary). Work under way keeps the peers it started with.
    pub fn set_peers(&mut self, peers: Vec<PublicKey>) {
        self.peers = peers;
    }

    /// What it has seen so far.
    pub fn counts(&self) -> ExchangeCounts {
        self.counts
    }

    /// Fetches waiting and running.
    pub fn in_progress(&self) -> (usize, usize) {
        (self.running.len(), self.queue.len())
    }

    /// This node stored `hash` from a client: tell every peer, and again (with backoff) those that
    /// do not acknowledge it, for [`ANNOUNCE_FOR`].
    pub fn announce(&mut self, hash: Digest, size: u64, now_ms: u64) -> Vec<Out> {
        if self.announcing.len() >= ANNOUNCING_MAX
            && let Some(oldest) = self
                .announcing
                .iter()
                .min_by_key(|(_, a)| a.started_ms)
                .map(|(h, _)| *h)
        {
            self.announcing.remove(&oldest);
        }
        let backoff_ms = ANNOUNCE_BACKOFF.as_millis() as u64;
        self.announcing.insert(
            hash,
            Announcing {
                size,
                waiting: self.peers.clone(),
                started_ms: now_ms,
                next_ms: now_ms + backoff_ms,
                backoff_ms,
            },
        );
        self.peers
            .iter()
            .map(|p| Out::Send(p.clone(), Message::Have { hash, size }))
            .collect()
    }

    /// Someone here wants `hash`: fetch it from the peers unless it is held (the answer then is
    /// at once), being fetched (the answer comes with that fetch), or recently missing.
    pub fn fetch(&mut self, hash: Digest, now_ms: u64) -> Vec<Out> {
        if self.store.size(&hash).is_some() {
            return vec![Out::Done(hash, Ok(()))];
        }
        if self.running.contains_key(&hash) || self.queue.iter().any(|(h, _)| *h == hash) {
            return Vec::new();
        }
        if self
            .misses
            .get(&hash)
            .is_some_and(|&at| now_ms.saturating_sub(at) < MISS_MEMORY.as_millis() as u64)
        {
            return vec![Out::Done(hash, Err(FetchError::NotFound(hash)))];
        }
        self.enqueue(hash, Origin::Asked, now_ms)
    }

    /// A message from `from`.
    pub fn on_message(&mut self, from: &PublicKey, message: Message, now_ms: u64) -> Vec<Out> {
        match message {
            Message::Have { hash, size } => {
                if !self.peers.contains(from) {
                    return Vec::new();
                }
                if self.store.size(&hash).is_some() {
                    return vec![Out::Send(from.clone(), Message::Held { hash })];
                }
                let known =
                    self.running.contains_key(&hash) || self.queue.iter().any(|(h, _)| *h == hash);
                if known || size > self.store.size_max() {
                    return Vec::new();
                }
                let origin = Origin::Announced {
                    by: from.clone(),
                    size,
                };
                self.enqueue(hash, origin, now_ms)
            }
            Message::Want { hash, offset, len } => self.serve(from, hash, offset, len),
            Message::Chunk {
                hash,
                offset,
                total,
                bytes,
            } => self.on_chunk(from, hash, offset, total, &bytes, now_ms),
            Message::Lack { hash } => match self.running.get(&hash) {
                Some(f) if f.peer == *from => self.next_peer(hash, now_ms),
                _ => Vec::new(),
            },
            Message::Held { hash } => {
                if let Some(a) = self.announcing.get_mut(&hash) {
                    a.waiting.retain(|p| p != from);
                    if a.waiting.is_empty() {
                        self.announcing.remove(&hash);
                    }
                }
                Vec::new()
            }
        }
    }

    /// Passes over peers that have not answered within [`CHUNK_TIMEOUT`], and repeats the
    /// announcements that are due.
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<Out> {
        let mut out = Vec::new();
        let announce_for = ANNOUNCE_FOR.as_millis() as u64;
        self.announcing
            .retain(|_, a| now_ms.saturating_sub(a.started_ms) < announce_for);
        for (hash, a) in &mut self.announcing {
            if now_ms < a.next_ms {
                continue;
            }
            a.backoff_ms = (a.backoff_ms * 2).min(ANNOUNCE_BACKOFF_MAX.as_millis() as u64);
            a.next_ms = now_ms + a.backoff_ms;
            let have = Message::Have {
                hash: *hash,
                size: a.size,
            };
            out.extend(a.waiting.iter().map(|p| Out::Send(p.clone(), have.clone())));
        }
        let late: Vec<Digest> = self
            .running
            .iter()
            .filter(|(_, f)| now_ms.saturating_sub(f.asked_ms) >= CHUNK_TIMEOUT.as_millis() as u64)
            .map(|(h, _)| *h)
            .collect();
        for hash in late {
            if let Some(f) = self.running.get_mut(&hash) {
                f.silent.push(f.peer.clone());
            }
            out.extend(self.next_peer(hash, now_ms));
        }
        out
    }

    fn enqueue(&mut self, hash: Digest, origin: Origin, now_ms: u64) -> Vec<Out> {
        if self.running.len() < FETCHES_MAX {
            return self.begin(hash, origin, now_ms);
        }
        if self.queue.len() >= QUEUE_MAX {
            return match origin {
                Origin::Asked => vec![Out::Done(hash, Err(FetchError::Busy))],
                Origin::Announced { .. } => Vec::new(),
            };
        }
        self.queue.push_back((hash, origin));
        Vec::new()
    }

    fn begin(&mut self, hash: Digest, origin: Origin, now_ms: u64) -> Vec<Out> {
        let (first, announced) = match &origin {
            Origin::Announced { by, size } => (Some(by.clone()), Some(*size)),
            Origin::Asked => (None, None),
        };
        let mut candidates: VecDeque<PublicKey> = first.iter().cloned().collect();
        candidates.extend(
            self.peers
                .iter()
                .filter(|p| Some(*p) != first.as_ref())
                .cloned(),
        );
        let Some(peer) = candidates.pop_front() else {
            self.counts.failed += 1;
            return vec![Out::Done(hash, Err(FetchError::NotFound(hash)))];
        };
        self.running.insert(
            hash,
            Fetch {
                candidates,
                peer: peer.clone(),
                announced,
                announcer: first.clone(),
                total: None,
                sink: None,
                next: 0,
                asked_ms: now_ms,
                silent: Vec::new(),
                retried: false,
            },
        );
        vec![Out::Send(peer, want(hash, 0, None))]
    }

    fn serve(&mut self, to: &PublicKey, hash: Digest, offset: u64, len: u32) -> Vec<Out> {
        if !self.peers.contains(to) {
            return Vec::new();
        }
        let answer = match self.store.size(&hash) {
            Some(total) if offset <= total => {
                let len = (len as usize).min(CHUNK_MAX);
                match self.store.read(&hash, offset, len) {
                    Some(bytes) => {
                        self.counts.served_chunks += 1;
                        Message::Chunk {
                            hash,
                            offset,
                            total,
                            bytes,
                        }
                    }
                    None => Message::Lack { hash },
                }
            }
            _ => Message::Lack { hash },
        };
        vec![Out::Send(to.clone(), answer)]
    }

    fn on_chunk(
        &mut self,
        from: &PublicKey,
        hash: Digest,
        offset: u64,
        total: u64,
        bytes: &[u8],
        now_ms: u64,
    ) -> Vec<Out> {
        let Some(f) = self.running.get_mut(&hash) else {
            return Vec::new(); // not asked for (late, duplicated or unsolicited): ignored
        };
        if f.peer != *from || offset != f.next {
            return Vec::new();
        }
        // A peer must keep to one size, the one it announced, within the store's limit, and
        // send full chunks: anything else is passed over.
        let consistent = f.total.is_none_or(|t| t == total)
            && f.announced.is_none_or(|a| a == total)
            && total <= self.store.size_max()
            && bytes.len() as u64 == (total - offset.min(total)).min(CHUNK_MAX as u64)
            && offset <= total;
        if !consistent {
            return self.next_peer(hash, now_ms);
        }
        if f.sink.is_none() {
            let from_key: [u8; 32] = from.as_ref().try_into().unwrap_or([0; 32]);
            match self.store.receive(&hash, total, &from_key) {
                Ok(sink) => {
                    f.sink = Some(sink);
                    f.total = Some(total);
                }
                Err(reason) => {
                    self.running.remove(&hash);
                    self.counts.failed += 1;
                    let mut out = vec![Out::Done(hash, Err(FetchError::Refused { hash, reason }))];
                    out.extend(self.start_waiting(now_ms));
                    return out;
                }
            }
        }
        let written = f.sink.as_mut().map(|s| s.write(bytes));
        if let Some(Err(reason)) = written {
            self.running.remove(&hash);
            self.counts.failed += 1;
            let mut out = vec![Out::Done(hash, Err(FetchError::Refused { hash, reason }))];
            out.extend(self.start_waiting(now_ms));
            return out;
        }
        f.next += bytes.len() as u64;
        f.asked_ms = now_ms;
        if f.next < total {
            let next = f.next;
            return vec![Out::Send(from.clone(), want(hash, next, Some(total)))];
        }
        let Some(sink) = f.sink.take() else {
            return self.next_peer(hash, now_ms);
        };
        match sink.finish() {
            Ok(()) => {
                let fetch = self.running.remove(&hash);
                self.counts.fetched += 1;
                self.counts.fetched_bytes += total;
                let mut out = vec![Out::Done(hash, Ok(()))];
                if let Some(by) = fetch.and_then(|f| f.announcer) {
                    out.push(Out::Send(by, Message::Held { hash }));
                }
                out.extend(self.start_waiting(now_ms));
                out
            }
            Err(_) => {
                self.counts.corrupt += 1;
                self.next_peer(hash, now_ms)
            }
        }
    }

    /// Gives up on the peer asked for `hash` and asks the next from the start, or ends the fetch.
    fn next_peer(&mut self, hash: Digest, now_ms: u64) -> Vec<Out> {
        let Some(f) = self.running.get_mut(&hash) else {
            return Vec::new();
        };
        self.counts.peer_failures += 1;
        f.sink = None;
        f.total = None;
        f.next = 0;
        // Only the announcer promised a size; another peer is taken at its word, then checked.
        f.announced = None;
        if f.candidates.is_empty() && !f.retried {
            f.retried = true;
            f.candidates.extend(f.silent.drain(..));
        }
        match f.candidates.pop_front() {
            Some(peer) => {
                f.peer = peer.clone();
                f.asked_ms = now_ms;
                vec![Out::Send(peer, want(hash, 0, None))]
            }
            None => {
                let answered_by_all = f.silent.is_empty();
                self.running.remove(&hash);
                self.counts.failed += 1;
                let mut out = vec![Out::Done(hash, Err(FetchError::NotFound(hash)))];
                out.extend(self.start_waiting(now_ms));
                // Only a hash every peer said it lacks is remembered as missing: silence may
                // mean a busy peer.
                if !answered_by_all {
                    return out;
                }
                if self.misses.len() >= MISSES_MAX {
                    let memory = MISS_MEMORY.as_millis() as u64;
                    self.misses
                        .retain(|_, at| now_ms.saturating_sub(*at) < memory);
                    if self.misses.len() >= MISSES_MAX {
                        self.misses.clear();
                    }
                }
                self.misses.insert(hash, now_ms);
                out
            }
        }
    }

    /// Starts waiting fetches while there is room.
    fn start_waiting(&mut self, now_ms: u64) -> Vec<Out> {
        let mut out = Vec::new();
        while self.running.len() < FETCHES_MAX {
            let Some((hash, origin)) = self.queue.pop_front() else {
                break;
            };
            if self.store.size(&hash).is_some() {
                out.push(Out::Done(hash, Ok(())));
                continue;
            }
            out.extend(self.begin(hash, origin, now_ms));
        }
        out
    }
}

/// A request for the chunk at `offset` (of a blob of `total` bytes, when known).
fn want(hash: Digest, offset: u64, total: Option<u64>) -> Message {
    let len = total.map_or(CHUNK_MAX as u64, |t| {
        (t - offset.min(t)).min(CHUNK_MAX as u64)
    });
    Message::Want {
        hash,
        offset,
        len: len as u32,
    }
}

/// Requests waiting for the exchange's task.
pub(crate) const COMMANDS: usize = 1024;
/// How often the exchange looks for peers that went silent.
const TICK: Duration = Duration::from_millis(250);

/// A request from this node to its exchange.
pub(crate) enum Command {
    /// Fetch a blob; the answer goes to the sender.
    Fetch(
        Digest,
        futures::channel::oneshot::Sender<Result<(), FetchError>>,
    ),
    /// A blob stored from a client: announce it.
    Announce(Digest, u64),
    /// The validators (and candidates) of the epoch this node entered, without itself.
    Peers(Vec<PublicKey>),
}

/// The exchange's I/O: this node's requests and the peers' messages in, messages out, until the
/// node stops.
pub(crate) async fn run<E, S, R>(
    context: E,
    mut metrics: ExchangeMetrics,
    mut exchange: Exchange,
    mut commands: tokio::sync::mpsc::Receiver<Command>,
    mut sender: S,
    mut receiver: R,
) where
    E: commonware_runtime::Clock,
    S: commonware_p2p::Sender<PublicKey = PublicKey>,
    R: commonware_p2p::Receiver<PublicKey = PublicKey>,
{
    let mut waiters: BTreeMap<Digest, Vec<futures::channel::oneshot::Sender<_>>> = BTreeMap::new();
    let mut next_tick = context.current() + TICK;
    loop {
        let now = crate::application::now_ms(&context);
        let out = commonware_macros::select! {
            command = commands.recv() => match command {
                None => return,
                Some(Command::Fetch(hash, reply)) => {
                    waiters.entry(hash).or_default().push(reply);
                    exchange.fetch(hash, now)
                }
                Some(Command::Announce(hash, size)) => exchange.announce(hash, size, now),
                Some(Command::Peers(peers)) => {
                    exchange.set_peers(peers);
                    Vec::new()
                }
            },
            message = receiver.recv() => match message {
                Err(e) => {
                    tracing::debug!(error = %e, "blob channel closed");
                    return;
                }
                Ok((peer, bytes)) => match Message::decode(Bytes::copy_from_slice(bytes.as_ref())) {
                    Ok(m) => {
                        tracing::trace!(%peer, kind = m.kind(), "blob message");
                        exchange.on_message(&peer, m, now)
                    }
                    Err(e) => {
                        metrics.malformed.inc();
                        tracing::warn!(%peer, error = %e, "dropped a malformed blob message");
                        Vec::new()
                    }
                },
            },
            _ = context.sleep_until(next_tick) => {
                next_tick = context.current() + TICK;
                exchange.on_tick(now)
            },
        };
        for o in out {
            match o {
                Out::Send(peer, message) => send_to(&mut sender, &peer, &message),
                Out::Done(hash, result) => {
                    match &result {
                        Ok(()) => tracing::debug!(%hash, "blob held"),
                        Err(e) => {
                            tracing::debug!(%hash, error = %e, "blob fetch ended without the blob")
                        }
                    }
                    for w in waiters.remove(&hash).unwrap_or_default() {
                        let _ = w.send(result.clone());
                    }
                }
            }
        }
        metrics.update(exchange.counts());
    }
}

/// Sends `message` to `peer` (lost if the peer is not connected: every message has a retry or a
/// timeout above it).
fn send_to<S: commonware_p2p::Sender<PublicKey = PublicKey>>(
    sender: &mut S,
    peer: &PublicKey,
    message: &Message,
) {
    let reached = sender.send(
        commonware_p2p::Recipients::One(peer.clone()),
        message.encode(),
        false,
    );
    tracing::trace!(%peer, kind = message.kind(), sent = !reached.is_empty(), "blob message out");
}

/// The exchange's counters, as `deai_blob_*` metrics.
pub(crate) struct ExchangeMetrics {
    fetched: Registered<Counter>,
    fetched_bytes: Registered<Counter>,
    served_chunks: Registered<Counter>,
    peer_failures: Registered<Counter>,
    corrupt: Registered<Counter>,
    failed: Registered<Counter>,
    malformed: Registered<Counter>,
    last: ExchangeCounts,
}

impl ExchangeMetrics {
    /// Registers them on `context` (the chain's, beside its other `deai_` metrics).
    pub(crate) fn register(context: &impl commonware_runtime::Metrics) -> Self {
        let ctx = context.child("deai");
        Self {
            fetched: ctx.register(
                "blob_fetched",
                "Blobs fetched from other validators and verified",
                Counter::default(),
            ),
            fetched_bytes: ctx.register(
                "blob_fetched_bytes",
                "Bytes of blobs fetched from other validators",
                Counter::default(),
            ),
            served_chunks: ctx.register(
                "blob_served_chunks",
                "Blob chunks served to other validators",
                Counter::default(),
            ),
            peer_failures: ctx.register(
                "blob_peer_failures",
                "Validators passed over in a blob fetch (silent, lacking, or sending bad bytes)",
                Counter::default(),
            ),
            corrupt: ctx.register(
                "blob_corrupt",
                "Blobs whose received bytes did not hash to their name",
                Counter::default(),
            ),
            failed: ctx.register(
                "blob_fetch_failed",
                "Blob fetches that ended without the blob",
                Counter::default(),
            ),
            malformed: ctx.register(
                "blob_malformed",
                "Malformed messages on the blob channel",
                Counter::default(),
            ),
            last: ExchangeCounts::default(),
        }
    }

    fn update(&mut self, now: ExchangeCounts) {
        let last = std::mem::replace(&mut self.last, now);
        self.fetched.inc_by(now.fetched - last.fetched);
        self.fetched_bytes
            .inc_by(now.fetched_bytes - last.fetched_bytes);
        self.served_chunks
            .inc_by(now.served_chunks - last.served_chunks);
        self.peer_failures
            .inc_by(now.peer_failures - last.peer_failures);
        self.corrupt.inc_by(now.corrupt - last.corrupt);
        self.failed.inc_by(now.failed - last.failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
    use std::sync::Mutex;

    /// A blob store in memory, which may refuse everything.
    #[derive(Clone, Default)]
    struct Mem {
        blobs: Arc<Mutex<BTreeMap<Digest, Vec<u8>>>>,
        refuse: Option<String>,
    }

    struct MemSink {
        hash: Digest,
        bytes: Vec<u8>,
        store: Mem,
    }

    impl Mem {
        fn holding(blobs: &[&[u8]]) -> Self {
            let store = Self::default();
            for b in blobs {
                store.put(b);
            }
            store
        }

        fn put(&self, bytes: &[u8]) -> Digest {
            let hash = Digest(*blake3::hash(bytes).as_bytes());
            self.lock().insert(hash, bytes.to_vec());
            hash
        }

        fn get(&self, hash: &Digest) -> Option<Vec<u8>> {
            self.lock().get(hash).cloned()
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Digest, Vec<u8>>> {
            self.blobs.lock().expect("not poisoned")
        }
    }

    impl BlobStore for Mem {
        fn size(&self, hash: &Digest) -> Option<u64> {
            self.lock().get(hash).map(|b| b.len() as u64)
        }
        fn read(&self, hash: &Digest, offset: u64, len: usize) -> Option<Vec<u8>> {
            let blobs = self.lock();
            let b = blobs.get(hash)?;
            let start = (offset as usize).min(b.len());
            Some(b[start..(start + len).min(b.len())].to_vec())
        }
        fn receive(
            &self,
            hash: &Digest,
            size: u64,
            _from: &[u8; 32],
        ) -> Result<Box<dyn BlobSink>, String> {
            if let Some(reason) = &self.refuse {
                return Err(reason.clone());
            }
            if size > self.size_max() {
                return Err("too large".into());
            }
            Ok(Box::new(MemSink {
                hash: *hash,
                bytes: Vec::new(),
                store: self.clone(),
            }))
        }
        fn size_max(&self) -> u64 {
            4 << 20
        }
    }

    impl BlobSink for MemSink {
        fn write(&mut self, chunk: &[u8]) -> Result<(), String> {
            self.bytes.extend_from_slice(chunk);
            Ok(())
        }
        fn finish(self: Box<Self>) -> Result<(), String> {
            if self.store.put(&self.bytes) == self.hash {
                Ok(())
            } else {
                // What `put` stored under the wrong name is not the blob asked for.
                self.store
                    .lock()
                    .remove(&Digest(*blake3::hash(&self.bytes).as_bytes()));
                Err("hash mismatch".into())
            }
        }
    }

    fn key(i: u64) -> PublicKey {
        PrivateKey::from_seed(i).public_key()
    }

    /// A blob of `len` bytes that differs from any other length's.
    fn blob(len: usize, salt: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ salt)
            .collect()
    }

    /// Honest exchanges that deliver each other's messages until quiet; returns what ended.
    struct Net {
        nodes: BTreeMap<PublicKey, (Exchange, Mem)>,
        now: u64,
    }

    impl Net {
        fn new(stores: Vec<Mem>) -> Self {
            let keys: Vec<PublicKey> = (0..stores.len() as u64).map(key).collect();
            let nodes = keys
                .iter()
                .zip(stores)
                .map(|(k, store)| {
                    let peers = keys.iter().filter(|p| *p != k).cloned().collect();
                    (
                        k.clone(),
                        (Exchange::new(Arc::new(store.clone()), peers), store),
                    )
                })
                .collect();
            Self { nodes, now: 0 }
        }

        fn run(
            &mut self,
            origin: &PublicKey,
            first: Vec<Out>,
        ) -> Vec<(Digest, Result<(), FetchError>)> {
            let mut done = Vec::new();
            let mut queue: VecDeque<(PublicKey, Out)> =
                first.into_iter().map(|o| (origin.clone(), o)).collect();
            while let Some((from, out)) = queue.pop_front() {
                match out {
                    Out::Send(to, m) => {
                        // Every message passes through its encoding.
                        let m = Message::decode(Bytes::from(m.encode())).expect("decodes");
                        let node = &mut self.nodes.get_mut(&to).expect("a node").0;
                        let outs = node.on_message(&from, m, self.now);
                        queue.extend(outs.into_iter().map(|o| (to.clone(), o)));
                    }
                    Out::Done(h, r) => done.push((h, r)),
                }
            }
            done
        }
    }

    #[test]
    fn messages_round_trip_and_malformed_ones_are_refused_whole() {
        let hash = Digest([9; 32]);
        let all = [
            Message::Have {
                hash,
                size: 1 << 40,
            },
            Message::Want {
                hash,
                offset: 77,
                len: CHUNK_MAX as u32,
            },
            Message::Chunk {
                hash,
                offset: 3,
                total: 10,
                bytes: vec![1, 2, 3],
            },
            Message::Lack { hash },
            Message::Held { hash },
        ];
        for m in &all {
            let bytes = m.encode();
            assert_eq!(bytes.len(), m.encode_size());
            assert_eq!(
                &Message::decode(Bytes::from(bytes.clone())).expect("decodes"),
                m
            );
            let mut trailing = bytes.clone();
            trailing.push(0);
            assert!(Message::decode(Bytes::from(trailing)).is_err());
            assert!(Message::decode(Bytes::from(bytes[..bytes.len() - 1].to_vec())).is_err());
        }
        let big = Message::Chunk {
            hash,
            offset: 0,
            total: 1 << 30,
            bytes: vec![0; CHUNK_MAX + 1],
        };
        assert!(Message::decode(Bytes::from(big.encode())).is_err());
        let mut unknown = Message::Lack { hash }.encode();
        unknown[0] = 9;
        assert!(Message::decode(Bytes::from(unknown)).is_err());
        assert!(Message::decode(Bytes::new()).is_err());
    }

    #[test]
    fn an_announced_blob_is_copied_chunk_by_chunk_to_every_peer() {
        let data = blob(2 * CHUNK_MAX + 1234, 1);
        let holder = Mem::default();
        let hash = holder.put(&data);
        let mut net = Net::new(vec![holder, Mem::default(), Mem::default(), Mem::default()]);
        let origin = key(0);
        let announce =
            net.nodes
                .get_mut(&origin)
                .expect("node")
                .0
                .announce(hash, data.len() as u64, 0);
        let done = net.run(&origin, announce);
        assert_eq!(done.len(), 3, "each peer finished one fetch: {done:?}");
        assert!(done.iter().all(|(h, r)| *h == hash && r.is_ok()));
        for (k, (ex, store)) in &net.nodes {
            assert_eq!(store.get(&hash).as_deref(), Some(&data[..]), "{k}");
            if *k != origin {
                assert_eq!(ex.counts().fetched, 1);
                assert_eq!(ex.counts().fetched_bytes, data.len() as u64);
            }
        }
        // The announcer served three chunks to each of three peers.
        assert_eq!(net.nodes[&origin].0.counts().served_chunks, 9);
    }

    #[test]
    fn a_lost_announcement_is_repeated_until_the_peer_holds_the_blob() {
        let data = blob(5000, 7);
        let holder = Mem::default();
        let hash = holder.put(&data);
        let mut net = Net::new(vec![holder, Mem::default(), Mem::default()]);
        let (origin, lucky, unlucky) = (key(0), key(1), key(2));
        let announce =
            net.nodes
                .get_mut(&origin)
                .expect("node")
                .0
                .announce(hash, data.len() as u64, 0);
        // The announcement to one peer is lost (its connection was being replaced).
        let delivered: Vec<Out> = announce
            .into_iter()
            .filter(|o| !matches!(o, Out::Send(to, _) if *to == unlucky))
            .collect();
        assert_eq!(net.run(&origin, delivered), vec![(hash, Ok(()))]);
        assert_eq!(net.nodes[&unlucky].1.get(&hash), None);
        let ex = &mut net.nodes.get_mut(&origin).expect("node").0;
        assert!(ex.on_tick(100).is_empty(), "repeated before its backoff");
        let again = ex.on_tick(ANNOUNCE_BACKOFF.as_millis() as u64);
        assert!(
            matches!(&again[..], [Out::Send(to, Message::Have { .. })] if *to == unlucky),
            "only the peer that did not acknowledge is told again: {again:?}"
        );
        assert_eq!(net.run(&origin, again), vec![(hash, Ok(()))]);
        assert_eq!(net.nodes[&unlucky].1.get(&hash).as_deref(), Some(&data[..]));
        assert_eq!(net.nodes[&lucky].1.get(&hash).as_deref(), Some(&data[..]));
        // Every peer acknowledged: nothing more is sent.
        let ex = &mut net.nodes.get_mut(&origin).expect("node").0;
        assert!(ex.on_tick(30_000).is_empty());

        // A peer that never answers is told again with backoff, and not after ANNOUNCE_FOR.
        let mut lonely = Exchange::new(Arc::new(Mem::holding(&[&data])), vec![key(9)]);
        lonely.announce(hash, data.len() as u64, 0);
        let sent: usize = (1..=200u64).map(|t| lonely.on_tick(t * 500).len()).sum();
        assert!((5..=20).contains(&sent), "{sent} repeats in 100 s");
        assert!(
            lonely
                .on_tick(ANNOUNCE_FOR.as_millis() as u64 + 1)
                .is_empty()
        );
    }

    #[test]
    fn a_blob_asked_for_is_found_on_whichever_peer_holds_it() {
        let data = blob(1000, 2);
        let holder = Mem::default();
        let hash = holder.put(&data);
        // Peers 1 and 2 lack it; peer 3 holds it.
        let mut net = Net::new(vec![Mem::default(), Mem::default(), Mem::default(), holder]);
        let me = key(0);
        let first = net.nodes.get_mut(&me).expect("node").0.fetch(hash, 0);
        let done = net.run(&me, first);
        assert_eq!(done, vec![(hash, Ok(()))]);
        assert_eq!(net.nodes[&me].1.get(&hash).as_deref(), Some(&data[..]));
        // Asked again, it is answered at once from the store.
        let again = net.nodes.get_mut(&me).expect("node").0.fetch(hash, 1);
        assert!(matches!(&again[..], [Out::Done(h, Ok(()))] if *h == hash));
    }

    #[test]
    fn a_hash_nobody_holds_is_not_found_and_not_asked_again_for_a_while() {
        let mut net = Net::new(vec![Mem::default(), Mem::default(), Mem::default()]);
        let me = key(0);
        let hash = Digest([5; 32]);
        let first = net.nodes.get_mut(&me).expect("node").0.fetch(hash, 0);
        assert_eq!(
            net.run(&me, first),
            vec![(hash, Err(FetchError::NotFound(hash)))]
        );
        let ex = &mut net.nodes.get_mut(&me).expect("node").0;
        let soon = ex.fetch(hash, 1_000);
        assert!(
            matches!(&soon[..], [Out::Done(_, Err(FetchError::NotFound(_)))]),
            "asked the peers again at once: {soon:?}"
        );
        let later = ex.fetch(hash, MISS_MEMORY.as_millis() as u64 + 1);
        assert!(matches!(&later[..], [Out::Send(..)]), "{later:?}");
    }

    /// Node 0 fetches from peers 1 (scripted by the test) and 2 (honest, holding the blob).
    fn against_a_liar() -> (Exchange, Mem, PublicKey, PublicKey, Digest, Vec<u8>) {
        let data = blob(CHUNK_MAX + 10, 3);
        let hash = Digest(*blake3::hash(&data).as_bytes());
        let store = Mem::default();
        let ex = Exchange::new(Arc::new(store.clone()), vec![key(1), key(2)]);
        (ex, store, key(1), key(2), hash, data)
    }

    /// Feeds the honest peer's answers to `ex` until it is done with `hash`.
    fn finish_from(
        ex: &mut Exchange,
        honest: &PublicKey,
        data: &[u8],
        mut out: Vec<Out>,
    ) -> Vec<Out> {
        let mut holder = Exchange::new(Arc::new(Mem::holding(&[data])), vec![key(0)]);
        let mut ended = Vec::new();
        while let Some(o) = out.pop() {
            match o {
                Out::Send(to, m) if to == *honest => {
                    for answer in holder.on_message(&key(0), m, 0) {
                        if let Out::Send(_, reply) = answer {
                            out.extend(ex.on_message(honest, reply, 0));
                        }
                    }
                }
                Out::Send(..) => {}
                done @ Out::Done(..) => ended.push(done),
            }
        }
        ended
    }

    #[test]
    fn a_peer_that_sends_wrong_bytes_is_passed_over_and_nothing_wrong_is_kept() {
        let (mut ex, store, liar, honest, hash, data) = against_a_liar();
        let asked = ex.on_message(
            &liar,
            Message::Have {
                hash,
                size: data.len() as u64,
            },
            0,
        );
        assert!(
            matches!(&asked[..], [Out::Send(to, Message::Want { offset: 0, .. })] if *to == liar)
        );
        // The liar sends well-formed chunks of the right sizes, but not the blob's bytes.
        let forged = blob(data.len(), 99);
        let next = ex.on_message(
            &liar,
            Message::Chunk {
                hash,
                offset: 0,
                total: data.len() as u64,
                bytes: forged[..CHUNK_MAX].to_vec(),
            },
            0,
        );
        assert!(
            matches!(&next[..], [Out::Send(to, Message::Want { offset, .. })] if *to == liar && *offset == CHUNK_MAX as u64)
        );
        let out = ex.on_message(
            &liar,
            Message::Chunk {
                hash,
                offset: CHUNK_MAX as u64,
                total: data.len() as u64,
                bytes: forged[CHUNK_MAX..].to_vec(),
            },
            0,
        );
        assert_eq!(ex.counts().corrupt, 1);
        assert_eq!(store.size(&hash), None, "forged bytes kept");
        assert!(
            store.lock().is_empty(),
            "something was kept: {:?}",
            store.lock().keys()
        );
        // The fetch moved on to the honest peer, from the start.
        assert!(
            matches!(&out[..], [Out::Send(to, Message::Want { offset: 0, .. })] if *to == honest)
        );
        let ended = finish_from(&mut ex, &honest, &data, out);
        assert!(
            matches!(&ended[..], [Out::Done(h, Ok(()))] if *h == hash),
            "{ended:?}"
        );
        assert_eq!(store.get(&hash).as_deref(), Some(&data[..]));
    }

    #[test]
    fn a_silent_peer_is_asked_once_more_and_silence_is_not_remembered_as_missing() {
        let data = blob(1000, 4);
        let hash = Digest::hash(&data);
        let (busy, lacking) = (key(1), key(2));
        let mut ex = Exchange::new(
            Arc::new(Mem::default()),
            vec![busy.clone(), lacking.clone()],
        );
        let timeout = CHUNK_TIMEOUT.as_millis() as u64;
        // The busy peer says nothing in time; the other lacks the blob.
        let first = ex.fetch(hash, 0);
        assert!(matches!(&first[..], [Out::Send(to, Message::Want { .. })] if *to == busy));
        let next = ex.on_tick(timeout);
        assert!(matches!(&next[..], [Out::Send(to, Message::Want { .. })] if *to == lacking));
        // After the others, the silent one is asked again, and now it answers.
        let again = ex.on_message(&lacking, Message::Lack { hash }, timeout);
        assert!(
            matches!(&again[..], [Out::Send(to, Message::Want { offset: 0, .. })] if *to == busy),
            "{again:?}"
        );
        let total = data.len() as u64;
        let chunk = Message::Chunk {
            hash,
            offset: 0,
            total,
            bytes: data.clone(),
        };
        let done = ex.on_message(&busy, chunk, timeout + 1);
        assert!(
            matches!(&done[..], [Out::Done(h, Ok(()))] if *h == hash),
            "{done:?}"
        );

        // Silent twice: not found, but asking again at once asks the peers again.
        let other = Digest([6; 32]);
        ex.fetch(other, 0);
        ex.on_tick(timeout);
        ex.on_message(&lacking, Message::Lack { hash: other }, timeout);
        let ended = ex.on_tick(2 * timeout);
        assert!(
            matches!(&ended[..], [Out::Done(h, Err(FetchError::NotFound(_)))] if *h == other),
            "{ended:?}"
        );
        let retry = ex.fetch(other, 2 * timeout + 1);
        assert!(
            matches!(&retry[..], [Out::Send(_, Message::Want { .. })]),
            "{retry:?}"
        );
    }

    #[test]
    fn short_chunks_a_changed_size_and_silence_each_pass_the_peer_over() {
        type Fault = fn(&Digest, u64) -> Option<Message>;
        let faults: [(&str, Fault); 4] = [
            ("a short chunk", |&hash, total| {
                Some(Message::Chunk {
                    hash,
                    offset: 0,
                    total,
                    bytes: vec![0; 10],
                })
            }),
            ("a size other than announced", |&hash, total| {
                Some(Message::Chunk {
                    hash,
                    offset: 0,
                    total: total + 1,
                    bytes: vec![0; CHUNK_MAX],
                })
            }),
            ("a size over the store's limit", |&hash, _| {
                Some(Message::Chunk {
                    hash,
                    offset: 0,
                    total: u64::MAX,
                    bytes: vec![0; CHUNK_MAX],
                })
            }),
            ("silence", |_, _| None),
        ];
        for (what, fault) in faults {
            let (mut ex, store, liar, honest, hash, data) = against_a_liar();
            let total = data.len() as u64;
            ex.on_message(&liar, Message::Have { hash, size: total }, 0);
            let out = match fault(&hash, total) {
                Some(m) => ex.on_message(&liar, m, 0),
                None => {
                    assert!(
                        ex.on_tick(CHUNK_TIMEOUT.as_millis() as u64 - 1).is_empty(),
                        "{what}"
                    );
                    ex.on_tick(CHUNK_TIMEOUT.as_millis() as u64)
                }
            };
            assert!(
                matches!(&out[..], [Out::Send(to, Message::Want { offset: 0, .. })] if *to == honest),
                "{what}: {out:?}"
            );
            assert_eq!(ex.counts().peer_failures, 1, "{what}");
            let ended = finish_from(&mut ex, &honest, &data, out);
            assert!(
                matches!(&ended[..], [Out::Done(_, Ok(()))]),
                "{what}: {ended:?}"
            );
            assert_eq!(store.get(&hash).as_deref(), Some(&data[..]), "{what}");
        }
    }

    #[test]
    fn strangers_and_unsolicited_chunks_get_nothing() {
        let data = blob(100, 4);
        let store = Mem::holding(&[&data]);
        let hash = Digest(*blake3::hash(&data).as_bytes());
        let mut ex = Exchange::new(Arc::new(store.clone()), vec![key(1)]);
        let stranger = key(66);
        let want = Message::Want {
            hash,
            offset: 0,
            len: 100,
        };
        assert!(ex.on_message(&stranger, want.clone(), 0).is_empty());
        assert!(matches!(
            &ex.on_message(&key(1), want, 0)[..],
            [Out::Send(_, Message::Chunk { .. })]
        ));
        let other = Digest([1; 32]);
        assert!(
            ex.on_message(
                &stranger,
                Message::Have {
                    hash: other,
                    size: 5
                },
                0
            )
            .is_empty()
        );
        let unsolicited = Message::Chunk {
            hash: other,
            offset: 0,
            total: 3,
            bytes: vec![1, 2, 3],
        };
        assert!(ex.on_message(&key(1), unsolicited, 0).is_empty());
        assert_eq!(store.lock().len(), 1, "an unsolicited chunk was stored");
        assert_eq!(ex.in_progress(), (0, 0));
    }

    /// A validator that joins at an epoch boundary is a stranger until the set changes; then it
    /// is served and announced to, and one that left is neither.
    #[test]
    fn the_peers_follow_the_validator_set() {
        let data = blob(100, 5);
        let store = Mem::holding(&[&data]);
        let hash = Digest(*blake3::hash(&data).as_bytes());
        let mut ex = Exchange::new(Arc::new(store), vec![key(1), key(2)]);
        let (joiner, leaver) = (key(7), key(2));
        let want = Message::Want {
            hash,
            offset: 0,
            len: 100,
        };
        assert!(ex.on_message(&joiner, want.clone(), 0).is_empty());
        ex.set_peers(vec![key(1), joiner.clone()]);
        assert!(matches!(
            &ex.on_message(&joiner, want.clone(), 0)[..],
            [Out::Send(to, Message::Chunk { .. })] if *to == joiner
        ));
        assert!(ex.on_message(&leaver, want, 0).is_empty());
        let announced: Vec<PublicKey> = ex
            .announce(hash, 100, 0)
            .into_iter()
            .filter_map(|o| match o {
                Out::Send(to, Message::Have { .. }) => Some(to),
                _ => None,
            })
            .collect();
        assert_eq!(announced, vec![key(1), joiner]);
    }

    #[test]
    fn the_store_decides_and_fetches_are_bounded() {
        let store = Mem {
            refuse: Some("over quota".into()),
            ..Mem::default()
        };
        let mut ex = Exchange::new(Arc::new(store), vec![key(1)]);
        let hash = Digest([2; 32]);
        ex.fetch(hash, 0);
        let out = ex.on_message(
            &key(1),
            Message::Chunk {
                hash,
                offset: 0,
                total: 3,
                bytes: vec![1, 2, 3],
            },
            0,
        );
        assert!(
            matches!(&out[..], [Out::Done(_, Err(FetchError::Refused { reason, .. }))] if reason == "over quota"),
            "{out:?}"
        );

        let mut ex = Exchange::new(Arc::new(Mem::default()), vec![key(1)]);
        let mut busy = 0;
        for i in 0..(FETCHES_MAX + QUEUE_MAX + 3) as u64 {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_le_bytes());
            let out = ex.fetch(Digest(h), 0);
            busy += out
                .iter()
                .filter(|o| matches!(o, Out::Done(_, Err(FetchError::Busy))))
                .count();
        }
        assert_eq!(ex.in_progress(), (FETCHES_MAX, QUEUE_MAX));
        assert_eq!(busy, 3);
        // Announcements over a blob larger than the store takes are not fetched at all.
        let mut ex = Exchange::new(Arc::new(Mem::default()), vec![key(1)]);
        let out = ex.on_message(
            &key(1),
            Message::Have {
                hash,
                size: (4 << 20) + 1,
            },
            0,
        );
        assert!(out.is_empty());
    }
}
