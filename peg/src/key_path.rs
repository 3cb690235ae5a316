//! A taproot batch version signed by key path: what each input's FROST signing signs
//! ([`crate::frost::session::InputToSign`]: the BIP341 key-path sighash and the merkle root the output key
//! is tweaked with) and the signed transaction from one signature per input.
//!
//! Why one place for both: the sighashes commit to every spent output, and the node that signs, the chain
//! that checks the shares and the node that broadcasts must all derive the same spent outputs from the
//! batch record. Here they come from the same deposit descriptors the watcher and the fallback leaf use.

use crate::frost::session::InputToSign;
use crate::{BatchInput, Federation, PegError};
use bitcoin::{taproot, Transaction, TxOut};

/// Why a batch version cannot be signed or finished by key path.
#[derive(Debug, thiserror::Error)]
pub enum KeyPathError {
    /// The wallet is not a taproot wallet.
    #[error("the wallet is not a taproot wallet")]
    NotTaproot,
    /// The transaction and its spent outputs do not match (counts, outpoints) or it is already signed.
    #[error("inconsistent batch: {0}")]
    Inconsistent(&'static str),
    /// A deposit's tweak cannot be applied.
    #[error("input {input}: {source}")]
    Tweak {
        /// The input.
        input: usize,
        /// Why.
        #[source]
        source: PegError,
    },
    /// A sighash cannot be computed.
    #[error(transparent)]
    Spend(#[from] crate::taproot::TaprootSpendError),
    /// Not one signature per input.
    #[error("{got} signatures for {inputs} inputs")]
    Count {
        /// Signatures given.
        got: usize,
        /// Inputs.
        inputs: usize,
    },
    /// The signed transaction fails Bitcoin's interpreter (a wrong signature).
    #[error("the key-path spend fails Bitcoin's script check: {0}")]
    Script(#[from] crate::verify::ScriptCheckError),
}

/// One unsigned batch version of a taproot wallet, ready for key-path signing.
#[derive(Debug, Clone)]
pub struct KeyPathBatch {
    tx: Transaction,
    prevouts: Vec<TxOut>,
    inputs: Vec<InputToSign>,
}

impl KeyPathBatch {
    /// Derives each input's spent output, key-path sighash and merkle root. `inputs[i]` is the output
    /// `tx.input[i]` spends; `tx` must be unsigned.
    pub fn new(
        fed: &Federation,
        genesis: [u8; 32],
        tx: &Transaction,
        inputs: &[BatchInput],
    ) -> Result<Self, KeyPathError> {
        if !matches!(fed.custody(), crate::Custody::Taproot { .. }) {
            return Err(KeyPathError::NotTaproot);
        }
        if tx.input.is_empty() || inputs.len() != tx.input.len() {
            return Err(KeyPathError::Inconsistent("not one spent output per transaction input"));
        }
        if inputs.iter().zip(&tx.input).any(|(i, t)| i.outpoint != t.previous_output) {
            return Err(KeyPathError::Inconsistent("a spent output does not match the transaction's input"));
        }
        if tx.input.iter().any(|t| !t.script_sig.is_empty() || !t.witness.is_empty()) {
            return Err(KeyPathError::Inconsistent("the transaction is not unsigned"));
        }
        let mut prevouts = Vec::with_capacity(inputs.len());
        let mut roots = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.iter().enumerate() {
            let descriptor = match input.tweak {
                None => fed.descriptor().clone(),
                Some(recipient) => fed
                    .deposit_descriptor(genesis, recipient)
                    .map_err(|source| KeyPathError::Tweak { input: index, source })?,
            };
            prevouts.push(TxOut { value: input.amount, script_pubkey: descriptor.script_pubkey() });
            roots.push(crate::federation::merkle_root(&descriptor));
        }
        let mut to_sign = Vec::with_capacity(inputs.len());
        for (index, merkle_root) in roots.into_iter().enumerate() {
            let sighash = crate::taproot::key_path_sighash(tx, index, &prevouts)?;
            to_sign.push(InputToSign { sighash, merkle_root });
        }
        Ok(KeyPathBatch { tx: tx.clone(), prevouts, inputs: to_sign })
    }

    /// What each input's signing signs, in input order.
    pub fn inputs(&self) -> &[InputToSign] {
        &self.inputs
    }

    /// The signed transaction from one key-path signature per input, checked by Bitcoin's interpreter.
    pub fn finalize(&self, signatures: &[taproot::Signature]) -> Result<Transaction, KeyPathError> {
        if signatures.len() != self.tx.input.len() {
            return Err(KeyPathError::Count { got: signatures.len(), inputs: self.tx.input.len() });
        }
        let mut tx = self.tx.clone();
        for (txin, signature) in tx.input.iter_mut().zip(signatures) {
            txin.witness = crate::taproot::key_path_witness(signature);
        }
        crate::verify::verify_spends(&tx, &self.prevouts)?;
        Ok(tx)
    }
}
