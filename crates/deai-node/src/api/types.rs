//! Every request and answer of the HTTP API, as types: the server builds its answers from them,
//! and the Rust client ([`crate::client`]), the roles and the CLI read answers into them. A
//! field missing from an answer is an error, never a default.
//!
//! Ledger objects (accounts, datasets, tasks, models, receipts, events, proofs) appear as the
//! ledger's own serde shapes; amounts are decimal strings ([`deai_ledger::amount`]), hashes and
//! addresses lowercase hex.

use deai_chain::{FinalizedBlock, Status};
use deai_ledger::{Account, Address, Digest, Event, Proof, Receipt, TxId, amount};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusView {
    /// The chain id every signature is bound to.
    pub chain_id: String,
    /// Last finalized height.
    pub height: u64,
    /// State root after that height.
    #[schema(value_type = String, format = "hex")]
    pub state_root: Digest,
    /// Connected validator peers.
    pub peers: u64,
    /// Transactions in the mempool.
    pub mempool_size: u64,
    /// Finality latency of the most recently finalized transaction submitted here.
    pub last_finality_latency_ms: Option<u64>,
    /// The least fee a transaction may offer, base units.
    #[serde(with = "amount")]
    #[schema(value_type = String, example = "10")]
    pub fee_min: u128,
    /// The validator epoch this node runs (or follows).
    pub epoch: u64,
    /// Validators in that epoch's set.
    pub validators: u64,
    /// Whether this node signs in that epoch (a validator) rather than following the chain.
    pub validator: bool,
}

impl StatusView {
    /// The answer for the chain's `status` and the genesis fee.
    pub fn new(s: &Status, fee_min: u128) -> Self {
        Self {
            chain_id: s.chain_id.clone(),
            height: s.height,
            state_root: s.state_root,
            peers: s.peers as u64,
            mempool_size: s.mempool_size as u64,
            last_finality_latency_ms: s.last_finality_latency_ms,
            fee_min,
            epoch: s.epoch,
            validators: s.validators as u64,
            validator: s.member,
        }
    }
}

/// `GET /v1/blocks/{height}`: a finalized block, its transactions as canonical bytes in hex
/// (what an auditor decodes and replays) next to their ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockView {
    /// Height.
    pub height: u64,
    /// The consensus digest of the block.
    #[schema(value_type = String, format = "hex")]
    pub digest: Digest,
    /// The parent's digest.
    #[schema(value_type = String, format = "hex")]
    pub parent: Digest,
    /// Who proposed it.
    #[schema(value_type = String, format = "hex")]
    pub proposer: Address,
    /// Proposer's timestamp.
    pub timestamp_ms: u64,
    /// Transaction ids, in block order.
    #[schema(value_type = Vec<String>)]
    pub tx_ids: Vec<TxId>,
    /// Transactions, canonical encoding in hex, in block order.
    pub txs: Vec<String>,
    /// One receipt per transaction.
    #[schema(value_type = Vec<Object>)]
    pub receipts: Vec<Receipt>,
    /// Events the block emitted.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Event>,
    /// State root before the block.
    #[schema(value_type = String, format = "hex")]
    pub parent_state_root: Digest,
    /// State root after the block.
    #[schema(value_type = String, format = "hex")]
    pub state_root: Digest,
    /// When this node saw it finalized.
    pub finalized_at_ms: u64,
}

impl From<&FinalizedBlock> for BlockView {
    fn from(b: &FinalizedBlock) -> Self {
        Self {
            height: b.height,
            digest: b.digest,
            parent: b.parent,
            proposer: b.proposer,
            timestamp_ms: b.timestamp_ms,
            tx_ids: b.txs.iter().map(|t| t.id()).collect(),
            txs: b.txs.iter().map(|t| hex::encode(t.encode())).collect(),
            receipts: b.receipts.clone(),
            events: b.events.clone(),
            parent_state_root: b.parent_state_root,
            state_root: b.state_root,
            finalized_at_ms: b.finalized_at_ms,
        }
    }
}

/// `POST /v1/txs` request: a signed transaction's canonical bytes in hex.
pub use deai_ledger::submission::Submission as SubmitRequest;

/// The schema of [`SubmitRequest`] (the ledger's type, which knows nothing of OpenAPI).
#[derive(ToSchema)]
#[schema(as = SubmitRequest)]
#[allow(dead_code)] // documentation only
pub(crate) struct SubmitRequestSchema {
    /// `SignedTx::encode()`, hex.
    tx: String,
}

