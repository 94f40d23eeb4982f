//! The provider role over HTTP against a real validator: paid queries answered bit-exactly with
//! receipts that check out, every bad payment refused with a named 402 before any work, the
//! channel's count surviving a restart, vouchers claimed on the provider's own, and a provider
//! that lies losing its bond to a dispute and answering nothing more.

use std::time::Duration;

use deai_infer::{Arch, QuantModel};
use deai_ledger::{
    Channel, Genesis, Offer, OfferStatus, SignedVoucher, TOKEN, TxBody, Voucher,
    tx::{ChannelOpen, ReceiptDispute},
};
use deai_node::{
    client::{Client, ClientError},
    config::{NodeConfig, ProviderConfig},
    roles::{
        self, RoleContext,
        provider::{
            client::{PaidError, PaidSession},
            wire,
        },
        serve::{self, RoleNode, RoleNodeConfig},
        setup::{self, created_id},
    },
};
use ed25519_dalek::SigningKey;

const PRICE: u128 = 3;
const DEPOSIT: u128 = 1_000;
const PROVIDER: u8 = 1;
const PAYER: u8 = 2;
const STRANGER: u8 = 3;
/// Where a restarted provider resumes a channel's sequences: after the first reserved block
/// (the first query reserved sequences 1 to 65,536 ahead of itself).
const RESERVED: u64 = 1 + (1 << 16);

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

fn model() -> QuantModel {
    QuantModel::seeded(
        Arch::Mlp {
            inputs: 64,
            hidden: 32,
            classes: 10,
        },
        7,
    )
}

/// A valid input: 64 bytes in 0..=input_max, varied by `i`.
fn input(m: &QuantModel, i: usize) -> Vec<u8> {
    let max = u32::from(m.input_shape().max);
    (0..64u32)
        .map(|j| ((j * 7 + i as u32 * 13) % (max + 1)) as u8)
        .collect()
}

async fn provider_node(dir: &std::path::Path, validator: &str, cfg: ProviderConfig) -> RoleNode {
    let config = RoleNodeConfig::provider(key(PROVIDER), validator, &dir.join("provider"), cfg);
    serve::start(config).await.expect("provider node starts")
}

/// A registered model (task over one dataset, no rounds), its quantized blob at the validator,
/// and an offer of it by `PROVIDER` at `endpoint`.
async fn offer(ledger: &Client, m: &QuantModel, endpoint: &str) -> anyhow::Result<Offer> {
    let owner = RoleContext::connect(key(STRANGER), ledger.clone()).await?;
    let provider = RoleContext::connect(key(PROVIDER), ledger.clone()).await?;
    let model = setup::register_untrained_model(&owner, &provider, "digits").await?;
    setup::create_offer(&provider, model, m, PRICE, endpoint, 0).await
}

/// `PAYER` opens a channel on `offer` expiring `ahead` blocks from now.
async fn channel(ledger: &Client, offer: u64, ahead: u64) -> anyhow::Result<Channel> {
    let payer = RoleContext::connect(key(PAYER), ledger.clone()).await?;
    let height = ledger.status().await?.height;
    let opened = roles::send_tx(
        &payer,
        TxBody::ChannelOpen(ChannelOpen {
            offer,
            deposit: DEPOSIT,
            expiry_height: height + ahead,
        }),
    )
    .await?;
    let id = created_id(&opened.receipt, "channel_opened")?;
    Ok(ledger.get(&format!("/v1/channels/{id}")).await?)
}

async fn session(ledger: &Client, offer: &Offer, channel: &Channel) -> PaidSession {
    let genesis: Genesis = ledger.get("/v1/genesis").await.expect("genesis");
    PaidSession::new(
        key(PAYER),
        genesis.chain_id,
        offer.clone(),
        channel.clone(),
        genesis.params.limits(),
    )
}

