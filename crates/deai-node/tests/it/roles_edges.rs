//! Bad input at every edge of the federated roles: unsigned, forged, replayed and stale
//! messages, requests from the wrong party, and a round result from a non-coordinator are each
//! refused with a named reason, and the nodes keep answering. Then one real round runs over HTTP
//! and verifies, so the refusals above are not a node that refuses everything, and a re-invite
//! to that round is refused.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use deai_ledger::{
    Digest, EPSILON_SCALE, EpsilonStep, NOISE_SCALE, TOKEN, TxBody,
    tx::{RoundExpire, RoundOpen, RoundResult, TaskCommitValidation, TaskCreate},
    validation_commitment,
};
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
        state_dir: dir.join(format!("{name}-state")),
        blob_max_bytes: 1 << 20,
        datasets,
        coordinator,
        announce_to: vec![],
        peer_timeout: Duration::from_secs(10),
        access: Default::default(),
        genesis: None,
        provider: None,
        identities: vec![],
    })
    .await
    .expect("role node starts")
}

/// Registers one dataset per owner of `split` (owner `i` with σ floor `sigma_min(i)`, fixed
/// point) and starts each owner's node; returns the dataset ids and the owners.
async fn start_owners(
    dir: &std::path::Path,
    ledger: &Client,
    validator: &str,
    split: &fed::data::DigitsSplit,
    sigma_min: impl Fn(usize) -> u64,
) -> anyhow::Result<(Vec<u64>, Vec<(RoleContext, RoleNode)>)> {
    let mut datasets = Vec::new();
    let mut owners = Vec::new();
    for (i, data) in split.owners.iter().enumerate() {
        let k = key(i as u8 + 2);
        let ctx = RoleContext::connect(k.clone(), ledger.clone()).await?;
        let policy = crate::common::digits_consent(sigma_min(i));
        let salt = setup::fresh_salt();
        let id = setup::register_dataset(&ctx, data, &salt, "digits-8x8", policy).await?;
        datasets.push(id);
        let local = LocalDataset {
            id,
            data: Arc::new(data.clone()),
            commitment: setup::salted_commitment(&salt, data),
        };
        let n = node(dir, &format!("o{i}"), k, validator, vec![local], false).await;
        owners.push((ctx, n));
    }
    Ok((datasets, owners))
}

/// A validator data directory under `tmp` whose genesis funds the creator and the owners, with
/// `params` adjusted; returns its path.
fn init_validator(
    tmp: &std::path::Path,
    params: impl FnOnce(&mut deai_ledger::Params),
) -> std::path::PathBuf {
    let dir = tmp.join("validator");
    deai_node::init::init_with(&dir, NodeConfig::default(), |g| {
        g.balances = (1..=OWNERS as u8 + 2)
            .map(|i| (deai_node::keyfile::address(&key(i)), 10_000 * TOKEN))
            .collect();
        params(&mut g.params);
    })
    .expect("init");
    dir
}