/// `POST /v1/txs` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubmitResponse {
    /// The transaction id (BLAKE3 of its canonical encoding).
    #[schema(value_type = String, format = "hex")]
    pub id: TxId,
}

/// `POST /v1/txs/batch` request: signed transactions' canonical bytes in hex, admitted in order.
pub use deai_ledger::submission::BatchSubmission as BatchRequest;

/// The schema of [`BatchRequest`].
#[derive(ToSchema)]
#[schema(as = BatchRequest)]
#[allow(dead_code)] // documentation only
pub(crate) struct BatchRequestSchema {
    /// `SignedTx::encode()` of each, hex; at most `http.batch_txs_max` of them.
    txs: Vec<String>,
}

/// `POST /v1/txs/batch` answer: one item per submitted transaction, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// What became of each transaction.
    pub results: Vec<BatchItem>,
}

/// What became of one transaction of a batch: what `POST /v1/txs` would have answered for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BatchItem {
    /// In the mempool.
    Accepted {
        /// The transaction id.
        #[schema(value_type = String, format = "hex")]
        id: TxId,
    },
    /// Refused, with the code and message `POST /v1/txs` would have given.
    Rejected {
        /// Stable code (`bad_hex`, `nonce_too_low`, `mempool_full`, ...).
        code: String,
        /// Human-readable reason.
        message: String,
    },
}

/// `GET /v1/txs/{id}`: where a transaction stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxState {
    /// In the mempool.
    Pending,
    /// In a finalized block; `applied` says whether the ledger applied it or refused it there.
    Finalized {
        /// Whether it applied (its receipt's result is `Ok`).
        applied: bool,
        /// Block height.
        height: u64,
        /// Position in the block.
        index: u32,
        /// Its receipt.
        #[schema(value_type = Object)]
        receipt: Receipt,
    },
    /// Dropped from the mempool without being included.
    Rejected {
        /// Stable reason code.
        code: String,
        /// For a person.
        reason: String,
    },
}

impl TxState {
    /// The answer for the chain's view of a transaction; `None` when it does not know it.
    pub fn new(s: &deai_chain::TxStatus) -> Option<Self> {
        use deai_chain::TxStatus as S;
        Some(match s {
            S::Pending => Self::Pending,
            S::Finalized {
                height,
                index,
                receipt,
            } => Self::Finalized {
                applied: receipt.result.is_ok(),
                height: *height,
                index: *index,
                receipt: receipt.clone(),
            },
            S::Rejected { code, reason } => Self::Rejected {
                code: code.clone(),
                reason: reason.clone(),
            },
            S::Unknown => return None,
        })
    }

    /// Whether it will not change any more (finalized or dropped).
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Pending)
    }

    /// The height of its block, once finalized.
    pub fn height(&self) -> Option<u64> {
        match self {
            Self::Finalized { height, .. } => Some(*height),
            _ => None,
        }
    }
}

/// `GET /v1/accounts/{address}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    /// The address asked for.
    #[schema(value_type = String, format = "hex")]
    pub address: Address,
    /// The height the answer is read at.
    pub height: u64,
    /// The account (a fresh one, all zero, if it never received anything).
    #[schema(value_type = Object)]
    pub account: Account,
}

/// `GET /v1/tasks/{id}/eligible`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EligibleView {
    /// The task.
    pub task: u64,
    /// The round the answer is for (the next to open).
    pub round: u32,
    /// The height the answer is read at.
    pub height: u64,
    /// Dataset ids a `RoundOpen` at this height could select, ascending.
    pub eligible: Vec<u64>,
}

/// `GET /v1/proofs/{kind}/{id}`: an inclusion proof against the root at `height`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProofView {
    /// The height the proof was made at.
    pub height: u64,
    /// The state root it proves against (the block at `height` records it).
    #[schema(value_type = String, format = "hex")]
    pub root: Digest,
    /// The proof.
    #[schema(value_type = Object)]
    pub proof: Proof,
    /// The entry itself, from the same read (an account, dataset, task or model as their own
    /// routes answer it): a light client checks that it re-encodes to the proof's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub entry: Option<serde_json::Value>,
}

/// `GET /v1/blocks/{height}/finality`: what certifies a finalized height to a light client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FinalityView {
    /// The height asked for.
    pub height: u64,
    /// The encoded blocks (hex) from `height` up to the one `finalization` finalizes; usually
    /// one, more when a block finalized only through a descendant.
    pub blocks: Vec<String>,
    /// The encoded finalization certificate (hex): finalize votes of a quorum of the validators
    /// for the last block's digest.
    pub finalization: String,
}

