//! The payer's side of a channel: signs cumulative vouchers, sends queries to the offer's
//! endpoint and checks every answer before counting it.
//!
//! Vouchers are signed ahead: each new voucher pays for `prepay` queries beyond the request's,
//! so a payer signs once per `prepay` queries and the provider checks a signature as rarely;
//! the payer risks at most `prepay × price` on a provider that stops answering. Trust is earned:
//! `prepay` starts at [`PREPAY_START`] queries and doubles with every voucher the provider has
//! answered in full, up to [`PREPAY_MAX`] (as Filecoin's retrieval payments grow their payment
//! interval), so a new provider can take little and a long session signs rarely.
//!
//! Receipts come signed in batches ([`wire`]): the session rebuilds each answer's receipt from
//! what it sent (chain, offer, channel, the offer's model, the voucher, the input's hash, the
//! sequence the provider gave) and keeps its leaf until a signed batch holding it arrives; then
//! it checks the batch's one signature over the root it computes itself. A provider that signs
//! another output than it answered leaves the payer's leaf out, and the session notices. The
//! provider signs when a new voucher arrives; the session also asks once `unsigned_max` answers
//! wait (or on every request, [`PaidSession::sign_each`]), and [`PaidSession::settle`] collects
//! what is pending. What a checked answer cannot show is whether the output is right: that is
//! what re-execution and disputes are for (`deai agent`).

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use deai_infer::Output;
use deai_ledger::{
    Channel, Digest, Limits, Offer, QueryReceipt, SignedLeaves, SignedQueryReceipt, SignedVoucher,
    Voucher,
};
use ed25519_dalek::SigningKey;

use super::{OfferInfo, wire};

/// Queries the first voucher of a session pays ahead.
pub const PREPAY_START: u64 = 32;
/// Queries a voucher pays ahead at most, once the provider has answered the ramp up to it.
pub const PREPAY_MAX: u64 = 1_024;
use crate::client::{Client, ClientError};

/// One checked answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The model's output.
    pub output: Output,
    /// The receipt the provider owes for it; signed once its batch arrives
    /// ([`PaidSession::signed_receipt`]).
    pub receipt: QueryReceipt,
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
    /// No signed receipt is held for this answer.
    #[error(
        "no signed receipt for query {sequence} of channel {channel}: the provider never signed \
         it, or it is older than the receipts this session keeps"
    )]
    NotSigned {
        /// The channel.
        channel: u64,
        /// The receipt's sequence.
        sequence: u64,
    },
}

