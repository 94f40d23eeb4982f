//! What a payer and a provider sign off-chain: cumulative payment [`Voucher`]s and query
//! [`QueryReceipt`]s, with their canonical encodings. The ledger verifies both (`ChannelClaim`
//! redeems a voucher, `ReceiptDispute` re-executes a receipt); the node's provider role, the CLI
//! and agents build and check them with the same code.
//!
//! # Voucher (`deai-voucher-v1`)
//!
//! ```text
//! Voucher       = chain_id (varint len ‖ UTF-8) ‖ channel_id u64 BE ‖ cumulative_amount u128 BE
//! SignedVoucher = Voucher ‖ signature[64]
//! ```
//!
//! The payer signs `"deai-voucher-v1" ‖ Voucher` with the ed25519 key of the account that opened
//! the channel. The amount is cumulative: the payer's total for the channel so far, so a provider
//! keeps only the highest voucher and a lost or replayed one is harmless (a claim pays
//! `cumulative_amount − already claimed`, and only a higher amount pays anything).
//!
//! # Receipt (`deai-receipt-v1`)
//!
//! ```text
//! QueryReceipt = chain_id (varint len ‖ UTF-8) ‖ offer_id u64 BE ‖ channel_id u64 BE
//!              ‖ sequence u64 BE ‖ input_hash[32] ‖ output (varint len ‖ bytes)
//!              ‖ model_hash[32] ‖ voucher_amount u128 BE
//! ReceiptBatch = position u32 BE ‖ leaf_count u32 BE ‖ siblings (varint n ‖ n × 32 bytes)
//!              ‖ root[32]
//! SignedQueryReceipt = QueryReceipt ‖ ReceiptBatch ‖ signature[64]
//! ```
//!
//! A provider signs the receipts of a batch of queries at once: each receipt's leaf is
//! BLAKE3(`"deai-receipt-v1" ‖ QueryReceipt`), the leaves form a binary Merkle tree
//! (`commonware_storage::bmt` over BLAKE3: position-hashed leaves, the root bound to the leaf
//! count), and the provider signs `"deai-receipt-v1" ‖ root` with its account key. Each receipt
//! carries its position, the siblings up to the root and the root, so it is checked, and
//! disputed, alone. A single query is a batch of one. One signature per batch is what keeps the
//! cost of paid queries small (docs/inference.md): a provider sends a payer the batch's leaves and
//! signature ([`SignedLeaves`]) and the payer rebuilds its own receipts and their proofs. `input_hash` is
//! BLAKE3 of the query's input bytes, `output` is `deai_infer::Output::to_bytes` of the answer,
//! `model_hash` the BLAKE3 of the quantized model blob the offer names, `voucher_amount` the
//! cumulative voucher the query was paid with, `sequence` the provider's number for the query
//! within the channel (a channel's receipt of a given sequence can be disputed once).
//!
//! Lengths are canonical varints and every decoder is bounded by [`Limits`] (chain id and output
//! lengths are checked before allocating); decoding never panics, trailing bytes are an error,
//! and `encode(decode(b)) == b` for every accepted `b`.

use crate::codec::{bytes_size, read_bytes, read_str, str_size, write_bytes, write_str};
use crate::error::DecodeError;
use crate::params::{Limits, Params};
use crate::types::{Address, Digest};
use bytes::BufMut;
use commonware_codec::{Buf, Decode, EncodeSize, Error as CodecError, Read, Write};
use commonware_cryptography::blake3::{Blake3, Digest as B3Digest};
use commonware_storage::bmt;
use ed25519_dalek::{Signer, Verifier};
use serde::{Deserialize, Serialize};

/// Prefix of every voucher signature.
pub const VOUCHER_DOMAIN: &[u8] = b"deai-voucher-v1";
/// Prefix of every receipt signature.
pub const RECEIPT_DOMAIN: &[u8] = b"deai-receipt-v1";

/// Why a voucher or receipt is refused off-chain.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The bytes are not a canonical encoding within the limits.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The signature does not verify against the expected signer.
    #[error("{what} signature does not verify against {signer}")]
    BadSignature {
        /// `"voucher"` or `"receipt"`.
        what: &'static str,
        /// Who should have signed.
        signer: Address,
    },
}

