//! Spending taproot federation outputs ([`crate::Custody::Taproot`]): the key path, one FROST signature
//! ([`crate::frost`]), and the script leaves, the `multi_a` fallback signed by the validators' own peg keys
//! and the emergency leaf after its relative lock.
//!
//! Why the leaves are signed one key at a time: they exist for when a FROST signing cannot finish, so they
//! must not depend on it. Each signer signs the BIP341 script-path sighash of the leaf with its (deposit-
//! tweaked) peg key; miniscript assembles the witness (signatures in key order, the leaf, its control block)
//! from the descriptor, as it does for the wsh wallet.

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{Keypair, Message, Secp256k1, SecretKey, Signing};
use bitcoin::sighash::{Prevouts, SighashCache, TaprootError};
use bitcoin::taproot::{self, LeafVersion, TapLeafHash};
use bitcoin::{PublicKey, ScriptBuf, TapSighash, TapSighashType, Transaction, TxOut, Witness};
use miniscript::Descriptor;
use std::collections::BTreeMap;

/// Why a taproot federation input cannot be signed or finished.
#[derive(Debug, thiserror::Error)]
pub enum TaprootSpendError {
    /// The descriptor is not a taproot descriptor.
    #[error("not a taproot descriptor")]
    NotTaproot,
    /// The input is not in the transaction, or the prevouts are not one per input (rust-bitcoin's taproot
    /// sighash does not check the index for `SIGHASH_DEFAULT`).
    #[error("input {input} of a {inputs}-input transaction with {prevouts} prevouts")]
    Input {
        /// The input asked for.
        input: usize,
        /// Inputs of the transaction.
        inputs: usize,
        /// Prevouts given.
        prevouts: usize,
    },
    /// The sighash cannot be computed.
    #[error("taproot sighash: {0}")]
    Sighash(#[from] TaprootError),
    /// The signatures given satisfy no spending path of the input (too few, or a lock not met).
    #[error("no spending path is satisfied: {0}")]
    Unsatisfied(#[source] miniscript::Error),
}

/// The sighash a key-path signature of input `input` signs (`SIGHASH_DEFAULT`, all prevouts committed).
pub fn key_path_sighash(tx: &Transaction, input: usize, prevouts: &[TxOut]) -> Result<TapSighash, TaprootSpendError> {
    check_input(tx, input, prevouts)?;
    let mut cache = SighashCache::new(tx);
    Ok(cache.taproot_key_spend_signature_hash(input, &Prevouts::All(prevouts), TapSighashType::Default)?)
}

/// The sighash a signature in leaf `leaf` of input `input` signs (`SIGHASH_DEFAULT`).
pub fn leaf_sighash(
    tx: &Transaction,
    input: usize,
    prevouts: &[TxOut],
    leaf: TapLeafHash,
) -> Result<TapSighash, TaprootSpendError> {
    check_input(tx, input, prevouts)?;
    let mut cache = SighashCache::new(tx);
    Ok(cache.taproot_script_spend_signature_hash(input, &Prevouts::All(prevouts), leaf, TapSighashType::Default)?)
}

fn check_input(tx: &Transaction, input: usize, prevouts: &[TxOut]) -> Result<(), TaprootSpendError> {
    if input >= tx.input.len() || prevouts.len() != tx.input.len() {
        return Err(TaprootSpendError::Input { input, inputs: tx.input.len(), prevouts: prevouts.len() });
    }
    Ok(())
}

/// The leaves of a taproot descriptor in tree order (the federation's: the `multi_a` fallback, then the
/// emergency leaf if any), with their leaf hashes.
pub fn leaves(descriptor: &Descriptor<PublicKey>) -> Result<Vec<(ScriptBuf, TapLeafHash)>, TaprootSpendError> {
    let Descriptor::Tr(tr) = descriptor else {
        return Err(TaprootSpendError::NotTaproot);
    };
    Ok(tr
        .iter_scripts()
        .map(|(_, ms)| {
            let script = ms.encode();
            let hash = TapLeafHash::from_script(&script, LeafVersion::TapScript);
            (script, hash)
        })
        .collect())
}

/// The hash of `descriptor`'s `multi_a` leaf with threshold `threshold`: the fallback leaf, found by what
/// it is rather than where it sits in the tree.
pub fn fallback_leaf(descriptor: &Descriptor<PublicKey>, threshold: usize) -> Result<TapLeafHash, TaprootSpendError> {
    let Descriptor::Tr(tr) = descriptor else {
        return Err(TaprootSpendError::NotTaproot);
    };
    tr.iter_scripts()
        .find(|(_, ms)| matches!(&ms.node, miniscript::Terminal::MultiA(t) if t.k() == threshold))
        .map(|(_, ms)| TapLeafHash::from_script(&ms.encode(), LeafVersion::TapScript))
        .ok_or(TaprootSpendError::NotTaproot)
}

/// A BIP340 signature of `sighash` by `secret` (any parity: the keypair signs for its x-only key).
pub fn sign<C: Signing>(secp: &Secp256k1<C>, secret: &SecretKey, sighash: TapSighash) -> taproot::Signature {
    let keypair = Keypair::from_secret_key(secp, secret);
    let message = Message::from_digest(sighash.to_raw_hash().to_byte_array());
    taproot::Signature {
        signature: secp.sign_schnorr_no_aux_rand(&message, &keypair),
        sighash_type: TapSighashType::Default,
    }
}

/// The witness of a key-path spend: the one signature.
pub fn key_path_witness(signature: &taproot::Signature) -> Witness {
    Witness::p2tr_key_spend(signature)
}

/// The witness of a script-path spend of `descriptor` from leaf signatures (peg key or emergency key, leaf
/// hash → signature) and the input's sequence (the emergency leaf's relative lock): miniscript picks the
/// cheapest satisfied leaf and adds the script and its control block.
pub fn script_path_witness(
    descriptor: &Descriptor<PublicKey>,
    signatures: &BTreeMap<(PublicKey, TapLeafHash), taproot::Signature>,
    sequence: bitcoin::Sequence,
) -> Result<Witness, TaprootSpendError> {
    if !matches!(descriptor, Descriptor::Tr(_)) {
        return Err(TaprootSpendError::NotTaproot);
    }
    let (witness, _script_sig) =
        descriptor.get_satisfaction((signatures, sequence)).map_err(TaprootSpendError::Unsatisfied)?;
    Ok(Witness::from_slice(&witness))
}

#[cfg(test)]
mod tests;
