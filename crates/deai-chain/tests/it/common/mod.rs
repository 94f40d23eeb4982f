//! Shared set-up for the chain's deterministic-runtime tests: keys, genesis, a simulated network.
#![allow(dead_code, unreachable_pub, missing_docs)]

use commonware_cryptography::{Signer as _, ed25519};
use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_runtime::{Clock as _, Quota, Supervisor as _, deterministic};
use commonware_utils::{NZU32, NZUsize};
use deai_chain::{Channels, Config, Handle, TxStatus, channel};
use deai_ledger::{Address, Digest, Genesis, SignedTx, Transfer, Tx, TxBody, TxId};
use ed25519_dalek::SigningKey;
use std::time::Duration;

pub type Ctx = deterministic::Context;
pub type PublicKey = ed25519::PublicKey;

/// The funded dev account.
pub fn dev_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

pub fn address(key: &SigningKey) -> Address {
    Address(key.verifying_key().to_bytes())
}

pub fn validator_keys(n: u64) -> Vec<ed25519::PrivateKey> {
    (0..n)
        .map(|i| ed25519::PrivateKey::from_seed(100 + i))
        .collect()
}

fn validator_address(k: &ed25519::PrivateKey) -> Address {
    let mut out = [0u8; 32];
    out.copy_from_slice(k.public_key().as_ref());
    Address(out)
}

pub fn genesis(validators: &[ed25519::PrivateKey]) -> Genesis {
    Genesis::dev(
        address(&dev_key()),
        validators.iter().map(validator_address).collect(),
    )
}

pub fn config(genesis: &Genesis, keys: &[ed25519::PrivateKey], i: usize) -> Config {
    let mut cfg = Config::single(genesis.clone(), keys[i].clone());
    cfg.participants = keys.iter().map(|k| k.public_key()).collect();
    cfg.partition_prefix = format!("validator{i}");
    cfg
}

/// A signed transfer of `amount` from `from` with `nonce`.
pub fn transfer(
    genesis: &Genesis,
    from: &SigningKey,
    to: Address,
    amount: u128,
    nonce: u64,
) -> SignedTx {
    let tx = Tx {
        chain_id: genesis.chain_id.clone(),
        sender: address(from),
        nonce,
        fee: genesis.params.fee_min.max(1),
        body: TxBody::Transfer(Transfer { to, amount }),
    };
    SignedTx::sign(tx, from)
}

/// Starts a simulated network whose message limit fits the chain's largest message.
pub async fn network(context: &Ctx, cfg: &Config, peers: Vec<PublicKey>) -> Oracle<PublicKey, Ctx> {
    let n = peers.len();
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: deai_chain::max_message_size(cfg),
            max_peers_per_set: NZUsize!(n),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        peers,
    )
    .await;
    network.start();
    oracle
}

/// Links with no loss: 10 ms ± 2 ms.
pub const RELIABLE: Link = Link {
    latency: Duration::from_millis(10),
    jitter: Duration::from_millis(2),
    success_rate: commonware_utils::probability!(1.0),
};

/// `n` validators' keys, their genesis, and a simulated network joining every pair by `link`.
pub struct Linked {
    pub keys: Vec<ed25519::PrivateKey>,
    pub genesis: Genesis,
    pub peers: Vec<PublicKey>,
    pub oracle: Oracle<PublicKey, Ctx>,
}

pub async fn linked_network(context: &Ctx, n: u64, link: Link) -> Linked {
    let keys = validator_keys(n);
    let genesis = genesis(&keys);
    let peers: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
    let oracle = network(context, &config(&genesis, &keys, 0), peers.clone()).await;
    link_all(&oracle, &peers, link).await;
    Linked {
        keys,
        genesis,
        peers,
        oracle,
    }
}

pub async fn link_all(oracle: &Oracle<PublicKey, Ctx>, peers: &[PublicKey], link: Link) {
    for a in peers {
        for b in peers {
            if a != b {
                let _ = oracle.remove_link(a.clone(), b.clone()).await;
                oracle
                    .add_link(a.clone(), b.clone(), link.clone())
                    .await
                    .expect("link");
            }
        }
    }
}

