//! Key derivation, share encryption and advert signatures.
//!
//! All derived keys are BLAKE3 `derive_key` outputs under a context string naming their use,
//! over the X25519 shared secret and the round and client ids, so a key never serves two
//! purposes, two rounds or two directions. Share encryption keys are used for exactly one
//! message, which is why the ChaCha20-Poly1305 nonce can be fixed at zero.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

const PAIRWISE_CONTEXT: &str = "deai-secagg 2026-11 pairwise mask seed";
const SHARE_KEY_CONTEXT: &str = "deai-secagg 2026-11 share encryption key";
const ADVERT_DOMAIN: &[u8] = b"deai-secagg 2026-11 key advertisement";

/// Bytes of AEAD tag added to each encrypted share.
pub const TAG_BYTES: usize = 16;

/// X25519 (RFC 7748) of `secret` and `peer`, computed on the Edwards form: for a `peer` on the
/// curve, the clamped scalar times either lift of its `u`-coordinate (curve25519-dalek's vector
/// backend, about a quarter faster here than the Montgomery ladder, and a client does two
/// agreements per neighbour); for a `peer` on the twist, the ladder. Bit-identical to
/// `secret.diffie_hellman(peer)` (tested), constant time in the secret.
pub fn agree(secret: &StaticSecret, peer: &PublicKey) -> [u8; 32] {
    match MontgomeryPoint(peer.to_bytes()).to_edwards(0) {
        Some(point) => point
            .mul_clamped(secret.to_bytes())
            .to_montgomery()
            .to_bytes(),
        None => secret.diffie_hellman(peer).to_bytes(),
    }
}

/// The pairwise mask seed of clients `a` and `b` (same for both) in `round`.
pub fn pairwise_seed(
    secret: &StaticSecret,
    peer: &PublicKey,
    round: u64,
    a: u32,
    b: u32,
) -> [u8; 32] {
    let mut material = [0u8; 32 + 8 + 4 + 4];
    material[..32].copy_from_slice(&agree(secret, peer));
    material[32..40].copy_from_slice(&round.to_le_bytes());
    material[40..44].copy_from_slice(&a.min(b).to_le_bytes());
    material[44..].copy_from_slice(&a.max(b).to_le_bytes());
    blake3::derive_key(PAIRWISE_CONTEXT, &material)
}

/// The X25519 agreement between two clients' cipher keys: one Diffie-Hellman per neighbour,
/// used to seal the shares sent to it and to open the shares received from it (the key derived
/// for each message also binds its direction).
pub struct ShareChannel {
    // The agreement opens this round's shares: wiped when the channel is dropped.
    shared: Zeroizing<[u8; 32]>,
}

impl ShareChannel {
    /// The channel between `secret`'s owner and the owner of `peer`.
    pub fn new(secret: &StaticSecret, peer: &PublicKey) -> Self {
        Self {
            shared: Zeroizing::new(agree(secret, peer)),
        }
    }

    fn cipher(&self, round: u64, from: u32, to: u32) -> ChaCha20Poly1305 {
        // The agreement's copy and the derived key are wiped as well when they go out of scope.
        let mut material = Zeroizing::new([0u8; 32 + 8 + 4 + 4]);
        material[..32].copy_from_slice(self.shared.as_ref());
        material[32..40].copy_from_slice(&round.to_le_bytes());
        material[40..44].copy_from_slice(&from.to_le_bytes());
        material[44..].copy_from_slice(&to.to_le_bytes());
        let key = Zeroizing::new(blake3::derive_key(SHARE_KEY_CONTEXT, material.as_ref()));
        ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
    }