/// A payer's promise: the channel's payee may take up to `cumulative_amount` in total.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voucher {
    /// The chain the channel lives on.
    pub chain_id: String,
    /// The channel.
    pub channel_id: u64,
    /// Everything the payer owes on this channel so far, base units.
    #[serde(with = "crate::types::amount")]
    pub cumulative_amount: u128,
}

/// A [`Voucher`] with the payer's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVoucher {
    /// The signed content.
    pub voucher: Voucher,
    /// ed25519 over [`VOUCHER_DOMAIN`] ‖ voucher encoding.
    #[serde(with = "crate::types::hex_sig")]
    pub signature: [u8; 64],
}

/// A provider's statement of one answered query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryReceipt {
    /// The chain the offer lives on.
    pub chain_id: String,
    /// The offer the query was served under.
    pub offer_id: u64,
    /// The channel that paid for it.
    pub channel_id: u64,
    /// The provider's number for the query within the channel.
    pub sequence: u64,
    /// BLAKE3 of the input bytes.
    pub input_hash: Digest,
    /// The answer: `deai_infer::Output::to_bytes`.
    #[serde(with = "crate::types::hex_bytes")]
    pub output: Vec<u8>,
    /// BLAKE3 of the quantized model blob that answered (the offer's).
    pub model_hash: Digest,
    /// The cumulative voucher amount the query was paid with.
    #[serde(with = "crate::types::amount")]
    pub voucher_amount: u128,
}

/// Where a receipt sits in the batch its provider signed at once: a Merkle inclusion proof of
/// the receipt's leaf under the signed root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBatch {
    /// The receipt's position among the batch's leaves.
    pub position: u32,
    /// Receipts in the batch.
    pub leaf_count: u32,
    /// Sibling digests from the leaf up (`commonware_storage::bmt::Proof`).
    pub siblings: Vec<Digest>,
    /// The batch's root: what the provider signed.
    pub root: Digest,
}

/// Most receipts one batch may hold (the proof then has at most 32 siblings).
pub const RECEIPT_BATCH_MAX: u32 = 1 << 16;

/// A [`QueryReceipt`] with the provider's signature over the batch it was answered in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedQueryReceipt {
    /// The signed content.
    pub receipt: QueryReceipt,
    /// Its place in the signed batch.
    pub batch: ReceiptBatch,
    /// ed25519 over [`RECEIPT_DOMAIN`] ‖ `batch.root`.
    #[serde(with = "crate::types::hex_sig")]
    pub signature: [u8; 64],
}

/// `domain ‖ encoding of value`.
fn domain_bytes(domain: &[u8], value: &(impl Write + EncodeSize)) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + value.encode_size());
    out.extend_from_slice(domain);
    value.write(&mut out);
    out
}

/// Checks an ed25519 `signature` by `signer` over `message`.
fn verify(
    what: &'static str,
    signer: &Address,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), PaymentError> {
    let bad = || PaymentError::BadSignature {
        what,
        signer: *signer,
    };
    let key = ed25519_dalek::VerifyingKey::from_bytes(&signer.0).map_err(|_| bad())?;
    key.verify(message, &ed25519_dalek::Signature::from_bytes(signature))
        .map_err(|_| bad())
}

/// Decodes canonical `bytes` as `T` under `limits`; trailing bytes are an error.
fn decode<T: Read<Cfg = Limits>>(bytes: &[u8], limits: &Limits) -> Result<T, DecodeError> {
    Ok(T::decode_cfg(commonware_codec::Copying(bytes), limits)?)
}

impl Voucher {
    /// The bytes the payer signs: [`VOUCHER_DOMAIN`] ‖ canonical encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        domain_bytes(VOUCHER_DOMAIN, self)
    }

    /// Signs the voucher with the payer's key.
    pub fn sign(self, payer: &ed25519_dalek::SigningKey) -> SignedVoucher {
        let signature = payer.sign(&self.signing_bytes()).to_bytes();
        SignedVoucher {
            voucher: self,
            signature,
        }
    }
}

impl SignedVoucher {
    /// Checks the signature against `payer` (the channel's payer).
    pub fn verify(&self, payer: &Address) -> Result<(), PaymentError> {
        verify(
            "voucher",
            payer,
            &self.voucher.signing_bytes(),
            &self.signature,
        )
    }

    /// The canonical bytes (what a query carries, hex-encoded, in its voucher header).
    pub fn encode(&self) -> Vec<u8> {
        commonware_codec::Encode::encode(self).to_vec()
    }

