//! The honest side of the soak: funded clients submitting transfers at a steady rate, and a
//! watcher that reads finalized blocks off the node to time each one.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use deai_ledger::TxId;
use deai_node::client::{Client, ClientError};
use ed25519_dalek::SigningKey;

/// What the honest side saw, shared by its tasks.
#[derive(Default)]
pub(super) struct Book {
    /// Submitted and not yet seen finalized: when each was submitted.
    pending: HashMap<TxId, Instant>,
    /// Each finalized honest transaction: when it was seen final, and its latency in ms.
    finalized: Vec<(Instant, f64)>,
    /// Submissions refused, by code.
    pub(super) refused: BTreeMap<String, u64>,
    /// Honest transactions finalized with an error receipt.
    pub(super) failed_in_block: u64,
    /// Largest mempool the watcher saw.
    pub(super) mempool_max: u64,
    /// The mempool at the last look.
    pub(super) mempool_last: u64,
}

impl Book {
    /// Finalized honest transactions seen in `[from, to)`, and their latencies.
    pub(super) fn window(&self, from: Instant, to: Instant) -> Vec<f64> {
        self.finalized
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, ms)| *ms)
            .collect()
    }

    /// Submitted honest transactions not (yet) seen finalized.
    pub(super) fn unfinalized(&self) -> usize {
        self.pending.len()
    }
}

pub(super) type Shared = Arc<Mutex<Book>>;

pub(super) fn lock(book: &Shared) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(|p| p.into_inner())
}

/// One honest account: `per_s` transfers a second from its next nonce (kept here, so nothing
/// waits for a round trip to the chain). Each account submits on its own, so one slow answer
/// delays only that account's next transfer.
pub(super) async fn account(
    base: String,
    key: SigningKey,
    chain_id: String,
    fee: u128,
    per_s: f64,
    book: Shared,
) -> anyhow::Result<()> {
    let client = Client::new(base);
    let mut nonce = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s.max(0.01)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let tx = super::transfer(&key, &chain_id, nonce, fee, 0xee);
        let submitted = Instant::now();
        match client.submit(&tx).await {
            Ok(id) => {
                nonce += 1;
                lock(&book).pending.insert(id, submitted);
            }
            // Refused (the same nonce is tried again next tick) or unreachable.
            Err(ClientError::Api { code, .. }) => {
                *lock(&book).refused.entry(code).or_default() += 1
            }
            Err(e) => {
                let what = match e {
                    ClientError::Unreachable { .. } => "unreachable",
                    _ => "bad_answer",
                };
                *lock(&book).refused.entry(what.into()).or_default() += 1;
            }
        }
    }
}

/// Follows the chain: every new block is read, and the honest transactions in it are booked
/// final with their latency. Also samples the mempool.
pub(super) async fn watcher(base: String, book: Shared) -> anyhow::Result<()> {
    let client = Client::new(base);
    let mut seen = client.status().await?.height;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(status) = client.status().await else {
            continue;
        };
        {
            let mut b = lock(&book);
            b.mempool_last = status.mempool_size;
            b.mempool_max = b.mempool_max.max(status.mempool_size);
        }
        // Up to 16 blocks are fetched at once, so that the watcher keeps up with a fast chain
        // on a loaded machine (its lag would count as latency).
        while seen < status.height {
            let last = status.height.min(seen + 16);
            let fetches: Vec<_> = (seen + 1..=last)
                .map(|h| {
                    let client = client.clone();
                    tokio::spawn(async move { client.block(h).await })
                })
                .collect();
            for fetch in fetches {
                let Ok(Ok(block)) = fetch.await else {
                    break;
                };
                let now = Instant::now();
                let mut b = lock(&book);
                for (id, receipt) in block.tx_ids.iter().zip(&block.receipts) {
                    if let Some(at) = b.pending.remove(id) {
                        b.finalized
                            .push((now, now.duration_since(at).as_secs_f64() * 1e3));
                        b.failed_in_block += u64::from(receipt.result.is_err());
                    }
                }
                seen += 1;
            }
            if seen < last {
                break;
            }
        }
    }
}
