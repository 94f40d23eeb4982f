//! Key derivation, share encryption and advert signatures.
//!
//! All derived keys are BLAKE3 `derive_key` outputs under a context string naming their use,
//! over the X25519 shared secret and the round and client ids, so a key never serves two
//! purposes, two rounds or two directions. Share encryption keys are used for exactly one
//! message, which is why the ChaCha20-Poly1305 nonce can be fixed at zero.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey, StaticSecret};

const PAIRWISE_CONTEXT: &str = "deai-secagg 2026-11 pairwise mask seed";
const SHARE_KEY_CONTEXT: &str = "deai-secagg 2026-11 share encryption key";
const ADVERT_DOMAIN: &[u8] = b"deai-secagg 2026-11 key advertisement";

/// Bytes of AEAD tag added to each encrypted share.
pub const TAG_BYTES: usize = 16;

/// The pairwise mask seed of clients `a` and `b` (same for both) in `round`.
pub fn pairwise_seed(
    secret: &StaticSecret,
    peer: &PublicKey,
    round: u64,
    a: u32,
    b: u32,
) -> [u8; 32] {
    let dh = secret.diffie_hellman(peer);
    let mut material = [0u8; 32 + 8 + 4 + 4];
    material[..32].copy_from_slice(dh.as_bytes());
    material[32..40].copy_from_slice(&round.to_le_bytes());
    material[40..44].copy_from_slice(&a.min(b).to_le_bytes());
    material[44..].copy_from_slice(&a.max(b).to_le_bytes());
    blake3::derive_key(PAIRWISE_CONTEXT, &material)
}

fn share_cipher(
    secret: &StaticSecret,
    peer: &PublicKey,
    round: u64,
    from: u32,
    to: u32,
) -> ChaCha20Poly1305 {
    let dh = secret.diffie_hellman(peer);
    let mut material = [0u8; 32 + 8 + 4 + 4];
    material[..32].copy_from_slice(dh.as_bytes());
    material[32..40].copy_from_slice(&round.to_le_bytes());
    material[40..44].copy_from_slice(&from.to_le_bytes());
    material[44..].copy_from_slice(&to.to_le_bytes());
    let key = blake3::derive_key(SHARE_KEY_CONTEXT, &material);
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

fn share_aad(round: u64, from: u32, to: u32) -> [u8; 16] {
    let mut aad = [0u8; 16];
    aad[..8].copy_from_slice(&round.to_le_bytes());
    aad[8..12].copy_from_slice(&from.to_le_bytes());
    aad[12..].copy_from_slice(&to.to_le_bytes());
    aad
}

/// Encrypts `plaintext` from client `from` to client `to`.
pub fn seal_share(
    secret: &StaticSecret,
    peer: &PublicKey,
    round: u64,
    from: u32,
    to: u32,
    plaintext: &[u8],
) -> Vec<u8> {
    let aad = share_aad(round, from, to);
    share_cipher(secret, peer, round, from, to)
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
pub fn open_share(
    secret: &StaticSecret,
    peer: &PublicKey,
    round: u64,
    from: u32,
    to: u32,
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    let aad = share_aad(round, from, to);
    share_cipher(secret, peer, round, from, to)
        .decrypt(
            Nonce::from_slice(&[0; 12]),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .ok()
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

    #[test]
    fn share_opens_only_for_its_recipient_and_direction() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let a = StaticSecret::random_from_rng(&mut rng);
        let b = StaticSecret::random_from_rng(&mut rng);
        let (pa, pb) = (PublicKey::from(&a), PublicKey::from(&b));
        let ct = seal_share(&a, &pb, 7, 1, 2, b"hello");
        assert_eq!(
            open_share(&b, &pa, 7, 1, 2, &ct).as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(open_share(&b, &pa, 7, 2, 1, &ct), None);
        assert_eq!(open_share(&b, &pa, 8, 1, 2, &ct), None);
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