    /// Decodes canonical bytes bounded by `params`.
    pub fn decode(bytes: &[u8], params: &Params) -> Result<Self, DecodeError> {
        Self::decode_limits(bytes, &params.limits())
    }

    /// [`Self::decode`] with precomputed limits.
    pub fn decode_limits(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        decode(bytes, limits)
    }
}

impl QueryReceipt {
    /// The bytes the provider signs: [`RECEIPT_DOMAIN`] ‖ canonical encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        domain_bytes(RECEIPT_DOMAIN, self)
    }

    /// The receipt's leaf in its batch tree: BLAKE3 of [`Self::signing_bytes`].
    pub fn leaf(&self) -> Digest {
        Digest::hash(&self.signing_bytes())
    }

    /// Signs the receipt alone (a batch of one) with the provider's key.
    pub fn sign(self, provider: &ed25519_dalek::SigningKey) -> SignedQueryReceipt {
        let mut one = sign_receipts(vec![self], provider);
        one.pop().expect("one receipt in, one out")
    }
}

/// Signs a batch of receipts with one signature over their Merkle root; each comes back with
/// its inclusion proof. An empty batch signs nothing.
///
/// # Panics
///
/// With more than [`RECEIPT_BATCH_MAX`] receipts (a provider bounds its batches below it).
pub fn sign_receipts(
    receipts: Vec<QueryReceipt>,
    provider: &ed25519_dalek::SigningKey,
) -> Vec<SignedQueryReceipt> {
    assert!(
        receipts.len() <= RECEIPT_BATCH_MAX as usize,
        "receipt batch too large"
    );
    if receipts.is_empty() {
        return Vec::new();
    }
    let leaves: Vec<Digest> = receipts.iter().map(QueryReceipt::leaf).collect();
    let tree = tree(&leaves);
    let signature = provider
        .sign(&root_signing_bytes(&Digest(tree.root().0)))
        .to_bytes();
    receipts
        .into_iter()
        .enumerate()
        .map(|(i, receipt)| in_tree(&tree, receipt, i as u32, signature))
        .collect()
}

/// `receipt`, the leaf at `position` of `tree`, with its inclusion proof and the batch's
/// `signature`.
///
/// # Panics
///
/// With `position` not below the tree's leaf count (callers index their own leaves).
fn in_tree(
    tree: &bmt::Tree<B3Digest>,
    receipt: QueryReceipt,
    position: u32,
    signature: [u8; 64],
) -> SignedQueryReceipt {
    let proof = tree.proof(position).expect("position below the leaf count");
    SignedQueryReceipt {
        receipt,
        batch: ReceiptBatch {
            position,
            leaf_count: proof.leaf_count,
            siblings: proof.siblings.iter().map(|d| Digest(d.0)).collect(),
            root: Digest(tree.root().0),
        },
        signature,
    }
}

/// The Merkle tree of a batch's leaves.
fn tree(leaves: &[Digest]) -> bmt::Tree<B3Digest> {
    let mut builder = bmt::Builder::<Blake3>::new(leaves.len());
    for leaf in leaves {
        builder.add(&B3Digest(leaf.0));
    }
    builder.build()
}

/// The leaves of one signed receipt batch, in tree order, with the provider's signature over
/// their root: what a provider sends a payer in place of a proof per receipt. The payer, who
/// can rebuild each of its receipts (it knows every field), checks the one signature over the
/// root it computes itself, and builds a receipt's inclusion proof only when it needs one (to
/// dispute it): [`SignedLeaves::receipt`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedLeaves {
    /// [`QueryReceipt::leaf`] of each receipt of the batch (at most [`RECEIPT_BATCH_MAX`]).
    pub leaves: Vec<Digest>,
    /// ed25519 over [`RECEIPT_DOMAIN`] ‖ root of the leaves.
    pub signature: [u8; 64],
}

impl SignedLeaves {
    /// Signs `leaves` (1 to [`RECEIPT_BATCH_MAX`] of them) with the provider's key.
    ///
    /// # Panics
    ///
    /// With no leaf or more than [`RECEIPT_BATCH_MAX`] (a provider bounds its batches).
    pub fn sign(leaves: Vec<Digest>, provider: &ed25519_dalek::SigningKey) -> Self {
        assert!(
            !leaves.is_empty() && leaves.len() <= RECEIPT_BATCH_MAX as usize,
            "a receipt batch holds 1 to {RECEIPT_BATCH_MAX} leaves"
        );
        let root = Digest(tree(&leaves).root().0);
        let signature = provider.sign(&root_signing_bytes(&root)).to_bytes();
        Self { leaves, signature }
    }

