//! The owner's durable record of the rounds it has taken part in: one session per
//! `(task, round, dataset)`, ever.
//!
//! A coordinator that could run the same round twice with the same owner could difference the
//! two group sums (one run with the owner declared alive, one with it declared dropped, or one
//! with and one without it) and read the owner's update. So before an owner's first SecAgg
//! message leaves the node, the session is appended to `owner-sessions.log` and the file is
//! synced; an invite for a recorded session is refused, across restarts. A crash after the
//! record and before the answer costs the owner that round (it counts as a dropout), never a
//! second run.
//!
//! Format: one line per session, `task round dataset` in decimal. A torn last line (a crash
//! mid-write) is ignored on load: its session never answered, and the key it would have
//! named is still refused if the same line is appended again in full.

use std::{
    collections::BTreeSet,
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

/// File name of the log inside the node's state directory.
pub const SESSIONS_FILE: &str = "owner-sessions.log";

/// A session key: `(task, round, dataset)`.
pub type SessionKey = (u64, u32, u64);

/// The owner's session log (cheap to clone; clones share the file and the set).
#[derive(Clone)]
pub struct SessionLog {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: Option<PathBuf>,
    file: Option<File>,
    used: BTreeSet<SessionKey>,
}

/// Why a session could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session was recorded before: a second run is refused.
    #[error(
        "dataset {dataset} already took part in round {round} of task {task}; a second run of a round is refused (it would let the coordinator difference two runs)"
    )]
    Used {
        /// Task.
        task: u64,
        /// Round.
        round: u32,
        /// Dataset.
        dataset: u64,
    },
    /// The log could not be written or synced: nothing may be sent.
    #[error("session log {path}: {source}")]
    Io {
        /// The log file.
        path: String,
        /// What failed.
        source: io::Error,
    },
}

impl SessionLog {
    /// Opens (or creates) the log in `dir`, loading every complete line.
    pub fn open(dir: &Path) -> Result<Self, SessionError> {
        let path = dir.join(SESSIONS_FILE);
        let io_err = |source| SessionError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let mut used = BTreeSet::new();
        let mut torn = false;
        match std::fs::read(&path) {
            Ok(bytes) => {
                for line in bytes.split(|&b| b == b'\n') {
                    if let Some(key) = std::str::from_utf8(line).ok().and_then(parse_line) {
                        used.insert(key);
                    }
                }
                torn = bytes.last().is_some_and(|&b| b != b'\n');
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err)?;
        if torn {
            // End the torn line so the next record starts on a line of its own.
            file.write_all(b"\n")
                .and_then(|()| file.sync_data())
                .map_err(io_err)?;
        }
        // A new file's directory entry must be durable too, or a crash could lose the log.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                path: Some(path),
                file: Some(file),
                used,
            })),
        })
    }

    /// A log kept in memory only (tests and the in-process harness; a restart forgets it).
    pub fn in_memory() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                path: None,
                file: None,
                used: BTreeSet::new(),
            })),
        }
    }

    /// Records `key` durably, or refuses it if it was recorded before. Only after `Ok` may the
    /// session's first message leave the node.
    pub fn begin(&self, key: SessionKey) -> Result<(), SessionError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.used.contains(&key) {
            return Err(SessionError::Used {
                task: key.0,
                round: key.1,
                dataset: key.2,
            });
        }
        let path = inner
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if let Some(file) = inner.file.as_mut() {
            let line = format!("{} {} {}\n", key.0, key.1, key.2);
            file.write_all(line.as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(|source| SessionError::Io { path, source })?;
        }
        inner.used.insert(key);
        Ok(())
    }

    /// Every recorded session, in key order.
    pub fn keys(&self) -> Vec<SessionKey> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.used.iter().copied().collect()
    }

    /// Whether `key` was recorded.
    pub fn contains(&self, key: SessionKey) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.used.contains(&key)
    }
}

fn parse_line(line: &str) -> Option<SessionKey> {
    let mut it = line.split(' ');
    let key = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    it.next().is_none().then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_runs_once_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = SessionLog::open(dir.path()).expect("opens");
        log.begin((1, 2, 3)).expect("first");
        assert!(matches!(
            log.begin((1, 2, 3)),
            Err(SessionError::Used {
                task: 1,
                round: 2,
                dataset: 3
            })
        ));
        log.begin((1, 3, 3)).expect("next round");
        drop(log);
        let reopened = SessionLog::open(dir.path()).expect("reopens");
        assert!(reopened.contains((1, 2, 3)) && reopened.contains((1, 3, 3)));
        assert!(matches!(
            reopened.begin((1, 2, 3)),
            Err(SessionError::Used { .. })
        ));
    }

    #[test]
    fn a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(SESSIONS_FILE), "1 1 5\n1 2").expect("writes");
        let log = SessionLog::open(dir.path()).expect("opens");
        assert!(log.contains((1, 1, 5)));
        assert!(!log.contains((1, 2, 0)));
        log.begin((1, 3, 4)).expect("records after the torn line");
        drop(log);
        let reopened = SessionLog::open(dir.path()).expect("reopens");
        assert!(
            reopened.contains((1, 3, 4)),
            "the torn line did not swallow the next"
        );
    }
}
