//! Bitcoin's own script interpreter over every transaction the federation signs.
//!
//! Why: our share checks prove that each signature is valid for the sighash *we* compute with the keys *we*
//! think an input needs. If the record of which keys an input needs is wrong (a deposit recorded as
//! untweaked, a wrong amount, a coinbase), every share checks out and the transaction is still invalid on
//! Bitcoin: it would be re-signed and bumped forever while the burn waits. libbitcoinconsensus (Bitcoin
//! Core's interpreter, through the `bitcoinconsensus` crate) judges the finished transaction against the
//! exact prevout scripts and amounts, as every Bitcoin node will, with all soft forks up to taproot.

use bitcoin::{Transaction, TxOut};

/// Why Bitcoin's interpreter refuses a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptCheckError {
    /// The number of prevouts given is not the number of inputs.
    #[error("{inputs} inputs but {prevouts} spent outputs given")]
    PrevoutCount {
        /// Inputs of the transaction.
        inputs: usize,
        /// Prevouts given.
        prevouts: usize,
    },
    /// An amount Bitcoin cannot represent (above 21M BTC).
    #[error("input {input}: amount out of range")]
    Amount {
        /// The input.
        input: usize,
    },
    /// The interpreter refused input `input`.
    #[error("input {input} does not satisfy the script it spends: {source}")]
    Script {
        /// The input.
        input: usize,
        /// libbitcoinconsensus's reason.
        #[source]
        source: bitcoinconsensus::Error,
    },
}

/// Checks every input of `tx` against `prevouts[i]` (the output it spends: script and amount) with Bitcoin
/// Core's consensus rules (P2SH, DERSIG, NULLDUMMY, CLTV, CSV, WITNESS, TAPROOT). Lock times and relative
/// lock times are checked against the transaction's own fields, as the interpreter does; whether the chain
/// is deep enough for them is the mempool's business.
pub fn verify_spends(tx: &Transaction, prevouts: &[TxOut]) -> Result<(), ScriptCheckError> {
    if prevouts.len() != tx.input.len() {
        return Err(ScriptCheckError::PrevoutCount { inputs: tx.input.len(), prevouts: prevouts.len() });
    }
    let bytes = bitcoin::consensus::serialize(tx);
    let mut values = Vec::with_capacity(prevouts.len());
    for (input, p) in prevouts.iter().enumerate() {
        values.push(i64::try_from(p.value.to_sat()).map_err(|_| ScriptCheckError::Amount { input })?);
    }
    // `Utxo` holds raw pointers into `prevouts`, which outlives every call below.
    let spent: Vec<bitcoinconsensus::Utxo> = prevouts
        .iter()
        .zip(&values)
        .map(|(p, value)| bitcoinconsensus::Utxo {
            script_pubkey: p.script_pubkey.as_bytes().as_ptr(),
            script_pubkey_len: p.script_pubkey.len() as u32,
            value: *value,
        })
        .collect();
    for (input, p) in prevouts.iter().enumerate() {
        bitcoinconsensus::verify(p.script_pubkey.as_bytes(), p.value.to_sat(), &bytes, Some(&spent), input)
            .map_err(|source| ScriptCheckError::Script { input, source })?;
    }
    Ok(())
}

/// The outputs a batch's inputs spend, as our records describe them (script from the recorded tweak, the
/// recorded amount). Only for tests and simulations: a node checks against the prevouts its bitcoind shows,
/// since what this function reads is exactly what could be wrong.
pub fn recorded_prevouts(
    fed: &crate::Federation,
    genesis: [u8; 32],
    inputs: &[crate::BatchInput],
) -> Result<Vec<TxOut>, crate::PegError> {
    inputs
        .iter()
        .map(|i| {
            let script_pubkey = match i.tweak {
                None => fed.script_pubkey(),
                Some(r) => fed.deposit_script_pubkey(genesis, r)?,
            };
            Ok(TxOut { value: i.amount, script_pubkey })
        })
        .collect()
}