/// Signed leaves this session keeps receipts of, at most (older batches are dropped whole).
const RETAINED_LEAVES_MAX: usize = 1 << 16;

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
    prepay_max: u64,
    sign_each: bool,
    unsigned_max: usize,
    /// This session's answers not signed yet: leaf → sequence.
    unsigned: HashMap<Digest, u64>,
    /// Signed answers: sequence → the batch and the position in it.
    signed: HashMap<u64, (Arc<SignedLeaves>, u32)>,
    /// The batches behind `signed`, oldest first, with this session's sequences in each.
    batches: VecDeque<(Arc<SignedLeaves>, Vec<u64>)>,
    retained: usize,
    last_sequence: Option<u64>,
    lost: u64,
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
            prepay: PREPAY_START,
            prepay_max: PREPAY_MAX,
            sign_each: false,
            unsigned_max: 1_024,
            unsigned: HashMap::new(),
            signed: HashMap::new(),
            batches: VecDeque::new(),
            retained: 0,
            last_sequence: None,
            lost: 0,
        }
    }

    /// Signs each new voucher for `queries` more than the request needs (0: exactly), without
    /// the ramp.
    pub fn with_prepay(mut self, queries: u64) -> Self {
        self.prepay = queries;
        self.prepay_max = queries;
        self
    }

    /// Asks the provider to sign every answer as it is sent (a receipt in hand for each query,
    /// at one signature per request).
    pub fn sign_each(mut self) -> Self {
        self.sign_each = true;
        self
    }

    /// Asks the provider to sign once this many answers wait unsigned (at least 1).
    pub fn with_unsigned_max(mut self, answers: usize) -> Self {
        self.unsigned_max = answers.max(1);
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

    /// Answers received and not signed yet.
    pub fn unsigned(&self) -> usize {
        self.unsigned.len()
    }

    /// Answers the provider was asked to sign and never did (e.g. it restarted in between).
    pub fn lost(&self) -> u64 {
        self.lost
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
        let ask = self.sign_each || self.unsigned.len() + inputs.len() >= self.unsigned_max;
        self.exchange(inputs, ask).await
    }

    /// Has the provider sign every answer of this session not signed yet.
    pub async fn settle(&mut self) -> Result<(), PaidError> {
        if !self.unsigned.is_empty() {
            self.exchange(&[], true).await?;
        }
        Ok(())
    }

    /// `receipt` (of an answer of this session) signed, with its inclusion proof: what a
    /// dispute carries. Collects the provider's signature first if it is still pending.
    pub async fn signed_receipt(
        &mut self,
        receipt: &QueryReceipt,
    ) -> Result<SignedQueryReceipt, PaidError> {
        if self.unsigned.contains_key(&receipt.leaf()) {
            self.settle().await?;
        }
        self.signed(receipt).ok_or(PaidError::NotSigned {
            channel: receipt.channel_id,
            sequence: receipt.sequence,
        })
    }

    /// `receipt` signed, if its batch arrived and is still kept.
    pub fn signed(&self, receipt: &QueryReceipt) -> Option<SignedQueryReceipt> {
        let (batch, position) = self.signed.get(&receipt.sequence)?;
        batch.receipt(receipt.clone(), *position)
    }

    /// Resumes counting from `spent` (what the provider's answers or 402s said last).
    pub fn set_spent(&mut self, spent: u128) {
        self.spent = spent;
    }

    /// Sends `inputs` (none: only to collect a signature) with a voucher that covers them,
    /// asking for a signature when `ask`; the checked answers.
    async fn exchange(&mut self, inputs: &[&[u8]], ask: bool) -> Result<Vec<Answer>, PaidError> {
        let n = inputs.len() as u128;
        let price = self.offer.price_per_query;
        let body = inputs.concat();
        let path = format!("/v1/infer/{}", self.offer.id);
        let mut caught_up = false;
        loop {
            let need = self.spent.saturating_add(price.saturating_mul(n));
            let voucher = self.voucher_for(need, n)?;
            let amount = voucher.voucher.cumulative_amount;
            let mut headers = vec![(wire::VOUCHER_HEADER, hex::encode(voucher.encode()))];
            if ask {
                headers.push((wire::SIGN_HEADER, "1".into()));
            }
            match self
                .provider
                .post_octets(&path, &headers, body.clone())
                .await
            {
                Ok((headers, bytes)) => {
                    let answers = self.check(inputs, &bytes, amount, ask)?;
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

    /// The voucher to send for a total of `need` (a request of `n` queries): the last one if it
    /// covers it, else a new one paying ahead `prepay` queries or four such requests, whichever
    /// is more (within the deposit), so a voucher is signed at most every fourth request. A new
    /// voucher is needed only once the last one's queries were answered, so each doubles the
    /// next one's `prepay` (up to `prepay_max`).
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
        self.prepay = self.prepay.saturating_mul(2).min(self.prepay_max);
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

    /// Reads the answer to `inputs` paid with a voucher of `amount`: well-formed outputs under
    /// fresh sequences, and any signed batch checked against this session's own leaves.
    fn check(
        &mut self,
        inputs: &[&[u8]],
        bytes: &[u8],
        amount: u128,
        ask: bool,
    ) -> Result<Vec<Answer>, PaidError> {
        let bad = |m: String| PaidError::BadAnswer(m);
        let answer =
            wire::Answer::decode(bytes, inputs.len(), self.limits.receipt_output_bytes_max)
                .map_err(|e| bad(e.to_string()))?;
        let first = answer.first_sequence;
        if !inputs.is_empty() {
            if self.last_sequence.is_some_and(|last| first <= last) {
                return Err(bad(format!(
                    "sequence {first} was used before in this session"
                )));
            }
            if first.checked_add(inputs.len() as u64).is_none() {
                return Err(bad(format!("sequence {first} overflows")));
            }
        }
        let mut answers = Vec::with_capacity(inputs.len());
        let mut leaves = Vec::with_capacity(inputs.len());
        for (i, (out, input)) in answer.outputs.into_iter().zip(inputs).enumerate() {
            let output = Output::from_bytes(&out).map_err(|e| bad(format!("output {i}: {e}")))?;
            let receipt = QueryReceipt {
                chain_id: self.chain_id.clone(),
                offer_id: self.offer.id,
                channel_id: self.channel.id,
                sequence: first + i as u64,
                input_hash: Digest::hash(input),
                output: out,
                model_hash: self.offer.quant_hash,
                voucher_amount: amount,
            };
            leaves.push(receipt.leaf());
            answers.push(Answer { output, receipt });
        }
        if let Some(last) = answers.last() {
            self.last_sequence = Some(last.receipt.sequence);
        }
        let before: Vec<Digest> = if ask {
            self.unsigned.keys().copied().collect()
        } else {
            Vec::new()
        };
        for (leaf, a) in leaves.iter().zip(&answers) {
            self.unsigned.insert(*leaf, a.receipt.sequence);
        }
        if let Some(signed) = answer.signed {
            self.accept(signed)?;
        }
        if ask {
            if let Some(i) = leaves.iter().position(|l| self.unsigned.contains_key(l)) {
                return Err(bad(format!(
                    "asked to sign, the provider left out its answer {i} (sequence {})",
                    first + i as u64
                )));
            }
            let lost = before
                .iter()
                .filter(|l| self.unsigned.remove(l).is_some())
                .count();
            if lost > 0 {
                tracing::warn!(
                    channel = self.channel.id,
                    lost,
                    "the provider did not sign earlier answers it was asked to (a restart loses \
                     unsigned receipts)"
                );
                self.lost += lost as u64;
            }
        }
        Ok(answers)
    }

    /// Checks a signed batch and marks this session's answers in it signed.
    fn accept(&mut self, signed: SignedLeaves) -> Result<(), PaidError> {
        signed
            .verify(&self.offer.provider)
            .map_err(|e| PaidError::BadAnswer(e.to_string()))?;
        let batch = Arc::new(signed);
        let mut own = Vec::new();
        for (position, leaf) in batch.leaves.iter().enumerate() {
            if let Some(sequence) = self.unsigned.remove(leaf) {
                self.signed
                    .insert(sequence, (batch.clone(), position as u32));
                own.push(sequence);
            }
        }
        if own.is_empty() {
            return Ok(());
        }
        self.retained += batch.leaves.len();
        self.batches.push_back((batch, own));
        while self.retained > RETAINED_LEAVES_MAX && self.batches.len() > 1 {
            let Some((old, sequences)) = self.batches.pop_front() else {
                break;
            };
            self.retained -= old.leaves.len();
            for s in sequences {
                self.signed.remove(&s);
            }
        }
        Ok(())
    }
}

fn spent_header(headers: &reqwest::header::HeaderMap) -> Option<u128> {
    headers
        .get(wire::SPENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    //! The payer against a provider that answers anything: each lie about receipts is caught
    //! from the bytes alone.
    use super::*;
    use deai_ledger::{Address, ChannelStatus, Params};

    const PRICE: u128 = 2;

    fn provider() -> SigningKey {
        SigningKey::from_bytes(&[1; 32])
    }

    fn session() -> PaidSession {
        let offer = Offer {
            id: 3,
            provider: Address::from_key(&provider().verifying_key()),
            model: 1,
            quant_hash: Digest::hash(b"model"),
            ops: 1,
            price_per_query: PRICE,
            bond: 0,
            endpoint: "http://127.0.0.1:9".into(),
            royalty_bps: 0,
            contributors: Vec::new(),
            status: deai_ledger::OfferStatus::Active,
            created_height: 1,
            release_height: None,
            history_root: Digest([0; 32]),
            history: Vec::new(),
        };
        let channel = Channel {
            id: 5,
            offer: 3,
            payer: Address([2; 32]),
            provider: offer.provider,
            deposit: 1_000,
            claimed: 0,
            expiry_height: 100,
            opened_height: 1,
            status: ChannelStatus::Open,
            disputed: Vec::new(),
        };
        PaidSession::new(
            SigningKey::from_bytes(&[2; 32]),
            "deai-test".into(),
            offer,
            channel,
            Params::default().limits(),
        )
    }

    fn output(class: u32) -> Vec<u8> {
        Output {
            logits: vec![0, 5, 1],
            class,
        }
        .to_bytes()
    }

    /// The receipt an honest provider builds for input `input` answered `out` at `sequence`.
    fn leaf(s: &PaidSession, sequence: u64, input: &[u8], out: &[u8], amount: u128) -> Digest {
        QueryReceipt {
            chain_id: "deai-test".into(),
            offer_id: 3,
            channel_id: 5,
            sequence,
            input_hash: Digest::hash(input),
            output: out.to_vec(),
            model_hash: s.offer.quant_hash,
            voucher_amount: amount,
        }
        .leaf()
    }

    fn answer(first: u64, outputs: Vec<Vec<u8>>, signed: Option<SignedLeaves>) -> Vec<u8> {
        wire::Answer {
            first_sequence: first,
            outputs,
            signed,
        }
        .encode()
    }

    /// Each new voucher pays ahead twice the queries of the last, from `PREPAY_START` up to
    /// `PREPAY_MAX` and never past the deposit; one already covering the request is reused.
    #[test]
    fn vouchers_pay_ahead_more_as_the_provider_answers() {
        let mut s = session();
        s.channel.deposit = u128::MAX;
        let price = PRICE;
        let mut amounts = Vec::new();
        let mut need = price;
        for _ in 0..8 {
            let v = s.voucher_for(need, 1).expect("funded");
            amounts.push(v.voucher.cumulative_amount);
            // Spend all of it: the next request needs a new voucher.
            need = v.voucher.cumulative_amount + price;
        }
        let ahead: Vec<u128> = amounts
            .iter()
            .scan(0, |before, a| {
                let queries = (a - *before) / price - 1;
                *before = *a;
                Some(queries)
            })
            .collect();
        assert_eq!(ahead, [32, 64, 128, 256, 512, 1024, 1024, 1024]);
        let last = s.voucher_for(need - price, 1).expect("covered");
        assert_eq!(last.voucher.cumulative_amount, amounts[7], "reused");

        let mut fixed = session().with_prepay(0);
        let v = fixed.voucher_for(price, 1).expect("funded");
        assert_eq!(
            v.voucher.cumulative_amount,
            5 * price,
            "the request and four more like it"
        );
        let mut capped = session();
        let v = capped.voucher_for(990, 1).expect("funded");
        assert_eq!(
            v.voucher.cumulative_amount, 1_000,
            "no further than the deposit"
        );
    }

    #[test]
    fn an_honest_batch_is_accepted_and_yields_receipts_the_ledger_checks() {
        let mut s = session();
        let inputs: [&[u8]; 2] = [b"aa", b"bb"];
        let leaves = vec![
            Digest::hash(b"another session's receipt"),
            leaf(&s, 7, inputs[0], &output(1), 40),
            leaf(&s, 8, inputs[1], &output(1), 40),
        ];
        let signed = SignedLeaves::sign(leaves, &provider());
        let bytes = answer(7, vec![output(1), output(1)], Some(signed));
        let answers = s.check(&inputs, &bytes, 40, true).expect("honest");
        assert_eq!(answers[1].receipt.sequence, 8);
        assert_eq!((s.unsigned(), s.lost()), (0, 0));
        let r = s.signed(&answers[1].receipt).expect("signed");
        r.verify(&s.offer.provider)
            .expect("verifies as the ledger checks it");
        assert_eq!(r.batch.position, 2);
    }

    #[test]
    fn a_batch_that_signs_another_output_is_caught() {
        let mut s = session();
        let inputs: [&[u8]; 1] = [b"aa"];
        // It answers class 1 and signs class 2: the payer's leaf is not in the batch.
        let lie = SignedLeaves::sign(vec![leaf(&s, 0, inputs[0], &output(2), 40)], &provider());
        let bytes = answer(0, vec![output(1)], Some(lie));
        let err = s.check(&inputs, &bytes, 40, true).expect_err("caught");
        assert!(err.to_string().contains("left out"), "{err}");
        // Not asked to sign, the answer waits unsigned; it is never counted signed.
        let mut s = session();
        let lie = SignedLeaves::sign(vec![leaf(&s, 0, inputs[0], &output(2), 40)], &provider());
        let bytes = answer(0, vec![output(1)], Some(lie));
        let answers = s
            .check(&inputs, &bytes, 40, false)
            .expect("unsigned so far");
        assert!(s.signed(&answers[0].receipt).is_none());
        assert_eq!(s.unsigned(), 1);
    }

    #[test]
    fn a_forged_signature_a_reused_sequence_and_a_bad_output_are_caught() {
        let inputs: [&[u8]; 1] = [b"aa"];
        let mut s = session();
        let stranger = SigningKey::from_bytes(&[9; 32]);
        let forged = SignedLeaves::sign(vec![leaf(&s, 0, inputs[0], &output(1), 40)], &stranger);
        let bytes = answer(0, vec![output(1)], Some(forged));
        assert!(s.check(&inputs, &bytes, 40, false).is_err(), "forged");

        let mut s = session();
        let bytes = answer(4, vec![output(1)], None);
        s.check(&inputs, &bytes, 40, false).expect("first");
        assert!(
            s.check(&inputs, &bytes, 40, false).is_err(),
            "sequence 4 again"
        );

        let mut s = session();
        let bytes = answer(0, vec![vec![1, 2, 3]], None);
        assert!(
            s.check(&inputs, &bytes, 40, false).is_err(),
            "not an output"
        );
    }

    #[test]
    fn earlier_answers_left_unsigned_when_asked_count_as_lost() {
        let mut s = session();
        let inputs: [&[u8]; 1] = [b"aa"];
        s.check(&inputs, &answer(0, vec![output(1)], None), 40, false)
            .expect("unsigned");
        // Asked, the provider signs only the new answer (as after a restart).
        let inputs2: [&[u8]; 1] = [b"bb"];
        let only_new =
            SignedLeaves::sign(vec![leaf(&s, 1, inputs2[0], &output(1), 40)], &provider());
        s.check(
            &inputs2,
            &answer(1, vec![output(1)], Some(only_new)),
            40,
            true,
        )
        .expect("this request's answer is signed");
        assert_eq!((s.unsigned(), s.lost()), (0, 1));
    }
}
