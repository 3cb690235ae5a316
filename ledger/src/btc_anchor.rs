//! [`BtcAnchor`]: the Bitcoin block the sidechain has agreed on.
//!
//! Why a module of its own, at the bottom: transactions name BTC blocks (mints, settlements, reorg reports),
//! state records them (peg-ins, federation outputs, the halt) and headers carry the anchor. Inside
//! `block.rs` it made blocks and transactions need each other; here it needs nothing of the crate.
//! `crate::block::BtcAnchor` re-exports it.

use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{BtcHeight, Hash32};
use serde::{Deserialize, Serialize};

/// A Bitcoin block the sidechain has agreed on: peg facts are taken up to it.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct BtcAnchor {
    /// Its height in the Bitcoin chain.
    pub height: BtcHeight,
    /// Its hash, in internal byte order (as in the block header, not the reversed RPC display).
    pub hash: Hash32,
}
