//! The chain's block: a header committing to the parent block and the parent's state root,
//! and the ordered signed transactions.
//!
//! Encoding (canonical; the digest is BLAKE3 of exactly these bytes):
//!
//! ```text
//! parent digest (32) | height (u64 BE) | proposer (32) | parent state root (32)
//! | timestamp_ms (u64 BE) | entropy (32) | tx count (varint) | per tx: length (varint)
//! | SignedTx bytes
//! ```
//!
//! `entropy` is drawn by the proposer from its runtime's RNG when it builds the block. The
//! block's digest, which covers it, is the ledger's beacon for the block
//! ([`deai_ledger::Block::beacon`]): it seeds the selection of rounds opened in the block, so a
//! party other than the proposer cannot know the draw before the block exists. A proposer could
//! still choose among many entropies; a beacon no single validator controls needs a threshold
//! signature from consensus (Commonware's threshold simplex), which needs several validators.
//!
//! Decoding is bounded by [`BlockCfg`]: at most `txs_max` transactions of at most
//! `tx_bytes_max` bytes each, every transaction decoded by the ledger's bounded decoder and
//! re-encoded to check it is canonical, so one block has exactly one encoding.
//!
//! The block at height 0 is the genesis block: an empty block whose parent state root is the
//! genesis state root, so two chains with different genesis files never share a block digest.

use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, Read, ReadExt as _, Write, varint::UInt,
};
use commonware_consensus::{BoundedBlock, Heightable, types::Height};
use commonware_cryptography::{Digest as _, Digestible};
use deai_ledger::{Address, Limits, Params, SignedTx};
use std::sync::Arc;

/// The digest that names a block (BLAKE3 of its encoding).
pub type BlockDigest = commonware_cryptography::blake3::Digest;

/// Fixed header length: parent, height, proposer, parent state root, timestamp, entropy.
const HEADER_BYTES: usize = 32 + 8 + 32 + 32 + 8 + 32;

/// Bounds for decoding a block, derived from the genesis [`Params`].
#[derive(Clone, Debug)]
pub struct BlockCfg {
    /// Most transactions in one block.
    pub txs_max: usize,
    /// Most bytes of one encoded transaction.
    pub tx_bytes_max: usize,
    /// Most bytes of all of a block's encoded transactions together.
    pub bytes_max: usize,
    /// The ledger's decoding bounds for transactions.
    pub limits: Limits,
}

impl BlockCfg {
    /// Bounds taken from the ledger parameters.
    pub fn from_params(params: &Params) -> Self {
        let limits = params.limits();
        Self {
            txs_max: limits.block_txs_max,
            tx_bytes_max: limits.tx_bytes_max,
            bytes_max: limits.block_bytes_max,
            limits,
        }
    }
}

/// A block of the deai chain.
#[derive(Clone, Debug)]
pub struct Block {
    /// Digest of the parent block.
    pub parent: BlockDigest,
    /// Height (genesis is 0).
    pub height: u64,
    /// The validator that proposed it; fees go to this account.
    pub proposer: Address,
    /// The ledger state root after the parent block.
    pub parent_state_root: deai_ledger::Digest,
    /// The proposer's clock when it built the block (informational, not validated).
    pub timestamp_ms: u64,
    /// Randomness the proposer drew for the block (see the module docs; not validated).
    pub entropy: [u8; 32],
    txs: Vec<SignedTx>,
    /// The canonical encoding of each transaction, computed once.
    tx_bytes: Vec<Vec<u8>>,
}

impl PartialEq for Block {
    fn eq(&self, other: &Self) -> bool {
        self.digest() == other.digest()
    }
}

impl Eq for Block {}

impl Block {
    /// Builds a block, encoding each transaction once.
    pub fn new(
        parent: BlockDigest,
        height: u64,
        proposer: Address,
        parent_state_root: deai_ledger::Digest,
        timestamp_ms: u64,
        entropy: [u8; 32],
        txs: Vec<SignedTx>,
    ) -> Self {
        let tx_bytes = txs.iter().map(SignedTx::encode).collect();
        Self {
            parent,
            height,
            proposer,
            parent_state_root,
            timestamp_ms,
            entropy,
            txs,
            tx_bytes,
        }
    }

    /// The genesis block of a chain whose genesis state has root `genesis_root`.
    pub fn genesis(genesis_root: deai_ledger::Digest) -> Self {
        Self::new(
            BlockDigest::EMPTY,
            0,
            Address([0; 32]),
            genesis_root,
            0,
            [0; 32],
            Vec::new(),
        )
    }

    /// The ordered transactions.
    pub fn txs(&self) -> &[SignedTx] {
        &self.txs
    }

    /// Total encoded bytes of the transactions.
    pub fn txs_bytes(&self) -> usize {
        self.tx_bytes.iter().map(Vec::len).sum()
    }

