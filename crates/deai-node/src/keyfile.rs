//! Key files: an ed25519 secret seed on disk, readable only by its owner.
//!
//! Format (JSON): `{"kind": "ed25519", "secret": "<64 hex>", "public": "<64 hex>"}`. The public key is
//! stored for people and checked on load, so a file whose halves disagree is refused, not used.

use std::{fs, io::Write as _, path::Path};

use deai_ledger::Address;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing the file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file exists and would be overwritten.
    #[error("key file {0} already exists; choose another path or remove it first")]
    Exists(String),
    /// The contents are not a key file.
    #[error("key file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    kind: String,
    secret: String,
    public: String,
}

/// Creates a new random key and writes it to `path` (mode 0600); refuses to overwrite.
pub fn create(path: &Path) -> Result<SigningKey, KeyFileError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    write(path, &key)?;
    Ok(key)
}

/// Writes `key` to a new file at `path` (mode 0600); refuses to overwrite.
pub fn write(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let shown = path.display().to_string();
    let body = KeyFile {
        kind: "ed25519".into(),
        secret: hex::encode(key.to_bytes()),
        public: hex::encode(key.verifying_key().to_bytes()),
    };
    let text = serde_json::to_string_pretty(&body).expect("a struct of strings always serializes");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists(shown.clone())
        } else {
            KeyFileError::Io {
                path: shown.clone(),
                source,
            }
        }
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyFileError::Io {
            path: shown,
            source,
        })
}

/// Reads a key file.
pub fn read(path: &Path) -> Result<SigningKey, KeyFileError> {
    let shown = path.display().to_string();
    let text = fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: shown.clone(),
        source,
    })?;
    let malformed = |reason: String| KeyFileError::Malformed {
        path: shown.clone(),
        reason,
    };
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
    if file.kind != "ed25519" {
        return Err(malformed(format!(
            "kind is {:?}, expected \"ed25519\"",
            file.kind
        )));
    }
    let mut seed = [0u8; 32];
    hex::decode_to_slice(&file.secret, &mut seed)
        .map_err(|e| malformed(format!("secret must be 64 hex characters: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    if hex::encode(key.verifying_key().to_bytes()) != file.public.to_lowercase() {
        return Err(malformed("public key does not match the secret".into()));
    }
    Ok(key)
}

/// The ledger address of a key.
pub fn address(key: &SigningKey) -> Address {
    Address(key.verifying_key().to_bytes())
}

/// The same key as a Commonware ed25519 private key (consensus and p2p identity).
pub fn to_commonware(key: &SigningKey) -> commonware_cryptography::ed25519::PrivateKey {
    use commonware_codec::DecodeExt as _;
    commonware_cryptography::ed25519::PrivateKey::decode(key.to_bytes().to_vec())
        .expect("32 bytes always decode to an ed25519 private key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refuse_overwrite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("k.json");
        let key = create(&path).expect("create");
        assert_eq!(read(&path).expect("read").to_bytes(), key.to_bytes());
        assert!(matches!(create(&path), Err(KeyFileError::Exists(_))));
    }

    #[test]
    fn mismatched_public_key_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("k.json");
        create(&path).expect("create");
        let text = fs::read_to_string(&path).expect("read");
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v["public"] = serde_json::Value::String("00".repeat(32));
        fs::write(&path, v.to_string()).expect("write");
        assert!(matches!(read(&path), Err(KeyFileError::Malformed { .. })));
    }

    #[test]
    fn commonware_key_has_the_same_public_key() {
        use commonware_cryptography::Signer as _;
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let cw = to_commonware(&key);
        assert_eq!(cw.public_key().as_ref(), key.verifying_key().as_bytes());
    }
}
