//! The peg-in fee: what it will cost the federation to spend a deposit input later.
//!
//! Why charge it at mint time: every deposit becomes one more input of some future peg-out batch, and the
//! BTC fee for that input is paid from the fee pool. Charging the depositor exactly that cost (at the agreed
//! fee rate) keeps the fee pool from being drained by many small deposits and keeps the reserve promise
//! (`supply <= BTC held`) independent of how the federation's UTXOs are later spent.
//!
//! The size is an upper bound from miniscript (`max_weight_to_satisfy`: 73-byte signatures with sighash flag
//! and push), plus the non-witness part of an input (outpoint 36 + empty scriptSig length 1 + sequence 4 = 41
//! bytes, 4 weight units each) and the 1-byte witness item count, rounded up to whole virtual bytes. Every
//! node computes the same number from the descriptor alone, so the fee is part of pure execution.

use crate::error::PegError;
use bitcoin::{Amount, FeeRate, PublicKey, Weight};
use miniscript::Descriptor;

/// Outpoint (36) + scriptSig length (1, always empty for P2WSH) + sequence (4).
pub const NON_WITNESS_INPUT_BYTES: u64 = 41;

/// The weight of a taproot key-path input: the non-witness part plus a witness of one 64-byte
/// `SIGHASH_DEFAULT` signature (item count 1 + length 1 + 64): 230 WU, 57.5 vB.
pub const KEY_PATH_INPUT_WEIGHT: Weight = Weight::from_wu(NON_WITNESS_INPUT_BYTES * 4 + 66);

/// The weight of the largest witness that spends `descriptor`, its item count included.
pub fn witness_weight(descriptor: &Descriptor<PublicKey>) -> Result<Weight, PegError> {
    // `max_weight_to_satisfy` counts the witness item count varint only beyond the empty witness's `00`.
    let empty_witness = Weight::from_witness_data_size(1);
    Ok(empty_witness + descriptor.max_weight_to_satisfy()?)
}

/// The witness weight a batch plans for each input of `fed`'s outputs: the largest witness for the wsh
/// wallet; for taproot custody the key path's one signature, or the largest script-path witness when the
/// wallet is planned for the leaf ([`crate::SpendPath`]). A version planned for the key path cannot be
/// finished in the `multi_a` leaf at its fee rate (the leaf's witness is 2.5x or more the size): when its
/// FROST signing falls back, the fallback is a new version planned for the leaf.
pub fn planned_witness_weight(fed: &crate::Federation) -> Result<Weight, PegError> {
    match (fed.custody(), fed.planned_path()) {
        (crate::Custody::Wsh, _) | (crate::Custody::Taproot { .. }, crate::SpendPath::Leaf) => {
            witness_weight(fed.descriptor())
        }
        (crate::Custody::Taproot { .. }, crate::SpendPath::KeyPath) => {
            Ok(KEY_PATH_INPUT_WEIGHT - Weight::from_non_witness_data_size(NON_WITNESS_INPUT_BYTES))
        }
    }
}

/// The virtual size a batch plans for one input of `fed`'s outputs ([`planned_witness_weight`] and the
/// non-witness part), rounded up: what a deposit's peg-in fee is priced on.
pub fn planned_input_vbytes(fed: &crate::Federation) -> Result<u64, PegError> {
    Ok((Weight::from_non_witness_data_size(NON_WITNESS_INPUT_BYTES) + planned_witness_weight(fed)?).to_vbytes_ceil())
}

/// The weight of one input spending `descriptor` with its largest satisfaction.
pub fn input_weight(descriptor: &Descriptor<PublicKey>) -> Result<Weight, PegError> {
    Ok(Weight::from_non_witness_data_size(NON_WITNESS_INPUT_BYTES) + witness_weight(descriptor)?)
}

/// The virtual size of one such input, rounded up.
pub fn input_vbytes(descriptor: &Descriptor<PublicKey>) -> Result<u64, PegError> {
    Ok(input_weight(descriptor)?.to_vbytes_ceil())
}

/// The peg-in fee: `input_vbytes * rate`.
pub fn pegin_fee(descriptor: &Descriptor<PublicKey>, rate: FeeRate) -> Result<Amount, PegError> {
    let vbytes = input_vbytes(descriptor)?;
    rate.fee_vb(vbytes).ok_or(PegError::FeeOverflow { vbytes, rate })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::Federation;
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    fn federation(k: usize, n: u8) -> Federation {
        let secp = Secp256k1::new();
        let keys =
            (1..=n).map(|i| PublicKey::new(SecretKey::from_slice(&[i; 32]).expect("key").public_key(&secp))).collect();
        Federation::new(k, keys).expect("valid")
    }

    #[test]
    fn three_of_four() {
        // Witness script: OP_3 + 4 * (push 33) + OP_4 + OP_CHECKMULTISIG = 1 + 4*34 + 1 + 1 = 139 bytes.
        // Witness: count 1 + empty item 1 + 3 * 73 (len + 71-byte sig + flag) + len 1 + 139 = 361.
        // Input: 41 * 4 + 361 = 525 WU = 131.25 -> 132 vB.
        let fed = federation(3, 4);
        let d = fed.deposit_descriptor([0; 32], [1; 32]).expect("descriptor");
        assert_eq!(input_weight(&d).expect("weight"), Weight::from_wu(525));
        assert_eq!(input_vbytes(&d).expect("vb"), 132);
        assert_eq!(input_vbytes(fed.descriptor()).expect("vb"), 132);
        let rate = FeeRate::from_sat_per_vb(10).expect("rate");
        assert_eq!(pegin_fee(&d, rate).expect("fee"), Amount::from_sat(1320));
    }

    #[test]
    fn five_of_seven() {
        // Script 1 + 7*34 + 1 + 1 = 241; witness 1 + 1 + 5*73 + 1 + 241 = 609; 164 + 609 = 773 WU -> 194 vB.
        let fed = federation(5, 7);
        let d = fed.deposit_descriptor([0; 32], [1; 32]).expect("descriptor");
        assert_eq!(input_weight(&d).expect("weight"), Weight::from_wu(773));
        assert_eq!(input_vbytes(&d).expect("vb"), 194);
        let rate = FeeRate::from_sat_per_vb(3).expect("rate");
        assert_eq!(pegin_fee(&d, rate).expect("fee"), Amount::from_sat(582));
        assert_eq!(pegin_fee(&d, FeeRate::ZERO).expect("fee"), Amount::ZERO);
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let fed = federation(3, 4);
        let d = fed.descriptor();
        assert!(matches!(pegin_fee(d, FeeRate::MAX), Err(PegError::FeeOverflow { vbytes: 132, .. })));
    }
}
