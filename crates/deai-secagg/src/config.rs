//! The public configuration of one round, known to the server and every client.
//!
//! Invariants (checked by [`RoundConfig::new`]): one identity per client, `clients >= 2`,
//! `1 <= threshold <= min(degree, clients - 1) + 1`, `1 <= modulus_bits <= 32`,
//! `1 <= vector_len <= MAX_VECTOR_LEN`.

use ed25519_dalek::VerifyingKey;
use thiserror::Error;

use crate::graph::Graph;
use crate::msg::Limits;
use crate::params::Params;

/// Largest vector a round may aggregate (2^28 words, 1 GiB): bounds every decoder.
pub const MAX_VECTOR_LEN: u32 = 1 << 28;

/// Everything a participant must agree on before the round starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundConfig {
    /// Round number: bound into every key, signature and message.
    pub round: u64,
    /// Clients, degree and threshold.
    pub params: Params,
    /// Words per input vector (the quantized coordinates plus the weight).
    pub vector_len: u32,
    /// Arithmetic is mod 2^modulus_bits.
    pub modulus_bits: u32,
    /// Seed of the neighbour graph's label permutation.
    pub graph_seed: [u8; 32],
    /// The ed25519 identity of each client, by client id.
    pub identities: Vec<VerifyingKey>,
}

/// An inconsistent round configuration.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Identities do not match the number of clients.
    #[error("{identities} identities for {clients} clients")]
    Identities {
        /// Identities given.
        identities: usize,
        /// Clients in the parameters.
        clients: u32,
    },
    /// Threshold out of range for the degree.
    #[error("threshold {threshold} out of 1..={holders} share holders")]
    Threshold {
        /// Threshold.
        threshold: u32,
        /// Holders per secret (degree + 1).
        holders: u32,
    },
    /// Odd degree below `clients - 1` (Harary graphs here have even degree).
    #[error("degree {degree} must be even or at least clients - 1 = {max}")]
    Degree {
        /// Degree.
        degree: u32,
        /// `clients - 1`.
        max: u32,
    },
    /// Modulus bits out of 1..=32.
    #[error("modulus bits {0} out of 1..=32")]
    ModulusBits(u32),
    /// Vector length out of range.
    #[error("vector length {0} out of 1..={MAX_VECTOR_LEN}")]
    VectorLen(u32),
    /// Fewer than two clients.
    #[error("{0} clients: at least 2 needed")]
    Clients(u32),
}

impl RoundConfig {
    /// Checks and builds a configuration.
    pub fn new(
        round: u64,
        params: Params,
        vector_len: u32,
        modulus_bits: u32,
        graph_seed: [u8; 32],
        identities: Vec<VerifyingKey>,
    ) -> Result<Self, ConfigError> {
        let n = params.clients;
        if n < 2 {
            return Err(ConfigError::Clients(n));
        }
        if identities.len() != n as usize {
            return Err(ConfigError::Identities {
                identities: identities.len(),
                clients: n,
            });
        }
        if !params.degree.is_multiple_of(2) && params.degree < n - 1 {
            return Err(ConfigError::Degree {
                degree: params.degree,
                max: n - 1,
            });
        }
        let holders = params.degree.min(n - 1) + 1;
        if params.threshold == 0 || params.threshold > holders {
            return Err(ConfigError::Threshold {
                threshold: params.threshold,
                holders,
            });
        }
        if !(1..=32).contains(&modulus_bits) {
            return Err(ConfigError::ModulusBits(modulus_bits));
        }
        if vector_len == 0 || vector_len > MAX_VECTOR_LEN {
            return Err(ConfigError::VectorLen(vector_len));
        }
        Ok(Self {
            round,
            params,
            vector_len,
            modulus_bits,
            graph_seed,
            identities,
        })
    }

    /// Number of clients.
    pub fn clients(&self) -> u32 {
        self.params.clients
    }

    /// Shares needed to reconstruct a secret.
    pub fn threshold(&self) -> usize {
        self.params.threshold as usize
    }

    /// The neighbour graph.
    pub fn graph(&self) -> Graph {
        Graph::random_harary(self.params.clients, self.params.degree, &self.graph_seed)
    }

    /// Decoding bounds for this round's messages.
    pub fn limits(&self) -> Limits {
        Limits {
            clients: self.params.clients,
            vector_len: self.vector_len,
        }
    }
}