    /// The ledger's view of this block, whose digest is `digest` (the caller has it already;
    /// hashing the whole block again per applied block would be wasted). The digest is the
    /// ledger's beacon for the block.
    pub fn to_ledger(&self, digest: &BlockDigest) -> deai_ledger::Block {
        debug_assert_eq!(
            *digest,
            self.digest(),
            "to_ledger given another block's digest"
        );
        deai_ledger::Block {
            height: self.height,
            proposer: self.proposer,
            beacon: digest_bytes(digest),
            txs: self.txs.clone(),
        }
    }
}

/// The 32 raw bytes of a block digest, as the ledger's digest type (for the public API).
pub fn digest_bytes(d: &BlockDigest) -> deai_ledger::Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    deai_ledger::Digest(out)
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        self.parent.write(buf);
        buf.put_u64(self.height);
        buf.put_slice(&self.proposer.0);
        buf.put_slice(&self.parent_state_root.0);
        buf.put_u64(self.timestamp_ms);
        buf.put_slice(&self.entropy);
        UInt(self.tx_bytes.len() as u64).write(buf);
        for bytes in &self.tx_bytes {
            UInt(bytes.len() as u64).write(buf);
            buf.put_slice(bytes);
        }
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        HEADER_BYTES
            + UInt(self.tx_bytes.len() as u64).encode_size()
            + self
                .tx_bytes
                .iter()
                .map(|b| UInt(b.len() as u64).encode_size() + b.len())
                .sum::<usize>()
    }
}

fn read_array(buf: &mut impl Buf) -> Result<[u8; 32], CodecError> {
    if buf.remaining() < 32 {
        return Err(CodecError::EndOfBuffer);
    }
    let mut out = [0u8; 32];
    buf.copy_to_slice(&mut out);
    Ok(out)
}

fn read_u64(buf: &mut impl Buf) -> Result<u64, CodecError> {
    if buf.remaining() < 8 {
        return Err(CodecError::EndOfBuffer);
    }
    Ok(buf.get_u64())
}

pub(crate) fn read_len(buf: &mut impl Buf, max: usize) -> Result<usize, CodecError> {
    let len = UInt::<u64>::read(buf)?.0;
    let len = usize::try_from(len).map_err(|_| CodecError::InvalidUsize)?;
    if len > max {
        return Err(CodecError::InvalidLength(len));
    }
    Ok(len)
}

impl Read for Block {
    type Cfg = BlockCfg;

    fn read_cfg(buf: &mut impl Buf, cfg: &BlockCfg) -> Result<Self, CodecError> {
        let parent = BlockDigest::read(buf)?;
        let height = read_u64(buf)?;
        let proposer = Address(read_array(buf)?);
        let parent_state_root = deai_ledger::Digest(read_array(buf)?);
        let timestamp_ms = read_u64(buf)?;
        let entropy = read_array(buf)?;
        let count = read_len(buf, cfg.txs_max)?;
        let mut txs = Vec::with_capacity(count);
        let mut tx_bytes = Vec::with_capacity(count);
        let mut total = 0usize;
        for _ in 0..count {
            let len = read_len(buf, cfg.tx_bytes_max)?;
            if buf.remaining() < len {
                return Err(CodecError::EndOfBuffer);
            }
            total += len;
            if total > cfg.bytes_max {
                return Err(CodecError::Invalid(
                    "block",
                    "transactions exceed the block's byte bound",
                ));
            }
            let mut bytes = vec![0u8; len];
            buf.copy_to_slice(&mut bytes);
            let tx = SignedTx::decode_limits(&bytes, &cfg.limits)
                .map_err(|e| CodecError::Wrapped("signed tx", Box::new(e)))?;
            if tx.encode() != bytes {
                return Err(CodecError::Invalid(
                    "block",
                    "non-canonical transaction encoding",
                ));
            }
            txs.push(tx);
            tx_bytes.push(bytes);
        }
        Ok(Self {
            parent,
            height,
            proposer,
            parent_state_root,
            timestamp_ms,
            entropy,
            txs,
            tx_bytes,
        })
    }
}

impl Digestible for Block {
    type Digest = BlockDigest;

    fn digest(&self) -> BlockDigest {
        let mut hasher = blake3::Hasher::new();
        let mut header = Vec::with_capacity(HEADER_BYTES + 10);
        self.parent.write(&mut header);
        header.put_u64(self.height);
        header.put_slice(&self.proposer.0);
        header.put_slice(&self.parent_state_root.0);
        header.put_u64(self.timestamp_ms);
        header.put_slice(&self.entropy);
        UInt(self.tx_bytes.len() as u64).write(&mut header);
        hasher.update(&header);
        let mut prefix = Vec::with_capacity(10);
        for bytes in &self.tx_bytes {
            prefix.clear();
            UInt(bytes.len() as u64).write(&mut prefix);
            hasher.update(&prefix);
            hasher.update(bytes);
        }
        commonware_cryptography::blake3::Digest(*hasher.finalize().as_bytes())
    }
}

impl Heightable for Block {
    fn height(&self) -> Height {
        Height::new(self.height)
    }
}

impl commonware_consensus::Block for Block {
    fn parent(&self) -> BlockDigest {
        self.parent
    }
}

