//! The ledger's view of a block, and what applying it produced.

use crate::codec::{read_list, write_list};
use crate::error::{DecodeError, TxError};
use crate::event::Event;
use crate::params::{Limits, Params};
use crate::tx::SignedTx;
use crate::types::{Address, Digest, TxId};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{Decode, Encode, EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// An ordered list of transactions at a height, proposed by `proposer` (who earns the fees).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Height (the first block is 1).
    pub height: u64,
    /// Receives the fees of applied transactions.
    pub proposer: Address,
    /// Randomness nobody could know before the block was built (the chain passes its block
    /// digest, which covers a value the proposer drew): it seeds the selection of the rounds
    /// opened in this block, so a coordinator cannot preview the draw when it signs.
    pub beacon: Digest,
    /// Transactions in order.
    pub txs: Vec<SignedTx>,
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.write(buf);
        self.proposer.write(buf);
        self.beacon.write(buf);
        write_list(&self.txs, buf);
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        8 + 32 + 32 + crate::codec::list_size(&self.txs)
    }
}

impl Read for Block {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            height: u64::read_cfg(buf, &())?,
            proposer: Address::read_cfg(buf, &())?,
            beacon: Digest::read_cfg(buf, &())?,
            txs: read_list(buf, cfg.block_txs_max, cfg)?,
        })
    }
}

impl Block {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        Encode::encode(self).to_vec()
    }

    /// Decode canonical bytes, bounded by `params`; trailing bytes are an error.
    pub fn decode(bytes: &[u8], params: &Params) -> Result<Self, DecodeError> {
        Ok(<Self as Decode>::decode_cfg(
            commonware_codec::Copying(bytes),
            &params.limits(),
        )?)
    }

    /// BLAKE3 of the canonical bytes.
    pub fn digest(&self) -> Digest {
        Digest::hash(&self.encode())
    }
}

/// The result of one transaction in a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The transaction.
    pub tx_id: TxId,
    /// Applied, or rejected with the reason (then nothing changed).
    #[serde(with = "result_serde")]
    pub result: Result<(), TxError>,
    /// Events it produced (empty when rejected).
    pub events: Vec<Event>,
    /// Fee paid to the proposer (0 when rejected).
    #[serde(with = "crate::types::amount")]
    pub fee_paid: u128,
}

impl Receipt {
    /// Whether the transaction was applied.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// What applying a block did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockOutcome {
    /// The block's height.
    pub height: u64,
    /// One receipt per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// All events of the block in order (unbonding releases first).
    pub events: Vec<Event>,
    /// The state root after the block.
    pub root: Digest,
}

/// `Result<(), TxError>` as `{"ok": true}` or `{"ok": false, "error": {...}}`.
mod result_serde {
    use crate::error::TxError;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wire {
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<TxError>,
    }

    pub(super) fn serialize<S: Serializer>(
        r: &Result<(), TxError>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        Wire {
            ok: r.is_ok(),
            error: r.clone().err(),
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<(), TxError>, D::Error> {
        let w = Wire::deserialize(d)?;
        match (w.ok, w.error) {
            (true, None) => Ok(Ok(())),
            (false, Some(e)) => Ok(Err(e)),
            _ => Err(serde::de::Error::custom("receipt: ok and error disagree")),
        }
    }
}
