//! The payer's side of a channel: signs cumulative vouchers, sends queries to the offer's
//! endpoint and checks every answer before counting it (receipt signature and batch proof
//! against the offer's provider, the offer's model hash, the hash of each input sent, the
//! voucher it was paid with, consecutive sequences, a well-formed output).
//!
//! Vouchers are signed ahead: each new voucher pays for `prepay` queries beyond the request's,
//! so a payer signs once per `prepay` queries and the provider checks a signature as rarely;
//! the payer risks at most `prepay × price` on a provider that stops answering. What a checked
//! answer cannot show is whether the output is right: that is what re-execution and disputes are
//! for (`deai agent`).

use deai_infer::Output;
use deai_ledger::{
    Channel, Digest, Limits, Offer, SignedQueryReceipt, SignedVoucher, Voucher,
    payment::verify_receipts,
};
use ed25519_dalek::SigningKey;

use super::{OfferInfo, wire};
use crate::client::{Client, ClientError};

/// One checked answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The model's output.
    pub output: Output,
    /// The provider's signed receipt for it (what a dispute carries).
    pub receipt: SignedQueryReceipt,
}

/// Why a paid query failed.
#[derive(Debug, thiserror::Error)]
pub enum PaidError {
    /// The provider refused (a 402 names what was wrong with the payment).
    #[error("the provider refused: {0}")]
    Refused(#[source] ClientError),
    /// The provider answered something that does not check out: never counted as paid.
    #[error("the provider's answer does not check out: {0}")]
    BadAnswer(String),
    /// The channel's deposit does not cover the queries.
    #[error(
        "channel {channel}'s deposit {deposit} does not cover {need} (what was spent plus these \
         queries); top it up with `deai channel top-up` or open another"
    )]
    Exhausted {
        /// The channel.
        channel: u64,
        /// Its deposit.
        deposit: u128,
        /// What the queries need in total.
        need: u128,
    },
}

/// A payer's open channel to one offer.
pub struct PaidSession {
    key: SigningKey,
    chain_id: String,
    offer: Offer,
    channel: Channel,
    provider: Client,
    limits: Limits,
    spent: u128,
    voucher: Option<SignedVoucher>,
    prepay: u64,
}

impl PaidSession {
    /// A session paying `offer` through `channel` (opened by `key`'s account) on `chain_id`,
    /// sending to the offer's endpoint; counts from 0 spent (a provider that counted more says
    /// so, and the session catches up once).
    pub fn new(
        key: SigningKey,
        chain_id: String,
        offer: Offer,
        channel: Channel,
        limits: Limits,
    ) -> Self {
        let provider = Client::new(offer.endpoint.clone());
        Self {
            key,
            chain_id,
            offer,
            channel,
            provider,
            limits,
            spent: 0,
            voucher: None,
            prepay: 32,
        }
    }

    /// Signs each new voucher for `queries` more than the request needs (0: exactly).
    pub fn with_prepay(mut self, queries: u64) -> Self {
        self.prepay = queries;
        self
    }

    /// What the channel has spent, as far as this session knows.
    pub fn spent(&self) -> u128 {
        self.spent
    }

    /// The highest voucher signed so far.
    pub fn voucher(&self) -> Option<&SignedVoucher> {
        self.voucher.as_ref()
    }

    /// The offer.
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// The channel as it was when the session started.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// `GET /v1/infer/{offer}` at the offer's endpoint.
    pub async fn info(&self) -> Result<OfferInfo, ClientError> {
        self.provider
            .get(&format!("/v1/infer/{}", self.offer.id))
            .await
    }

