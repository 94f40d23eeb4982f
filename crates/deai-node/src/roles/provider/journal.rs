//! The provider's durable record of what each channel has paid: the highest voucher, the amount
//! its answered queries consumed and the receipt sequences it reserved.
//!
//! A voucher is money: the provider claims it on the ledger later, so losing it loses the
//! payment. A request that brings a higher voucher appends a line to `provider-channels.log`
//! before its answer leaves the node, so a killed process loses no voucher. Sequences are
//! reserved ahead in blocks (a line per block), so a restarted provider never gives one
//! sequence to two answers. The amount spent is written every `sync_ms` (and with each
//! voucher): a killed process forgets at most that window of spending, which only an honest
//! payer's own count covers (its next voucher is computed from it) and a dishonest one could
//! use as free queries. The file is synced every `sync_ms` and before every claim, so a power
//! loss loses at most that window of vouchers. On start the log is replayed (the last line of a
//! channel wins) and rewritten compactly.
//!
//! Format: one line per update, `channel spent sequence voucher`, decimal, where `sequence` is
//! the first sequence not reserved (where a restarted provider resumes) and the voucher is hex
//! of its canonical encoding, or `-` when unchanged since the channel's previous line. A torn
//! last line (a crash mid-write) is ignored: its answer was never sent.

use std::{
    collections::BTreeMap,
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use deai_ledger::{Params, SignedVoucher};

/// File name of the log inside the node's state directory.
pub const CHANNELS_FILE: &str = "provider-channels.log";

/// What the provider knows it is owed on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    /// The highest voucher the payer sent (None before the first).
    pub voucher: Option<SignedVoucher>,
    /// The price of every query answered on the channel so far.
    pub spent: u128,
    /// The next receipt sequence (read from the log: the first one not reserved).
    pub next_sequence: u64,
}

/// The append-only channel log (shared by the request handlers; one line per write).
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens the log in `dir`, returning it and the state of every channel it records, and
    /// rewrites it with one line per channel (dropping the history and a torn tail).
    pub fn open(dir: &Path, params: &Params) -> io::Result<(Self, BTreeMap<u64, Paid>)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(CHANNELS_FILE);
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut channels: BTreeMap<u64, Paid> = BTreeMap::new();
        let complete = match text.iter().rposition(|&b| b == b'\n') {
            Some(end) => &text[..=end],
            None => &[][..],
        };
        for (n, line) in complete.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let (channel, paid) = parse_line(line, params, &channels).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} line {}: {e}; the file is damaged (restore it from a backup, or \
                         move it away to start with no channel records)",
                        path.display(),
                        n + 1
                    ),
                )
            })?;
            channels.insert(channel, paid);
        }
        // Compact: write the current state to a temporary file, sync, rename over the log.
        let tmp = dir.join(format!("{CHANNELS_FILE}.tmp"));
        {
            let mut out = File::create(&tmp)?;
            for (channel, paid) in &channels {
                out.write_all(line(*channel, paid, paid.next_sequence, true).as_bytes())?;
            }
            out.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok((
            Self {
                path,
                file: Mutex::new(file),
            },
            channels,
        ))
    }

    /// Appends the channel's new state with sequences reserved up to `reserved` (the voucher
    /// only when it changed); the write reaches the OS before this returns, the disk at the next
    /// [`Self::sync`].
    pub fn record(
        &self,
        channel: u64,
        paid: &Paid,
        reserved: u64,
        voucher_changed: bool,
    ) -> io::Result<()> {
        let text = line(channel, paid, reserved, voucher_changed);
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(text.as_bytes())
    }

    /// Forces what was recorded to disk.
    pub fn sync(&self) -> io::Result<()> {
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.sync_data()
    }

    /// The log's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn line(channel: u64, paid: &Paid, reserved: u64, with_voucher: bool) -> String {
    let voucher = match (&paid.voucher, with_voucher) {
        (Some(v), true) => hex::encode(v.encode()),
        _ => "-".into(),
    };
    format!("{channel} {} {reserved} {voucher}\n", paid.spent)
}

fn parse_line(
    line: &[u8],
    params: &Params,
    known: &BTreeMap<u64, Paid>,
) -> Result<(u64, Paid), String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let fields: Vec<&str> = text.split(' ').collect();
    let [channel, spent, next, voucher] = fields.as_slice() else {
        return Err(format!("expected 4 fields, got {}", fields.len()));
    };
    let channel: u64 = channel.parse().map_err(|e| format!("channel: {e}"))?;
    let spent: u128 = spent.parse().map_err(|e| format!("spent: {e}"))?;
    let next_sequence: u64 = next.parse().map_err(|e| format!("sequence: {e}"))?;
    let voucher = if *voucher == "-" {
        known.get(&channel).and_then(|p| p.voucher.clone())
    } else {
        let bytes = hex::decode(voucher).map_err(|e| format!("voucher hex: {e}"))?;
        let v = SignedVoucher::decode(&bytes, params).map_err(|e| format!("voucher: {e}"))?;
        Some(v)
    };
    Ok((
        channel,
        Paid {
            voucher,
            spent,
            next_sequence,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deai_ledger::Voucher;

    fn voucher(amount: u128) -> SignedVoucher {
        Voucher {
            chain_id: "deai-test".into(),
            channel_id: 4,
            cumulative_amount: amount,
        }
        .sign(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]))
    }

    #[test]
    fn the_last_line_of_a_channel_wins_across_reopens_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().expect("tmp");
        let params = Params::default();
        let (j, loaded) = Journal::open(dir.path(), &params).expect("open");
        assert!(loaded.is_empty());
        let mut paid = Paid {
            voucher: Some(voucher(10)),
            spent: 3,
            next_sequence: 3,
        };
        j.record(4, &paid, 3, true).expect("write");
        paid.spent = 6;
        paid.next_sequence = 6;
        // Sequences reserved ahead: a restart resumes after the reservation.
        j.record(4, &paid, 70, false).expect("write");
        let other = Paid {
            voucher: Some(voucher(1)),
            spent: 1,
            next_sequence: 1,
        };
        j.record(9, &other, 1, true).expect("write");
        j.sync().expect("sync");
        drop(j);
        // A crash mid-write leaves a partial line.
        let path = dir.path().join(CHANNELS_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"4 999 99 ab").expect("write");
        drop(f);
        let (j, loaded) = Journal::open(dir.path(), &params).expect("reopen");
        let resumed = Paid {
            next_sequence: 70,
            ..paid
        };
        assert_eq!(loaded.get(&4), Some(&resumed));
        assert_eq!(loaded.get(&9), Some(&other));
        // Compacted: one line per channel, each with its voucher.
        let text = std::fs::read_to_string(j.path()).expect("read");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains(" -"), "{text}");
    }

    #[test]
    fn a_damaged_line_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join(CHANNELS_FILE), "4 x 1 -\n").expect("write");
        let err = Journal::open(dir.path(), &Params::default())
            .err()
            .expect("refused");
        assert!(err.to_string().contains(CHANNELS_FILE), "{err}");
    }
}