/// A `RoundResult` for round 1 of `task` that claims nothing.
fn empty_result(task: u64) -> RoundResult {
    RoundResult {
        task,
        round: 1,
        masked_updates: vec![],
        survivors: vec![],
        unmasking: Digest([0; 32]),
        aggregate: Digest([0; 32]),
        new_model: Digest([0; 32]),
        scores: vec![],
    }
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
    let dir = init_validator(tmp.path(), |_| {});
    deai_node::run::with_embedded(&dir, |v| async move {
        let validator = format!("http://{}", v.http_addr);
        let ledger = Client::new(validator.clone());
        let split = fed::data::digits_split(OWNERS)?;
        let creator = RoleContext::connect(key(1), ledger.clone()).await?;
        let coord = node(tmp.path(), "coord", key(1), &validator, vec![], true).await;
        let (datasets, owners) =
            start_owners(tmp.path(), &ledger, &validator, &split, |_| 0).await?;
        for (_, n) in &owners {
            serve::announce(n, &coord.url).await?;
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
            epsilon: None,
            reward: 100 * TOKEN,
        };
        let task = setup::create_task(&creator, terms, &split.validation, salt).await?;
        let owner_url = owners[0].1.url.clone();
        let owner_key = owners[0].1.ctx.key.verifying_key();
        let coord_key = key(1).verifying_key();
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
        let s = auth::sign_request(
            &stranger,
            &chain,
            &owner_key,
            "POST",
            "/v1/fed/invite",
            now,
            &invite,
        );
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, Some(s.clone())).await;
        assert_eq!((status, code.as_str()), (403, "not_coordinator"));
        // The same signed request again: refused the same way. A key the route refused never
        // took a slot of the replay guard (issue 12, finding 11), so there is nothing to replay.
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, Some(s)).await;
        assert_eq!((status, code.as_str()), (403, "not_coordinator"));
        // Signed for another body (a forgery of this one).
        let s = auth::sign_request(
            &key(1),
            &chain,
            &owner_key,
            "POST",
            "/v1/fed/invite",
            now + 10,
            b"{}",
        );
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, Some(s)).await;
        assert_eq!((status, code.as_str()), (401, "bad_signature"));
        // A nonce from long ago.
        let s = auth::sign_request(
            &key(1),
            &chain,
            &owner_key,
            "POST",
            "/v1/fed/invite",
            1,
            &invite,
        );
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, Some(s)).await;
        assert_eq!((status, code.as_str()), (401, "stale"));
        // The coordinator itself, but no round is open yet.
        let s = auth::sign_request(
            &key(1),
            &chain,
            &owner_key,
            "POST",
            "/v1/fed/invite",
            now + 20,
            &invite,
        );
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, Some(s)).await;
        assert_eq!((status, code.as_str()), (403, "round_not_open"));
        // A step of a round that never started.
        let path = format!("/v1/fed/step/{task}/1/{}", datasets[0]);
        let s = auth::sign_request(&key(1), &chain, &owner_key, "POST", &path, now + 30, b"x");
        let (status, code) = post_raw(&owner_url, &path, b"x", Some(s)).await;
        assert_eq!((status, code.as_str()), (404, "no_such_round"));
        // Announcing someone else's dataset.
        let join = serde_json::to_vec(&roles::coordinator::Join {
            datasets: vec![datasets[1]],
            url: owner_url.clone(),
        })?;
        let s = auth::sign_request(
            &key(2),
            &chain,
            &coord_key,
            "POST",
            "/v1/fed/join",
            now + 40,
            &join,
        );
        let (status, code) = post_raw(&coord.url, "/v1/fed/join", &join, Some(s)).await;
        assert_eq!((status, code.as_str()), (403, "not_owner"));
        // Assigning a task one did not create.
        let (status, code) = {
            let assign = serde_json::to_vec(&roles::coordinator::Assign {
                task,
                salt,
                validation: setup::commitment(&split.validation),
            })?;
            let s = auth::sign_request(
                &key(2),
                &chain,
                &coord_key,
                "POST",
                "/v1/fed/assign",
                now + 50,
                &assign,
            );
            post_raw(&coord.url, "/v1/fed/assign", &assign, Some(s)).await
        };
        assert_eq!((status, code.as_str()), (403, "not_creator"));
        // A round result from an owner, not the coordinator: the ledger refuses it, by name.
        let forged = empty_result(task);
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
        let verdict = deai_node::audit::task::verify_task(&ledger, &ledger, task, |_| {}).await?;
        assert!(verdict.ok, "verify failed: {verdict:?}");
        // A malicious coordinator re-invites an owner to the round it already ran (to difference
        // two runs of one group): refused by name, whatever the ledger says now.
        let later = auth::now_micros() + 1_000;
        let s = auth::sign_request(
            &key(1),
            &chain,
            &owner_key,
            "POST",
            "/v1/fed/invite",
            later,
            &invite,
        );
        let (status, code) = post_raw(&owner_url, "/v1/fed/invite", &invite, Some(s)).await;
        assert_eq!((status, code.as_str()), (409, "session_used"));
        Ok(())
    })
    .expect("scenario");
}

