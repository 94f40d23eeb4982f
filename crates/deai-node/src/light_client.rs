//! Reading the ledger from a validator without trusting it.
//!
//! A [`LightClient`] asks its upstream validator for a state entry together with an inclusion
//! proof (`GET /v1/proofs/{kind}/{id}`, which answers both from one read of the state at height
//! `h`), then for the block that certifies height `h` (`GET /v1/blocks/{h+1}/finality`: block
//! `h + 1`, which carries the root after `h`, and its finalization certificate). It accepts the
//! entry only when the certificate verifies against the validator set of the genesis it was given
//! ([`deai_chain::light::Verifier`]), the block is the one certified, and the entry is exactly
//! what the proof commits to under that block's root ([`deai_ledger::verify_entry`]). Anything
//! else is refused by name ([`ReadError`]), so a node pointed at a lying validator stops rather
//! than act on a forged task, dataset or balance.
//!
//! The certifying block comes one block after the answer: a read waits for the next finalized
//! block (the chain makes one at least every `block_idle_wait`, half a second by default) and
//! certified roots are remembered, so reads at one height share one certificate check.
//!
//! What it does not cover: absence (a validator can claim an entry does not exist; the state tree
//! has no exclusion proofs) and freshness (a validator can answer from an older height; the answer
//! carries its height, and callers that need the newest state compare heights). Transactions the
//! node submits are still carried by the upstream, which can drop them but not alter them.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use deai_chain::light::{LightError, Verifier};
use deai_ledger::{Committed, Digest, Genesis, ProofError, StateKey};
use serde::de::DeserializeOwned;

use crate::{
    api::types::{FinalityView, ProofView},
    client::{Client, ClientError},
};

/// How long a read waits for the block that certifies its height.
pub const CERTIFY_WAIT: Duration = Duration::from_secs(20);
/// Pause between asks for a block that is not finalized yet.
const POLL_EVERY: Duration = Duration::from_millis(25);
/// Certified roots remembered (the newest heights).
const ROOTS_KEPT: usize = 256;

/// Why a read from the upstream was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// What was asked for names no state entry.
    #[error("not a state entry: {0}")]
    BadKey(String),
    /// The upstream could not be asked, or answered with an error.
    #[error(transparent)]
    Upstream(#[from] ClientError),
    /// The upstream follows another chain than the genesis this client trusts.
    #[error("upstream {url} serves chain {served:?}, not {trusted:?} of the trusted genesis")]
    OtherChain {
        /// The upstream.
        url: String,
        /// The chain it serves.
        served: String,
        /// The chain of the trusted genesis.
        trusted: String,
    },
    /// The block or certificate offered for a height does not verify.
    #[error("upstream {url} sent a block for height {height} that fails verification: {source}")]
    Uncertified {
        /// The upstream.
        url: String,
        /// The height the block should certify.
        height: u64,
        /// What failed.
        source: LightError,
    },
    /// The entry does not match what the certified state commits to.
    #[error(
        "upstream {url}'s answer for {key} at height {height} is not the committed state: {source}"
    )]
    Forged {
        /// The upstream.
        url: String,
        /// The entry.
        key: String,
        /// The height of the answer.
        height: u64,
        /// What failed.
        source: ProofError,
    },
    /// No block certifying the answer's height arrived in time.
    #[error(
        "upstream {url} finalized no block above height {height} within {secs} s, so its answer cannot be certified; is the chain making blocks?"
    )]
    NoCertificate {
        /// The upstream.
        url: String,
        /// The height of the answer.
        height: u64,
        /// How long the client waited.
        secs: u64,
    },
}

impl ReadError {
    /// Whether the upstream sent something provably wrong (as opposed to being unreachable,
    /// slow, or refusing).
    pub fn is_forgery(&self) -> bool {
        matches!(
            self,
            Self::Forged { .. } | Self::Uncertified { .. } | Self::OtherChain { .. }
        )
    }
}

