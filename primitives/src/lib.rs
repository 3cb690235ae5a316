//! Primitives shared by every crate that signs, hashes or counts something.
//!
//! Why a crate of its own: the consensus core and the ledger are both pure and must agree, byte for byte, on
//! what a height is, what a hash is and which bytes a signature covers. Those definitions live here, once.
//! Every signed or hashed structure is encoded with [borsh](https://borsh.io) (a public, deterministic,
//! documented encoding: little-endian integers, `u32` length prefixes, `u8` enum tags), so explorers and
//! other implementations can check our signatures without our code (see `docs/PROTOCOL.md`).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod hash;
mod keys;
mod newtypes;
#[cfg(feature = "schemars")]
pub mod schema;

pub use hash::{tagged_hash, BlockId, GenesisHash, Hash32, ParseHashError, StateRoot, TxId};
pub use keys::{signing_bytes, verify_batch, AccountId, Keypair, PublicKey, SignDomain, Signature, SignatureError};
pub use newtypes::{BtcHeight, Height, Round, ValidatorIndex};

/// The canonical bytes of a value: what is signed and hashed everywhere.
pub fn canonical_bytes<T: borsh::BorshSerialize>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("borsh serialization into a Vec cannot fail")
}
