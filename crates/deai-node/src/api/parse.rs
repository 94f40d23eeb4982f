//! Parsing of path parameters, with errors that name the parameter and the expected form.

use deai_ledger::{Address, Digest};

use super::ApiError;

/// Parses a 32-byte value written as 64 hex characters.
fn hex32(what: &'static str, code: &'static str, s: &str) -> Result<[u8; 32], ApiError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| {
        ApiError::bad_request(
            code,
            format!("{what} must be 64 hex characters (32 bytes): {e}"),
        )
    })?;
    Ok(out)
}

/// An account address in a path.
pub(super) fn address(s: &str) -> Result<Address, ApiError> {
    hex32("an address", "bad_address", s).map(Address)
}

/// A transaction id in a path.
pub(super) fn tx_id(s: &str) -> Result<Digest, ApiError> {
    hex32("a transaction id", "bad_tx_id", s).map(Digest)
}

/// A numeric id (dataset, task, model) or height in a path.
pub(super) fn number(what: &'static str, s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| {
        ApiError::bad_request(
            "bad_id",
            format!("{what} must be a non-negative integer, got {s:?}"),
        )
    })
}
