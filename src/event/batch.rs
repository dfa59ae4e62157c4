//! Ed25519 batch verification of many signatures made with one key: the events of a feed
//! page, all signed by the member whose feed it is.
//!
//! A batch of n signatures (Rᵢ, sᵢ) on messages Mᵢ by the key A holds when, for random 128-bit
//! zᵢ and kᵢ = SHA-512(Rᵢ ‖ A ‖ Mᵢ) reduced mod ℓ,
//!
//! ```text
//! [8]( [−Σ zᵢsᵢ]B + Σ [zᵢ]Rᵢ + [Σ zᵢkᵢ]A ) = 0
//! ```
//!
//! ed25519-dalek's `verify_batch` takes a key per signature and so adds a term [zᵢkᵢ]Aᵢ for
//! each, the same point n times; with one key its coefficients are summed first, and the
//! multiscalar multiplication has n + 2 points instead of 2n + 1. As for one strict
//! verification, each sᵢ must be canonical (below ℓ) and each Rᵢ canonically encoded and not
//! of small order. The equation is the cofactored one (RFC 8032 §5.1.7 allows either; a
//! cofactorless batch accepts a small-order component with a probability that depends on the
//! zᵢ), so a signature whose Rᵢ is a large-order point plus a small-order one passes here and
//! fails strict verification alone; telling such an Rᵢ costs a full scalar multiplication, and
//! only the key's holder can make one (see `federation::receipt`). A failed batch says only
//! that some signature is bad: the caller verifies each alone to find which.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};

/// A signed message: the bytes signed and the signature.
pub(crate) type Signed<'a> = (&'a [u8], &'a Signature);

