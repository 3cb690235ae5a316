//! 32-byte hashes and BIP340-style tagged hashing (domain separation by a tag, so a hash of one kind of
//! object can never be taken for a hash of another).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A SHA-256 output with no meaning of its own: a tagged hash, a Merkle node, a digest of some bytes.
/// A hash that names something on the sidechain has its own type ([`BlockId`], [`TxId`], [`StateRoot`],
/// [`GenesisHash`], `AccountId`), so one can never be passed where another is meant. Each wraps a `Hash32` and
/// shows, parses and encodes exactly as one. Bitcoin's txids and block hashes are rust-bitcoin's own `Txid` and
/// `BlockHash` wherever the ledger records them (borsh-encoded and JSON-written as the same 32 internal-order
/// bytes as a `Hash32`, by `ledger::codec::btc_hash` and `btc_hash_json`).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero hash (e.g. the last commit hash of the first block, which has no previous commit).
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

/// A hash that names one kind of thing (rust-bitcoin's `hash_newtype!` habit): same bytes, encodings
/// and text as [`Hash32`], but a type of its own.
macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub Hash32);

        impl $name {
            /// All zeros: "none" where a value is required (e.g. the parent of the first block).
            pub const ZERO: $name = $name(Hash32::ZERO);

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0 .0
            }

            /// Lowercase hex.
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = ParseHashError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                Serialize::serialize(&self.0, s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <Hash32 as Deserialize>::deserialize(d).map($name)
            }
        }
    };
}

hash_newtype!(
    /// A sidechain block's id: the tagged hash of its header (what consensus votes for).
    BlockId
);
hash_newtype!(
    /// A sidechain transaction's id: the tagged hash of its unsigned body.
    TxId
);
hash_newtype!(
    /// The root of the state's Jellyfish Merkle tree after a block.
    StateRoot
);
impl GenesisHash {
    /// Block 0's id. Genesis has no header: the genesis file stands for block 0, so the first produced block
    /// names the genesis hash as its parent.
    pub fn as_block_id(self) -> BlockId {
        BlockId(self.0)
    }
}

hash_newtype!(
    /// The hash of the genesis file: the chain's identity, mixed into every signature so that nothing signed
    /// for one chain is valid on another.
    GenesisHash
);

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

    /// A typed hash is a `Hash32` on the wire and in text, so the change of type changed no byte that is
    /// signed, stored or served.
    #[test]
    fn typed_hashes_encode_as_hash32() {
        let h = tagged_hash("t", &[b"x"]);
        let json = serde_json::to_string(&h).expect("json");
        let borsh = borsh::to_vec(&h).expect("borsh");
        macro_rules! same {
            ($t:ident) => {{
                let typed = $t(h);
                assert_eq!(serde_json::to_string(&typed).expect("json"), json);
                assert_eq!(borsh::to_vec(&typed).expect("borsh"), borsh);
                assert_eq!(typed.to_string(), h.to_string());
                assert_eq!(format!("{typed:?}"), format!("{h:?}"));
                assert_eq!(h.to_hex().parse::<$t>(), Ok(typed));
                assert_eq!(serde_json::from_str::<$t>(&json).expect("parse"), typed);
                assert!("zz".parse::<$t>().is_err());
            }};
        }
        same!(BlockId);
        same!(TxId);
        same!(StateRoot);
        same!(GenesisHash);
        assert_eq!(GenesisHash(h).as_block_id(), BlockId(h));
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