    /// Pays for and sends `inputs` (each the model's input bytes) in one request, returning the
    /// checked answers in order.
    pub async fn query(&mut self, inputs: &[&[u8]]) -> Result<Vec<Answer>, PaidError> {
        let n = inputs.len() as u128;
        let price = self.offer.price_per_query;
        let body = inputs.concat();
        let path = format!("/v1/infer/{}", self.offer.id);
        let mut caught_up = false;
        loop {
            let need = self.spent.saturating_add(price.saturating_mul(n));
            let voucher = self.voucher_for(need, n)?;
            let header = hex::encode(voucher.encode());
            let amount = voucher.voucher.cumulative_amount;
            match self
                .provider
                .post_octets(&path, &[(wire::VOUCHER_HEADER, header)], body.clone())
                .await
            {
                Ok((headers, bytes)) => {
                    let answers = self.check(inputs, &bytes, amount)?;
                    // The provider's count may be ahead of a session that resumed a channel;
                    // the voucher bounds what it can take either way.
                    self.spent = spent_header(&headers).unwrap_or(need).max(need);
                    return Ok(answers);
                }
                Err((e, headers)) => {
                    let theirs = spent_header(&headers);
                    let too_low =
                        matches!(&e, ClientError::Api { code, .. } if code == "voucher_too_low");
                    match theirs {
                        Some(spent) if too_low && !caught_up && spent > self.spent => {
                            self.spent = spent;
                            caught_up = true;
                        }
                        _ => return Err(PaidError::Refused(e)),
                    }
                }
            }
        }
    }

    /// Resumes counting from `spent` (what the provider's answers or 402s said last).
    pub fn set_spent(&mut self, spent: u128) {
        self.spent = spent;
    }

    /// The voucher to send for a total of `need` (a request of `n` queries): the last one if it
    /// covers it, else a new one paying ahead `prepay` queries or four such requests, whichever
    /// is more (within the deposit), so a voucher is signed at most every fourth request.
    fn voucher_for(&mut self, need: u128, n: u128) -> Result<SignedVoucher, PaidError> {
        let deposit = self.channel.deposit;
        if need > deposit {
            return Err(PaidError::Exhausted {
                channel: self.channel.id,
                deposit,
                need,
            });
        }
        if let Some(v) = &self.voucher
            && v.voucher.cumulative_amount >= need
        {
            return Ok(v.clone());
        }
        let queries = u128::from(self.prepay).max(n.saturating_mul(4));
        let ahead = self.offer.price_per_query.saturating_mul(queries);
        let amount = need.saturating_add(ahead).min(deposit);
        let v = Voucher {
            chain_id: self.chain_id.clone(),
            channel_id: self.channel.id,
            cumulative_amount: amount,
        }
        .sign(&self.key);
        self.voucher = Some(v.clone());
        Ok(v)
    }

    fn check(
        &self,
        inputs: &[&[u8]],
        bytes: &[u8],
        amount: u128,
    ) -> Result<Vec<Answer>, PaidError> {
        let bad = |m: String| PaidError::BadAnswer(m);
        let receipts = wire::decode_receipts(bytes, inputs.len(), &self.limits)
            .map_err(|e| bad(e.to_string()))?;
        let first = receipts.first().map_or(0, |r| r.receipt.sequence);
        let mut answers = Vec::with_capacity(receipts.len());
        for (i, (signed, input)) in receipts.iter().zip(inputs).enumerate() {
            let r = &signed.receipt;
            let expect = |ok: bool, what: &str| {
                if ok {
                    Ok(())
                } else {
                    Err(bad(format!("receipt {i}: {what}")))
                }
            };
            expect(r.chain_id == self.chain_id, "another chain")?;
            expect(r.offer_id == self.offer.id, "another offer")?;
            expect(r.channel_id == self.channel.id, "another channel")?;
            expect(
                r.model_hash == self.offer.quant_hash,
                "a model other than the offer's",
            )?;
            expect(r.input_hash == Digest::hash(input), "another input")?;
            expect(r.voucher_amount == amount, "another voucher")?;
            expect(
                r.sequence == first.saturating_add(i as u64),
                "sequences not consecutive",
            )?;
            let output = Output::from_bytes(&r.output)
                .map_err(|e| bad(format!("receipt {i}: output: {e}")))?;
            answers.push(Answer {
                output,
                receipt: signed.clone(),
            });
        }
        verify_receipts(&receipts, &self.offer.provider).map_err(|e| bad(e.to_string()))?;
        Ok(answers)
    }
}

fn spent_header(headers: &reqwest::header::HeaderMap) -> Option<u128> {
    headers
        .get(wire::SPENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
