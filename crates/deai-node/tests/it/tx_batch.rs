//! `POST /v1/txs/batch` (issue 12, finding 10): each transaction gets the verdict `POST /v1/txs`
//! would give it, in order; the envelope and the per-IP write limit refuse the whole batch before
//! anything is admitted.

use std::time::Duration;

use crate::common;
use deai_ledger::{Address, SignedTx, Transfer, Tx, TxBody};
use deai_node::{
    api::BatchItem,
    client::{Client, ClientError},
    config::{DEV_KEY_FILE, HttpConfig},
    keyfile,
    run::RunningNode,
};
use ed25519_dalek::SigningKey;

/// Runs `f` against a fresh single validator with its funded dev key.
fn with_node<F, Fut>(http: HttpConfig, f: F)
where
    F: FnOnce(RunningNode, SigningKey) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    common::with_node(http, move |node, dir| {
        let dev = keyfile::read(&dir.join(DEV_KEY_FILE)).unwrap();
        f(node, dev)
    });
}

fn transfer(key: &SigningKey, chain_id: &str, nonce: u64, amount: u128) -> SignedTx {
    SignedTx::sign(
        Tx {
            chain_id: chain_id.into(),
            sender: keyfile::address(key),
            nonce,
            fee: 10,
            body: TxBody::Transfer(Transfer {
                to: Address([7u8; 32]),
                amount,
            }),
        },
        key,
    )
}

fn code(item: &BatchItem) -> &str {
    match item {
        BatchItem::Accepted { .. } => "accepted",
        BatchItem::Rejected { code, .. } => code,
    }
}

#[test]
fn each_transaction_gets_its_own_verdict_in_order() {
    with_node(HttpConfig::default(), |node, dev| async move {
        let client = Client::new(format!("http://{}", node.http_addr));
        let chain = client.status().await?.chain_id;
        let first = transfer(&dev, &chain, 0, 1);
        // Nonce 1 is admitted because nonce 0 came before it in the same batch.
        let second = transfer(&dev, &chain, 1, 2);
        let mut forged = transfer(&dev, &chain, 2, 3);
        forged.signature[0] ^= 1;
        let stranger = SigningKey::from_bytes(&[42u8; 32]);
        let unfunded = transfer(&stranger, &chain, 0, 1);
        let items = client
            .submit_batch(&[
                first.clone(),
                second.clone(),
                forged,
                first.clone(),
                unfunded,
            ])
            .await?;
        let codes: Vec<_> = items.iter().map(code).collect();
        assert_eq!(
            codes,
            [
                "accepted",
                "accepted",
                "bad_signature",
                "duplicate_tx",
                "insufficient_funds"
            ]
        );
        assert_eq!(items[0], BatchItem::Accepted { id: first.id() });
        assert_eq!(items[1], BatchItem::Accepted { id: second.id() });
        for id in [first.id(), second.id()] {
            let state = client.wait_final(&id, Duration::from_secs(30)).await?;
            assert!(
                matches!(
                    state,
                    deai_node::api::types::TxState::Finalized { applied: true, .. }
                ),
                "{state:?}"
            );
        }
        Ok(())
    });
}

#[test]
fn a_bad_entry_is_named_and_its_neighbours_admitted() {
    with_node(HttpConfig::default(), |node, dev| async move {
        let base = format!("http://{}", node.http_addr);
        let chain = Client::new(base.clone()).status().await?.chain_id;
        let good = hex::encode(transfer(&dev, &chain, 0, 1).encode());
        let body = serde_json::json!({ "txs": ["zz", good, "abcd"] });
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{base}/v1/txs/batch"))
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let statuses: Vec<_> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["status"].as_str().unwrap(),
                    r["code"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            statuses,
            [
                ("rejected", "bad_hex"),
                ("accepted", ""),
                ("rejected", "bad_tx_encoding")
            ]
        );
        Ok(())
    });
}

#[test]
fn an_oversized_batch_or_one_over_the_write_limit_admits_nothing() {
    let http = HttpConfig {
        batch_txs_max: 16,
        writes_per_ip_per_s: 1,
        writes_per_ip_burst: 10,
        ..HttpConfig::default()
    };
    with_node(http, |node, dev| async move {
        let client = Client::new(format!("http://{}", node.http_addr));
        let chain = client.status().await?.chain_id;
        let txs: Vec<_> = (0..17).map(|n| transfer(&dev, &chain, n, 1)).collect();
        let status_of = |e: ClientError| match e {
            ClientError::Api { status, code, .. } => (status, code),
            other => panic!("{other}"),
        };
        let err = client.submit_batch(&txs).await.expect_err("17 > 16");
        assert_eq!(status_of(err), (413, "batch_too_large".to_string()));
        // 12 writes against a burst of 10 (the oversized batch above spent one already).
        let err = client
            .submit_batch(&txs[..12])
            .await
            .expect_err("over the burst");
        assert_eq!(status_of(err), (429, "rate_limited".to_string()));
        assert_eq!(client.status().await?.mempool_size, 0, "nothing admitted");
        let items = client.submit_batch(&txs[..8]).await?;
        assert!(items.iter().all(|i| code(i) == "accepted"), "{items:?}");
        Ok(())
    });
}

/// A batch of the most transactions allowed fits the body limit (a single transaction's limit
/// would refuse it with 413).
#[test]
fn a_full_batch_fits_the_body_limit() {
    with_node(HttpConfig::default(), |node, _dev| async move {
        let client = Client::new(format!("http://{}", node.http_addr));
        let chain = client.status().await?.chain_id;
        let txs: Vec<_> = (0..256u32)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..4].copy_from_slice(&i.to_le_bytes());
                transfer(&SigningKey::from_bytes(&seed), &chain, 0, 1)
            })
            .collect();
        let items = client.submit_batch(&txs).await?;
        assert_eq!(items.len(), 256);
        // Unfunded senders: each is refused on its own merits, none for the body's size.
        assert!(
            items.iter().all(|i| code(i) == "insufficient_funds"),
            "{:?}",
            items[0]
        );
        Ok(())
    });
}
