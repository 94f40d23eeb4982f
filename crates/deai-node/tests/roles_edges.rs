//! Bad input at every edge of the federated roles: unsigned, forged, replayed and stale
//! messages, requests from the wrong party, and a round result from a non-coordinator are each
//! refused with a named reason, and the nodes keep answering. Then one real round runs over HTTP
//! and verifies, so the refusals above are not a node that refuses everything.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use deai_ledger::{ConsentPolicy, Digest, EPSILON_SCALE, TOKEN, TxBody, tx::RoundResult};
use deai_node::{
    auth,
    client::Client,
    config::NodeConfig,
    fed::{self, TaskSpec},
    roles::{
        self, RoleContext,
        owner::LocalDataset,
        serve::{self, RoleNode, RoleNodeConfig},
        setup,
    },
};
use ed25519_dalek::SigningKey;

const OWNERS: usize = 4;

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

async fn node(
    dir: &std::path::Path,
    name: &str,
    k: SigningKey,
    validator: &str,
    datasets: Vec<LocalDataset>,
    coordinator: bool,
) -> RoleNode {
    serve::start(RoleNodeConfig {
        key: k,
        upstream: validator.into(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        blobs_dir: dir.join(name),
        blob_max_bytes: 1 << 20,
        datasets,
        coordinator,
        announce_to: vec![],
        peer_timeout: Duration::from_secs(10),
    })
    .await
    .expect("role node starts")
}

/// POSTs `body` to `url`+`path` with the given headers; returns (status, error code).
async fn post_raw(
    url: &str,
    path: &str,
    body: &[u8],
    signed: Option<auth::SignedHeaders>,
) -> (u16, String) {
    let http = reqwest::Client::new();
    let mut req = http.post(format!("{url}{path}")).body(body.to_vec());
    if let Some(s) = signed {
        req = s.apply(req);
    }
    let resp = req.send().await.expect("node answers");
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    (
        status,
        v["error"]["code"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn every_edge_refuses_bad_input_by_name_and_a_real_round_still_verifies() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("validator");
    deai_node::init::init_with(&dir, NodeConfig::default(), |g| {
        g.balances = (1..=OWNERS as u8 + 2)
            .map(|i| (deai_node::keyfile::address(&key(i)), 10_000 * TOKEN))
            .collect();
    })
    .expect("init");
    deai_node::run::with_embedded(&dir, |v| async move {
        let validator = format!("http://{}", v.http_addr);
        let ledger = Client::new(validator.clone());
        let split = fed::data::digits_split(OWNERS)?;
        let creator = RoleContext::connect(key(1), ledger.clone()).await?;
        let coord = node(tmp.path(), "coord", key(1), &validator, vec![], true).await;
        let mut datasets = Vec::new();
        let mut owners = Vec::new();
        for (i, data) in split.owners.iter().enumerate() {
            let k = key(i as u8 + 2);
            let ctx = RoleContext::connect(k.clone(), ledger.clone()).await?;
            let policy = ConsentPolicy {
                purposes: vec!["digits".into()],
                creators: None,
                reward_min: 0,
                epsilon_max: 1_000 * EPSILON_SCALE,
                expiry_height: 1_000_000,
            };
            let id = setup::register_dataset(&ctx, data, "digits-8x8", policy).await?;
            datasets.push(id);
            let local = LocalDataset {
                id,
                data: Arc::new(data.clone()),
                commitment: setup::commitment(data),
            };
            let n = node(
                tmp.path(),
                &format!("o{i}"),
                k,
                &validator,
                vec![local],
                false,
            )
            .await;
            serve::announce(&n, &coord.url).await?;
            owners.push((ctx, n));
        }
        let mut spec = TaskSpec::digits_default();
        spec.rounds = 1;
        spec.datasets_per_round = OWNERS as u32;
        spec.group_size_min = OWNERS as u32;
        let salt = Digest([9; 32]);
        let terms = setup::TaskTerms {
            purpose: "digits",
            spec: &spec,
            datasets: datasets.clone(),
            epsilon: 1_000 * EPSILON_SCALE,
            reward: 100 * TOKEN,
        };
        let task = setup::create_task(&creator, terms, &split.validation, salt).await?;
        let owner_url = owners[0].1.url.clone();
        let chain = creator.chain_id.clone();
        let invite = serde_json::to_vec(&roles::owner::Invite {
            task,
            round: 1,
            dataset: datasets[0],
            blobs: coord.url.clone(),
        })?;

        // Unsigned.
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, None).await;
        assert_eq!((status, code.as_str()), (401, "unsigned"));
        // Signed by a key that is not the task's coordinator.
        let stranger = key(99);
        let now = auth::now_micros();
        let s = auth::sign_request(&stranger, &chain, "POST", "/v1/fed/invite", now, &invite);
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, Some(s.clone())).await;
        assert_eq!((status, code.as_str()), (403, "not_coordinator"));
        // The same signed request again: a replay.
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, Some(s)).await;
        assert_eq!((status, code.as_str()), (401, "replayed"));
        // Signed for another body (a forgery of this one).
        let s = auth::sign_request(&key(1), &chain, "POST", "/v1/fed/invite", now + 10, b"{}");
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, Some(s)).await;
        assert_eq!((status, code.as_str()), (401, "bad_signature"));
        // A nonce from long ago.
        let s = auth::sign_request(&key(1), &chain, "POST", "/v1/fed/invite", 1, &invite);
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, Some(s)).await;
        assert_eq!((status, code.as_str()), (401, "stale"));
        // The coordinator itself, but no round is open yet.
        let s = auth::sign_request(&key(1), &chain, "POST", "/v1/fed/invite", now + 20, &invite);
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, Some(s)).await;
        assert_eq!((status, code.as_str()), (403, "round_not_open"));
        // A step of a round that never started.
        let path = format!("/v1/fed/step/{task}/1/{}", datasets[0]);
        let s = auth::sign_request(&key(1), &chain, "POST", &path, now + 30, b"x");
        let (status, code) = post_raw(&owner_url, &path, b"x", Some(s)).await;
        assert_eq!((status, code.as_str()), (404, "no_such_round"));
        // Announcing someone else's dataset.
        let join = serde_json::to_vec(&roles::coordinator::Join {
            datasets: vec![datasets[1]],
            url: owner_url.clone(),
        })?;
        let s = auth::sign_request(&key(2), &chain, "POST", "/v1/fed/join", now + 40, &join);
        let (status, code) = post_raw(&coord.url, "/v1/fed/join", &join, Some(s)).await;
        assert_eq!((status, code.as_str()), (403, "not_owner"));
        // Assigning a task one did not create.
        let (status, code) = {
            let assign = serde_json::to_vec(&roles::coordinator::Assign {
                task,
                salt,
                validation: setup::commitment(&split.validation),
            })?;
            let s =
                auth::sign_request(&key(2), &chain, "POST", "/v1/fed/assign", now + 50, &assign);
            post_raw(&coord.url, "/v1/fed/assign", &assign, Some(s)).await
        };
        assert_eq!((status, code.as_str()), (403, "not_creator"));
        // A round result from an owner, not the coordinator: the ledger refuses it, by name.
        let forged = RoundResult {
            task,
            round: 1,
            masked_updates: vec![],
            survivors: vec![],
            unmasking: Digest([0; 32]),
            aggregate: Digest([0; 32]),
            new_model: Digest([0; 32]),
            scores: vec![],
        };
        let err = roles::send_tx(&owners[0].0, TxBody::RoundResult(forged))
            .await
            .expect_err("a non-coordinator's round result is refused");
        assert!(
            err.message.contains("coordinator") || err.message.contains("round"),
            "unnamed refusal: {}",
            err.message
        );

        // Every node still answers, and a real round runs and verifies.
        for (_, n) in &owners {
            let info: serde_json::Value = Client::new(n.url.clone()).get("/v1/node").await?;
            assert_eq!(info["roles"], serde_json::json!(["owner"]));
        }
        setup::assign(&creator, &coord.url, task, &spec, &split.validation, salt).await?;
        let c = coord.coordinator.clone().expect("coordinator role");
        let close = c.run_task(task, &ledger, |_| {}).await?;
        assert!(close.model > 0);
        let verdict = deai_node::verify_task::verify_task(&ledger, &ledger, task, |_| {}).await?;
        assert!(verdict.ok, "verify failed: {verdict:?}");
        Ok(())
    })
    .expect("scenario");
}
