//! `ReceiptDispute`: anyone holding a provider-signed receipt, the query's input and the offer's
//! quantized model blob asks every validator to re-execute the query.
//!
//! The ledger does no I/O, so the transaction carries the blob (at most
//! `dispute_model_bytes_max` bytes; its BLAKE3 must be the offer's `quant_hash`, which the
//! receipt must name) and the input (at most `dispute_input_bytes_max`; its BLAKE3 must be the
//! receipt's `input_hash`, and it must be a valid input of the model). Its fee is at least
//! `fee_min + dispute_fee_per_byte · (model + input bytes)`: validators download, keep and decode
//! those bytes. A receipt must be signed by the offer's provider and name a channel of the offer;
//! a channel's receipt of a given sequence can be disputed once, until
//! `expiry_height + dispute_window_blocks` of its channel, while the offer still holds a bond.
//!
//! A malformed dispute is refused (changes nothing, pays nothing). A well-formed one is judged:
//! - the blob needs more operations (`QuantModel::ops`) than the offer declared: the offer lied
//!   about the bound that keeps disputes cheap, shown by the blob alone, so the dispute is upheld
//!   without re-executing ([`DisputeCause::OpsUnderstated`]);
//! - otherwise every validator runs `deai_infer::infer` (at most the declared operations, which
//!   are at most `dispute_ops_max`); output bytes other than the receipt's uphold the dispute
//!   ([`DisputeCause::WrongOutput`]);
//! - an upheld dispute slashes the whole bond: `dispute_reward_bps` of it to the disputer, the
//!   rest **burned** (not to the treasury, so no vote can profit from a slash; [`crate::SupplyReport::burned`]), and
//!   suspends the offer for good (no more claims or channels; its payers may close at once);
//! - equal output bytes reject the dispute: the disputer pays its fee and `dispute_bond` to the
//!   provider it wrongly accused.
//!
//! Either way the receipt's sequence is marked disputed on its channel.

use super::{Action, Env};
use crate::codec::{bytes_size, read_bytes, write_bytes};
use crate::error::{EntityKind, TxError};
use crate::event::{DisputeCause, Event};
use crate::params::{BPS_SCALE, Limits, Params};
use crate::payment::SignedQueryReceipt;
use crate::state::{Offer, OfferStatus, State, share};
use crate::types::Digest;
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use deai_infer::QuantModel;
use serde::{Deserialize, Serialize};

/// Dispute a provider-signed receipt by re-execution (anyone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptDispute {
    /// The disputed receipt.
    pub receipt: SignedQueryReceipt,
    /// The query's input bytes.
    #[serde(with = "crate::types::hex_bytes")]
    pub input: Vec<u8>,
    /// The offer's quantized model blob.
    #[serde(with = "crate::types::hex_bytes")]
    pub model: Vec<u8>,
}

fn invalid(field: &str, reason: String) -> TxError {
    TxError::InvalidField {
        field: field.into(),
        reason,
    }
}

impl ReceiptDispute {
    /// The smallest fee this dispute may pay under `params`.
    pub fn fee_min(&self, params: &Params) -> u128 {
        let bytes = (self.model.len() + self.input.len()) as u128;
        params
            .fee_min
            .saturating_add(params.dispute_fee_per_byte.saturating_mul(bytes))
    }

    /// The blob, checked against the offer and decoded.
    fn decoded_model(&self, offer: &Offer) -> Result<QuantModel, TxError> {
        let hash = Digest::hash(&self.model);
        if hash != offer.quant_hash {
            return Err(invalid(
                "model",
                format!(
                    "the blob hashes to {hash}, offer {} serves {}",
                    offer.id, offer.quant_hash
                ),
            ));
        }
        QuantModel::decode(&self.model).map_err(|e| invalid("model", e.to_string()))
    }

    /// Why the provider was wrong, or `None` if the receipt is right.
    fn verdict(&self, model: &QuantModel, offer: &Offer) -> Option<DisputeCause> {
        if model.ops() > offer.ops {
            return Some(DisputeCause::OpsUnderstated);
        }
        let input = deai_infer::decode_input(model, &self.input).expect("validated: input");
        let output = deai_infer::infer(model, &input).to_bytes();
        (output != self.receipt.receipt.output).then_some(DisputeCause::WrongOutput)
    }

