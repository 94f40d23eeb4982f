//! A content-addressed blob store: byte strings named by their BLAKE3 hash, kept in a directory.
//!
//! Global models, masked updates and unmasking records live here; the ledger holds only their
//! hashes, so whoever fetches a blob can check it against the hash it asked for.
//!
//! Layout:
//! ```text
//! <dir>/<first 2 hex>/<64 hex>   a stored blob, named by the BLAKE3 hash of its bytes
//! <dir>/tmp/<random>             an upload in progress (never read as a blob)
//! ```
//!
//! Invariants, and how they are kept:
//! - **A file under a hash name holds exactly the bytes of that hash.** Bytes are written to a file
//!   under `tmp/`, fsynced, and only after their hash matched the expected one linked into place
//!   (a hard link, or a rename where the filesystem has none, both atomic). A crash at any point
//!   leaves either nothing or a complete blob under its name. [`BlobStore::get`] re-hashes what it
//!   reads, so a file damaged on disk is reported ([`BlobError::Corrupt`]), never served.
//! - **Nothing partial is left behind.** A [`BlobUpload`] that is dropped unfinished (a client that
//!   disconnected, a size or hash error) removes its temporary file. Files left by a crash are removed
//!   at [`BlobStore::open`] and by [`BlobStore::sweep_unfinished`], which a node runs periodically
//!   ([`spawn_sweeper`]).
//! - **Bounded.** No blob is larger than the store's `max_size`; a streamed upload stops at the first
//!   byte over it and never buffers more than one chunk; at most `uploads_max` streamed uploads are
//!   in progress at once, so `tmp/` never holds more than `uploads_max × max_size` bytes.
//! - **Idempotent.** Storing a blob that is already present writes nothing.
//!
//! One process should open a directory once and share the store by cloning it: opening sweeps
//! `tmp/`, which would cut short another opener's uploads in progress.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let store = deai_node::blobs::BlobStore::open(dir.path(), 1 << 20).unwrap();
//! let hash = store.put(b"weights").unwrap();
//! assert_eq!(store.get(&hash).unwrap().as_deref(), Some(&b"weights"[..]));
//! ```

use std::{
    fs::{self, File},
    io::{self, BufWriter, Write as _},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use commonware_runtime::telemetry::metrics::Registered;
use deai_ledger::Digest;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use rand::RngCore as _;

/// Name of the directory, inside a store's directory, holding uploads in progress.
pub const TMP_DIR: &str = "tmp";
/// How often a node sweeps unfinished uploads.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// An upload whose file was not written to for this long is abandoned and swept. Longer than any
/// client stalls mid-upload in practice; a swept upload fails at its end, it is never half-stored.
pub const UNFINISHED_MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Most streamed uploads in progress at once by default.
pub const UPLOADS_MAX: usize = 64;
/// Bytes buffered before a streamed upload writes to its file.
const WRITE_BUFFER_BYTES: usize = 256 << 10;

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob is over the store's size limit. When streaming, `size` is the number of bytes
    /// received when the limit was crossed (the blob is at least that large).
    #[error(
        "blob of {size} bytes is over this store's limit of {max} bytes; split it or raise `blob_max_bytes`"
    )]
    TooLarge {
        /// Bytes (at least) in the blob.
        size: u64,
        /// The store's limit.
        max: u64,
    },
    /// The bytes do not hash to the name they were sent under.
    #[error(
        "the bytes hash to {got}, not to {expected} they were sent as; send the right bytes or name them by their hash"
    )]
    HashMismatch {
        /// The hash the bytes were sent under.
        expected: Digest,
        /// The BLAKE3 hash of the bytes.
        got: Digest,
    },
    /// A blob name that is not a hash.
    #[error("{0:?} is not a blob hash: expected 64 hex characters (a BLAKE3 hash)")]
    BadHash(String),
    /// A stored file no longer hashes to its name (disk damage or tampering).
    #[error(
        "stored blob {hash} is corrupt (its bytes hash to {got}); delete the file and fetch the blob again"
    )]
    Corrupt {
        /// The blob's name.
        hash: Digest,
        /// What its bytes hash to now.
        got: Digest,
    },
    /// As many streamed uploads are in progress as the store allows.
    #[error("{max} blob uploads are already in progress; retry shortly")]
    Busy {
        /// The limit.
        max: usize,
    },
    /// The filesystem failed.
    #[error("blob store I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl BlobError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The BLAKE3 hash of `bytes`: a blob's name.
