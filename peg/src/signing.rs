//! PSBT signing and finalizing for federation inputs (BIP-0174 roles Signer and Finalizer).
//!
//! Each validator adds its own ECDSA signature to each input (BIP143 sighash, SIGHASH_ALL, low-S: the
//! secp256k1 library always produces low-S signatures). Finalizing is miniscript's job: it assembles the
//! witness once `k` signatures are present and refuses with the reasons otherwise, handing the PSBT back.

use bitcoin::ecdsa;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Message, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{PublicKey, Transaction};
use miniscript::psbt::PsbtExt;

/// Why an input could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The PSBT has no input at that index.
    #[error("psbt has no input {0}")]
    NoSuchInput(usize),
    /// The updater did not provide the spent output.
    #[error("psbt input {0} has no witness_utxo: cannot compute a segwit sighash")]
    MissingWitnessUtxo(usize),
    /// The updater did not provide the witness script.
    #[error("psbt input {0} has no witness_script")]
    MissingWitnessScript(usize),
    /// The signing key is not one of the keys in the input's witness script.
    #[error("key {key} is not in the witness script of input {input}")]
    KeyNotInScript { input: usize, key: PublicKey },
    /// Sighash computation failed (e.g. input index out of range for the unsigned tx).
    #[error("sighash of input {input}: {source}")]
    Sighash {
        input: usize,
        #[source]
        source: bitcoin::transaction::InputsIndexError,
    },
}

/// Finalizing failed: the PSBT (with every signature collected so far) comes back with the reasons.
#[derive(Debug, thiserror::Error)]
#[error("psbt cannot be finalized: {}", .errors.join("; "))]
pub struct FinalizeError {
    /// The PSBT as it was, so no collected signature is lost.
    pub psbt: Box<Psbt>,
    /// One message per input that failed.
    pub errors: Vec<String>,
}

/// Adds the signature of `secret` to input `input` of `psbt` (P2WSH, SIGHASH_ALL).
pub fn sign_input<C: Signing + Verification>(
    secp: &Secp256k1<C>,
    psbt: &mut Psbt,
    input: usize,
    secret: &SecretKey,
) -> Result<(), SignError> {
    let key = PublicKey::new(secret.public_key(secp));
    let psbt_input = psbt.inputs.get(input).ok_or(SignError::NoSuchInput(input))?;
    let utxo = psbt_input.witness_utxo.as_ref().ok_or(SignError::MissingWitnessUtxo(input))?;
    let script = psbt_input.witness_script.as_ref().ok_or(SignError::MissingWitnessScript(input))?;
    let key_bytes = key.inner.serialize();
    if !script.instructions().flatten().any(|ins| ins.push_bytes().is_some_and(|b| b.as_bytes() == key_bytes)) {
        return Err(SignError::KeyNotInScript { input, key });
    }
    let sighash = SighashCache::new(&psbt.unsigned_tx)
        .p2wsh_signature_hash(input, script, utxo.value, EcdsaSighashType::All)
        .map_err(|source| SignError::Sighash { input, source })?;
    let sig = secp.sign_ecdsa(&Message::from(sighash), secret);
    psbt.inputs[input]
        .partial_sigs
        .insert(key, ecdsa::Signature { signature: sig, sighash_type: EcdsaSighashType::All });
    Ok(())
}

/// Signs every input of `psbt` with `secret`.
pub fn sign_all_inputs<C: Signing + Verification>(
    secp: &Secp256k1<C>,
    psbt: &mut Psbt,
    secret: &SecretKey,
) -> Result<(), SignError> {
    for i in 0..psbt.inputs.len() {
        sign_input(secp, psbt, i, secret)?;
    }
    Ok(())
}

/// Finalizes every input with miniscript and extracts the network transaction.
pub fn finalize<C: Verification>(secp: &Secp256k1<C>, psbt: Psbt) -> Result<Transaction, FinalizeError> {
    let finalized = psbt.finalize(secp).map_err(|(psbt, errs)| FinalizeError {
        psbt: Box::new(psbt),
        errors: errs.iter().map(|e| e.to_string()).collect(),
    })?;
    finalized.extract_tx().map_err(|e| FinalizeError {
        errors: vec![format!("extracting the transaction: {e}")],
        psbt: Box::new(
            Psbt::from_unsigned_tx(Transaction {
                version: bitcoin::transaction::Version::TWO,
                lock_time: bitcoin::absolute::LockTime::ZERO,
                input: vec![],
                output: vec![],
            })
            .expect("an empty unsigned transaction is a valid psbt"),
        ),
    })
}
