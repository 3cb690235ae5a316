//! The bytes FROST messages take on the chain: fixed-size, no framing, no version header.
//!
//! Why our own encoding and not the library's `serialize`: the library's serde form carries a header and
//! a ciphersuite id and is free to change between releases, while a signing message is part of a chain
//! transaction, hashed and kept forever. The fields are the library's own element and scalar encodings:
//! - nonce commitments of one input: hiding `D` (33-byte compressed point) then binding `E` (33), 66 bytes;
//! - a signature share: the scalar `z_i`, 32 bytes big-endian, below the group order.
//!
//! Decoding is where hostile bytes meet the library: every length, point and scalar is checked here (the
//! identity and off-curve points, SEC1's other prefixes, scalars at or above the order), so a bad message is an error, never a
//! panic, and a decoded value always re-encodes to the same bytes (one byte string per message).

use frost_secp256k1_tr::round1::{NonceCommitment, SigningCommitments};
use frost_secp256k1_tr::round2::SignatureShare;

/// Bytes of one input's nonce commitments.
pub const COMMITMENTS_BYTES: usize = 66;
/// Bytes of one input's signature share.
pub const SHARE_BYTES: usize = 32;

/// Why bytes are not a FROST message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not the fixed length.
    #[error("{got} bytes, expected {want}")]
    Length {
        /// Bytes given.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
    /// Not a valid point or scalar (the identity, off the curve, at or above the order).
    #[error("not a valid {0}")]
    Invalid(&'static str),
}

/// One input's nonce commitments as 66 bytes.
pub fn encode_commitments(c: &SigningCommitments) -> Result<[u8; COMMITMENTS_BYTES], WireError> {
    let hiding = c.hiding().serialize().map_err(|_| WireError::Invalid("hiding commitment"))?;
    let binding = c.binding().serialize().map_err(|_| WireError::Invalid("binding commitment"))?;
    let mut out = [0u8; COMMITMENTS_BYTES];
    if hiding.len() != 33 || binding.len() != 33 {
        return Err(WireError::Invalid("commitment encoding"));
    }
    out[..33].copy_from_slice(&hiding);
    out[33..].copy_from_slice(&binding);
    Ok(out)
}

/// 66 bytes as one input's nonce commitments.
pub fn decode_commitments(bytes: &[u8]) -> Result<SigningCommitments, WireError> {
    if bytes.len() != COMMITMENTS_BYTES {
        return Err(WireError::Length { got: bytes.len(), want: COMMITMENTS_BYTES });
    }
    let hiding = NonceCommitment::deserialize(&bytes[..33]).map_err(|_| WireError::Invalid("hiding commitment"))?;
    let binding = NonceCommitment::deserialize(&bytes[33..]).map_err(|_| WireError::Invalid("binding commitment"))?;
    let commitments = SigningCommitments::new(hiding, binding);
    // SEC1 also reads a `05` "compact" prefix as an x coordinate: only the compressed `02`/`03` form is ours.
    if encode_commitments(&commitments)?[..] != *bytes {
        return Err(WireError::Invalid("commitment encoding (not compressed SEC1)"));
    }
    Ok(commitments)
}

/// One input's signature share as 32 bytes.
pub fn encode_share(share: &SignatureShare) -> Result<[u8; SHARE_BYTES], WireError> {
    share.serialize().try_into().map_err(|_| WireError::Invalid("signature share"))
}

/// 32 bytes as one input's signature share.
pub fn decode_share(bytes: &[u8]) -> Result<SignatureShare, WireError> {
    if bytes.len() != SHARE_BYTES {
        return Err(WireError::Length { got: bytes.len(), want: SHARE_BYTES });
    }
    SignatureShare::deserialize(bytes).map_err(|_| WireError::Invalid("signature share"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frost::dkg::run_in_process;
    use crate::frost::signing_package;
    use bitcoin::hashes::Hash;
    use bitcoin::TapSighash;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;
    use std::collections::BTreeMap;

    #[test]
    fn messages_round_trip_and_hostile_bytes_are_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (shares, _) = run_in_process(3, 2, &mut rng).expect("dkg");
        let (n0, c0) = shares[0].commit(&mut rng);
        let (_, c1) = shares[1].commit(&mut rng);
        let bytes = encode_commitments(&c0).expect("encode");
        assert_eq!(decode_commitments(&bytes).expect("decode"), c0);
        let sighash = TapSighash::from_byte_array([9; 32]);
        let package = signing_package(&BTreeMap::from([(0, c0), (1, c1)]), sighash).expect("package");
        let share = shares[0].sign(&package, sighash, n0, None).expect("share");
        let share_bytes = encode_share(&share).expect("encode");
        assert_eq!(decode_share(&share_bytes).expect("decode"), share);

        assert_eq!(decode_commitments(&bytes[..65]), Err(WireError::Length { got: 65, want: 66 }));
        assert_eq!(decode_share(&[]), Err(WireError::Length { got: 0, want: 32 }));
        assert!(decode_commitments(&[0; 66]).is_err(), "the identity / no point");
        assert!(decode_share(&[0xff; 32]).is_err(), "a scalar above the order");
        for prefix in [0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0xff] {
            let mut other = bytes;
            other[0] = prefix;
            assert!(decode_commitments(&other).is_err(), "prefix {prefix:#04x}");
            let mut other = bytes;
            other[33] = prefix;
            assert!(decode_commitments(&other).is_err(), "binding prefix {prefix:#04x}");
        }
        // Random bytes: decoded or refused, never a panic, and whatever decodes re-encodes to itself.
        for _ in 0..2_000 {
            let mut junk = [0u8; 66];
            rng.fill_bytes(&mut junk);
            junk[0] = 2 + (junk[0] & 1);
            junk[33] = 2 + (junk[33] & 1);
            if let Ok(c) = decode_commitments(&junk) {
                assert_eq!(encode_commitments(&c).expect("encode"), junk);
            }
            if let Ok(s) = decode_share(&junk[..32]) {
                assert_eq!(encode_share(&s).expect("encode")[..], junk[..32]);
            }
        }
    }
}
