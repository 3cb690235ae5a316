//! JSON Schemas of the hex-string types, for the RPC's OpenRPC document (feature `schemars`).
//!
//! Why by hand: these types serialize through their own `Serialize` impls (lowercase hex strings, see
//! `hash.rs` and `keys.rs`), not as the byte arrays they hold, so a derived schema would be wrong. Each
//! schema here says exactly what the impl writes. The counters (`Height`, ...) derive theirs
//! (`newtypes.rs`): they are `#[serde(transparent)]` integers.
//!
//! Also the schemas of the Bitcoin values the ledger and the RPC show, as rust-bitcoin's serde writes
//! them: fields of those types name one of these with `#[schemars(with = "...")]` (rust-bitcoin has no
//! schemars 1 support). Here because this is the one crate both the ledger and the RPC depend on.

use crate::{AccountId, BlockId, GenesisHash, Hash32, PublicKey, Signature, StateRoot, TxId};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use std::borrow::Cow;

/// A lowercase hex string of exactly `bytes` bytes.
fn hex_string(bytes: usize, description: &str) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": format!("^[0-9a-f]{{{}}}$", bytes * 2),
        "description": description,
    })
}

macro_rules! hex_schema {
    ($ty:ty, $name:literal, $bytes:expr, $description:literal) => {
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            fn schema_id() -> Cow<'static, str> {
                Cow::Borrowed(concat!("primitives::", $name))
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                hex_string($bytes, $description)
            }
        }
    };
}

hex_schema!(Hash32, "Hash32", 32, "a 32-byte sidechain hash (a Merkle root or digest), lowercase hex");
hex_schema!(BlockId, "BlockId", 32, "a sidechain block id: the tagged hash of its header, lowercase hex");
hex_schema!(TxId, "TxId", 32, "a sidechain transaction id: the tagged hash of its body, lowercase hex");
hex_schema!(StateRoot, "StateRoot", 32, "the root of the sidechain state's Merkle tree, lowercase hex");
hex_schema!(GenesisHash, "GenesisHash", 32, "the hash of the genesis file, the chain's identity, lowercase hex");
hex_schema!(
    AccountId,
    "AccountId",
    32,
    "an account: the tagged hash of the ed25519 key that controls it, lowercase hex"
);
hex_schema!(PublicKey, "PublicKey", 32, "an ed25519 public key, lowercase hex");
hex_schema!(Signature, "Signature", 64, "an ed25519 signature, lowercase hex");

/// A Bitcoin txid or block hash as `bitcoin-cli` shows it (display order: byte-reversed), the serde form
/// of `bitcoin::Txid` and `bitcoin::BlockHash`.
pub struct BtcHash;
hex_schema!(BtcHash, "BtcHash", 32, "a Bitcoin txid or block hash, as bitcoin-cli shows it (byte-reversed)");

/// A Bitcoin output as `txid:vout` (the serde form of `bitcoin::OutPoint`).
pub struct BtcOutPoint;

impl JsonSchema for BtcOutPoint {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("BtcOutPoint")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9a-f]{64}:[0-9]+$",
            "description": "a Bitcoin output as txid:vout, the txid as bitcoin-cli shows it",
        })
    }
}

/// A secp256k1 public key as hex, compressed (33 bytes) or not (65): the serde form of `bitcoin::PublicKey`.
pub struct BtcPublicKey;

impl JsonSchema for BtcPublicKey {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("BtcPublicKey")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^(0[23][0-9a-f]{64}|04[0-9a-f]{128})$",
            "description": "a secp256k1 public key, hex (compressed: 66 digits)",
        })
    }
}

/// An amount in satoshis: the form of `bitcoin::Amount` under `bitcoin::amount::serde::as_sat`.
pub struct Sat;

impl JsonSchema for Sat {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Sat")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "minimum": 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The pattern of `T`'s schema matches what its `Serialize` writes, and only strings of that length.
    fn check<T: JsonSchema + serde::Serialize>(value: T, len: usize) {
        let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
        let pattern = schema.get("pattern").and_then(Value::as_str).expect("a pattern");
        let shown = serde_json::to_value(&value).expect("serializes");
        let shown = shown.as_str().expect("a string");
        assert_eq!(shown.len(), len);
        assert_eq!(pattern, format!("^[0-9a-f]{{{len}}}$"));
        assert!(shown.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{shown}");
    }

    #[test]
    fn schemas_say_what_serialize_writes() {
        check(Hash32([0xab; 32]), 64);
        check(AccountId(Hash32([0xcd; 32])), 64);
        check(PublicKey([0xef; 32]), 64);
        check(Signature([0x9a; 64]), 128);
    }
}
