//! [`start`]: a validator on the real network, over Commonware's `p2p::authenticated::lookup`
//! (peers authenticate with their ed25519 validator keys; every participant's address is known
//! up front from the config's bootstrappers).

use crate::epochs::{PeerSets, public_key};
use crate::{
    config::Config,
    engine::{Channels, channel, max_message_size, start_with_network},
    error::ChainError,
    handle::Handle,
};
use commonware_cryptography::{ChaCha20Poly1305, Signer as _, ed25519};
use commonware_p2p::{
    Address, AddressableManager as _, AddressableTrackedPeers, authenticated::lookup,
};
use commonware_runtime::{Clock, Metrics, Network, Quota, Resolver, Spawner, Storage};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use deai_ledger::Member;
use rand_core_010::CryptoRng;
use std::time::Duration;
use std::{collections::BTreeMap, net::SocketAddr, num::NonZeroUsize};

// Commonware sizes each channel's inbound queue (and the router's outbound one) to hold one full
// burst from every peer, allocated up front: a burst of 100,000 cost 2.1 GB resident at height 0.
// A peer that exceeds its rate is slowed (its messages wait), not dropped, so a small burst with a
// generous sustained rate loses nothing. Consensus sends a few votes and certificates per view;
// blocks and backfill are one message per block.
const CONSENSUS_QUOTA: Quota = Quota::per_second(NZU32!(4096)).allow_burst(NZU32!(256));
const FETCH_QUOTA: Quota = Quota::per_second(NZU32!(1024)).allow_burst(NZU32!(64));
/// Gossip messages carry up to 256 transactions each: 1,024 messages/s per peer is far above what
/// two cores verify.
const GOSSIP_QUOTA: Quota = Quota::per_second(NZU32!(1024)).allow_burst(NZU32!(64));
/// Blob messages: a chunk is at most 256 KiB, so 1,024 messages/s is 256 MiB/s from each peer; the
/// burst takes the announcements of a whole task published at once (one small `Have` per blob). An
/// inbound message over quota is not dropped but stalls its connection, so honest use must fit.
const BLOBS_QUOTA: Quota = Quota::per_second(NZU32!(1024)).allow_burst(NZU32!(512));

/// Starts a validator: opens the p2p network on `cfg.p2p_listen`, replays the durable chain,
/// and joins consensus. With one participant it finalizes alone over the same code path.
pub async fn start<E>(context: E, cfg: Config) -> Result<Handle, ChainError>
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng + Network + Resolver,
{
    let me = cfg.signer.public_key();
    for p in cfg.participants.iter().filter(|p| **p != me) {
        if !cfg.bootstrappers.iter().any(|(k, _)| k == p) {
            return Err(ChainError::MissingAddress(p.to_string()));
        }
    }
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: cfg.signer.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let max_size = max_message_size(&cfg).min(lookup::max_size::<
        Cups<Sake<ed25519::PrivateKey>, ChaCha20Poly1305>,
    >());
    // Every validator of the current and next epoch and every candidate for the next (at most
    // twice the set's bound), and this node.
    let validators_max = cfg.genesis.params.validators_max as usize;
    let max_peers = NonZeroUsize::new(
        validators_max
            .saturating_mul(3)
            .max(cfg.participants.len())
            .saturating_add(1),
    )
    .unwrap_or(NZUsize!(1));
    // On loopback or a LAN every validator dials from one address (or a few): the public-network
    // preset's one handshake per IP per 5 s and 60 s reconnection cooldown leave a node that lost
    // a race at start, or restarted, out of consensus for a minute. The local preset allows 16
    // handshakes per IP per second and a 1 s cooldown.
    let preset = if cfg.allow_private_ips {
        lookup::Config::local
    } else {
        lookup::Config::recommended
    };
    let mut p2p_cfg = preset(
        handshake,
        &cfg.namespace(),
        cfg.p2p_listen,
        max_peers,
        max_size,
        NZUsize!(4096),
    );
    p2p_cfg.allow_private_ips = cfg.allow_private_ips;
    let (mut network, oracle) = lookup::Network::new(context.child("p2p"), p2p_cfg);
    let peer_sets = LookupPeers {
        oracle: oracle.clone(),
        me: (me, cfg.p2p_listen),
        bootstrappers: cfg.bootstrappers.clone(),
    };
    let channels = Channels {
        votes: network.register(channel::VOTES, CONSENSUS_QUOTA),
        certificates: network.register(channel::CERTIFICATES, CONSENSUS_QUOTA),
        resolver: network.register(channel::RESOLVER, FETCH_QUOTA),
        broadcast: network.register(channel::BROADCAST, FETCH_QUOTA),
        backfill: network.register(channel::BACKFILL, FETCH_QUOTA),
        txs: network.register(channel::TXS, GOSSIP_QUOTA),
        blobs: network.register(channel::BLOBS, BLOBS_QUOTA),
    };
    network.start();
    start_with_network(
        context,
        cfg,
        channels,
        oracle.clone(),
        oracle,
        Box::new(peer_sets),
    )
    .await
}

/// Tracks each epoch's validators (primary) and candidates (secondary) in the lookup network,
/// at their declared addresses, else the ones this node's configuration lists.
struct LookupPeers {
    oracle: lookup::Oracle<ed25519::PublicKey>,
    me: (ed25519::PublicKey, SocketAddr),
    bootstrappers: Vec<(ed25519::PublicKey, SocketAddr)>,
}

impl LookupPeers {
    fn address(&self, m: &Member) -> Option<(ed25519::PublicKey, Address)> {
        let key = public_key(m).ok()?;
        if key == self.me.0 {
            return Some((key, self.me.1.into()));
        }
        let addr = m.p2p.parse::<SocketAddr>().ok().or_else(|| {
            self.bootstrappers
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, a)| *a)
        })?;
        Some((key, addr.into()))
    }
}

impl PeerSets for LookupPeers {
    fn track(&mut self, epoch: u64, validators: &[Member], candidates: &[Member]) {
        let mut primary: BTreeMap<ed25519::PublicKey, Address> =
            validators.iter().filter_map(|m| self.address(m)).collect();
        if primary.is_empty() {
            return;
        }
        let mut secondary: BTreeMap<ed25519::PublicKey, Address> = candidates
            .iter()
            .filter_map(|m| self.address(m))
            .filter(|(k, _)| !primary.contains_key(k))
            .collect();
        if !primary.contains_key(&self.me.0) {
            secondary.insert(self.me.0.clone(), self.me.1.into());
        }
        let (Ok(primary), Ok(secondary)) = (
            Map::try_from(std::mem::take(&mut primary).into_iter().collect::<Vec<_>>()),
            Map::try_from(secondary.into_iter().collect::<Vec<_>>()),
        ) else {
            return;
        };
        let _ = self
            .oracle
            .track(epoch, AddressableTrackedPeers::new(primary, secondary));
    }
}
