//! Issue 13, light clients: a node reading the ledger through a validator it does not trust.
//!
//! A lying upstream is a proxy in front of a real validator that rewrites what passes through:
//! a richer balance, another owner for a dataset, a block with another state root under the real
//! certificate, a chain id of its own. A light client refuses each by name, a role node reading
//! through it answers `ledger_forged` instead of acting on the lie, and the same reads through an
//! honest proxy verify (so the refusals are not a client that refuses everything).

use std::{net::SocketAddr, sync::Arc};

use axum::{Json, Router, extract::State, http::Uri, response::IntoResponse};
use commonware_codec::{Decode as _, Encode as _};
use deai_ledger::{Account, ConsentPolicy, Dataset, EPSILON_SCALE, StateKey, TOKEN};
use deai_node::{
    client::Client,
    config::NodeConfig,
    fed,
    light_client::{LightClient, ReadError},
    roles::{RoleContext, setup},
};
use ed25519_dalek::SigningKey;
use serde_json::Value;
use std::sync::Mutex;

/// What the proxy rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lie {
    Nothing,
    Balance,
    DatasetOwner,
    Block,
    ChainId,
    /// Answers a dataset with the next dataset's (valid) proof and entry.
    OtherEntry,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    lie: Arc<Mutex<Lie>>,
    block_cfg: deai_chain::BlockCfg,
}

async fn forward(State(p): State<Proxy>, uri: Uri) -> axum::response::Response {
    let lie = *p.lie.lock().unwrap();
    let mut asked = uri.path().to_string();
    if lie == Lie::OtherEntry
        && let Some(id) = asked.strip_prefix("/v1/proofs/dataset/")
    {
        asked = format!("/v1/proofs/dataset/{}", id.parse::<u64>().unwrap() + 1);
    }
    let url = format!("{}{}", p.upstream, asked);
    let Ok(resp) = p.http.get(&url).send().await else {
        return (axum::http::StatusCode::BAD_GATEWAY, "upstream down").into_response();
    };
    let status = resp.status();
    let Ok(mut v) = resp.json::<Value>().await else {
        return (axum::http::StatusCode::BAD_GATEWAY, "not json").into_response();
    };
    let path = uri.path();
    match lie {
        Lie::Balance if path.starts_with("/v1/proofs/account") => {
            v["entry"]["balance"] = Value::String((1_000_000 * TOKEN).to_string());
        }
        Lie::DatasetOwner if path.starts_with("/v1/proofs/dataset") => {
            v["entry"]["owner"] = Value::String(hex::encode([0xEE; 32]));
        }
        Lie::Block if path.ends_with("/finality") && status.is_success() => {
            let bytes = hex::decode(v["blocks"][0].as_str().unwrap()).unwrap();
            let b = match deai_chain::Block::decode_cfg(bytes, &p.block_cfg) {
                Ok(b) => b,
                Err(e) => panic!("the proxy cannot decode a block: {e}; {v}"),
            };
            // The lie a validator would need: another root for the height, in a block that
            // looks like the real one.
            let forged = deai_chain::Block::new(
                b.parent,
                b.height,
                b.proposer,
                deai_ledger::Digest([0xAB; 32]),
                b.timestamp_ms,
                b.entropy,
                b.txs().to_vec(),
            );
            v["blocks"][0] = Value::String(hex::encode(forged.encode()));
        }
        Lie::ChainId if path == "/v1/status" => {
            v["chain_id"] = Value::String("a-chain-of-its-own".into());
        }
        _ => {}
    }
    (status, Json(v)).into_response()
}

/// Starts a proxy in front of `upstream`; returns its URL and the switch of its lie.
async fn proxy(upstream: String, genesis: &deai_ledger::Genesis) -> (String, Arc<Mutex<Lie>>) {
    let lie = Arc::new(Mutex::new(Lie::Nothing));
    let state = Proxy {
        upstream,
        http: reqwest::Client::new(),
        lie: lie.clone(),
        block_cfg: deai_chain::BlockCfg::from_params(&genesis.params),
    };
    let app = Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, lie)
}

