//! [`BtcAnchor`]: the Bitcoin block the sidechain has agreed on.
//!
//! Why a module of its own, at the bottom: transactions name BTC blocks (mints, settlements, reorg reports),
//! state records them (peg-ins, federation outputs, the halt) and headers carry the anchor. Inside
//! `block.rs` it made blocks and transactions need each other; here it needs nothing of the crate.
//! `crate::block::BtcAnchor` re-exports it.

use borsh::{BorshDeserialize, BorshSerialize};
use primitives::BtcHeight;
use serde::{Deserialize, Serialize};

/// A Bitcoin block the sidechain has agreed on: peg facts are taken up to it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct BtcAnchor {
    /// Its height in the Bitcoin chain.
    pub height: BtcHeight,
    /// Its hash. Borsh and the ledger's JSON (the genesis file) keep the header's internal byte order, as they
    /// always did; the RPC shows Bitcoin's display order.
    #[borsh(
        serialize_with = "crate::codec::btc_hash::serialize",
        deserialize_with = "crate::codec::btc_hash::deserialize"
    )]
    #[serde(with = "crate::codec::btc_hash_json")]
    pub hash: bitcoin::BlockHash,
}

impl Default for BtcAnchor {
    /// Height 0 and the all-zeros hash: "no block", as a `Hash32` default was before the hash had its type.
    fn default() -> Self {
        use bitcoin::hashes::Hash;
        BtcAnchor { height: BtcHeight::default(), hash: bitcoin::BlockHash::all_zeros() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    /// In borsh (signed and stored bytes) and in the ledger's JSON (genesis files) the hash is the header's
    /// internal-order bytes, exactly as while it was a `Hash32`: old genesis files name the same chain.
    #[test]
    fn anchor_hash_keeps_its_internal_order_in_borsh_and_json() {
        let mut internal = [0u8; 32];
        internal[0] = 0xab;
        let a = BtcAnchor { height: BtcHeight(5), hash: bitcoin::BlockHash::from_byte_array(internal) };
        let json = serde_json::to_value(a).expect("json");
        assert_eq!(json["hash"], format!("ab{}", "00".repeat(31)), "internal order, as a Hash32 wrote it");
        assert_eq!(json["hash"], serde_json::to_value(primitives::Hash32(internal)).expect("json"));
        assert_eq!(serde_json::from_value::<BtcAnchor>(json).expect("back"), a);
        let bytes = borsh::to_vec(&a).expect("borsh");
        assert_eq!(bytes[..4], 5u32.to_le_bytes());
        assert_eq!(bytes[4..], internal);
        assert_eq!(borsh::from_slice::<BtcAnchor>(&bytes).expect("back"), a);
    }
}
