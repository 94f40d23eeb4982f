//! Every request and answer of the HTTP API, as types: the server builds its answers from them,
//! and the Rust client ([`crate::client`]), the roles and the CLI read answers into them. A
//! field missing from an answer is an error, never a default.
//!
//! Ledger objects (accounts, datasets, tasks, models, receipts, events, proofs) appear as the
//! ledger's own serde shapes; amounts are decimal strings ([`deai_ledger::amount`]), hashes and
//! addresses lowercase hex.

use deai_chain::{FinalizedBlock, Status};
use deai_ledger::{
    Account, Address, Choice, Digest, Event, Proof, ProposalKind, ProposalStatus, Receipt, Tally,
    TxId, amount,
};
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
    /// The same transactions decoded (sender, nonce, fee, the body by kind, signature), for
    /// readers that do not decode the canonical bytes themselves (the explorer).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub decoded_txs: Vec<deai_ledger::SignedTx>,
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
            decoded_txs: b.txs.clone(),
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

/// One proposal as `GET /v1/proposals` lists it: where it stands and how far its vote got.
///
/// The shares are in basis points of the live tally ([`deai_ledger::Proposal::current_tally`],
/// final once the vote ended); the rules beside them are the chain's parameters now, which
/// decide the tally at `end_height + 1` (a proposal executed before then may change them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProposalView {
    /// The height the answer is read at.
    pub height: u64,
    /// The proposal's id.
    pub id: u64,
    /// `param_change`, `block` or `treasury_spend`.
    pub kind: String,
    /// Who proposed it and locked the deposit.
    #[schema(value_type = String, format = "hex")]
    pub proposer: Address,
    /// The deposit, base units.
    #[serde(with = "amount")]
    #[schema(value_type = String)]
    pub deposit: u128,
    /// First height a vote counts.
    pub start_height: u64,
    /// Last height a vote counts.
    pub end_height: u64,
    /// Blocks after `height` in which a vote still counts (0 once the vote ended).
    pub blocks_left: u64,
    /// `voting`, `passed`, `rejected`, `vetoed`, `no_quorum` or `executed`.
    #[schema(value_type = String)]
    pub status: ProposalStatus,
    /// The weights: live while voting, final afterwards.
    #[schema(value_type = Object)]
    pub tally: Tally,
    /// Whether `tally` is the final one (taken at `end_height + 1`).
    pub tally_final: bool,
    /// Power that voted (abstain included), basis points of all power in the snapshot.
    pub voted_bps: u32,
    /// Yes, basis points of yes + no + veto.
    pub yes_bps: u32,
    /// Veto, basis points of the power that voted.
    pub veto_share_bps: u32,
    /// The quorum rule: `voted_bps` must reach this (`gov_quorum_bps`).
    pub quorum_bps: u32,
    /// The threshold rule: `yes_bps` must exceed this (`gov_threshold_bps`).
    pub threshold_bps: u32,
    /// The veto rule: `veto_share_bps` above this vetoes (`gov_veto_bps`).
    pub veto_bps: u32,
    /// What the tally decides under those rules: the outcome if the vote ended now.
    #[schema(value_type = String)]
    pub outcome: ProposalStatus,
    /// First height an `Execute` may land (once passed).
    pub executable_from: Option<u64>,
    /// Last height an `Execute` may land (once passed).
    pub executable_until: Option<u64>,
    /// The height it was executed at.
    pub executed_at: Option<u64>,
}

/// `GET /v1/proposals/{id}`: the summary, what the proposal does, and every vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProposalDetailView {
    /// Where it stands.
    #[serde(flatten)]
    pub summary: ProposalView,
    /// What it does when executed, in the ledger's shape (`{"kind": "param_change",
    /// "changes": [...]}`, `{"kind": "block", "target": ..., "blocked": ..., "reason": ...}`,
    /// `{"kind": "treasury_spend", "to": ..., "amount": ...}`).
    #[schema(value_type = Object)]
    pub proposal: ProposalKind,
    /// BLAKE3 of the published description.
    #[schema(value_type = String, format = "hex")]
    pub description: Digest,
    /// Every vote with the weight it carries now, by voter.
    pub votes: Vec<VoteView>,
}

/// One vote on a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VoteView {
    /// Who voted.
    #[schema(value_type = String, format = "hex")]
    pub voter: Address,
    /// `yes`, `no`, `abstain` or `veto`.
    #[schema(value_type = String)]
    pub choice: Choice,
    /// Its weight: own stake at the proposal's start, plus the delegations of delegators that
    /// did not vote themselves.
    #[serde(with = "amount")]
    #[schema(value_type = String)]
    pub weight: u128,
}

/// `GET /v1/governance`: the treasury, emissions, the governance rules and what may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GovernanceView {
    /// The height the answer is read at.
    pub height: u64,
    /// The treasury's account (nobody holds its key; only an executed spend moves its funds).
    #[schema(value_type = String, format = "hex")]
    pub treasury: Address,
    /// Its balance, base units.
    #[serde(with = "amount")]
    #[schema(value_type = String)]
    pub treasury_balance: u128,
    /// Tokens minted by emissions since genesis, base units.
    #[serde(with = "amount")]
    #[schema(value_type = String)]
    pub emitted: u128,
    /// Emitted for this epoch's validators, not yet paid, base units.
    #[serde(with = "amount")]
    #[schema(value_type = String)]
    pub emission_pool: u128,
    /// The governance and economics parameters by name (`gov_*`, `emission_*`,
    /// `validator_commission_bps`, `coordinator_round_reward`, `dataset_bond`,
    /// `task_epsilon_max`), values as decimal strings.
    pub rules: std::collections::BTreeMap<String, String>,
    /// Every parameter now, in the genesis file's shape (what a proposal's change is checked
    /// against).
    #[schema(value_type = Object)]
    pub params: deai_ledger::Params,
    /// The parameters a proposal may change, by name.
    pub governable: Vec<String>,
    /// The parameters fixed at genesis, each with the reason.
    pub fixed: Vec<FixedParamView>,
    /// Every target a block decision ever applied to, lifted ones included.
    pub block_decisions: Vec<BlockDecisionView>,
}

/// A parameter no proposal may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FixedParamView {
    /// Its name.
    pub name: String,
    /// Why it stays fixed.
    pub reason: String,
}

/// What an executed block decision says about a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockDecisionView {
    /// `dataset:3`, `model:1`, `offer:2` or `validator:ADDRESS` (what `/v1/proofs/blocked/`
    /// takes).
    pub target: String,
    /// Blocked now (`false`: a later decision lifted the block).
    pub blocked: bool,
    /// BLAKE3 of the published reasons of the last decision.
    #[schema(value_type = String, format = "hex")]
    pub reason: Digest,
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