pub fn hash_bytes(bytes: &[u8]) -> Digest {
    Digest(*blake3::hash(bytes).as_bytes())
}

/// Parses a blob name: exactly 64 hex characters (no `0x`, which a URL path never needs).
pub fn parse_hash(s: &str) -> Result<Digest, BlobError> {
    let mut raw = [0u8; 32];
    if s.len() != 64 || hex::decode_to_slice(s, &mut raw).is_err() {
        return Err(BlobError::BadHash(s.chars().take(80).collect()));
    }
    Ok(Digest(raw))
}

/// A content-addressed blob store on disk. Cheap to clone; clones share the directory and counters.
#[derive(Debug, Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    tmp: PathBuf,
    max_size: u64,
    uploads_max: usize,
    uploads: AtomicUsize,
    stats: Counters,
    /// Bytes of the blobs stored (measured at open, then counted).
    bytes: Gauge,
    /// Who may upload over HTTP, and how much; none: uploads are closed.
    policy: std::sync::OnceLock<crate::blob_access::UploadPolicy>,
}

/// The `reason` label of refused uploads: the refusal's stable code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// Prometheus counters, so the node can register these very values (a clone shares the count).
#[derive(Debug, Default)]
struct Counters {
    stored: Counter,
    stored_bytes: Counter,
    present: Counter,
    rejected: Counter,
    refused: Family<Reason, Counter>,
}

/// The store's counters registered in a runtime's metrics registry (see
/// [`BlobStore::register_metrics`]); dropping it unregisters them.
pub struct BlobMetrics {
    _registered: [Registered<Counter>; 4],
    _refused: Registered<Family<Reason, Counter>>,
    _bytes: Registered<Gauge>,
}

impl std::fmt::Debug for BlobMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobMetrics").finish_non_exhaustive()
    }
}

/// Counters since the store was opened (exported as Prometheus metrics by the API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobStats {
    /// Blobs newly stored.
    pub stored_total: u64,
    /// Bytes of the blobs newly stored.
    pub stored_bytes_total: u64,
    /// Puts of a blob that was already present (nothing written).
    pub already_present_total: u64,
    /// Puts refused (too large, wrong hash, I/O failure).
    pub rejected_total: u64,
}

/// What a successful put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutcome {
    /// The blob's hash.
    pub hash: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// `true` when this put stored it; `false` when it was already present.
    pub created: bool,
}

impl BlobStore {
    /// Opens (creating if needed) the store in `dir`, refusing blobs over `max_size` bytes, and
    /// removes every unfinished upload left there (by a crash).
    pub fn open(dir: &Path, max_size: u64) -> Result<Self, BlobError> {
        Self::open_with_uploads_max(dir, max_size, UPLOADS_MAX)
    }