    /// Checks the signature against `provider` over the root of the leaves; the root.
    pub fn verify(&self, provider: &Address) -> Result<Digest, PaymentError> {
        if self.leaves.is_empty() || self.leaves.len() > RECEIPT_BATCH_MAX as usize {
            return Err(PaymentError::BadSignature {
                what: "receipt",
                signer: *provider,
            });
        }
        let root = Digest(tree(&self.leaves).root().0);
        verify(
            "receipt",
            provider,
            &root_signing_bytes(&root),
            &self.signature,
        )?;
        Ok(root)
    }

    /// `receipt` as a [`SignedQueryReceipt`] of this batch, with its inclusion proof; `None`
    /// when its leaf is not the one at `position`.
    pub fn receipt(&self, receipt: QueryReceipt, position: u32) -> Option<SignedQueryReceipt> {
        if self.leaves.get(position as usize) != Some(&receipt.leaf()) {
            return None;
        }
        Some(in_tree(
            &tree(&self.leaves),
            receipt,
            position,
            self.signature,
        ))
    }
}

/// What a provider signs for a batch: [`RECEIPT_DOMAIN`] ‖ root.
fn root_signing_bytes(root: &Digest) -> Vec<u8> {
    [RECEIPT_DOMAIN, root.0.as_slice()].concat()
}

impl SignedQueryReceipt {
    /// Checks the receipt's inclusion under its batch root and the provider's signature on that
    /// root, against `provider` (the offer's provider).
    pub fn verify(&self, provider: &Address) -> Result<(), PaymentError> {
        self.verify_inclusion(provider)?;
        self.verify_signature(provider)
    }

    fn verify_inclusion(&self, provider: &Address) -> Result<(), PaymentError> {
        let b = &self.batch;
        let proof = bmt::Proof::<B3Digest> {
            leaf_count: b.leaf_count,
            siblings: b.siblings.iter().map(|d| B3Digest(d.0)).collect(),
        };
        proof
            .verify_element_inclusion::<Blake3>(
                &B3Digest(self.receipt.leaf().0),
                b.position,
                &B3Digest(b.root.0),
            )
            .map_err(|_| PaymentError::BadSignature {
                what: "receipt",
                signer: *provider,
            })
    }

    fn verify_signature(&self, provider: &Address) -> Result<(), PaymentError> {
        verify(
            "receipt",
            provider,
            &root_signing_bytes(&self.batch.root),
            &self.signature,
        )
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        commonware_codec::Encode::encode(self).to_vec()
    }

    /// Decodes canonical bytes bounded by `params`.
    pub fn decode(bytes: &[u8], params: &Params) -> Result<Self, DecodeError> {
        Self::decode_limits(bytes, &params.limits())
    }

    /// [`Self::decode`] with precomputed limits.
    pub fn decode_limits(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        decode(bytes, limits)
    }
}

impl Write for Voucher {
    fn write(&self, buf: &mut impl BufMut) {
        write_str(&self.chain_id, buf);
        self.channel_id.write(buf);
        self.cumulative_amount.write(buf);
    }
}

impl EncodeSize for Voucher {
    fn encode_size(&self) -> usize {
        str_size(&self.chain_id) + 8 + 16
    }
}

impl Read for Voucher {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            chain_id: read_str(buf, cfg.chain_id_bytes_max)?,
            channel_id: u64::read_cfg(buf, &())?,
            cumulative_amount: u128::read_cfg(buf, &())?,
        })
    }
}

impl Write for SignedVoucher {
    fn write(&self, buf: &mut impl BufMut) {
        self.voucher.write(buf);
        buf.put_slice(&self.signature);
    }
}

impl EncodeSize for SignedVoucher {
    fn encode_size(&self) -> usize {
        self.voucher.encode_size() + 64
    }
}

impl Read for SignedVoucher {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            voucher: Voucher::read_cfg(buf, cfg)?,
            signature: <[u8; 64]>::read_cfg(buf, &())?,
        })
    }
}