/// A malicious creator-coordinator against real owner nodes and the ledger: its task's ε schedule
/// charges far below the accountant's figure and its σ is below one owner's consent floor.
/// Each owner refuses by name before it trains; the stalled round is then closed as expired by
/// an owner (anyone may), after which the ledger refuses a late result for it.
#[test]
fn owners_refuse_an_undercharging_coordinator_and_anyone_expires_its_round() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = init_validator(tmp.path(), |p| p.round_timeout_blocks = 3);
    deai_node::run::with_embedded(&dir, |v| async move {
        let validator = format!("http://{}", v.http_addr);
        let ledger = Client::new(validator.clone());
        let split = fed::data::digits_split(OWNERS)?;
        let creator = RoleContext::connect(key(1), ledger.clone()).await?;
        // Owner 0 asks for σ ≥ 1; the task below uses σ = 0.3.
        let floor = |i: usize| if i == 0 { NOISE_SCALE } else { 0 };
        let (datasets, owners) =
            start_owners(tmp.path(), &ledger, &validator, &split, floor).await?;
        let mut spec = TaskSpec::digits_default();
        spec.rounds = 2;
        spec.datasets_per_round = OWNERS as u32;
        spec.group_size_min = OWNERS as u32;
        // The attack: a task whose ε schedule charges 10⁻⁶ per round, far below what the
        // spec's σ costs an owner (the ledger cannot tell; the owners can).
        let cheap: Vec<EpsilonStep> = (1..=spec.rounds)
            .map(|rounds| EpsilonStep {
                rounds,
                epsilon: u64::from(rounds),
            })
            .collect();
        let created = roles::send_tx(
            &creator,
            TxBody::TaskCreate(TaskCreate {
                purpose: "digits".into(),
                model_spec: spec.hash(),
                datasets: datasets.clone(),
                rounds: spec.rounds,
                epsilon: EPSILON_SCALE,
                epsilon_schedule: cheap,
                delta: spec.delta_budget(),
                reward: 100 * TOKEN,
            }),
        )
        .await?;
        let task = setup::created_id(&created.receipt, "task_created")?;
        let commitment =
            validation_commitment(&Digest([9; 32]), &setup::commitment(&split.validation));
        roles::send_tx(
            &creator,
            TxBody::TaskCommitValidation(TaskCommitValidation { task, commitment }),
        )
        .await?;
        // The owners fetch the spec and the global model from the validator's blob store.
        ledger.put_blob(&key(1), &spec.canonical_bytes()).await?;
        let kind = spec.model_kind()?;
        let global = fed::weights::encode(&kind, &spec.initial_weights()?)?;
        let global_model = ledger.put_blob(&key(1), &global).await?;
        let open = RoundOpen {
            task,
            round: 1,
            global_model,
            count: OWNERS as u32,
            secagg: fed::groups::secagg_params(OWNERS, OWNERS as u32),
            delta: spec.delta_per_round(),
        };
        roles::send_tx(&creator, TxBody::RoundOpen(open)).await?;

        let chain = creator.chain_id.clone();
        let mut now = auth::now_micros();
        let mut invite = |i: usize| {
            now += 10;
            let body = serde_json::to_vec(&roles::owner::Invite {
                task,
                round: 1,
                dataset: datasets[i],
                blobs: validator.clone(),
            })
            .expect("json");
            let to = owners[i].1.ctx.key.verifying_key();
            let s = auth::sign_request(&key(1), &chain, &to, "POST", "/v1/fed/invite", now, &body);
            (owners[i].1.url.clone(), body, s)
        };
        let (url, body, s) = invite(1);
        let (status, code) = post_raw(&url, "/v1/fed/invite", &body, Some(s)).await;
        assert_eq!((status, code.as_str()), (403, "epsilon_undercharged"));
        let (url, body, s) = invite(0);
        let (status, code) = post_raw(&url, "/v1/fed/invite", &body, Some(s)).await;
        assert_eq!((status, code.as_str()), (403, "sigma_below_policy"));
        // Refused before any secret was drawn: the owner did not burn its session.
        let (url, body, s) = invite(1);
        let (status, code) = post_raw(&url, "/v1/fed/invite", &body, Some(s)).await;
        assert_eq!((status, code.as_str()), (403, "epsilon_undercharged"));

        // The round hangs; after its deadline any account may close it as failed.
        let expire = || TxBody::RoundExpire(RoundExpire { task, round: 1 });
        let early = roles::send_tx(&owners[2].0, expire()).await;
        if let Err(e) = &early {
            assert!(e.message.contains("round_not_expired"), "{}", e.message);
        }
        let mut expired = early.is_ok();
        for _ in 0..200 {
            if expired {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            expired = roles::send_tx(&owners[2].0, expire()).await.is_ok();
        }
        assert!(expired, "the round could not be expired after its deadline");
        let t: deai_ledger::Task = ledger.get(&format!("/v1/tasks/{task}")).await?;
        assert!(t.round_log[0].is_expired() && !t.round_log[0].is_open());
        let late = empty_result(task);
        let err = roles::send_tx(&creator, TxBody::RoundResult(late))
            .await
            .expect_err("a result for an expired round is refused");
        assert!(err.message.contains("expired"), "{}", err.message);
        Ok(())
    })
    .expect("scenario");
}