    /// Like [`BlobStore::open`], allowing `uploads_max` streamed uploads in progress at once.
    pub fn open_with_uploads_max(
        dir: &Path,
        max_size: u64,
        uploads_max: usize,
    ) -> Result<Self, BlobError> {
        let tmp = dir.join(TMP_DIR);
        fs::create_dir_all(&tmp).map_err(BlobError::io(&tmp))?;
        let store = Self {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                tmp,
                max_size,
                uploads_max,
                uploads: AtomicUsize::new(0),
                stats: Counters::default(),
                bytes: Gauge::default(),
                policy: std::sync::OnceLock::new(),
            }),
        };
        store.sweep_unfinished(Duration::ZERO)?;
        let held = store.measure_bytes()?;
        store
            .inner
            .bytes
            .set(i64::try_from(held).unwrap_or(i64::MAX));
        Ok(store)
    }

    /// Bytes of the blobs on disk: the shard directories' files (`tmp/` left out).
    fn measure_bytes(&self) -> Result<u64, BlobError> {
        let dir = &self.inner.dir;
        let mut total = 0u64;
        for shard in fs::read_dir(dir).map_err(BlobError::io(dir))? {
            let shard = shard.map_err(BlobError::io(dir))?.path();
            if !shard.is_dir() || shard == self.inner.tmp {
                continue;
            }
            for blob in fs::read_dir(&shard).map_err(BlobError::io(&shard))? {
                let meta = blob.and_then(|b| b.metadata());
                total =
                    total.saturating_add(meta.map_or(0, |m| if m.is_file() { m.len() } else { 0 }));
            }
        }
        Ok(total)
    }

    /// The largest blob accepted, in bytes.
    pub fn max_size(&self) -> u64 {
        self.inner.max_size
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Stores `bytes`; returns their hash. Storing a blob already present writes nothing.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, BlobError> {
        self.check_size(bytes.len() as u64)?;
        let hash = hash_bytes(bytes);
        self.put_checked(hash, bytes).map(|o| o.hash)
    }

    /// Stores `bytes` if they hash to `expected`; refuses them (storing nothing) otherwise.
    pub fn put_expected(&self, expected: &Digest, bytes: &[u8]) -> Result<(), BlobError> {
        self.check_size(bytes.len() as u64)?;
        let got = hash_bytes(bytes);
        if got != *expected {
            self.count_rejected();
            return Err(BlobError::HashMismatch {
                expected: *expected,
                got,
            });
        }
        self.put_checked(got, bytes).map(|_| ())
    }

    fn put_checked(&self, hash: Digest, bytes: &[u8]) -> Result<PutOutcome, BlobError> {
        // In-process puts hold their bytes already; only streams from peers count against the cap.
        let mut upload = self.start_upload(Some(hash), false)?;
        upload.write(bytes)?;
        upload.finish()
    }

    fn check_size(&self, size: u64) -> Result<(), BlobError> {
        if size > self.inner.max_size {
            self.count_rejected();
            return Err(BlobError::TooLarge {
                size,
                max: self.inner.max_size,
            });
        }
        Ok(())
    }

    /// Starts a streamed upload: hashes as it writes, stops at the first byte over the limit.
    ///
    /// With `expected`, [`BlobUpload::finish`] refuses bytes of another hash; and when that blob is
    /// already present, the upload only hashes (to check the sender) and writes nothing to disk.
    /// At most `uploads_max` are in progress at once ([`BlobError::Busy`] beyond).
    pub fn upload(&self, expected: Option<Digest>) -> Result<BlobUpload, BlobError> {
        self.start_upload(expected, true)
    }

    fn start_upload(
        &self,
        expected: Option<Digest>,
        capped: bool,
    ) -> Result<BlobUpload, BlobError> {
        if capped {
            let max = self.inner.uploads_max;
            self.inner
                .uploads
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                })
                .map_err(|_| BlobError::Busy { max })?;
        }
        // From here the slot is the upload's: its `Drop` gives it back, even on the error below.
        let mut upload = BlobUpload {
            store: self.clone(),
            expected,
            file: None,
            hasher: blake3::Hasher::new(),
            size: 0,
            capped,
        };
        if !expected.is_some_and(|h| self.contains(&h)) {
            upload.file = Some(self.create_tmp()?);
        }
        Ok(upload)
    }

    /// Streamed uploads in progress now.
    pub fn uploads_in_progress(&self) -> usize {
        self.inner.uploads.load(Ordering::Acquire)
    }

    fn create_tmp(&self) -> Result<(BufWriter<File>, PathBuf), BlobError> {
        let mut name = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut name);
        let path = self.inner.tmp.join(hex::encode(name));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(BlobError::io(&path))?;
        Ok((BufWriter::with_capacity(WRITE_BUFFER_BYTES, file), path))
    }

    /// The blob named `hash`, checked against its name; `None` when it is not stored.
    pub fn get(&self, hash: &Digest) -> Result<Option<Vec<u8>>, BlobError> {
        let path = self.path_of(hash);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BlobError::io(&path)(e)),
        };
        let got = hash_bytes(&bytes);
        if got != *hash {
            return Err(BlobError::Corrupt { hash: *hash, got });
        }
        Ok(Some(bytes))
    }

    /// Up to `len` bytes of the stored blob `hash` from `offset` (fewer at its end), not
    /// re-hashed: for peers that check the whole blob on receipt. `None` when it is not stored.
    pub fn read_range(
        &self,
        hash: &Digest,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, BlobError> {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let path = self.path_of(hash);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BlobError::io(&path)(e)),
        };
        file.seek(SeekFrom::Start(offset))
            .map_err(BlobError::io(&path))?;
        let mut bytes = Vec::with_capacity(len);
        file.take(len as u64)
            .read_to_end(&mut bytes)
            .map_err(BlobError::io(&path))?;
        Ok(Some(bytes))
    }

    /// Whether the blob named `hash` is stored.
    pub fn contains(&self, hash: &Digest) -> bool {
        self.path_of(hash).is_file()
    }

    /// The size of the stored blob named `hash` (from the filesystem, not re-hashed).
    pub fn size_of(&self, hash: &Digest) -> Result<Option<u64>, BlobError> {
        let path = self.path_of(hash);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::io(&path)(e)),
        }
    }

    /// Removes unfinished uploads whose file was last written more than `older_than` ago; returns
    /// how many. Uploads still being written are younger than any sensible `older_than`.
    pub fn sweep_unfinished(&self, older_than: Duration) -> Result<usize, BlobError> {
        let tmp = &self.inner.tmp;
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in fs::read_dir(tmp).map_err(BlobError::io(tmp))? {
            let entry = entry.map_err(BlobError::io(tmp))?;
            let path = entry.path();
            // A file that vanished meanwhile finished or was swept by someone else: nothing to do.
            let Ok(meta) = entry.metadata() else { continue };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or(Duration::ZERO);
            if meta.is_file() && age >= older_than {
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(BlobError::io(&path)(e)),
                }
            }
        }
        Ok(removed)
    }

    /// Counters since the store was opened.
    pub fn stats(&self) -> BlobStats {
        let s = &self.inner.stats;
        BlobStats {
            stored_total: s.stored.get(),
            stored_bytes_total: s.stored_bytes.get(),
            already_present_total: s.present.get(),
            rejected_total: s.rejected.get(),
        }
    }

    /// Registers the store's counters on `registry` as `<prefix>_blobs_stored_total`,
    /// `_blob_bytes_stored_total`, `_blob_puts_present_total` and `_blob_puts_rejected_total`.
    pub fn register_metrics(&self, registry: &impl commonware_runtime::Metrics) -> BlobMetrics {
        let s = &self.inner.stats;
        // Counters are registered without `_total`: the OpenMetrics encoder appends it.
        let counters = [
            ("blobs_stored", "Blobs newly stored", &s.stored),
            (
                "blob_bytes_stored",
                "Bytes of the blobs newly stored",
                &s.stored_bytes,
            ),
            (
                "blob_puts_present",
                "Uploads of a blob already stored (nothing written)",
                &s.present,
            ),
            (
                "blob_puts_rejected",
                "Uploads refused: too large, wrong hash, or a storage failure",
                &s.rejected,
            ),
        ];
        BlobMetrics {
            _registered: counters.map(|(name, help, c)| registry.register(name, help, c.clone())),
            _refused: registry.register(
                "blob_uploads_refused",
                "Uploads refused before storing, by reason (who may upload, quotas, disk floor)",
                s.refused.clone(),
            ),
            _bytes: registry.register(
                "blob_store_bytes",
                "Bytes of the blobs the store holds",
                self.inner.bytes.clone(),
            ),
        }
    }

    /// Counts an upload refused by the upload policy, by its code.
    pub fn count_upload_refused(&self, reason: &'static str) {
        self.inner
            .stats
            .refused
            .get_or_create(&Reason { reason })
            .inc();
    }

    /// Bytes of the blobs stored.
    pub fn stored_bytes(&self) -> u64 {
        u64::try_from(self.inner.bytes.get()).unwrap_or(0)
    }

    /// Opens uploads over HTTP to the keys and within the quotas of `policy` (once; a second
    /// policy is ignored and `false` returned). Without one, the store refuses every upload.
    pub fn set_upload_policy(&self, policy: crate::blob_access::UploadPolicy) -> bool {
        self.inner.policy.set(policy).is_ok()
    }

    /// The upload policy, if uploads are open.
    pub fn upload_policy(&self) -> Option<&crate::blob_access::UploadPolicy> {
        self.inner.policy.get()
    }

    fn count_rejected(&self) {
        self.inner.stats.rejected.inc();
    }

    fn shard_of(&self, hash: &Digest) -> PathBuf {
        self.inner.dir.join(hex::encode(&hash.0[..1]))
    }

    /// Where the blob named `hash` lives (whether or not it is stored).
    pub fn path_of(&self, hash: &Digest) -> PathBuf {
        self.shard_of(hash).join(hash.to_string())
    }

    /// Links the complete, synced file `tmp` into place as `hash`; `false` when already present.
    fn install(&self, tmp: &Path, hash: &Digest) -> Result<bool, BlobError> {
        let shard = self.shard_of(hash);
        fs::create_dir_all(&shard).map_err(BlobError::io(&shard))?;
        let target = shard.join(hash.to_string());
        // A hard link never replaces an existing name, so two racing puts of one blob both succeed
        // and exactly one reports having stored it.
        let created = match fs::hard_link(tmp, &target) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(_) if target.is_file() => false,
            Err(_) => {
                fs::rename(tmp, &target).map_err(BlobError::io(&target))?;
                true
            }
        };
        if created {
            // The new name must survive a crash as well as the bytes do.
            File::open(&shard)
                .and_then(|d| d.sync_all())
                .map_err(BlobError::io(&shard))?;
            let size = fs::metadata(&target).map_or(0, |m| m.len());
            self.inner
                .bytes
                .inc_by(i64::try_from(size).unwrap_or(i64::MAX));
        }
        Ok(created)
    }
}

