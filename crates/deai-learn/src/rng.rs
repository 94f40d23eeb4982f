//! Deterministic random streams.
//!
//! Every stream is a ChaCha20 generator whose 256-bit seed is the BLAKE3 hash of a domain tag and
//! the integers that identify it, so two streams never share state and a result depends only on
//! (seed, config), never on thread scheduling.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

/// The generator type used everywhere in the crate.
pub type Rng = ChaCha20Rng;

/// A generator for `domain` identified by `ids` (e.g. `("client", [seed, round, client])`).
pub fn stream(domain: &str, ids: &[u64]) -> Rng {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(domain.len() as u64).to_le_bytes());
    hasher.update(domain.as_bytes());
    for id in ids {
        hasher.update(&id.to_le_bytes());
    }
    Rng::from_seed(*hasher.finalize().as_bytes())
}

/// The generator a client uses in a round (shuffling, noise, attacks): seeded by (seed, round, client).
pub fn client(seed: u64, round: u64, client: u64) -> Rng {
    stream("deai-learn/client", &[seed, round, client])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_differ_by_every_id() {
        let a = client(1, 2, 3).next_u64();
        assert_eq!(a, client(1, 2, 3).next_u64());
        assert_ne!(a, client(1, 2, 4).next_u64());
        assert_ne!(a, client(1, 3, 3).next_u64());
        assert_ne!(a, client(0, 2, 3).next_u64());
        assert_ne!(a, stream("other", &[1, 2, 3]).next_u64());
    }
}