impl Write for QueryReceipt {
    fn write(&self, buf: &mut impl BufMut) {
        write_str(&self.chain_id, buf);
        self.offer_id.write(buf);
        self.channel_id.write(buf);
        self.sequence.write(buf);
        self.input_hash.write(buf);
        write_bytes(&self.output, buf);
        self.model_hash.write(buf);
        self.voucher_amount.write(buf);
    }
}

impl EncodeSize for QueryReceipt {
    fn encode_size(&self) -> usize {
        str_size(&self.chain_id) + 8 + 8 + 8 + 32 + bytes_size(&self.output) + 32 + 16
    }
}

impl Read for QueryReceipt {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            chain_id: read_str(buf, cfg.chain_id_bytes_max)?,
            offer_id: u64::read_cfg(buf, &())?,
            channel_id: u64::read_cfg(buf, &())?,
            sequence: u64::read_cfg(buf, &())?,
            input_hash: Digest::read_cfg(buf, &())?,
            output: read_bytes(buf, cfg.receipt_output_bytes_max)?,
            model_hash: Digest::read_cfg(buf, &())?,
            voucher_amount: u128::read_cfg(buf, &())?,
        })
    }
}

impl Write for ReceiptBatch {
    fn write(&self, buf: &mut impl BufMut) {
        self.position.write(buf);
        self.leaf_count.write(buf);
        crate::codec::write_list(&self.siblings, buf);
        self.root.write(buf);
    }
}

impl EncodeSize for ReceiptBatch {
    fn encode_size(&self) -> usize {
        4 + 4 + crate::codec::list_size(&self.siblings) + 32
    }
}

impl Read for ReceiptBatch {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let position = u32::read_cfg(buf, &())?;
        let leaf_count = u32::read_cfg(buf, &())?;
        if leaf_count == 0 || leaf_count > RECEIPT_BATCH_MAX || position >= leaf_count {
            return Err(CodecError::Invalid(
                "ReceiptBatch",
                "position must be below a leaf count of 1 to 65536",
            ));
        }
        Ok(Self {
            position,
            leaf_count,
            siblings: crate::codec::read_list(buf, bmt::MAX_LEVELS, &())?,
            root: Digest::read_cfg(buf, &())?,
        })
    }
}

impl Write for SignedQueryReceipt {
    fn write(&self, buf: &mut impl BufMut) {
        self.receipt.write(buf);
        self.batch.write(buf);
        buf.put_slice(&self.signature);
    }
}

impl EncodeSize for SignedQueryReceipt {
    fn encode_size(&self) -> usize {
        self.receipt.encode_size() + self.batch.encode_size() + 64
    }
}

impl Read for SignedQueryReceipt {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            receipt: QueryReceipt::read_cfg(buf, cfg)?,
            batch: ReceiptBatch::read_cfg(buf, &())?,
            signature: <[u8; 64]>::read_cfg(buf, &())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    fn voucher(amount: u128) -> SignedVoucher {
        Voucher {
            chain_id: "deai-test".into(),
            channel_id: 7,
            cumulative_amount: amount,
        }
        .sign(&key(1))
    }

    fn receipt(output: Vec<u8>) -> SignedQueryReceipt {
        QueryReceipt {
            chain_id: "deai-test".into(),
            offer_id: 3,
            channel_id: 7,
            sequence: 9,
            input_hash: Digest::hash(b"input"),
            output,
            model_hash: Digest::hash(b"model"),
            voucher_amount: 1_000,
        }
        .sign(&key(2))
    }

    #[test]
    fn voucher_layout_is_the_documented_one() {
        let v = voucher(5);
        let bytes = v.encode();
        let mut expected = vec![9u8];
        expected.extend_from_slice(b"deai-test");
        expected.extend_from_slice(&7u64.to_be_bytes());
        expected.extend_from_slice(&5u128.to_be_bytes());
        assert_eq!(&bytes[..expected.len()], expected.as_slice());
        assert_eq!(bytes.len(), expected.len() + 64);
        assert_eq!(
            v.voucher.signing_bytes(),
            [VOUCHER_DOMAIN, expected.as_slice()].concat()
        );
    }