impl From<deai_chain::Finality> for FinalityView {
    fn from(f: deai_chain::Finality) -> Self {
        Self {
            height: f.height,
            blocks: f.blocks.iter().map(hex::encode).collect(),
            finalization: hex::encode(&f.finalization),
        }
    }
}

/// `GET /v1/validators`: the validator sets by stake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidatorsView {
    /// The epoch of the next block.
    pub epoch: u64,
    /// Blocks per epoch.
    pub epoch_blocks: u64,
    /// The first height of the next epoch.
    pub next_epoch_height: u64,
    /// The set of `epoch`.
    #[schema(value_type = Object)]
    pub set: deai_ledger::ValidatorSet,
    /// The set of `epoch + 1`, once chosen (at the second-to-last block of `epoch`).
    #[schema(value_type = Object)]
    pub next: Option<deai_ledger::ValidatorSet>,
    /// Who would be chosen if the next set were chosen now (declared keys, enough stake), in
    /// rank order, at most twice `validators_max`.
    #[schema(value_type = Vec<Object>)]
    pub candidates: Vec<deai_ledger::Member>,
}

/// `GET /v1/epochs/{epoch}/change`: what a light client needs to accept the set of `epoch` from
/// the set before it ([`deai_chain::light::Verifier::follow`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetChangeView {
    /// The epoch the set validates.
    pub epoch: u64,
    /// The set.
    #[schema(value_type = Object)]
    pub set: deai_ledger::ValidatorSet,
    /// Its inclusion proof against the state root after the block that chose it.
    #[schema(value_type = Object)]
    pub proof: Proof,
    /// The finality of the previous epoch's last block, which carries that root.
    pub finality: FinalityView,
}

impl From<deai_chain::SetChange> for SetChangeView {
    fn from(c: deai_chain::SetChange) -> Self {
        Self {
            epoch: c.epoch,
            set: c.set,
            proof: c.proof,
            finality: c.finality.into(),
        }
    }
}

/// `PUT /v1/blobs/{hash}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PutBlobResponse {
    /// The blob's BLAKE3 hash.
    #[schema(value_type = String, format = "hex")]
    pub hash: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// The body of every error answer: `{"error": {"code": …, "message": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A stable code for scripts and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable (`bad_hex`, `tx_not_found`, …).
    pub code: String,
    /// What was wrong and, where it helps, what to do.
    pub message: String,
}

/// `POST /v1/fed/join` answer (signed by the coordinator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JoinAccepted {
    /// The datasets the coordinator now routes to the caller.
    pub accepted: Vec<u64>,
}

/// `GET /v1/fed/directory`: what a coordinator knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Directory {
    /// Datasets whose owners announced a node.
    pub datasets: Vec<u64>,
    /// Tasks it holds private inputs for.
    pub tasks: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_field_is_an_error_not_a_default() {
        let full = serde_json::json!({
            "chain_id": "deai-dev", "height": 7, "state_root": "00".repeat(32), "peers": 0,
            "mempool_size": 2, "last_finality_latency_ms": null, "fee_min": "10",
            "epoch": 0, "validators": 1, "validator": true
        });
        let status: StatusView = serde_json::from_value(full.clone()).expect("complete");
        assert_eq!((status.height, status.fee_min), (7, 10));
        for field in [
            "height",
            "fee_min",
            "chain_id",
            "state_root",
            "epoch",
            "validator",
        ] {
            let mut partial = full.clone();
            partial.as_object_mut().expect("object").remove(field);
            let err = serde_json::from_value::<StatusView>(partial).expect_err(field);
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn tx_states_keep_their_wire_shape() {
        let rejected = TxState::Rejected {
            code: "evicted".into(),
            reason: "fee too low".into(),
        };
        let v = serde_json::to_value(&rejected).expect("serializes");
        assert_eq!(v["status"], "rejected");
        assert_eq!(v["code"], "evicted");
        assert!(rejected.is_final() && rejected.height().is_none());
        let pending: TxState = serde_json::from_str(r#"{"status":"pending"}"#).expect("parses");
        assert!(!pending.is_final());
        assert!(serde_json::from_str::<TxState>(r#"{"status":"finalised"}"#).is_err());
    }
}