impl BoundedBlock for Block {
    fn max_encode_size(cfg: &BlockCfg) -> usize {
        // Every transaction at its bound, or the block's byte bound with a length prefix per
        // transaction, whichever is smaller.
        let prefix = UInt(cfg.tx_bytes_max as u64).encode_size();
        let txs = cfg.txs_max.saturating_mul(prefix + cfg.tx_bytes_max).min(
            cfg.txs_max
                .saturating_mul(prefix)
                .saturating_add(cfg.bytes_max),
        );
        HEADER_BYTES + UInt(cfg.txs_max as u64).encode_size() + txs
    }
}

/// A finalized block as it is kept in the chain's block store: the block and when it finalized here.
#[derive(Clone, Debug)]
pub(crate) struct StoredBlock {
    pub(crate) block: Arc<Block>,
    pub(crate) finalized_at_ms: u64,
}

impl Write for StoredBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.block.write(buf);
        buf.put_u64(self.finalized_at_ms);
    }
}

impl EncodeSize for StoredBlock {
    fn encode_size(&self) -> usize {
        self.block.encode_size() + 8
    }
}

impl Read for StoredBlock {
    type Cfg = BlockCfg;

    fn read_cfg(buf: &mut impl Buf, cfg: &BlockCfg) -> Result<Self, CodecError> {
        let block = Arc::new(Block::read_cfg(buf, cfg)?);
        let finalized_at_ms = read_u64(buf)?;
        Ok(Self {
            block,
            finalized_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;
    use commonware_codec::{Decode as _, Encode as _};
    use deai_ledger::{Transfer, Tx, TxBody};
    use ed25519_dalek::SigningKey;

    fn tx(nonce: u64) -> SignedTx {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let tx = Tx {
            chain_id: "deai-test".into(),
            sender: Address(key.verifying_key().to_bytes()),
            nonce,
            fee: 1,
            body: TxBody::Transfer(Transfer {
                to: Address([1; 32]),
                amount: 5,
            }),
        };
        SignedTx::sign(tx, &key)
    }

    fn block(n: u64) -> Block {
        let root = deai_ledger::Digest([4; 32]);
        Block::new(
            BlockDigest::EMPTY,
            7,
            Address([2; 32]),
            root,
            99,
            [6; 32],
            (0..n).map(tx).collect(),
        )
    }

    fn cfg() -> BlockCfg {
        BlockCfg::from_params(&Params::default())
    }

    #[test]
    fn round_trips_and_digest_is_hash_of_encoding() {
        let b = block(3);
        let bytes = b.encode();
        assert_eq!(bytes.len(), b.encode_size());
        assert_eq!(b.digest().0, *blake3::hash(&bytes).as_bytes());
        let back = Block::decode_cfg(bytes.clone(), &cfg()).unwrap();
        assert_eq!(back.digest(), b.digest());
        assert_eq!(back.txs(), b.txs());
        assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn digest_commits_to_every_field() {
        let b = block(2);
        let mut other = block(2);
        other.parent_state_root = deai_ledger::Digest([5; 32]);
        assert_ne!(b.digest(), other.digest());
        let mut other = block(2);
        other.entropy[0] ^= 1;
        assert_ne!(b.digest(), other.digest(), "entropy is committed");
        assert_ne!(
            b.to_ledger(&b.digest()).beacon,
            other.to_ledger(&other.digest()).beacon
        );
        assert_ne!(b.digest(), block(1).digest());
        assert_ne!(
            Block::genesis(deai_ledger::Digest([1; 32])).digest(),
            Block::genesis(deai_ledger::Digest([2; 32])).digest()
        );
    }

    #[test]
    fn decoding_is_bounded() {
        let b = block(3);
        let mut small = cfg();
        small.txs_max = 2;
        assert!(
            Block::decode_cfg(b.encode(), &small).is_err(),
            "too many txs"
        );
        let mut short = cfg();
        short.tx_bytes_max = 10;
        assert!(
            Block::decode_cfg(b.encode(), &short).is_err(),
            "oversized tx"
        );
        let mut tight = cfg();
        tight.bytes_max = b.txs_bytes() - 1;
        assert!(
            Block::decode_cfg(b.encode(), &tight).is_err(),
            "over the block's byte bound"
        );
        tight.bytes_max = b.txs_bytes();
        assert!(
            Block::decode_cfg(b.encode(), &tight).is_ok(),
            "at the bound"
        );
        assert!(Block::max_encode_size(&tight) >= b.encode().len());
        let bytes = b.encode();
        assert!(
            Block::decode_cfg(commonware_codec::Copying(&bytes[..bytes.len() - 1]), &cfg())
                .is_err(),
            "truncated"
        );
        let mut corrupt = bytes.to_vec();
        let last = corrupt.len() - 70;
        corrupt[last] ^= 1;
        if let Ok(decoded) =
            Block::decode_cfg(commonware_codec::Copying(corrupt.as_slice()), &cfg())
        {
            assert_ne!(decoded.digest(), b.digest());
        }
        assert!(Block::max_encode_size(&cfg()) >= bytes.len());
    }
}