    #[test]
    fn signatures_bind_signer_domain_and_every_field() {
        let payer = Address::from_key(&key(1).verifying_key());
        let v = voucher(5);
        v.verify(&payer).expect("the payer signed it");
        assert!(v.verify(&Address([9; 32])).is_err(), "another payer");
        let mut more = v.clone();
        more.voucher.cumulative_amount = 6;
        assert!(more.verify(&payer).is_err(), "a changed amount");
        // A receipt signature is not a voucher signature, even over the same key.
        let provider = Address::from_key(&key(2).verifying_key());
        let r = receipt(vec![1, 2, 3]);
        r.verify(&provider).expect("the provider signed it");
        let mut other = r.clone();
        other.receipt.sequence += 1;
        assert!(other.verify(&provider).is_err());
        let forged = SignedVoucher {
            voucher: v.voucher.clone(),
            signature: key(1)
                .sign(&domain_bytes(RECEIPT_DOMAIN, &v.voucher))
                .to_bytes(),
        };
        assert!(forged.verify(&payer).is_err(), "wrong domain");
    }

    #[test]
    fn round_trips_and_bounds() {
        let params = Params::default();
        let v = voucher(u128::MAX);
        assert_eq!(SignedVoucher::decode(&v.encode(), &params).expect("ok"), v);
        let r = receipt(vec![7; 48]);
        assert_eq!(
            SignedQueryReceipt::decode(&r.encode(), &params).expect("ok"),
            r
        );
        // Trailing bytes and every truncation are refused.
        let (vb, rb) = (v.encode(), r.encode());
        assert!(SignedVoucher::decode(&[vb.as_slice(), &[0]].concat(), &params).is_err());
        assert!(SignedQueryReceipt::decode(&[rb.as_slice(), &[0]].concat(), &params).is_err());
        for cut in 0..vb.len() {
            assert!(SignedVoucher::decode(&vb[..cut], &params).is_err());
        }
        for cut in 0..rb.len() {
            assert!(SignedQueryReceipt::decode(&rb[..cut], &params).is_err());
        }
        // An output over the bound is refused before it is allocated.
        let tight = Params {
            receipt_output_bytes_max: 47,
            ..Params::default()
        };
        assert!(SignedQueryReceipt::decode(&r.encode(), &tight).is_err());
        // So is a chain id over its bound.
        let long_chain = Voucher {
            chain_id: "x".repeat(65),
            channel_id: 1,
            cumulative_amount: 1,
        }
        .sign(&key(1));
        assert!(SignedVoucher::decode(&long_chain.encode(), &params).is_err());
    }

    fn batch(n: usize) -> Vec<SignedQueryReceipt> {
        let receipts = (0..n as u64)
            .map(|i| QueryReceipt {
                sequence: i,
                input_hash: Digest::hash(&i.to_be_bytes()),
                ..receipt(vec![i as u8]).receipt
            })
            .collect();
        sign_receipts(receipts, &key(2))
    }

    #[test]
    fn a_batch_shares_one_signature_and_each_receipt_verifies_alone() {
        let provider = Address::from_key(&key(2).verifying_key());
        let signed = batch(5);
        assert!(signed.iter().all(|r| r.signature == signed[0].signature));
        for r in &signed {
            r.verify(&provider).expect("alone");
            let bytes = r.encode();
            assert_eq!(
                SignedQueryReceipt::decode(&bytes, &Params::default()).expect("decodes"),
                *r
            );
        }

        // Moving a receipt to another position, or another batch, breaks it.
        let mut moved = signed[1].clone();
        moved.batch.position = 2;
        assert!(moved.verify(&provider).is_err());
        let other = sign_receipts(
            signed[..4]
                .iter()
                .map(|r| QueryReceipt {
                    voucher_amount: 7,
                    ..r.receipt.clone()
                })
                .collect(),
            &key(2),
        );
        let mut swapped = other[1].clone();
        swapped.receipt = signed[1].receipt.clone();
        assert!(swapped.verify(&provider).is_err(), "a leaf of another tree");
        // A claimed leaf count the root was not built with fails: the count is in the root.
        let mut recounted = signed[4].clone();
        recounted.batch.leaf_count = 6;
        assert!(recounted.verify(&provider).is_err());
    }

