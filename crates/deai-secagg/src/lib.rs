//! SecAgg+ secure aggregation for deai as pure, sans-IO client and server state machines.
//!
//! The protocol is SecAgg+ (Bell et al., CCS 2020) on top of SecAgg (Bonawitz et al., CCS 2017):
//! each client masks its quantized input with a self mask and with pairwise masks agreed with
//! its neighbours on a random `k`-regular graph, and Shamir-shares (threshold `t`) the secrets
//! that let the server remove the masks of whoever drops out. Against a server that lies about
//! who dropped and colludes with up to `c` corrupt neighbours of any client, it runs the
//! malicious-model variant: thresholds checked at every step by both sides, a consistency step
//! in which the survivors sign the survivor list before anyone reveals a share (Bonawitz §4.4),
//! `2t > k + 1 + c`, and signed masked inputs and self-seed commitments so that the public
//! re-computation catches a swapped input or seed. The server learns only the sum.
//!
//! - [`params`]: `k` and `t` from a threat model; [`quant`]: floats to integers and back.
//! - [`client`] and [`server`]: the state machines; [`msg`]: their messages and canonical
//!   encoding ([`wire`]: the codec's rules, shared with the ledger and the round's blobs).
//! - [`sim`], [`mod@bench`] (feature `sim`): one full round in memory for tests, and the
//!   measured round of `deai bench secagg`.
//!
//! Every state machine of this crate and of `deai-fed` has one shape (quinn-proto's): input
//! through `handle_*` methods (`Client::handle_server_msg`, `Server::handle_client_msg` /
//! `handle_client_bytes`), output through `poll_transmit` until it gives `None`, and no clock: a
//! server step closes when its driver calls `advance` (at the driver's deadline, or when every
//! member answered). Randomness comes from the caller.
//! - [`verify`]: anyone re-computes the aggregate from the masked inputs and the record.
//!
//! ```
//! use deai_secagg::{params::Params, sim::{run_round, SimSpec}};
//! use deai_secagg::params::Adversary;
//! let params = Params::for_threat_model(8, 0.2, 0.2, 40, 20, Adversary::SemiMalicious)
//!     .expect("feasible");
//! assert_eq!((params.degree, params.threshold, params.corrupt_neighbours_max), (6, 5, 1));
//! let mut spec = SimSpec::with_dropout(params, 16, 0.2, 7);
//! spec.verify = true;
//! let report = run_round(&spec).expect("round completes");
//! assert!(report.exact);
//! assert_eq!(report.verified, Some(true));
//! assert_eq!(report.record.survivors.len(), 6);
//! ```

#[cfg(feature = "sim")]
pub mod bench;
pub mod client;
pub mod config;
pub mod crypto;
pub mod graph;
pub mod msg;
pub mod params;
pub mod prg;
pub mod quant;
pub mod server;
pub mod shamir;
#[cfg(feature = "sim")]
#[allow(
    clippy::disallowed_methods,
    reason = "the in-memory harness times its steps; the protocol itself never reads a clock"
)]
pub mod sim;
mod unmask;
pub mod verify;
pub mod wire;

pub use unmask::hash_vector;