/// An entry the client checked, and the height it was read at.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// The entry.
    pub entry: T,
    /// The finalized height of the state it was read from.
    pub height: u64,
    /// The certified state root at that height.
    pub root: Digest,
}

/// Reads state entries from one validator, checking each against certified state roots.
#[derive(Clone)]
pub struct LightClient {
    ledger: Client,
    /// Grows as the client follows validator-set changes.
    verifier: Arc<Mutex<Verifier>>,
    chain_id: String,
    roots: Arc<Mutex<BTreeMap<u64, Digest>>>,
    wait: Duration,
}

impl std::fmt::Debug for LightClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightClient")
            .field("upstream", &self.ledger.base())
            .field("chain_id", &self.chain_id)
            .finish()
    }
}

impl LightClient {
    /// A client of `ledger` that trusts only the validator set of `genesis`.
    pub fn new(ledger: Client, genesis: &Genesis) -> Result<Self, LightError> {
        Ok(Self {
            ledger,
            verifier: Arc::new(Mutex::new(Verifier::new(genesis)?)),
            chain_id: genesis.chain_id.clone(),
            roots: Arc::default(),
            wait: CERTIFY_WAIT,
        })
    }

    /// The same client, waiting at most `wait` for a certifying block.
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The upstream's base URL.
    pub fn upstream(&self) -> &str {
        self.ledger.base()
    }

    /// Checks that the upstream serves the chain of the trusted genesis.
    pub async fn check_chain(&self) -> Result<(), ReadError> {
        let served = self.ledger.status().await?.chain_id;
        if served != self.chain_id {
            return Err(ReadError::OtherChain {
                url: self.upstream().into(),
                served,
                trusted: self.chain_id.clone(),
            });
        }
        Ok(())
    }

    /// The state root after `height`, from the finalized block above it, checked against the
    /// validator set. Waits (up to the client's wait) for that block to finalize.
    pub async fn certified_root(&self, height: u64) -> Result<Digest, ReadError> {
        if let Some(root) = self.lock_roots().get(&height) {
            return Ok(*root);
        }
        let finality = self.finality(height.saturating_add(1), height).await?;
        let blocks: Result<Vec<Vec<u8>>, _> = finality.blocks.iter().map(hex::decode).collect();
        let cert = hex::decode(&finality.finalization);
        let (Ok(blocks), Ok(cert)) = (blocks, cert) else {
            return Err(self.uncertified(height, LightError::BadBlock("not hex".into())));
        };
        // Batch verification's coefficients come from the OS: whoever crafted the signatures
        // cannot predict them.
        let check = || {
            self.lock_verifier().certified_root(
                &mut commonware_utils::sys_rng(),
                height,
                &blocks,
                &cert,
            )
        };
        let root = match check() {
            Err(LightError::UnknownEpoch { epoch, newest }) if epoch > newest => {
                self.follow_sets(epoch)
                    .await
                    .map_err(|e| self.uncertified(height, e))?;
                check()
            }
            other => other,
        }
        .map_err(|e| self.uncertified(height, e))?;
        let mut roots = self.lock_roots();
        roots.insert(height, root);
        while roots.len() > ROOTS_KEPT {
            roots.pop_first();
        }
        Ok(root)
    }

    /// Entry `kind`/`id` (`account`, `dataset`, `task` or `model`; an address or a number),
    /// checked ([`Self::read`]).
    pub async fn entry<T: Committed + DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Verified<T>, ReadError> {
        self.read(parse_key(kind, id)?).await
    }