    #[test]
    fn signed_leaves_rebuild_the_receipts_a_batch_signs() {
        let provider = Address::from_key(&key(2).verifying_key());
        let signed = batch(7);
        let leaves: Vec<Digest> = signed.iter().map(|r| r.receipt.leaf()).collect();
        let compact = SignedLeaves::sign(leaves.clone(), &key(2));
        // The same root, so the same signature (ed25519 is deterministic).
        assert_eq!(compact.signature, signed[0].signature);
        assert_eq!(
            compact.verify(&provider).expect("verifies"),
            signed[0].batch.root
        );
        for (i, r) in signed.iter().enumerate() {
            let rebuilt = compact
                .receipt(r.receipt.clone(), i as u32)
                .expect("its leaf");
            assert_eq!(&rebuilt, r);
            rebuilt
                .verify(&provider)
                .expect("a rebuilt receipt verifies alone");
        }
        // A receipt at another position, or one the batch does not hold, is not rebuilt.
        assert!(compact.receipt(signed[1].receipt.clone(), 2).is_none());
        let mut changed = signed[1].receipt.clone();
        changed.output.push(1);
        assert!(compact.receipt(changed, 1).is_none());
        // Other leaves under the signature, another signer, or no leaves at all fail.
        let mut swapped = compact.clone();
        swapped.leaves.swap(0, 1);
        assert!(swapped.verify(&provider).is_err());
        let stranger = Address::from_key(&key(3).verifying_key());
        assert!(compact.verify(&stranger).is_err());
        let empty = SignedLeaves {
            leaves: Vec::new(),
            signature: compact.signature,
        };
        assert!(empty.verify(&provider).is_err());
    }

    #[test]
    fn receipt_batch_bounds_are_checked_when_decoding() {
        let r = receipt(vec![1]);
        let params = Params::default();
        let at = r.receipt.encode_size();
        for (position, count) in [(0u32, 0u32), (1, 1), (0, RECEIPT_BATCH_MAX + 1)] {
            let mut bytes = r.encode();
            bytes[at..at + 4].copy_from_slice(&position.to_be_bytes());
            bytes[at + 4..at + 8].copy_from_slice(&count.to_be_bytes());
            assert!(
                SignedQueryReceipt::decode(&bytes, &params).is_err(),
                "position {position} of {count}"
            );
        }
    }

    #[test]
    fn json_round_trips() {
        let v = voucher(12);
        let json = serde_json::to_string(&v).expect("serializes");
        assert_eq!(serde_json::from_str::<SignedVoucher>(&json).expect("ok"), v);
        let r = receipt(vec![1, 2]);
        let json = serde_json::to_string(&r).expect("serializes");
        assert_eq!(
            serde_json::from_str::<SignedQueryReceipt>(&json).expect("ok"),
            r
        );
    }

    proptest! {
        /// Every receipt of a signed batch verifies, and changing any one field of one receipt
        /// makes exactly that receipt fail.
        #[test]
        fn every_receipt_of_a_batch_verifies_and_a_changed_one_fails(
            n in 1usize..40,
            pick in any::<prop::sample::Index>(),
            field in 0u8..4,
        ) {
            let provider = Address::from_key(&key(2).verifying_key());
            let mut signed = batch(n);
            for r in &signed {
                r.verify(&provider).expect("a fresh batch verifies");
            }
            let i = pick.index(n);
            let r = &mut signed[i].receipt;
            match field {
                0 => r.output.push(1),
                1 => r.sequence = r.sequence.wrapping_add(1000),
                2 => r.voucher_amount += 1,
                _ => r.model_hash = Digest::hash(b"another model"),
            }
            for (j, r) in signed.iter().enumerate() {
                prop_assert_eq!(r.verify(&provider).is_ok(), j != i);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_accepted_ones_are_canonical(
            bytes in prop::collection::vec(any::<u8>(), 0..400)
        ) {
            let params = Params::default();
            if let Ok(v) = SignedVoucher::decode(&bytes, &params) {
                prop_assert_eq!(v.encode(), bytes.clone());
            }
            if let Ok(r) = SignedQueryReceipt::decode(&bytes, &params) {
                prop_assert_eq!(r.encode(), bytes);
            }
        }

        #[test]
        fn mutated_encodings_never_panic(
            amount in any::<u128>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let params = Params::default();
            for mut bytes in [voucher(amount).encode(), receipt(vec![3; 20]).encode()] {
                for (i, b) in &flips {
                    let i = i.index(bytes.len());
                    bytes[i] = *b;
                }
                if let Ok(v) = SignedVoucher::decode(&bytes, &params) {
                    prop_assert_eq!(v.encode(), bytes.clone());
                }
                if let Ok(r) = SignedQueryReceipt::decode(&bytes, &params) {
                    prop_assert_eq!(r.encode(), bytes);
                }
            }
        }
    }
}