    /// The receipt against the offer and its channel: signer, model, channel, window, replay.
    fn validate_receipt(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let r = &self.receipt.receipt;
        if r.chain_id != state.chain_id() {
            return Err(TxError::WrongChainId {
                expected: state.chain_id().to_string(),
                got: r.chain_id.clone(),
            });
        }
        let offer = state.offer_checked(r.offer_id)?;
        if offer.bond == 0 {
            return Err(TxError::DisputeUnbacked { offer: offer.id });
        }
        if r.model_hash != offer.quant_hash {
            return Err(invalid(
                "receipt.model_hash",
                format!(
                    "{} is not offer {}'s {}",
                    r.model_hash, offer.id, offer.quant_hash
                ),
            ));
        }
        let c = state.channel_checked(r.channel_id)?;
        if c.offer != offer.id {
            return Err(invalid(
                "receipt.channel_id",
                format!("channel {} pays offer {}, not {}", c.id, c.offer, offer.id),
            ));
        }
        let deadline_height = c.dispute_deadline(state.params().dispute_window_blocks);
        if env.height > deadline_height {
            return Err(TxError::DisputeWindowClosed {
                channel: c.id,
                deadline_height,
                height: env.height,
            });
        }
        if c.disputed.binary_search(&r.sequence).is_ok() {
            return Err(TxError::AlreadyDisputed {
                channel: c.id,
                sequence: r.sequence,
            });
        }
        self.receipt
            .verify(&offer.provider)
            .map_err(|_| TxError::ReceiptBadSignature {
                offer: offer.id,
                provider: offer.provider,
            })
    }
}

impl Action for ReceiptDispute {
    fn check(&self, params: &Params) -> Result<(), TxError> {
        TxError::limit(
            "model",
            self.model.len(),
            params.dispute_model_bytes_max as usize,
        )?;
        TxError::limit(
            "input",
            self.input.len(),
            params.dispute_input_bytes_max as usize,
        )?;
        TxError::limit(
            "receipt.output",
            self.receipt.receipt.output.len(),
            params.receipt_output_bytes_max as usize,
        )
    }

    fn validate(&self, state: &State, env: &Env) -> Result<(), TxError> {
        let min = self.fee_min(state.params());
        if env.fee < min {
            return Err(TxError::FeeTooLow { fee: env.fee, min });
        }
        self.validate_receipt(state, env)?;
        state.require_funds(env, state.params().dispute_bond)?;
        let input_hash = Digest::hash(&self.input);
        if input_hash != self.receipt.receipt.input_hash {
            return Err(invalid(
                "input",
                format!(
                    "the input hashes to {input_hash}, the receipt names {}",
                    self.receipt.receipt.input_hash
                ),
            ));
        }
        let offer = state.offer_checked(self.receipt.receipt.offer_id)?;
        let model = self.decoded_model(offer)?;
        deai_infer::decode_input(&model, &self.input)
            .map(|_| ())
            .map_err(|e| invalid("input", e.to_string()))
    }

    fn apply(&self, state: &mut State, env: &Env) -> Vec<Event> {
        let r = &self.receipt.receipt;
        let offer = state.offer(r.offer_id).expect("validated: offer");
        let model = self.decoded_model(offer).expect("validated: model");
        let verdict = self.verdict(&model, offer);
        let provider = offer.provider;
        let channel = state.channel_mut(r.channel_id);
        let at = channel
            .disputed
            .binary_search(&r.sequence)
            .expect_err("validated: not yet disputed");
        channel.disputed.insert(at, r.sequence);
        let event = match verdict {
            Some(cause) => {
                let offer = state.offer_mut(r.offer_id);
                let bond = std::mem::take(&mut offer.bond);
                offer.status = OfferStatus::Suspended;
                let bps = u128::from(state.params().dispute_reward_bps.min(BPS_SCALE));
                let reward =
                    share(bond, bps, u128::from(BPS_SCALE)).expect("a share of at most the bond");
                state.credit(&env.sender, reward);
                state.burn(bond - reward);
                Event::DisputeUpheld {
                    offer: r.offer_id,
                    channel: r.channel_id,
                    sequence: r.sequence,
                    disputer: env.sender,
                    cause,
                    reward,
                    burned: bond - reward,
                }
            }
            None => {
                let forfeit = state.params().dispute_bond;
                state.debit(&env.sender, forfeit);
                state.credit(&provider, forfeit);
                Event::DisputeRejected {
                    offer: r.offer_id,
                    channel: r.channel_id,
                    sequence: r.sequence,
                    disputer: env.sender,
                    forfeit,
                }
            }
        };
        state.record(EntityKind::Offer, r.offer_id, env, event.clone());
        let upheld = matches!(event, Event::DisputeUpheld { .. });
        let mut events = vec![event];
        if upheld {
            let amount = state.params().challenge_emission_reward;
            events.extend(state.mint_reward(
                &env.sender,
                amount,
                crate::event::EmissionRole::Challenger,
            ));
        }
        events
    }
}

impl Write for ReceiptDispute {
    fn write(&self, buf: &mut impl BufMut) {
        self.receipt.write(buf);
        write_bytes(&self.input, buf);
        write_bytes(&self.model, buf);
    }
}

impl EncodeSize for ReceiptDispute {
    fn encode_size(&self) -> usize {
        self.receipt.encode_size() + bytes_size(&self.input) + bytes_size(&self.model)
    }
}

impl Read for ReceiptDispute {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, cfg: &Limits) -> Result<Self, CodecError> {
        Ok(Self {
            receipt: SignedQueryReceipt::read_cfg(buf, cfg)?,
            input: read_bytes(buf, cfg.dispute_input_bytes_max)?,
            model: read_bytes(buf, cfg.dispute_model_bytes_max)?,
        })
    }
}