    /// Encrypts `plaintext` from client `from` to client `to`.
    pub fn seal(&self, round: u64, from: u32, to: u32, plaintext: &[u8]) -> Vec<u8> {
        let aad = share_aad(round, from, to);
        self.cipher(round, from, to)
            .encrypt(
                Nonce::from_slice(&[0; 12]),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("ChaCha20-Poly1305 encryption of a short message cannot fail")
    }

    /// Decrypts a share sent by `from` to `to`; `None` if it was not sealed by the peer for us.
    pub fn open(&self, round: u64, from: u32, to: u32, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let aad = share_aad(round, from, to);
        self.cipher(round, from, to)
            .decrypt(
                Nonce::from_slice(&[0; 12]),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()
    }
}

fn share_aad(round: u64, from: u32, to: u32) -> [u8; 16] {
    let mut aad = [0u8; 16];
    aad[..8].copy_from_slice(&round.to_le_bytes());
    aad[8..12].copy_from_slice(&from.to_le_bytes());
    aad[12..].copy_from_slice(&to.to_le_bytes());
    aad
}

fn advert_message(round: u64, from: u32, cipher_pk: &[u8; 32], mask_pk: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(ADVERT_DOMAIN.len() + 8 + 4 + 64);
    m.extend_from_slice(ADVERT_DOMAIN);
    m.extend_from_slice(&round.to_le_bytes());
    m.extend_from_slice(&from.to_le_bytes());
    m.extend_from_slice(cipher_pk);
    m.extend_from_slice(mask_pk);
    m
}

/// Signs a key advertisement.
pub fn sign_advert(
    key: &SigningKey,
    round: u64,
    from: u32,
    cipher_pk: &[u8; 32],
    mask_pk: &[u8; 32],
) -> [u8; 64] {
    key.sign(&advert_message(round, from, cipher_pk, mask_pk))
        .to_bytes()
}

/// Checks a key advertisement's signature (strict verification: no malleable encodings).
pub fn verify_advert(
    key: &VerifyingKey,
    round: u64,
    from: u32,
    cipher_pk: &[u8; 32],
    mask_pk: &[u8; 32],
    signature: &[u8; 64],
) -> bool {
    let sig = Signature::from_bytes(signature);
    key.verify_strict(&advert_message(round, from, cipher_pk, mask_pk), &sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn pairwise_seed_is_symmetric_and_round_bound() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let a = StaticSecret::random_from_rng(&mut rng);
        let b = StaticSecret::random_from_rng(&mut rng);
        let (pa, pb) = (PublicKey::from(&a), PublicKey::from(&b));
        assert_eq!(
            pairwise_seed(&a, &pb, 1, 4, 9),
            pairwise_seed(&b, &pa, 1, 9, 4)
        );
        assert_ne!(
            pairwise_seed(&a, &pb, 1, 4, 9),
            pairwise_seed(&a, &pb, 2, 4, 9)
        );
    }

    proptest::proptest! {
        /// The Edwards-form agreement equals the Montgomery ladder for any secret and any
        /// 32 bytes as the peer's key (about half of them are on the twist).
        #[test]
        fn agreement_equals_the_ladder(secret: [u8; 32], peer: [u8; 32]) {
            let (secret, peer) = (StaticSecret::from(secret), PublicKey::from(peer));
            proptest::prop_assert_eq!(agree(&secret, &peer), secret.diffie_hellman(&peer).to_bytes());
        }
    }

    #[test]
    fn agreement_equals_the_ladder_on_special_points() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let secret = StaticSecret::random_from_rng(&mut rng);
        // Small-order points (from RFC 7748 errata / libsodium's blocklist), u = 0, 1, p - 1,
        // and non-canonical encodings of them.
        let mut specials: Vec<[u8; 32]> = vec![[0; 32], [0xff; 32]];
        let mut one = [0u8; 32];
        one[0] = 1;
        specials.push(one);
        let mut p_minus_1 = [0xff; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        specials.push(p_minus_1);
        let mut p_plus_1 = [0xff; 32];
        p_plus_1[0] = 0xee;
        p_plus_1[31] = 0x7f;
        specials.push(p_plus_1);
        specials.push(hex_bytes(
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        ));
        specials.push(hex_bytes(
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        ));
        for u in specials {
            let peer = PublicKey::from(u);
            assert_eq!(
                agree(&secret, &peer),
                secret.diffie_hellman(&peer).to_bytes(),
                "{u:02x?}"
            );
        }
    }

    fn hex_bytes(h: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex");
        }
        out
    }

    #[test]
    fn share_opens_only_for_its_recipient_and_direction() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let a = StaticSecret::random_from_rng(&mut rng);
        let b = StaticSecret::random_from_rng(&mut rng);
        let (pa, pb) = (PublicKey::from(&a), PublicKey::from(&b));
        let (ab, ba) = (ShareChannel::new(&a, &pb), ShareChannel::new(&b, &pa));
        let ct = ab.seal(7, 1, 2, b"hello");
        assert_eq!(ba.open(7, 1, 2, &ct).as_deref(), Some(&b"hello"[..]));
        assert_eq!(ba.open(7, 2, 1, &ct), None);
        assert_eq!(ba.open(8, 1, 2, &ct), None);
        // Both directions over one agreement, each with its own key.
        let back = ba.seal(7, 2, 1, b"hello");
        assert_ne!(back, ct);
        assert_eq!(ab.open(7, 2, 1, &back).as_deref(), Some(&b"hello"[..]));
        let stranger = StaticSecret::random_from_rng(&mut rng);
        assert_eq!(ShareChannel::new(&stranger, &pa).open(7, 1, 2, &ct), None);
    }

    #[test]
    fn advert_signature_binds_round_and_keys() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let sig = sign_advert(&key, 3, 1, &[1; 32], &[2; 32]);
        let vk = key.verifying_key();
        assert!(verify_advert(&vk, 3, 1, &[1; 32], &[2; 32], &sig));
        assert!(!verify_advert(&vk, 4, 1, &[1; 32], &[2; 32], &sig));
        assert!(!verify_advert(&vk, 3, 1, &[2; 32], &[1; 32], &sig));
    }
}
