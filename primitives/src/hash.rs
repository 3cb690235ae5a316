//! 32-byte hashes and BIP340-style tagged hashing (domain separation by a tag, so a hash of one kind of
//! object can never be taken for a hash of another).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A SHA-256 output: block hashes, transaction ids, state roots, account ids.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero hash, used as "no previous block" at genesis.
    pub const ZERO: Hash32 = Hash32([0; 32]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// `SHA256(SHA256(tag) || SHA256(tag) || part_0 || part_1 || ...)` as in BIP340.
pub fn tagged_hash(tag: &str, parts: &[&[u8]]) -> Hash32 {
    let tag_hash = Sha256::digest(tag.as_bytes());
    let mut h = Sha256::new();
    h.update(tag_hash);
    h.update(tag_hash);
    for p in parts {
        h.update(p);
    }
    Hash32(h.finalize().into())
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short form keeps logs and test output readable.
        write!(f, "{}..", &self.to_hex()[..12])
    }
}

/// Error for a string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hex digits for a 32-byte hash, got {0:?}")]
pub struct ParseHashError(pub String);

impl FromStr for Hash32 {
    type Err = ParseHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err(ParseHashError(s.chars().take(80).collect()));
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseHashError(s.chars().take(80).collect()))?;
        Ok(Hash32(out))
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_hash_separates_tags_and_is_stable() {
        let a = tagged_hash("a", &[b"x"]);
        let b = tagged_hash("b", &[b"x"]);
        assert_ne!(a, b);
        assert_eq!(a, tagged_hash("a", &[b"x"]));
        // Parts are concatenated, not framed: callers pass fixed-width parts.
        assert_eq!(tagged_hash("a", &[b"xy"]), tagged_hash("a", &[b"x", b"y"]));
    }

    #[test]
    fn hex_round_trip_and_bad_input() {
        let h = tagged_hash("t", &[]);
        assert_eq!(h.to_hex().parse::<Hash32>(), Ok(h));
        assert!("zz".parse::<Hash32>().is_err());
        assert!("00".repeat(31).parse::<Hash32>().is_err());
        assert!("g".repeat(64).parse::<Hash32>().is_err());
    }
}