/// POSTs `body` to the offer with `voucher` (if any) as raw bytes; the refusal's code and
/// spent header.
async fn refused(
    endpoint: &str,
    offer: u64,
    voucher: Option<String>,
    body: Vec<u8>,
) -> (u16, String, Option<String>) {
    let headers: Vec<(&'static str, String)> = voucher
        .map(|v| (wire::VOUCHER_HEADER, v))
        .into_iter()
        .collect();
    let err = Client::new(endpoint)
        .post_octets(&format!("/v1/infer/{offer}"), &headers, body)
        .await
        .expect_err("refused");
    let spent = err
        .1
        .get(wire::SPENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    match err.0 {
        ClientError::Api { status, code, .. } => (status, code, spent),
        e => panic!("not an API refusal: {e}"),
    }
}

fn signed(signer: u8, chain_id: &str, channel: u64, amount: u128) -> String {
    let v: SignedVoucher = Voucher {
        chain_id: chain_id.into(),
        channel_id: channel,
        cumulative_amount: amount,
    }
    .sign(&key(signer));
    hex::encode(v.encode())
}

/// Polls channel `id` until the ledger shows `want` claimed (or 20 s pass); what it shows.
async fn wait_claimed(ledger: &Client, id: u64, want: u128) -> anyhow::Result<u128> {
    let mut claimed = 0;
    for _ in 0..200 {
        let c: Channel = ledger.get(&format!("/v1/channels/{id}")).await?;
        claimed = c.claimed;
        if claimed == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(claimed)
}

fn init_validator(tmp: &std::path::Path) -> std::path::PathBuf {
    let dir = tmp.join("validator");
    deai_node::init::init_with(&dir, NodeConfig::default(), |g| {
        g.balances = (1..=3u8)
            .map(|i| (deai_node::keyfile::address(&key(i)), 10_000 * TOKEN))
            .collect();
    })
    .expect("init");
    dir
}

#[test]
fn paid_queries_are_answered_checked_refused_durable_and_claimed() {
    deai_node::http::raise_fd_limit();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = init_validator(tmp.path());
    let base = tmp.path().to_path_buf();
    deai_node::run::with_embedded(&dir, move |node| async move {
        let validator = format!("http://{}", node.http_addr);
        let ledger = Client::new(validator.clone());
        let m = model();
        let cfg = ProviderConfig {
            claim_every_ms: 100,
            claim_min: 100,
            ..ProviderConfig::default()
        };
        let provider = provider_node(&base, &validator, cfg.clone()).await;
        let offer = offer(&ledger, &m, &provider.url).await?;
        let ch = channel(&ledger, offer.id, 500).await?;
        let chain_id = ledger.status().await?.chain_id;

        // Paid answers are the engine's, bit for bit, with receipts that check out.
        let provider_address = offer.provider;
        let mut s = session(&ledger, &offer, &ch).await;
        let info = s.info().await?;
        assert_eq!((info.input_len, info.model_hash), (64, offer.quant_hash));
        let inputs: Vec<Vec<u8>> = (0..20).map(|i| input(&m, i)).collect();
        let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let one = s.query(&refs[..1]).await?;
        let batch = s.query(&refs[1..]).await?;
        for (i, a) in one.iter().chain(&batch).enumerate() {
            let local = deai_infer::infer(&m, &deai_infer::decode_input(&m, &inputs[i])?);
            assert_eq!(a.output, local, "query {i}");
            assert_eq!(a.receipt.sequence, i as u64);
        }
        // The first answer brought a new voucher, so it came signed; the batch's receipts wait
        // for the next signature, which the session collects when asked.
        assert!(s.signed(&one[0].receipt).is_some());
        assert_eq!(s.unsigned(), 19);
        s.settle().await?;
        assert_eq!((s.unsigned(), s.lost()), (0, 0));
        let mut receipts = Vec::new();
        for a in one.iter().chain(&batch) {
            let r = s.signed_receipt(&a.receipt).await?;
            // Each checks alone, as the ledger checks a disputed one.
            r.verify(&provider_address)?;
            receipts.push(r);
        }
        assert!(
            receipts[1..]
                .iter()
                .all(|r| r.signature == receipts[1].signature)
        );
        assert_ne!(receipts[0].signature, receipts[1].signature);
        assert_eq!(s.spent(), 20 * PRICE);
        let voucher_amount = s.voucher().expect("signed").voucher.cumulative_amount;
        // The first voucher paid 32 queries ahead, so the batch needed no second one.
        assert_eq!(voucher_amount, (1 + 32) * PRICE);

        // Every bad payment is refused with its name, and the count is not moved.
        let url = provider.url.clone();
        let body = inputs[0].clone();
        let code = |r: (u16, String, Option<String>)| (r.0, r.1);
        assert_eq!(
            code(refused(&url, offer.id, None, body.clone()).await),
            (402, "voucher_required".into())
        );
        assert_eq!(
            code(refused(&url, offer.id, Some("zz".into()), body.clone()).await),
            (402, "voucher_malformed".into())
        );
        let forged = signed(STRANGER, &chain_id, ch.id, voucher_amount + 50);
        assert_eq!(
            code(refused(&url, offer.id, Some(forged), body.clone()).await),
            (402, "voucher_bad_signature".into())
        );
        let low = signed(PAYER, &chain_id, ch.id, 20 * PRICE);
        let (status, c, spent) = refused(&url, offer.id, Some(low), body.clone()).await;
        assert_eq!((status, c.as_str()), (402, "voucher_too_low"));
        assert_eq!(
            spent.as_deref(),
            Some("60"),
            "the refusal says what was spent"
        );
        let over = signed(PAYER, &chain_id, ch.id, DEPOSIT + 1);
        assert_eq!(
            code(refused(&url, offer.id, Some(over), body.clone()).await),
            (402, "voucher_overdrawn".into())
        );
        let other_chain = signed(PAYER, "another-chain", ch.id, voucher_amount + 3);
        assert_eq!(
            code(refused(&url, offer.id, Some(other_chain), body.clone()).await),
            (402, "voucher_wrong_chain".into())
        );
        let nowhere = signed(PAYER, &chain_id, 99, 10);
        assert_eq!(
            code(refused(&url, offer.id, Some(nowhere), body.clone()).await),
            (402, "channel_not_found".into())
        );
        let good = signed(PAYER, &chain_id, ch.id, voucher_amount + 3);
        assert_eq!(
            code(refused(&url, offer.id, Some(good.clone()), vec![1; 63]).await),
            (400, "bad_input".into())
        );
        let short = channel(&ledger, offer.id, 5).await?;
        let expiring = signed(PAYER, &chain_id, short.id, 10);
        assert_eq!(
            code(refused(&url, offer.id, Some(expiring), body.clone()).await),
            (402, "channel_expiring".into())
        );
        // A session that lost count sends too low a voucher: refused with the count, it catches
        // up once by itself.
        let mut s2 = session(&ledger, &offer, &ch).await.with_prepay(0);
        let caught = s2.query(&refs[..1]).await?;
        assert_eq!(caught[0].receipt.sequence, 20);
        assert_eq!(s2.spent(), 21 * PRICE);
        let paid = provider.provider.as_ref().expect("provider").paid(ch.id);
        assert_eq!(
            paid.as_ref().map(|p| (p.spent, p.next_sequence)),
            Some((63, 21))
        );
        assert_eq!(
            paid.as_ref()
                .and_then(|p| p.voucher.as_ref())
                .map(|v| v.voucher.cumulative_amount),
            Some(voucher_amount),
            "a lower voucher does not replace the highest"
        );

        // A restart keeps the count: the spent total, and sequences after those reserved, so no
        // sequence names two answers.
        drop(provider);
        let cfg = ProviderConfig {
            claim_min: 1,
            ..cfg
        };
        let provider = provider_node(&base, &validator, cfg).await;
        let restarted = provider.provider.as_ref().expect("provider").paid(ch.id);
        let resumed = paid.map(|p| deai_node::roles::provider::journal::Paid {
            next_sequence: RESERVED,
            ..p
        });
        assert_eq!(restarted, resumed, "the channel log survived the restart");
        // Its claim loop claims the logged voucher without waiting for another query.
        let logged = voucher_amount;
        let claimed = wait_claimed(&ledger, ch.id, logged).await?;
        assert_eq!(
            claimed, logged,
            "the restarted provider claimed what its log held"
        );
        let mut s = PaidSession::new(
            key(PAYER),
            chain_id.clone(),
            Offer {
                endpoint: provider.url.clone(),
                ..offer.clone()
            },
            ch.clone(),
            ledger.get::<Genesis>("/v1/genesis").await?.params.limits(),
        );
        // A fresh session counts from 0; the provider's answer tells it the channel spent 69.
        let after = s.query(&refs[..2]).await?;
        assert_eq!(after[0].receipt.sequence, RESERVED);
        assert_eq!(s.spent(), 23 * PRICE);

        // The claim loop redeems the new highest voucher too.
        let want = s.voucher().expect("signed").voucher.cumulative_amount;
        let claimed = wait_claimed(&ledger, ch.id, want).await?;
        assert_eq!(claimed, want, "the provider claimed the highest voucher");
        Ok(())
    })
    .expect("scenario");
}

#[test]
fn a_provider_that_lies_loses_its_bond_to_a_dispute_and_stops_answering() {
    deai_node::http::raise_fd_limit();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = init_validator(tmp.path());
    let base = tmp.path().to_path_buf();
    deai_node::run::with_embedded(&dir, move |node| async move {
        let validator = format!("http://{}", node.http_addr);
        let ledger = Client::new(validator.clone());
        let m = model();
        let cfg = ProviderConfig {
            claim_every_ms: 100,
            wrong_answer_every: 4,
            ..ProviderConfig::default()
        };
        let provider = provider_node(&base, &validator, cfg).await;
        let offer = offer(&ledger, &m, &provider.url).await?;
        let ch = channel(&ledger, offer.id, 500).await?;
        let mut s = session(&ledger, &offer, &ch).await;
        let inputs: Vec<Vec<u8>> = (0..8).map(|i| input(&m, i)).collect();
        let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let answers = s.query(&refs).await?;
        let mut receipts = Vec::new();
        for a in &answers {
            receipts.push(s.signed_receipt(&a.receipt).await?);
        }
        // Receipts check out (signed, right model and input): only re-execution shows the lie.
        let wrong: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(i, a)| {
                let input = deai_infer::decode_input(&m, &inputs[*i]).expect("input");
                a.output != deai_infer::infer(&m, &input)
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(wrong, vec![3, 7], "every 4th answer is wrong");

        // A dispute of an honest answer fails; of the wrong one, slashes and suspends.
        let genesis: Genesis = ledger.get("/v1/genesis").await?;
        let disputer = RoleContext::connect(key(STRANGER), ledger.clone()).await?;
        let dispute = |i: usize| ReceiptDispute {
            receipt: receipts[i].clone(),
            input: inputs[i].clone(),
            model: m.encode(),
        };
        let honest = dispute(0);
        let fee = honest.fee_min(&genesis.params);
        let sent = ledger
            .send(
                &key(STRANGER),
                TxBody::ReceiptDispute(honest),
                Some(fee),
                Some(Duration::from_secs(30)),
            )
            .await?;
        let events = match sent.state {
            Some(deai_node::api::types::TxState::Finalized { receipt, .. }) => receipt.events,
            other => panic!("not final: {other:?}"),
        };
        assert!(
            events
                .iter()
                .any(|e| matches!(e, deai_ledger::Event::DisputeRejected { .. })),
            "{events:?}"
        );
        let upheld = dispute(3);
        let fee = upheld.fee_min(&genesis.params);
        ledger
            .send(
                &disputer.key,
                TxBody::ReceiptDispute(upheld),
                Some(fee),
                Some(Duration::from_secs(30)),
            )
            .await?;
        let after: Offer = ledger.get(&format!("/v1/offers/{}", offer.id)).await?;
        assert_eq!((after.status, after.bond), (OfferStatus::Suspended, 0));

        // The provider learns it at its next tick and answers nothing more.
        let mut last = None;
        for _ in 0..100 {
            match s.query(&refs[..1]).await {
                Err(PaidError::Refused(ClientError::Api { status, code, .. })) => {
                    last = Some((status, code));
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert_eq!(last, Some((410, "offer_suspended".to_string())));
        Ok(())
    })
    .expect("scenario");
}