/// A blob being received in chunks ([`BlobStore::upload`]). Dropping it unfinished removes
/// everything it wrote.
#[derive(Debug)]
pub struct BlobUpload {
    store: BlobStore,
    expected: Option<Digest>,
    /// `None` when only hashing (the blob is already stored) or once finished.
    file: Option<(BufWriter<File>, PathBuf)>,
    hasher: blake3::Hasher,
    size: u64,
    /// Whether it holds one of the store's upload slots.
    capped: bool,
}

impl BlobUpload {
    /// Appends `chunk`. Fails, keeping nothing, once the blob would pass the store's limit.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        let size = self.size.saturating_add(chunk.len() as u64);
        let max = self.store.max_size();
        if size > max {
            self.abandon();
            self.store.count_rejected();
            return Err(BlobError::TooLarge { size, max });
        }
        self.hasher.update(chunk);
        self.size = size;
        if let Some((w, path)) = &mut self.file
            && let Err(e) = w.write_all(chunk)
        {
            let err = BlobError::io(path)(e);
            self.abandon();
            self.store.count_rejected();
            return Err(err);
        }
        Ok(())
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Checks the hash and stores the blob. Does blocking file I/O (an fsync): call it off the
    /// async executor (`tokio::task::spawn_blocking`).
    pub fn finish(mut self) -> Result<PutOutcome, BlobError> {
        let result = self.finish_inner();
        if result.is_err() {
            self.store.count_rejected();
        }
        result
    }

