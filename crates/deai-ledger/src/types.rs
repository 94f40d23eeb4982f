//! Byte-array identifiers ([`Address`], [`Digest`]) and the serde helpers that write amounts as
//! decimal strings and bytes as hex, so JSON clients never lose precision on a `u128`.

use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{Error as CodecError, FixedSize, Read, Write};
use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Errors from parsing a hex identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The text is not valid hex.
    #[error("not hex: {0:?}")]
    NotHex(String),
    /// The text decodes to the wrong number of bytes.
    #[error("expected {expected} bytes, got {got}")]
    WrongLength {
        /// Bytes required.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
}

fn parse_hex32(s: &str) -> Result<[u8; 32], HexError> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(s).map_err(|_| HexError::NotHex(s.chars().take(80).collect()))?;
    let got = bytes.len();
    bytes
        .try_into()
        .map_err(|_| HexError::WrongLength { expected: 32, got })
}

macro_rules! hex32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode(self.0))
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, HexError> {
                parse_hex32(s).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl Write for $name {
            fn write(&self, buf: &mut impl BufMut) {
                self.0.write(buf);
            }
        }

        impl FixedSize for $name {
            const SIZE: usize = 32;
        }

        impl Read for $name {
            type Cfg = ();
            fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
                <[u8; 32]>::read_cfg(buf, &()).map(Self)
            }
        }
    };
}

hex32!(
    /// An account: the 32-byte ed25519 verifying key that signs its transactions.
    Address
);
hex32!(
    /// A BLAKE3 digest (content addresses, tx ids, state roots).
    Digest
);

/// A transaction id: BLAKE3 of the signed transaction's canonical encoding.
pub type TxId = Digest;

impl Address {
    /// The address of an ed25519 verifying key.
    pub fn from_key(key: &ed25519_dalek::VerifyingKey) -> Self {
        Self(key.to_bytes())
    }
}

impl Digest {
    /// BLAKE3 of `data`.
    pub fn hash(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }
}

/// Serde for `u128` amounts as decimal strings (JSON numbers lose precision past 2^53).
pub mod amount {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write the amount as a decimal string.
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    /// Read an amount from a decimal string (or a small JSON integer).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(u64),
        }
        match Either::deserialize(d)? {
            Either::Text(t) => t.parse().map_err(serde::de::Error::custom),
            Either::Number(n) => Ok(u128::from(n)),
        }
    }
}

/// A fixed-point value (`value / scale`, `scale` a power of ten) as an exact decimal string: ε of
/// `1_500_000` at [`crate::EPSILON_SCALE`] is `1.5`, one base unit at [`crate::TOKEN`] is
/// `0.000000000000000001`. The `_decimal` companions of fixed-point fields in JSON answers use it.
pub fn decimal(value: u128, scale: u128) -> String {
    let scale = scale.max(1);
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = scale.ilog10() as usize;
    let frac = format!("{frac:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// A fixed-point ε ([`crate::EPSILON_SCALE`]) as an exact decimal string.
pub fn epsilon_decimal(fixed: u64) -> String {
    decimal(u128::from(fixed), u128::from(crate::EPSILON_SCALE))
}

/// Serde for byte vectors as hex strings.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write the bytes as lowercase hex.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Read bytes from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

/// Serde for a signature (`[u8; 64]`) as hex.
pub mod hex_sig {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write the signature as lowercase hex.
    pub fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Read a 64-byte signature from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(s).map_err(serde::de::Error::custom)?;
        let got = v.len();
        v.try_into().map_err(|_| {
            serde::de::Error::custom(format!("signature: expected 64 bytes, got {got}"))
        })
    }
}

/// Serde for `Vec<(Address, u128)>` as `[{"address": "..", "amount": ".."}]`.
pub mod allocations {
    use super::Address;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Entry {
        address: Address,
        #[serde(with = "super::amount")]
        amount: u128,
    }

    /// Write the allocations as a list of objects.
    pub fn serialize<S: Serializer>(v: &[(Address, u128)], s: S) -> Result<S::Ok, S::Error> {
        let entries: Vec<Entry> = v
            .iter()
            .map(|&(address, amount)| Entry { address, amount })
            .collect();
        entries.serialize(s)
    }

    /// Read the allocations from a list of objects.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(Address, u128)>, D::Error> {
        let entries = Vec::<Entry>::deserialize(d)?;
        Ok(entries.into_iter().map(|e| (e.address, e.amount)).collect())
    }
}