#[test]
fn a_light_client_refuses_a_lying_upstream_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("validator");
    let owner = SigningKey::from_bytes(&[3; 32]);
    let owner_address = deai_node::keyfile::address(&owner);
    deai_node::init::init_with(&dir, NodeConfig::default(), |g| {
        g.balances.push((owner_address, 1_000 * TOKEN));
    })
    .unwrap();
    let genesis = deai_node::config::load_genesis(&dir).unwrap();
    deai_node::run::with_embedded(&dir, move |v| async move {
        let validator = format!("http://{}", v.http_addr);
        // A dataset, so there is more than a balance to lie about.
        let ctx = RoleContext::connect(owner.clone(), Client::new(validator.clone())).await?;
        let split = fed::data::digits_split(2)?;
        let policy = ConsentPolicy {
            purposes: vec!["digits".into()],
            creators: None,
            reward_min: 0,
            epsilon_max: 10 * EPSILON_SCALE,
            expiry_height: 1_000_000,
            epsilon_round_max: 0,
            noise_multiplier_min: 0,
            royalty_bps_min: 0,
        };
        let salt = setup::fresh_salt();
        let dataset =
            setup::register_dataset(&ctx, &split.owners[0], &salt, "digits-8x8", policy.clone())
                .await?;
        let next =
            setup::register_dataset(&ctx, &split.owners[1], &salt, "digits-8x8", policy).await?;
        assert_eq!(next, dataset + 1);

        let (url, lie) = proxy(validator.clone(), &genesis).await;
        let light = LightClient::new(Client::new(url.clone()), &genesis)?;

        // Honest answers verify, through the proxy too.
        light.check_chain().await?;
        let account = light
            .read::<Account>(StateKey::Account(owner_address))
            .await?;
        assert_eq!(account.entry.address, owner_address);
        let d = light.read::<Dataset>(StateKey::Dataset(dataset)).await?;
        assert_eq!(d.entry.owner, owner_address);

        let set = |l| *lie.lock().unwrap() = l;
        set(Lie::Balance);
        let err = light
            .read::<Account>(StateKey::Account(owner_address))
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::Forged { .. }), "{err}");
        assert!(
            err.to_string().contains("is not the committed state"),
            "{err}"
        );

        set(Lie::DatasetOwner);
        let err = light
            .read::<Dataset>(StateKey::Dataset(dataset))
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::Forged { .. }), "{err}");

        // Another entry's valid proof and entry, for the one asked.
        set(Lie::OtherEntry);
        let err = light
            .read::<Dataset>(StateKey::Dataset(dataset))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("proves dataset/"), "{err}");
        let check = deai_node::audit::chain::check_proof(
            &Client::new(url.clone()),
            Some(&genesis),
            "dataset",
            &dataset.to_string(),
        )
        .await?;
        assert!(
            !check.valid
                && check
                    .error
                    .as_deref()
                    .unwrap_or("")
                    .contains("the node proved")
        );

        // A forged block under the real certificate (a fresh client: no remembered roots).
        set(Lie::Block);
        let fresh = LightClient::new(Client::new(url.clone()), &genesis)?;
        let err = fresh
            .read::<Dataset>(StateKey::Dataset(dataset))
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::Uncertified { .. }), "{err}");
        assert!(err.to_string().contains("not the block sent"), "{err}");

        set(Lie::ChainId);
        let err = fresh.check_chain().await.unwrap_err();
        assert!(matches!(err, ReadError::OtherChain { .. }), "{err}");

        // A role node reading through the liar refuses to act on the lie, by name.
        set(Lie::DatasetOwner);
        let owner_ctx = RoleContext::connect(owner.clone(), Client::new(url.clone()))
            .await?
            .verifying(&genesis)
            .await?;
        let refused = deai_node::roles::read_dataset(&owner_ctx, dataset)
            .await
            .unwrap_err();
        assert_eq!(refused.code, "ledger_forged", "{}", refused.message);
        set(Lie::Nothing);
        let d = deai_node::roles::read_dataset(&owner_ctx, dataset)
            .await
            .unwrap();
        assert_eq!(d.owner, owner_address);

        // `deai ledger prove`'s check: valid against the pinned genesis, invalid through a liar.
        let check = deai_node::audit::chain::check_proof(
            &Client::new(url.clone()),
            Some(&genesis),
            "dataset",
            &dataset.to_string(),
        )
        .await?;
        assert!(check.valid, "{:?}", check.error);
        assert_eq!(check.certified_by, check.height + 1);
        set(Lie::Block);
        let check = deai_node::audit::chain::check_proof(
            &Client::new(url),
            Some(&genesis),
            "account",
            &owner_address.to_string(),
        )
        .await?;
        assert!(!check.valid);
        assert!(check.error.unwrap().contains("fails verification"));
        Ok(())
    })
    .unwrap();
}
