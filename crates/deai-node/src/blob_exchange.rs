//! A validator's blob store as the chain's blob exchange sees it ([`deai_chain::blob_exchange`]):
//! chunks served from the files, and blobs from other validators written through the same
//! streamed, hash-checked upload path as a client's.
//!
//! What another validator makes this one store counts against that validator's key under the
//! store's upload policy, exactly like a client's upload: the per-key quota
//! (`upload_key_bytes_max` per `upload_key_period_secs`), the store's total
//! (`blob_store_bytes_max`) and the free-disk floor (`disk_free_bytes_min`). So a validator that
//! announces junk can fill at most its own quota here.

use std::sync::Arc;

use deai_chain::blob_exchange::{self as exchange, SharedBlobStore};
use deai_ledger::Digest;

use crate::{
    blob_access::Reservation,
    blobs::{BlobStore, BlobUpload},
};

/// `store` for the chain's [`deai_chain::Config::blob_store`].
pub fn shared(store: BlobStore) -> SharedBlobStore {
    SharedBlobStore(Arc::new(Exchanged(store)))
}

struct Exchanged(BlobStore);

/// A blob arriving from another validator, its bytes reserved against that validator's quota.
struct Incoming {
    upload: BlobUpload,
    reservation: Reservation,
    size: u64,
}

impl exchange::BlobStore for Exchanged {
    fn size(&self, hash: &Digest) -> Option<u64> {
        self.0.size_of(hash).ok().flatten()
    }

    fn read(&self, hash: &Digest, offset: u64, len: usize) -> Option<Vec<u8>> {
        self.0.read_range(hash, offset, len).ok().flatten()
    }

    fn receive(
        &self,
        hash: &Digest,
        size: u64,
        from: &[u8; 32],
    ) -> Result<Box<dyn exchange::BlobSink>, String> {
        if size > self.0.max_size() {
            return Err(format!(
                "{size} bytes is over this store's limit of {}",
                self.0.max_size()
            ));
        }
        let policy = self
            .0
            .upload_policy()
            .ok_or_else(|| "this store takes no uploads yet".to_string())?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(from)
            .map_err(|e| format!("the sending validator's key is not valid: {e}"))?;
        let reservation = policy
            .reserve(&self.0, &key, size)
            .map_err(|e| e.to_string())?;
        let upload = self.0.upload(Some(*hash)).map_err(|e| e.to_string())?;
        Ok(Box::new(Incoming {
            upload,
            reservation,
            size,
        }))
    }

    fn size_max(&self) -> u64 {
        self.0.max_size()
    }
}

impl exchange::BlobSink for Incoming {
    fn write(&mut self, chunk: &[u8]) -> Result<(), String> {
        if self.upload.size() + chunk.len() as u64 > self.size {
            return Err(format!("more than the {} bytes announced", self.size));
        }
        self.upload.write(chunk).map_err(|e| e.to_string())
    }

    fn finish(self: Box<Self>) -> Result<(), String> {
        let Incoming {
            upload,
            reservation,
            ..
        } = *self;
        let outcome = upload.finish().map_err(|e| e.to_string())?;
        reservation.commit(outcome.created, outcome.size);
        Ok(())
    }
}
