//! The deterministic ledger state machine of deai: transactions, checks, state and its authenticated root.
//!
//! A pure function of (state, block): no I/O, clocks, randomness or floats. Amounts are `u128`
//! base units ([`TOKEN`] per token); DP budgets and model metrics are fixed-point integers
//! ([`EPSILON_SCALE`], [`DELTA_SCALE`], [`NOISE_SCALE`], [`METRIC_SCALE`]).
//!
//! ```
//! use deai_ledger::*;
//! use ed25519_dalek::SigningKey;
//!
//! let alice = SigningKey::from_bytes(&[1; 32]);
//! let bob = Address([2; 32]);
//! let genesis = Genesis::dev(Address::from_key(&alice.verifying_key()), vec![]);
//! let mut state = State::from_genesis(&genesis).expect("valid genesis");
//!
//! let tx = SignedTx::sign(
//!     Tx {
//!         chain_id: state.chain_id().to_string(),
//!         sender: Address::from_key(&alice.verifying_key()),
//!         nonce: 0,
//!         fee: 10,
//!         body: TxBody::Transfer(Transfer { to: bob, amount: 500 }),
//!     },
//!     &alice,
//! );
//! state.check_tx(&tx).expect("valid transfer");
//! // The beacon is the block's randomness (it seeds the rounds the block opens).
//! let beacon = Digest::hash(b"block 1");
//! let outcome = state.apply_block(&Block { height: 1, proposer: bob, beacon, txs: vec![tx] });
//! assert!(outcome.receipts[0].is_ok());
//! assert_eq!(state.account(&bob).balance, 510); // amount + fee (bob proposed the block)
//!
//! // A light client checks bob's account against the root.
//! let proof = state.prove(&StateKey::Account(bob)).expect("bob exists");
//! verify_proof(&outcome.root, &proof).expect("proof verifies");
//! ```
//!
//! # Layout
//!
//! - [`tx`]: the signed envelope, its canonical encoding, and one module per transaction kind;
//!   the module docs say how to add a transaction (one module + one enum variant).
//! - [`State`]: accounts, datasets, tasks, models, inference offers and payment channels, and
//!   block application.
//! - [`payment`]: the vouchers payers sign and the receipts providers sign, with their canonical
//!   encodings; `ChannelClaim` redeems the first, `ReceiptDispute` re-executes the second with
//!   `deai-infer` (the module docs of `tx` list every transaction).
//! - [`proof`]: state keys, inclusion proofs and [`verify_proof`]; the root is a
//!   `commonware_storage` in-memory MMR updated incrementally per block. [`verify_entry`] checks a
//!   whole entry someone sent (fields, round log, history) against its proof.
//! - [`verify_signatures`]: batched ed25519 in parallel chunks.

mod block;
mod codec;
mod committed;
mod error;
mod event;
mod genesis;
mod param_change;
mod params;
pub mod payment;
pub mod proof;
mod state;
pub mod submission;
pub mod tx;
mod types;
mod verify;

pub use block::{Block, BlockOutcome, Receipt};
pub use committed::{Committed, verify_entry};
pub use error::{DecodeError, EntityKind, GenesisError, ProofError, TxError};
pub use event::{DisputeCause, EmissionRole, Event, HistoryEntry};
pub use genesis::{Genesis, TOKEN, VALIDATOR_DEV_BALANCE};
pub use param_change::FIXED_AT_GENESIS;
pub use params::{
    BPS_SCALE, CHALLENGE_DEPOSIT_DEFAULT, CHALLENGE_REWARD_BPS_DEFAULT,
    CHALLENGE_VOTE_BLOCKS_DEFAULT, CHANNEL_EXPIRY_MAX_DEFAULT, COORDINATOR_BOND_DEFAULT,
    DELTA_SCALE, DISPUTE_BOND_DEFAULT, DISPUTE_FEE_PER_BYTE_DEFAULT,
    DISPUTE_INPUT_BYTES_MAX_DEFAULT, DISPUTE_MODEL_BYTES_MAX_DEFAULT,
    DISPUTE_MODEL_BYTES_MAX_LIMIT, DISPUTE_OPS_MAX_DEFAULT, DISPUTE_OPS_MAX_LIMIT,
    DISPUTE_REWARD_BPS_DEFAULT, DISPUTE_WINDOW_BLOCKS_DEFAULT, EMISSION_TREASURY_BPS_DEFAULT,
    EPOCH_BLOCKS_DEFAULT, EPOCH_BLOCKS_MIN, EPSILON_SCALE, GOV_DEPOSIT_MIN_DEFAULT,
    GOV_EXECUTE_WINDOW_BLOCKS_DEFAULT, GOV_QUORUM_BPS_DEFAULT, GOV_THRESHOLD_BPS_DEFAULT,
    GOV_TIMELOCK_BLOCKS_DEFAULT, GOV_VETO_BPS_DEFAULT, GOV_VOTING_BLOCKS_DEFAULT, Limits,
    METRIC_SCALE, NOISE_SCALE, OFFER_BOND_MIN_DEFAULT, OFFER_ENDPOINT_BYTES_MAX_DEFAULT,
    OFFER_UNBOND_BLOCKS_DEFAULT, Params, RECEIPT_OUTPUT_BYTES_MAX_DEFAULT,
    ROUND_TIMEOUT_BLOCKS_DEFAULT, TASK_EPSILON_MAX_DEFAULT, VALIDATOR_COMMISSION_BPS_DEFAULT,
    VALIDATOR_STAKE_MIN_DEFAULT, VALIDATORS_MAX_DEFAULT,
};
pub use payment::{QueryReceipt, SignedLeaves, SignedQueryReceipt, SignedVoucher, Voucher};
pub use proof::{Proof, StateKey, verify_proof};
pub use state::{
    Account, BlockDecision, BlockTarget, Challenge, Channel, ChannelStatus, Choice, Claim, Closing,
    ConsentPolicy, Contributor, CoordinatorBond, DELEGATIONS_MAX, Dataset, DelegationEntry,
    DelegationList, EPSILON_SCHEDULE_STEPS_MAX, EpsilonStep, Member, Metric, Model, Offer,
    OfferStatus, PARAM_CHANGES_MAX, ParamSet, PowerSnapshot, Proposal, ProposalKind,
    ProposalStatus, Round, RoundOutcome, SCORE_SCALE, Score, SecAggParams, Snapshot, SnapshotError,
    State, SupplyReport, Tally, Task, TaskStatus, TaskTerms, Unbonding, ValidatorKey, ValidatorSet,
    Verdict, Vote, select, selection_seed, treasury,
};
pub use tx::{
    ChallengeVote, ChannelClaim, ChannelClose, ChannelOpen, ChannelTopUp, ConsentRevoke,
    ConsentUpdate, DatasetRegister, Delegate, Execute, ModelRegister, OfferCreate, OfferUpdate,
    OfferWithdraw, Propose, ReceiptDispute, RoundChallenge, RoundExpire, RoundOpen, RoundResult,
    SignedTx, Stake, TaskCancel, TaskClose, TaskCommitValidation, TaskCreate, TaskSetCoordinator,
    Transfer, Tx, TxBody, Undelegate, Unstake, ValidatorDeclare, Vote as GovVote,
    dataset_commitment, validation_commitment,
};
pub use types::{
    Address, Digest, HexError, TxId, allocations, amount, decimal, epsilon_decimal, hex_bytes,
    hex_sig,
};
pub use verify::verify_signatures;
