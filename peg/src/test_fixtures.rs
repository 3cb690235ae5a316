//! Test fixtures shared by the peg modules' unit tests: a federation of known keys and federation coins.

use crate::batch::BatchInput;
use crate::federation::Federation;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Amount, OutPoint, PublicKey, Txid};

/// Secrets `[1; 32]`, `[2; 32]`, ... `[n; 32]`.
pub(crate) fn secrets(n: u8) -> Vec<SecretKey> {
    (1..=n).map(|i| SecretKey::from_slice(&[i; 32]).expect("valid scalar")).collect()
}

/// `k`-of-`n` over [`secrets`]`(n)`, keys in that (genesis) order.
pub(crate) fn federation(k: usize, n: u8) -> Federation {
    let secp = Secp256k1::new();
    Federation::new(k, secrets(n).iter().map(|s| PublicKey::new(s.public_key(&secp))).collect()).expect("valid")
}

/// A federation coin numbered `id` (its txid starts with `id`), worth `amount` sats.
pub(crate) fn coin(id: u32, amount: u64, tweak: Option<[u8; 32]>) -> BatchInput {
    let mut txid = [0u8; 32];
    txid[..4].copy_from_slice(&id.to_be_bytes());
    BatchInput { outpoint: OutPoint { txid: Txid::from_byte_array(txid), vout: id % 3 }, amount: sat(amount), tweak }
}

/// Shorthand.
pub(crate) fn sat(s: u64) -> Amount {
    Amount::from_sat(s)
}
