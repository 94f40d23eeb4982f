//! One owner node hosting many owners: each its own key, datasets, consent, session log and
//! reward account, served under `/owners/<address>` of one HTTP listener. A task trains on them
//! over HTTP and verifies; each owner is paid to its own account; a message the coordinator
//! addressed to one hosted owner is refused by another's routes.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use deai_ledger::{Digest, TOKEN};
use deai_node::{
    auth,
    client::Client,
    config::NodeConfig,
    fed::{self, TaskSpec},
    keyfile,
    roles::{
        RoleContext,
        owner::LocalDataset,
        serve::{self, OwnerIdentity, RoleNodeConfig},
        setup,
    },
};
use ed25519_dalek::SigningKey;

/// Owners hosted by the one owner node.
const OWNERS: usize = 5;
const ROUNDS: u32 = 2;

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

fn config(
    dir: &std::path::Path,
    key: SigningKey,
    identities: Vec<OwnerIdentity>,
) -> RoleNodeConfig {
    RoleNodeConfig {
        key,
        upstream: String::new(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        blobs_dir: dir.join("blobs"),
        state_dir: dir.to_path_buf(),
        blob_max_bytes: 1 << 24,
        datasets: vec![],
        identities,
        coordinator: false,
        announce_to: vec![],
        peer_timeout: Duration::from_secs(10),
        access: Default::default(),
        genesis: None,
        provider: None,
    }
}

#[test]
fn one_node_hosts_many_owners_each_signing_and_paid_as_itself() {
    let tmp = tempfile::tempdir().expect("tmp");
    let vdir = tmp.path().join("validator");
    deai_node::init::init_with(&vdir, NodeConfig::default(), |g| {
        g.balances = (1..=OWNERS as u8 + 2)
            .map(|i| (keyfile::address(&key(i)), 10_000 * TOKEN))
            .collect();
    })
    .expect("init");
    deai_node::run::with_embedded(&vdir, |v| async move {
        let validator = format!("http://{}", v.http_addr);
        let ledger = Client::new(validator.clone());
        let split = fed::data::digits_split(OWNERS)?;
        let creator = RoleContext::connect(key(1), ledger.clone()).await?;
        let mut coord_cfg = config(&tmp.path().join("coord"), key(1), vec![]);
        coord_cfg.upstream = validator.clone();
        coord_cfg.coordinator = true;
        let coord = serve::start(coord_cfg).await?;

        // Each owner registers its own dataset under its own key.
        let mut identities = Vec::new();
        let mut datasets = Vec::new();
        for (i, data) in split.owners.iter().enumerate() {
            let k = key(i as u8 + 2);
            let ctx = RoleContext::connect(k.clone(), ledger.clone()).await?;
            let policy = crate::common::digits_consent(0);
            let salt = setup::fresh_salt();
            let id = setup::register_dataset(&ctx, data, &salt, "digits-8x8", policy).await?;
            datasets.push(id);
            identities.push(OwnerIdentity {
                key: k,
                datasets: vec![LocalDataset {
                    id,
                    data: Arc::new(data.clone()),
                    commitment: setup::salted_commitment(&salt, data),
                }],
            });
        }
        // One node, under a key of its own that owns nothing, hosts all of them.
        let mut owner_cfg = config(
            &tmp.path().join("owners"),
            key(OWNERS as u8 + 2),
            identities,
        );
        owner_cfg.upstream = validator.clone();
        owner_cfg.announce_to = vec![coord.url.clone()];
        let node = serve::start(owner_cfg).await?;
        assert!(node.owner.is_none());
        assert_eq!(node.identities.len(), OWNERS);
        serve::announce(&node, &coord.url).await?;
        let status: serde_json::Value = Client::new(node.url.clone()).get("/v1/status").await?;
        assert_eq!(status["roles"], serde_json::json!(["owner"]));
        assert_eq!(status["datasets"], serde_json::json!(datasets));

        // A coordinator's invite addressed to owner 0 but sent to owner 1's routes: refused
        // (the signature names its recipient), and nothing starts.
        let (a, b) = (&node.identities[0], &node.identities[1]);
        let invite = serde_json::to_vec(&deai_node::roles::owner::Invite {
            task: 1,
            round: 1,
            dataset: datasets[0],
            blobs: coord.url.clone(),
        })?;
        let signed = auth::sign_request(
            &key(1),
            &creator.chain_id,
            &key(2).verifying_key(),
            "POST",
            "/v1/fed/invite",
            auth::now_micros(),
            &invite,
        );
        let resp = signed
            .apply(reqwest::Client::new().post(format!("{}/v1/fed/invite", b.1)))
            .body(invite.clone())
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 401, "{}", resp.text().await?);
        assert!(a.1.ends_with(&serve::identity_path(&a.0.address())));

        let mut spec = TaskSpec::digits_default();
        spec.rounds = ROUNDS;
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
        setup::assign(&creator, &coord.url, task, &spec, &split.validation, salt).await?;
        let balances = |ledger: Client| async move {
            let mut out = Vec::new();
            for i in 0..OWNERS {
                let addr = keyfile::address(&key(i as u8 + 2));
                out.push(ledger.account(&addr).await?.account.balance);
            }
            anyhow::Ok(out)
        };
        let before = balances(ledger.clone()).await?;
        let c = coord.coordinator.clone().expect("coordinator role");
        let close = c
            .run_task(task, &ledger, |r| {
                assert_eq!(r.survivors.len(), OWNERS, "round {}", r.round);
            })
            .await?;
        assert!(close.model > 0);
        let verdict = deai_node::audit::task::verify_task(&ledger, &ledger, task, |_| {}).await?;
        assert!(verdict.ok, "verify failed: {verdict:?}");
        // Each hosted owner took part as itself: its own session log, its own reward account.
        let after = balances(ledger.clone()).await?;
        for (i, (owner, _)) in node.identities.iter().enumerate() {
            let sessions: Vec<(u64, u32, u64)> = owner.sessions();
            assert_eq!(
                sessions,
                (1..=ROUNDS)
                    .map(|r| (task, r, datasets[i]))
                    .collect::<Vec<_>>(),
                "owner {i}"
            );
            let paid: u128 = close.rewards[&datasets[i]].parse()?;
            assert!(paid > 0, "owner {i} earned nothing");
            assert_eq!(
                after[i],
                before[i] + paid,
                "owner {i} paid to its own account"
            );
        }
        Ok(())
    })
    .expect("scenario");
}