/// Every channel the chain runs on, in the order of [`channels`].
pub const CHANNELS: [u64; 7] = [
    channel::VOTES,
    channel::CERTIFICATES,
    channel::RESOLVER,
    channel::BROADCAST,
    channel::BACKFILL,
    channel::TXS,
    channel::BLOBS,
];

/// A simulated channel's rate quota: far above what a test sends.
pub const QUOTA: Quota = Quota::per_second(NZU32!(100_000));

/// The chain's channels from one pair per entry of [`CHANNELS`], in that order.
pub fn channels<S, R>(list: Vec<(S, R)>) -> Channels<S, R> {
    let mut list = list.into_iter();
    let mut next = || list.next().expect("one pair per channel");
    Channels {
        votes: next(),
        certificates: next(),
        resolver: next(),
        broadcast: next(),
        backfill: next(),
        txs: next(),
        blobs: next(),
    }
}

/// Registers the chain's channels for `me` and starts a validator on them.
pub async fn start_validator(context: Ctx, oracle: &Oracle<PublicKey, Ctx>, cfg: Config) -> Handle {
    try_start_validator(context, oracle, cfg)
        .await
        .expect("chain starts")
}

/// [`start_validator`], returning why it could not start.
pub async fn try_start_validator(
    context: Ctx,
    oracle: &Oracle<PublicKey, Ctx>,
    cfg: Config,
) -> Result<Handle, deai_chain::ChainError> {
    let me = cfg.signer.public_key();
    let control = oracle.control(me.clone());
    let mut reg = Vec::new();
    for ch in CHANNELS {
        reg.push(control.register(ch, QUOTA).await.expect("register channel"));
    }
    let channels = channels(reg);
    deai_chain::start_with_network(
        context,
        cfg,
        channels,
        oracle.manager(),
        control,
        Box::new(()),
    )
    .await
}

/// Waits (in virtual time) until `handle` reaches `height`, or panics after `limit`.
pub async fn wait_height(context: &Ctx, handle: &Handle, height: u64, limit: Duration) {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while handle.height() < height {
        assert!(
            waited < limit,
            "height {} not reached in {limit:?} (at {})",
            height,
            handle.height()
        );
        context.sleep(step).await;
        waited += step;
    }
}

/// Waits until every id is finalized on `handle`.
pub async fn wait_finalized(context: &Ctx, handle: &Handle, ids: &[TxId], limit: Duration) {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    loop {
        let mut pending = 0;
        for id in ids {
            if !matches!(handle.tx_status(id).await, TxStatus::Finalized { .. }) {
                pending += 1;
            }
        }
        if pending == 0 {
            return;
        }
        assert!(waited < limit, "{pending} txs not finalized in {limit:?}");
        context.sleep(step).await;
        waited += step;
    }
}

/// Starts a validator in its own task, so aborting the task crashes it (with all it spawned).
pub async fn spawn_validator(
    context: &Ctx,
    oracle: &Oracle<PublicKey, Ctx>,
    cfg: Config,
) -> (Handle, commonware_runtime::Handle<()>) {
    use commonware_runtime::Spawner as _;
    let (tx, rx) = futures::channel::oneshot::channel();
    let oracle = oracle.clone();
    let task = context.child("validator").spawn(move |ctx| async move {
        let handle = start_validator(ctx, &oracle, cfg).await;
        let _ = tx.send(handle);
        futures::future::pending::<()>().await;
    });
    (rx.await.expect("validator started"), task)
}

/// Asserts every handle holds the same block and state root at every height up to the lowest
/// tip among them; returns (height, digest, state root) of each, as the first handle has them.
pub async fn same_chain(handles: &[Handle]) -> Vec<(u64, Digest, Digest)> {
    let common = handles.iter().map(Handle::height).min().unwrap_or(0);
    let mut chain = Vec::new();
    for height in 1..=common {
        let b0 = handles[0].block(height).await.expect("finalized");
        for (i, h) in handles.iter().enumerate().skip(1) {
            let b = h.block(height).await.expect("finalized");
            assert_eq!(b.digest, b0.digest, "node {i} block {height}");
            assert_eq!(b.state_root, b0.state_root, "node {i} root {height}");
        }
        chain.push((height, b0.digest, b0.state_root));
    }
    chain
}
