//! SecAgg+ secure aggregation for deai as pure, sans-IO client and server state machines.
//!
//! The protocol is SecAgg+ (Bell et al., CCS 2020) on top of SecAgg (Bonawitz et al., CCS 2017):
//! each client masks its quantized input with a self mask and with pairwise masks agreed with
//! its neighbours on a random `k`-regular graph, and Shamir-shares (threshold `t`) the secrets
//! that let the server remove the masks of whoever drops out. The server learns only the sum.
//!
//! - [`params`]: `k` and `t` from a threat model; [`quant`]: floats to integers and back.
//! - [`client`] and [`server`]: the state machines (messages in, messages out; time and
//!   randomness come from the caller); [`msg`]: their messages and canonical encoding.
//! - [`verify`]: anyone re-computes the aggregate from the masked inputs and the record.
//! - [`sim`]: one full round in memory, for tests; [`bench`]: the measured round of
//!   `deai bench secagg`.
//!
//! ```
//! use deai_secagg::{params::Params, sim::{run_round, SimSpec}};
//! let params = Params { clients: 8, degree: 4, threshold: 3 };
//! let report = run_round(&SimSpec::with_dropout(params, 16, 0.25, 7)).expect("round completes");
//! assert!(report.exact);
//! assert_eq!(report.record.survivors.len(), 6);
//! ```

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
pub mod sim;
mod unmask;
pub mod verify;
pub mod wire;

pub use unmask::hash_vector;
