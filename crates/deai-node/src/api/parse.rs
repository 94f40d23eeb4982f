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

/// A numeric id (dataset, task, model) or height in a path: plain decimal digits, no sign, no
/// leading zero (`u64::from_str` alone takes `+1`, so two spellings would name one block).
pub(super) fn number(what: &'static str, s: &str) -> Result<u64, ApiError> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical
        .then(|| s.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_id",
                format!(
                    "{what} must be a decimal integer from 0 to {} without sign or leading zeros, \
                 got {s:?}",
                    u64::MAX
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn only_canonical_decimals_are_numbers() {
        for ok in ["0", "1", "42", "18446744073709551615"] {
            assert_eq!(number("n", ok).expect("test").to_string(), ok);
        }
        for bad in [
            "+1",
            "-1",
            "01",
            "00",
            "",
            " 1",
            "1 ",
            "1e3",
            "0x1",
            "18446744073709551616",
        ] {
            let err = number("n", bad).expect_err("test");
            assert_eq!(err.code, "bad_id", "{bad:?}");
        }
    }

    proptest! {
        /// A number parses exactly when it is the canonical spelling of a u64.
        #[test]
        fn a_number_is_its_own_spelling(s in "[+0-9-]{0,22}") {
            match number("n", &s) {
                Ok(n) => prop_assert_eq!(n.to_string(), s),
                Err(e) => prop_assert!(s.parse::<u64>().map_or(true, |n| n.to_string() != s), "{}", e),
            }
        }
    }
}