    /// Entry `key`, checked against the certified root of the height it was read at: the
    /// answer must prove exactly `key` (not another entry's valid proof), the entry must be what
    /// the proof commits to, and the root must be certified. A missing entry is the upstream's
    /// 404, unverified.
    pub async fn read<T: Committed + DeserializeOwned>(
        &self,
        key: StateKey,
    ) -> Result<Verified<T>, ReadError> {
        let (kind, id) = key_path(&key);
        let answer: ProofView = self.ledger.proof(kind, &id).await?;
        let forged = |source| ReadError::Forged {
            url: self.upstream().into(),
            key: key.to_string(),
            height: answer.height,
            source,
        };
        if answer.proof.key != key {
            return Err(forged(ProofError::EntryMismatch {
                key: key.to_string(),
                what: format!("the answer proves {} instead", answer.proof.key),
            }));
        }
        let entry: T = decode_entry(answer.entry.as_ref()).map_err(forged)?;
        let root = self.certified_root(answer.height).await?;
        deai_ledger::verify_entry(&root, &answer.proof, &entry).map_err(forged)?;
        Ok(Verified {
            entry,
            height: answer.height,
            root,
        })
    }

    /// `GET /v1/blocks/{height}/finality`, waiting while the block is not finalized yet.
    async fn finality(&self, height: u64, answer: u64) -> Result<FinalityView, ReadError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            match self.ledger.finality(height).await {
                Ok(f) => return Ok(f),
                Err(ClientError::Api { status: 404, .. })
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(POLL_EVERY).await;
                }
                Err(ClientError::Api { status: 404, .. }) => {
                    return Err(ReadError::NoCertificate {
                        url: self.upstream().into(),
                        height: answer,
                        secs: self.wait.as_secs(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn uncertified(&self, height: u64, source: LightError) -> ReadError {
        ReadError::Uncertified {
            url: self.upstream().into(),
            height,
            source,
        }
    }

    /// Follows the validator-set changes up to `epoch`, one epoch at a time, each certified by
    /// the set before it. A change the upstream cannot show stops the walk (so a certificate
    /// claiming a far epoch costs one request, not one per epoch).
    async fn follow_sets(&self, epoch: u64) -> Result<(), LightError> {
        loop {
            let next = self.lock_verifier().newest_epoch() + 1;
            if next > epoch {
                return Ok(());
            }
            let change =
                self.ledger
                    .set_change(next)
                    .await
                    .map_err(|e| LightError::BadSetChange {
                        epoch: next,
                        reason: format!("the upstream did not show it: {e}"),
                    })?;
            let not_hex = |what: &str| LightError::BadSetChange {
                epoch: next,
                reason: format!("{what} is not hex"),
            };
            let blocks = change
                .finality
                .blocks
                .iter()
                .map(hex::decode)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| not_hex("a block"))?;
            let cert = hex::decode(&change.finality.finalization)
                .map_err(|_| not_hex("the certificate"))?;
            let mut verifier = self.lock_verifier();
            if verifier.newest_epoch() + 1 == next {
                verifier.follow(
                    &mut commonware_utils::sys_rng(),
                    &change.set,
                    &change.proof,
                    &blocks,
                    &cert,
                )?;
            }
        }
    }

    fn lock_verifier(&self) -> std::sync::MutexGuard<'_, Verifier> {
        // A panic while holding the lock leaves a verifier that is still valid.
        self.verifier.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_roots(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Digest>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.roots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The kind and id of `key` as `GET /v1/proofs/{kind}/{id}` names them.
fn key_path(key: &StateKey) -> (&'static str, String) {
    match key {
        StateKey::Meta => ("meta", String::new()),
        StateKey::Account(a) => ("account", a.to_string()),
        StateKey::Dataset(id) => ("dataset", id.to_string()),
        StateKey::Task(id) => ("task", id.to_string()),
        StateKey::Model(id) => ("model", id.to_string()),
        StateKey::Epoch(e) => ("epoch", e.to_string()),
        StateKey::Offer(id) => ("offer", id.to_string()),
        StateKey::Channel(id) => ("channel", id.to_string()),
        StateKey::Proposal(id) => ("proposal", id.to_string()),
        StateKey::Blocked(t) => ("blocked", t.path()),
        StateKey::Delegations(a) => ("delegations", a.to_string()),
    }
}

/// The state key `kind`/`id` names (`account` and an address, or `dataset`, `task` or `model`
/// and a number; plurals too).
pub fn parse_key(kind: &str, id: &str) -> Result<StateKey, ReadError> {
    let bad = |what: String| ReadError::BadKey(format!("{kind}/{id}: {what}"));
    let number = || {
        id.parse::<u64>()
            .map_err(|e| bad(format!("not a number: {e}")))
    };
    match kind {
        "blocked" => {
            return deai_ledger::BlockTarget::parse(id)
                .map(StateKey::Blocked)
                .map_err(bad);
        }
        "delegations" => {
            return id
                .parse()
                .map(StateKey::Delegations)
                .map_err(|e| bad(format!("not an address: {e}")));
        }
        _ => {}
    }
    match kind.trim_end_matches('s') {
        "account" => id
            .parse()
            .map(StateKey::Account)
            .map_err(|e| bad(format!("not an address: {e}"))),
        "dataset" => number().map(StateKey::Dataset),
        "task" => number().map(StateKey::Task),
        "model" => number().map(StateKey::Model),
        "epoch" => number().map(StateKey::Epoch),
        "offer" => number().map(StateKey::Offer),
        "channel" => number().map(StateKey::Channel),
        "proposal" => number().map(StateKey::Proposal),
        _ => Err(bad(
            "use account, dataset, task, model, epoch, offer, channel, proposal, blocked or \
             delegations"
                .into(),
        )),
    }
}

/// The entry sent with a proof, as `T`.
fn decode_entry<T: DeserializeOwned>(entry: Option<&serde_json::Value>) -> Result<T, ProofError> {
    let entry = entry.ok_or_else(|| ProofError::Malformed("the answer carries no entry".into()))?;
    T::deserialize(entry).map_err(|e| ProofError::Malformed(format!("the entry: {e}")))
}

/// Checks `proof` under `root`, and the JSON `entry` sent with it (when there is one) against the
/// proof, as the type its key names.
pub fn check_entry_json(
    root: &Digest,
    proof: &deai_ledger::Proof,
    entry: Option<&serde_json::Value>,
) -> Result<(), ProofError> {
    use deai_ledger::{Account, Dataset, Model, Task, ValidatorSet, verify_entry};
    if entry.is_none() {
        return deai_ledger::verify_proof(root, proof);
    }
    match proof.key {
        StateKey::Account(_) => verify_entry(root, proof, &decode_entry::<Account>(entry)?),
        StateKey::Dataset(_) => verify_entry(root, proof, &decode_entry::<Dataset>(entry)?),
        StateKey::Task(_) => verify_entry(root, proof, &decode_entry::<Task>(entry)?),
        StateKey::Model(_) => verify_entry(root, proof, &decode_entry::<Model>(entry)?),
        StateKey::Epoch(_) => verify_entry(root, proof, &decode_entry::<ValidatorSet>(entry)?),
        StateKey::Offer(_) => {
            verify_entry(root, proof, &decode_entry::<deai_ledger::Offer>(entry)?)
        }
        StateKey::Channel(_) => {
            verify_entry(root, proof, &decode_entry::<deai_ledger::Channel>(entry)?)
        }
        StateKey::Proposal(_) => {
            verify_entry(root, proof, &decode_entry::<deai_ledger::Proposal>(entry)?)
        }
        StateKey::Blocked(_) => verify_entry(
            root,
            proof,
            &decode_entry::<deai_ledger::BlockDecision>(entry)?,
        ),
        StateKey::Delegations(_) => verify_entry(
            root,
            proof,
            &decode_entry::<deai_ledger::DelegationList>(entry)?,
        ),
        StateKey::Meta => deai_ledger::verify_proof(root, proof),
    }
}