    fn finish_inner(&mut self) -> Result<PutOutcome, BlobError> {
        let hash = Digest(*self.hasher.finalize().as_bytes());
        if let Some(expected) = self.expected.filter(|e| *e != hash) {
            return Err(BlobError::HashMismatch {
                expected,
                got: hash,
            });
        }
        let size = self.size;
        let Some((writer, path)) = &mut self.file else {
            self.store.inner.stats.present.inc();
            return Ok(PutOutcome {
                hash,
                size,
                created: false,
            });
        };
        writer.flush().map_err(BlobError::io(path))?;
        writer.get_ref().sync_all().map_err(BlobError::io(path))?;
        let created = self.store.install(path, &hash)?;
        let stats = &self.store.inner.stats;
        if created {
            stats.stored.inc();
            stats.stored_bytes.inc_by(size);
        } else {
            stats.present.inc();
        }
        // The blob is in place under its name; the temporary name goes with `Drop`.
        Ok(PutOutcome {
            hash,
            size,
            created,
        })
    }

    fn abandon(&mut self) {
        if let Some((writer, path)) = self.file.take() {
            drop(writer);
            let _ = fs::remove_file(path);
        }
    }
}

impl Drop for BlobUpload {
    fn drop(&mut self) {
        self.abandon();
        if self.capped {
            self.store.inner.uploads.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Runs [`BlobStore::sweep_unfinished`] every `every` on the current tokio runtime, removing uploads
/// untouched for `older_than`. Abort the handle to stop it.
pub fn spawn_sweeper(
    store: BlobStore,
    every: Duration,
    older_than: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.sweep_unfinished(older_than)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(removed = n, "swept unfinished blob uploads"),
                Ok(Err(e)) => tracing::warn!(error = %e, "sweeping unfinished blob uploads failed"),
                Err(e) => tracing::warn!(error = %e, "blob sweeper task failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    fn store(max: u64) -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(&dir.path().join("blobs"), max).unwrap();
        (dir, s)
    }

    /// Every file under the store's directory, relative to it (directories left out).
    fn files(s: &BlobStore) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(s.dir(), s.dir(), &mut out);
        out.sort();
        out
    }

    #[test]
    fn put_get_round_trip_in_the_documented_layout() {
        let (_d, s) = store(1024);
        let hash = s.put(b"global model").unwrap();
        assert_eq!(hash, hash_bytes(b"global model"));
        assert_eq!(hash.0, *blake3::hash(b"global model").as_bytes());
        assert_eq!(s.get(&hash).unwrap().unwrap(), b"global model");
        assert!(s.contains(&hash));
        assert_eq!(s.size_of(&hash).unwrap(), Some(12));
        let hex = hash.to_string();
        assert_eq!(files(&s), vec![format!("{}/{hex}", &hex[..2])]);
        let other = hash_bytes(b"absent");
        assert_eq!(s.get(&other).unwrap(), None);
        assert!(!s.contains(&other));
        assert_eq!(s.size_of(&other).unwrap(), None);
        let empty = s.put(b"").unwrap();
        assert_eq!(s.get(&empty).unwrap().unwrap(), b"");
    }

    #[test]
    fn put_of_a_present_blob_writes_nothing() {
        let (_d, s) = store(1024);
        let hash = s.put(b"abc").unwrap();
        let path = s.path_of(&hash);
        let old = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(s.put(b"abc").unwrap(), hash);
        s.put_expected(&hash, b"abc").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), old);
        let stats = s.stats();
        assert_eq!((stats.stored_total, stats.already_present_total), (1, 2));
        assert_eq!(stats.stored_bytes_total, 3);
    }