/// Whether every signature of `signed` verifies with `key`, as one batch. An empty batch
/// verifies.
pub(crate) fn verify_by_one_key(key: &VerifyingKey, signed: &[Signed]) -> bool {
    let mut scalars = Vec::with_capacity(signed.len() + 2);
    let mut points = Vec::with_capacity(signed.len() + 2);
    let mut basepoint = Scalar::ZERO;
    let mut key_coefficient = Scalar::ZERO;
    for (message, signature) in signed {
        let Some((r, s)) = parts(signature) else {
            return false;
        };
        let k = challenge(signature, key, message);
        let z = Scalar::from(rand::random::<u128>());
        basepoint += z * s;
        key_coefficient += z * k;
        scalars.push(z);
        points.push(r);
    }
    scalars.push(-basepoint);
    points.push(ED25519_BASEPOINT_POINT);
    scalars.push(key_coefficient);
    points.push(key.to_edwards());
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// The signature's R as a point and s as a canonical scalar; `None` when either is not one, or
/// when R is encoded other than canonically or is of small order (what strict verification
/// refuses and a check of the encoding or three doublings can tell).
fn parts(signature: &Signature) -> Option<(EdwardsPoint, Scalar)> {
    let s = Option::from(Scalar::from_canonical_bytes(*signature.s_bytes()))?;
    let encoded = signature.r_bytes();
    if !canonical_y(encoded) {
        return None;
    }
    let r = CompressedEdwardsY(*encoded).decompress()?;
    (!r.is_small_order()).then_some((r, s))
}

/// The encoding's y (its low 255 bits, little-endian) is below p = 2²⁵⁵ − 19. The other
/// non-canonical encodings (x = 0 with the sign bit set) are of y = ±1, small-order points.
fn canonical_y(encoded: &[u8; 32]) -> bool {
    let at_least_p = encoded[31] & 0x7f == 0x7f
        && encoded[1..31].iter().all(|b| *b == 0xff)
        && encoded[0] >= 0xed;
    !at_least_p
}

/// k = SHA-512(R ‖ A ‖ M) mod ℓ.
fn challenge(signature: &Signature, key: &VerifyingKey, message: &[u8]) -> Scalar {
    let hash = Sha512::new()
        .chain_update(signature.r_bytes())
        .chain_update(key.as_bytes())
        .chain_update(message)
        .finalize();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&hash);
    Scalar::from_bytes_mod_order_wide(&wide)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key() -> SigningKey {
        crate::event::keys::generate()
    }

    /// `n` messages signed by `key`.
    fn signed_by(key: &SigningKey, n: usize) -> Vec<(Vec<u8>, Signature)> {
        (0..n)
            .map(|i| {
                let message = format!("event {i} of the page").into_bytes();
                let signature = key.sign(&message);
                (message, signature)
            })
            .collect()
    }

    fn batch(signed: &[(Vec<u8>, Signature)]) -> Vec<Signed<'_>> {
        signed.iter().map(|(m, s)| (m.as_slice(), s)).collect()
    }

    /// ed25519-dalek's own batch verification of the same signatures, the key given for each.
    fn dalek(key: &VerifyingKey, signed: &[(Vec<u8>, Signature)]) -> bool {
        let messages: Vec<&[u8]> = signed.iter().map(|(m, _)| m.as_slice()).collect();
        let signatures: Vec<Signature> = signed.iter().map(|(_, s)| *s).collect();
        let keys = vec![*key; signed.len()];
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
    }

    #[test]
    fn good_batches_of_every_size_verify_as_ed25519_dalek_says() {
        let signer = key();
        let key = signer.verifying_key();
        for n in [0, 1, 2, 7, 64, 200] {
            let signed = signed_by(&signer, n);
            assert!(verify_by_one_key(&key, &batch(&signed)), "{n}");
            assert!(dalek(&key, &signed), "{n}");
        }
    }

    #[test]
    fn one_bad_signature_fails_the_batch_wherever_it_is() {
        let signer = key();
        let key = signer.verifying_key();
        let good = signed_by(&signer, 20);
        let forger = self::key();
        for at in [0, 9, 19] {
            // Another message under a good signature, a signature by another key, a bit
            // flipped in s, and R replaced by another good signature's R.
            let mut other_message = good.clone();
            other_message[at].0.push(b'!');
            let mut other_key = good.clone();
            other_key[at].1 = forger.sign(&other_key[at].0);
            let mut flipped = good.clone();
            let mut bytes = flipped[at].1.to_bytes();
            bytes[40] ^= 1;
            flipped[at].1 = Signature::from_bytes(&bytes);
            let mut swapped_r = good.clone();
            let mut bytes = swapped_r[at].1.to_bytes();
            bytes[..32].copy_from_slice(&good[(at + 1) % 20].1.to_bytes()[..32]);
            swapped_r[at].1 = Signature::from_bytes(&bytes);
            for bad in [other_message, other_key, flipped, swapped_r] {
                assert!(!verify_by_one_key(&key, &batch(&bad)), "at {at}");
                assert!(!dalek(&key, &bad), "dalek agrees, at {at}");
            }
        }
    }

    #[test]
    fn a_good_batch_does_not_verify_with_another_key() {
        let signer = key();
        let signed = signed_by(&signer, 10);
        assert!(!verify_by_one_key(&key().verifying_key(), &batch(&signed)));
    }

    #[test]
    fn a_non_canonical_s_or_an_r_off_the_curve_is_refused() {
        let signer = key();
        let key = signer.verifying_key();
        let mut signed = signed_by(&signer, 3);
        // s + ℓ: the same value mod ℓ, not canonical (malleated).
        let mut bytes = signed[1].1.to_bytes();
        let s = Scalar::from_canonical_bytes(bytes[32..].try_into().unwrap()).unwrap();
        let ell_plus_s = add_ell(&s.to_bytes());
        bytes[32..].copy_from_slice(&ell_plus_s);
        let malleated = Signature::from_bytes(&bytes);
        let mut with_malleated = signed.clone();
        with_malleated[1].1 = malleated;
        assert!(!verify_by_one_key(&key, &batch(&with_malleated)));
        // A y coordinate with no point on the curve (y = 2 is not on Ed25519).
        let mut bytes = signed[2].1.to_bytes();
        bytes[..32].copy_from_slice(&{
            let mut y = [0u8; 32];
            y[0] = 2;
            y
        });
        signed[2].1 = Signature::from_bytes(&bytes);
        assert!(CompressedEdwardsY(*signed[2].1.r_bytes())
            .decompress()
            .is_none());
        assert!(!verify_by_one_key(&key, &batch(&signed)));
    }

    /// A signature whose R carries a point of order 4 (y = 0), made with the secret scalar:
    /// the cofactored batch equation accepts it, strict verification alone refuses it (what
    /// `federation::receipt` documents). Without the cofactor the batch would refuse it unless
    /// 4 divides its z.
    #[test]
    fn a_small_order_component_in_r_passes_the_batch_and_fails_strict_verification() {
        let signer = key();
        let key = signer.verifying_key();
        let message = b"an event".to_vec();
        let order_four = CompressedEdwardsY([0; 32]).decompress().unwrap();
        assert!(order_four.mul_by_cofactor().is_identity());
        assert!(!(order_four + order_four).is_identity());
        let r = Scalar::from(rand::random::<u128>());
        let big_r = (EdwardsPoint::mul_base(&r) + order_four).compress();
        let unsigned = Signature::from_components(*big_r.as_bytes(), [0; 32]);
        let k = challenge(&unsigned, &key, &message);
        let s = r + k * signer.to_scalar();
        let signature = Signature::from_components(*big_r.as_bytes(), s.to_bytes());
        let mut signed = signed_by(&signer, 5);
        signed.push((message.clone(), signature));
        assert!(verify_by_one_key(&key, &batch(&signed)));
        assert!(key.verify_strict(&message, &signature).is_err());
    }

    /// A small-order R, and a small-order R encoded with y = p + 1, are refused, as strict
    /// verification refuses them, even with the s that satisfies the cofactored equation.
    #[test]
    fn a_small_order_or_non_canonical_r_is_refused() {
        let signer = key();
        let key = signer.verifying_key();
        let message = b"an event".to_vec();
        let mut order_two = [0xff; 32];
        (order_two[0], order_two[31]) = (0xec, 0x7f);
        // y = p + 1 = 2²⁵⁵ − 18: decompresses (to the identity) but is not canonical.
        let mut y_above_p = [0xff; 32];
        (y_above_p[0], y_above_p[31]) = (0xee, 0x7f);
        assert!(CompressedEdwardsY(y_above_p).decompress().is_some());
        for r in [order_two, y_above_p] {
            let unsigned = Signature::from_components(r, [0; 32]);
            let s = challenge(&unsigned, &key, &message) * signer.to_scalar();
            let signature = Signature::from_components(r, s.to_bytes());
            let mut signed = signed_by(&signer, 3);
            signed.push((message.clone(), signature));
            assert!(!verify_by_one_key(&key, &batch(&signed)));
            assert!(key.verify_strict(&message, &signature).is_err());
        }
    }

    /// Two bad signatures whose errors cancel when every z is the same (s₁ + δ, s₂ − δ) fail
    /// the batch: the zᵢ are drawn for each signature.
    #[test]
    fn errors_that_cancel_under_equal_weights_fail_the_batch() {
        let signer = key();
        let key = signer.verifying_key();
        let mut signed = signed_by(&signer, 4);
        let delta = Scalar::from(12_345u64);
        for (at, change) in [(1, delta), (2, -delta)] {
            let mut bytes = signed[at].1.to_bytes();
            let s = Scalar::from_canonical_bytes(bytes[32..].try_into().unwrap()).unwrap();
            bytes[32..].copy_from_slice((s + change).as_bytes());
            signed[at].1 = Signature::from_bytes(&bytes);
        }
        assert!(!verify_by_one_key(&key, &batch(&signed)));
    }

    /// `s` + ℓ as 32 little-endian bytes (fits: ℓ < 2²⁵³ and s < ℓ).
    fn add_ell(s: &[u8; 32]) -> [u8; 32] {
        const ELL: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = s[i] as u16 + ELL[i] as u16 + carry;
            out[i] = sum as u8;
            carry = sum >> 8;
        }
        out
    }
}
