//! The neighbour graph: a Harary graph `H(n, k)` with randomly permuted labels.
//!
//! Positions `0..n` sit on a ring; the client at position `p` neighbours the `k/2` positions on
//! either side. Client `perm[p]` sits at position `p`, with `perm` a uniform permutation drawn
//! from a 256-bit seed (ChaCha20, Fisher–Yates), so every client derives the same graph from the
//! round's public seed. When `k >= n - 1` the graph is complete (plain SecAgg).
//! Invariants: the relation is symmetric and irreflexive, and every client has exactly
//! `min(k, n - 1)` neighbours.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// A `k`-regular neighbour graph on clients `0..n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    degree: u32,
    /// `perm[position] = client`.
    perm: Vec<u32>,
    /// `pos[client] = position`.
    pos: Vec<u32>,
}

impl Graph {
    /// The Harary graph on `n` clients with even degree `k` (or complete when `k >= n - 1`),
    /// labels permuted by `seed`.
    pub fn random_harary(n: u32, k: u32, seed: &[u8; 32]) -> Self {
        assert!(n >= 2, "a graph needs two clients, got {n}");
        assert!(
            k.is_multiple_of(2) || k >= n - 1,
            "Harary degree {k} must be even"
        );
        let mut perm: Vec<u32> = (0..n).collect();
        let mut rng = ChaCha20Rng::from_seed(*seed);
        for i in (1..perm.len()).rev() {
            let j = below(&mut rng, i as u32 + 1) as usize;
            perm.swap(i, j);
        }
        let mut pos = vec![0u32; n as usize];
        for (p, &c) in perm.iter().enumerate() {
            pos[c as usize] = p as u32;
        }
        Self {
            degree: k.min(n - 1),
            perm,
            pos,
        }
    }

    /// Number of clients.
    pub fn clients(&self) -> u32 {
        self.perm.len() as u32
    }

    /// Neighbours per client.
    pub fn degree(&self) -> u32 {
        self.degree
    }

    fn complete(&self) -> bool {
        self.degree + 1 >= self.clients()
    }

    /// Whether `a` and `b` are (distinct) neighbours. Out-of-range ids are never neighbours.
    pub fn are_neighbours(&self, a: u32, b: u32) -> bool {
        let n = self.clients();
        if a == b || a >= n || b >= n {
            return false;
        }
        if self.complete() {
            return true;
        }
        let d = self.pos[a as usize].abs_diff(self.pos[b as usize]);
        d.min(n - d) <= self.degree / 2
    }

    /// The neighbours of `client`, ascending.
    pub fn neighbours(&self, client: u32) -> Vec<u32> {
        let n = self.clients();
        let mut out: Vec<u32> = if self.complete() {
            (0..n).filter(|&c| c != client).collect()
        } else {
            let p = self.pos[client as usize];
            (1..=self.degree / 2)
                .flat_map(|d| [(p + d) % n, (p + n - d) % n])
                .map(|q| self.perm[q as usize])
                .collect()
        };
        out.sort_unstable();
        out
    }
}

/// A uniform draw in `0..bound` (Lemire's multiply-and-reject, no modulo bias).
fn below<R: RngCore>(rng: &mut R, bound: u32) -> u32 {
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let m = u64::from(rng.next_u32()) * u64::from(bound);
        if (m as u32) >= threshold {
            return (m >> 32) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn regular_symmetric_irreflexive(n in 3u32..60, half in 1u32..10, seed in any::<[u8; 32]>()) {
            let k = (2 * half).min(if (n - 1) % 2 == 0 { n - 1 } else { n - 2 }).max(2);
            let g = Graph::random_harary(n, k, &seed);
            for a in 0..n {
                let nb = g.neighbours(a);
                prop_assert_eq!(nb.len() as u32, g.degree());
                prop_assert!(!nb.contains(&a));
                for b in 0..n {
                    prop_assert_eq!(g.are_neighbours(a, b), nb.binary_search(&b).is_ok());
                    prop_assert_eq!(g.are_neighbours(a, b), g.are_neighbours(b, a));
                }
            }
        }
    }

    #[test]
    fn seed_changes_the_graph_and_fixes_it() {
        let a = Graph::random_harary(50, 6, &[1; 32]);
        assert_eq!(a, Graph::random_harary(50, 6, &[1; 32]));
        assert_ne!(a, Graph::random_harary(50, 6, &[2; 32]));
    }

    #[test]
    fn large_degree_is_complete() {
        let g = Graph::random_harary(5, 4, &[0; 32]);
        assert_eq!(g.neighbours(2), vec![0, 1, 3, 4]);
    }
}