    #[test]
    fn hash_mismatch_leaves_nothing() {
        let (_d, s) = store(1024);
        let expected = hash_bytes(b"what was promised");
        let err = s.put_expected(&expected, b"something else").unwrap_err();
        assert!(
            matches!(err, BlobError::HashMismatch { expected: e, got } if e == expected && got == hash_bytes(b"something else")),
            "{err}"
        );
        let mut up = s.upload(Some(expected)).unwrap();
        up.write(b"something ").unwrap();
        up.write(b"else").unwrap();
        assert!(matches!(up.finish(), Err(BlobError::HashMismatch { .. })));
        assert!(files(&s).is_empty(), "{:?}", files(&s));
        assert!(!s.contains(&expected) && !s.contains(&hash_bytes(b"something else")));
        assert_eq!(s.stats().rejected_total, 2);
    }

    #[test]
    fn too_large_leaves_nothing() {
        let (_d, s) = store(10);
        assert!(matches!(
            s.put(&[7; 11]),
            Err(BlobError::TooLarge { size: 11, max: 10 })
        ));
        assert!(matches!(
            s.put_expected(&hash_bytes(&[7; 11]), &[7; 11]),
            Err(BlobError::TooLarge { .. })
        ));
        let mut up = s.upload(None).unwrap();
        up.write(&[1; 6]).unwrap();
        assert_eq!(files(&s).len(), 1, "the upload is in tmp/");
        let err = up.write(&[1; 5]).unwrap_err();
        assert!(
            matches!(err, BlobError::TooLarge { size: 11, max: 10 }),
            "{err}"
        );
        assert!(files(&s).is_empty(), "{:?}", files(&s));
        drop(up);
        // Exactly at the limit is fine.
        let h = s.put(&[7; 10]).unwrap();
        assert_eq!(s.get(&h).unwrap().unwrap(), [7; 10]);
    }

    #[test]
    fn streamed_upload_matches_one_shot_put() {
        let (_d, s) = store(1 << 20);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut up = s.upload(None).unwrap();
        for chunk in data.chunks(7_001) {
            up.write(chunk).unwrap();
        }
        assert_eq!(up.size(), data.len() as u64);
        let out = up.finish().unwrap();
        assert_eq!(out.hash, hash_bytes(&data));
        assert!(out.created);
        assert_eq!(out.size, data.len() as u64);
        assert_eq!(s.get(&out.hash).unwrap().unwrap(), data);
        // A second streamed upload of it, named, only hashes and reports it present.
        let mut again = s.upload(Some(out.hash)).unwrap();
        again.write(&data).unwrap();
        let out2 = again.finish().unwrap();
        assert!(!out2.created);
        assert_eq!(files(&s).len(), 1);
    }

    #[test]
    fn dropped_upload_removes_its_file() {
        let (_d, s) = store(1024);
        let mut up = s.upload(None).unwrap();
        up.write(b"half of a model").unwrap();
        assert_eq!(files(&s).len(), 1);
        drop(up);
        assert!(files(&s).is_empty());
    }

    #[test]
    fn concurrent_puts_of_one_blob_store_it_once() {
        let (_d, s) = store(1 << 20);
        let data = vec![42u8; 100_000];
        let outcomes: Vec<PutOutcome> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        // Start all uploads before any finishes, so they really race.
                        let mut up = s.upload(None).unwrap();
                        up.write(&data).unwrap();
                        up.finish().unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(outcomes.iter().all(|o| o.hash == hash_bytes(&data)));
        assert_eq!(outcomes.iter().filter(|o| o.created).count(), 1);
        assert_eq!(s.get(&outcomes[0].hash).unwrap().unwrap(), data);
        assert_eq!(files(&s).len(), 1, "{:?}", files(&s));
        assert_eq!(s.stats().stored_total, 1);
    }

    #[test]
    fn sweep_removes_only_stale_uploads_and_open_removes_all() {
        let (d, s) = store(1024);
        let stale = s.inner.tmp.join("stale");
        fs::write(&stale, b"left by a crash").unwrap();
        File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        let mut live = s.upload(None).unwrap();
        live.write(b"in progress").unwrap();
        let blob = s.put(b"kept").unwrap();
        assert_eq!(s.sweep_unfinished(Duration::from_secs(600)).unwrap(), 1);
        assert!(!stale.exists());
        assert_eq!(files(&s).len(), 2, "the live upload and the blob stay");
        // The live upload still completes.
        let out = live.finish().unwrap();
        assert_eq!(s.get(&out.hash).unwrap().unwrap(), b"in progress");
        // Reopening removes every tmp file, whatever its age, and keeps blobs.
        fs::write(s.inner.tmp.join("fresh"), b"x").unwrap();
        let s2 = BlobStore::open(&d.path().join("blobs"), 1024).unwrap();
        assert!(fs::read_dir(&s2.inner.tmp).unwrap().next().is_none());
        assert_eq!(s2.get(&blob).unwrap().unwrap(), b"kept");
    }

    #[test]
    fn a_swept_upload_fails_rather_than_storing_a_partial_blob() {
        let (_d, s) = store(1024);
        let mut up = s.upload(None).unwrap();
        up.write(b"slow client").unwrap();
        assert_eq!(s.sweep_unfinished(Duration::ZERO).unwrap(), 1);
        assert!(matches!(up.finish(), Err(BlobError::Io { .. })));
        assert!(files(&s).is_empty());
    }

    #[test]
    fn damaged_file_is_reported_not_served() {
        let (_d, s) = store(1024);
        let hash = s.put(b"model weights").unwrap();
        fs::write(s.path_of(&hash), b"model weightz").unwrap();
        let err = s.get(&hash).unwrap_err();
        assert!(
            matches!(err, BlobError::Corrupt { hash: h, got } if h == hash && got == hash_bytes(b"model weightz")),
            "{err}"
        );
    }

    #[test]
    fn streamed_uploads_in_progress_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open_with_uploads_max(dir.path(), 1024, 2).unwrap();
        let a = s.upload(None).unwrap();
        let mut b = s.upload(None).unwrap();
        assert!(matches!(s.upload(None), Err(BlobError::Busy { max: 2 })));
        // In-process puts are not streams from peers and are never refused as busy.
        s.put(b"coordinator's own blob").unwrap();
        assert_eq!(s.uploads_in_progress(), 2);
        drop(a);
        b.write(b"x").unwrap();
        b.finish().unwrap();
        assert_eq!(s.uploads_in_progress(), 0);
        let c = s.upload(None).unwrap();
        assert_eq!(s.uploads_in_progress(), 1);
        drop(c);
        assert_eq!(s.uploads_in_progress(), 0);
    }

    proptest::proptest! {
        #[test]
        fn any_chunking_stores_exactly_the_bytes_or_nothing(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            chunk in 1usize..700,
            max in 0u64..3000,
            named in proptest::prelude::any::<bool>(),
        ) {
            let (_d, s) = store(max);
            let mut up = s.upload(named.then(|| hash_bytes(&data))).unwrap();
            let mut refused = None;
            for c in data.chunks(chunk) {
                if let Err(e) = up.write(c) {
                    refused = Some(e);
                    break;
                }
            }
            if data.len() as u64 > max {
                let e = refused.expect("over the limit is refused while streaming");
                let too_large = matches!(e, BlobError::TooLarge { .. });
                proptest::prop_assert!(too_large, "{}", e);
                drop(up);
                proptest::prop_assert!(files(&s).is_empty());
            } else {
                proptest::prop_assert!(refused.is_none());
                let out = up.finish().unwrap();
                proptest::prop_assert_eq!(out.hash, hash_bytes(&data));
                proptest::prop_assert_eq!(s.get(&out.hash).unwrap().unwrap(), data);
                proptest::prop_assert_eq!(files(&s).len(), 1);
            }
        }
    }

    #[test]
    fn blob_names_are_exactly_64_hex() {
        let h = hash_bytes(b"x");
        assert_eq!(parse_hash(&h.to_string()).unwrap(), h);
        assert_eq!(parse_hash(&h.to_string().to_uppercase()).unwrap(), h);
        for bad in [
            String::new(),
            "ab".repeat(31),
            "ab".repeat(33),
            format!("0x{}", &h.to_string()[2..]),
            format!("{}g", &h.to_string()[1..]),
            "../".repeat(22),
        ] {
            assert!(
                matches!(parse_hash(&bad), Err(BlobError::BadHash(_))),
                "{bad}"
            );
        }
    }
}
