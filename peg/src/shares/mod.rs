//! Peg-out signature shares: one validator's signatures for every input of one batch version, how a node
//! checks them, and how `k` of them become the signed Bitcoin transaction.
//!
//! Why it exists: validators sign a peg-out batch and submit their signatures in a `PegOutSignatures`
//! validator transaction; **every node checks each share in block execution** (DESIGN.md, "Peg-out"). The
//! invariant this module owns is that the check is a pure function of the federation, the genesis hash, the
//! exact batch version (its unsigned transaction and, per input, the amount and deposit tweak) and the
//! share's bytes: no IO, no clock, no randomness, and every hostile byte string is an error, never a panic.
//!
//! # What a share is
//! For input `i` of the unsigned transaction, signer `j` (an index into [`Federation::keys`], genesis order)
//! signs the BIP-0143 sighash of input `i` with `SIGHASH_ALL`, the witness script being the federation's
//! `wsh(sortedmulti(k, ..))` script, or the deposit's (keys tweaked for the input's recipient, see
//! [`crate::deposit`]), with `K_j` tweaked the same way. The signature bytes are the strict DER encoding of
//! the low-S ECDSA signature followed by the sighash byte `0x01`: exactly what goes into the witness.
//! [`sign_batch`] uses RFC-6979 nonces, so signing the same version twice gives the same bytes.
//!
//! # What a node accepts
//! [`verify_share`] accepts a signature only if it is the *canonical* encoding (parsing it strictly and
//! serializing it again gives the same bytes, so a share has one byte string per signature), its last byte is
//! `SIGHASH_ALL`, its `s` is low (BIP-0146; Core would not relay it otherwise) and it verifies against the
//! signer's (tweaked) key over that input's sighash. A share for another version, another input or another
//! signer fails, and the error names the signer and the input.
//!
//! # Finalizing (BIP-0174 Finalizer, done by miniscript)
//! [`finalize_batch`] takes shares from at least `k` distinct signers, puts the signatures of the `k` lowest
//! signer indices into a PSBT and lets miniscript ([`crate::signing::finalize`]) build each witness
//! (`<empty> <sig>.. <witness script>`, the signatures in the order of the sorted keys) and run its
//! interpreter over the result. Choosing the lowest indices makes the witness (the wtxid) the same on every
//! node for the same set of shares; the txid does not depend on it.
//!
//! # Taproot custody: the fallback leaf
//! For a [`crate::Custody::Taproot`] wallet a share is what the `multi_a` fallback leaf needs, for when the
//! FROST key-path signing ([`crate::frost::session`]) gives up: signer `j` signs the BIP-0341 script-path
//! sighash of input `i` for that leaf (`SIGHASH_DEFAULT`, all prevouts committed) with `K_j` tweaked as above,
//! a 64-byte BIP-0340 signature and nothing else (a 65th sighash byte is refused: one form per signature).
//! [`PreparedBatch::finalize`] hands the `k` lowest signers' signatures to miniscript, which builds each
//! witness (signatures in key order, the leaf, its control block), and then runs Bitcoin's own interpreter
//! ([`crate::verify_spends`]) over the result.
//!
//! [`PreparedBatch`] computes the keys, scripts and sighashes of a version once, for callers that check many
//! shares of it; the free functions build one and use it once.

use crate::batch::BatchInput;
use crate::error::PegError;
use crate::federation::Federation;
use crate::signing;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{ecdsa, Message, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::sighash::{Prevouts, TapSighashType};
use bitcoin::taproot::TapLeafHash;
use bitcoin::{PublicKey, ScriptBuf, Transaction, TxOut};
use std::collections::{BTreeMap, BTreeSet};

/// One validator's signatures for every input of one batch version, in the order of the transaction's
/// inputs: strict DER ECDSA (low-S) followed by the `SIGHASH_ALL` byte for the wsh wallet, a 64-byte BIP340
/// signature in the fallback leaf for taproot custody.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Share {
    /// Index of the signer's peg key in [`Federation::keys`] (genesis order, not the script's sorted order).
    pub signer: usize,
    /// `signatures[i]` signs input `i`.
    pub signatures: Vec<Vec<u8>>,
}

/// Why a share could not be made, was refused, or why shares could not be combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// The batch handed in contradicts itself (a caller bug or corrupted state, not a bad share).
    #[error("inconsistent batch: {0}")]
    InconsistentBatch(&'static str),
    /// The signer index is not a peg key of the federation.
    #[error("signer {signer} is not one of the federation's {keys} peg keys")]
    UnknownSigner {
        /// The index given.
        signer: usize,
        /// How many peg keys there are.
        keys: usize,
    },
    /// [`sign_batch`] was given a secret that is not the secret of peg key `signer`.
    #[error("the secret key given is not the secret of peg key {signer}")]
    WrongSecret {
        /// The index given.
        signer: usize,
    },
    /// The share does not carry exactly one signature per input of this version.
    #[error("share of signer {signer} has {have} signatures for a batch of {want} inputs")]
    WrongInputCount {
        /// The signer.
        signer: usize,
        /// Signatures in the share.
        have: usize,
        /// Inputs of the batch version.
        want: usize,
    },
    /// Not a canonical (strict DER, minimally encoded) signature followed by a sighash byte.
    #[error("signature of signer {signer} for input {input} is not canonical DER followed by a sighash byte")]
    BadSignatureEncoding {
        /// The signer.
        signer: usize,
        /// The input.
        input: usize,
    },
    /// The sighash byte is not `SIGHASH_ALL` (0x01).
    #[error("signature of signer {signer} for input {input} has sighash byte {found:#04x}, not SIGHASH_ALL")]
    WrongSighashType {
        /// The signer.
        signer: usize,
        /// The input.
        input: usize,
        /// The byte found.
        found: u8,
    },
    /// The signature's `s` is above half the group order (BIP-0146: not standard).
    #[error("signature of signer {signer} for input {input} has a high S")]
    HighS {
        /// The signer.
        signer: usize,
        /// The input.
        input: usize,
    },
    /// Well-formed, but not a signature by the signer's (tweaked) key over this input's sighash.
    #[error("signature of signer {signer} for input {input} does not verify")]
    InvalidSignature {
        /// The signer.
        signer: usize,
        /// The input.
        input: usize,
    },
    /// Fewer distinct signers than the threshold.
    #[error("{have} shares, {need} needed to sign the batch")]
    NotEnoughShares {
        /// Shares given.
        have: usize,
        /// The federation's threshold.
        need: usize,
    },
    /// Two shares by the same signer.
    #[error("more than one share of signer {signer}")]
    DuplicateSigner {
        /// The signer.
        signer: usize,
    },
    /// The keys or witness script of an input cannot be derived (a deposit tweak with no valid key,
    /// probability about 2^-128).
    #[error("keys of input {input}: {source}")]
    Tweak {
        /// The input.
        input: usize,
        /// Why.
        source: PegError,
    },
    /// The sighash of an input cannot be computed.
    #[error("sighash of input {input}: {source}")]
    Sighash {
        /// The input.
        input: usize,
        /// Why.
        #[source]
        source: bitcoin::transaction::InputsIndexError,
    },
    /// The taproot sighash of an input cannot be computed.
    #[error("taproot sighash of input {input}: {source}")]
    TapSighash {
        /// The input.
        input: usize,
        /// Why.
        #[source]
        source: bitcoin::sighash::TaprootError,
    },
    /// Miniscript refused to finalize valid shares (not expected: a guard).
    #[error("finalizing the batch: {0}")]
    Finalize(String),
}

/// What signing or checking input `i` needs, computed once per version.
#[derive(Debug, Clone)]
struct PreparedInput {
    /// The peg keys as they appear in this input's script (tweaked for a deposit), in genesis order.
    keys: Vec<PublicKey>,
    /// The deposit recipient, `None` for an untweaked federation output.
    tweak: Option<[u8; 32]>,
    /// The spent output (value and P2WSH or P2TR script).
    spent: TxOut,
    /// How the input is spent.
    spend: InputSpend,
    /// The BIP-0143 `SIGHASH_ALL` sighash (wsh) or the fallback leaf's BIP-0341 `SIGHASH_DEFAULT` one.
    sighash: Message,
}

/// The script a share signs in.
#[derive(Debug, Clone)]
enum InputSpend {
    /// The wsh script the witness reveals, also the BIP-0143 script code.
    Wsh(ScriptBuf),
    /// The taproot output's descriptor and the hash of its `multi_a` fallback leaf.
    TapLeaf(Box<miniscript::Descriptor<PublicKey>>, TapLeafHash),
}

/// One batch version with the keys, witness scripts and sighashes of its inputs computed once: sign, check
/// any number of shares against it, and finalize.
#[derive(Debug, Clone)]
pub struct PreparedBatch {
    tx: Transaction,
    threshold: usize,
    keys: usize,
    genesis: [u8; 32],
    inputs: Vec<PreparedInput>,
}

impl PreparedBatch {
    /// Derives every input's keys, witness script and sighash. `inputs[i]` is the output `tx.input[i]`
    /// spends; `tx` must be unsigned (empty scriptSigs and witnesses), as built by [`crate::plan_batch`].
    pub fn new(
        fed: &Federation,
        genesis: [u8; 32],
        tx: &Transaction,
        inputs: &[BatchInput],
    ) -> Result<Self, ShareError> {
        if tx.input.is_empty() {
            return Err(ShareError::InconsistentBatch("the transaction has no inputs"));
        }
        if inputs.len() != tx.input.len() {
            return Err(ShareError::InconsistentBatch("not one spent output per transaction input"));
        }
        if inputs.iter().zip(&tx.input).any(|(i, t)| i.outpoint != t.previous_output) {
            return Err(ShareError::InconsistentBatch("a spent output does not match the transaction's input"));
        }
        if tx.input.iter().any(|t| !t.script_sig.is_empty() || !t.witness.is_empty()) {
            return Err(ShareError::InconsistentBatch("the transaction is not unsigned"));
        }
        // Keys and scripts per recipient: a batch often spends several outputs of one depositor.
        let mut scripts: BTreeMap<Option<[u8; 32]>, (Vec<PublicKey>, InputSpend, ScriptBuf)> = BTreeMap::new();
        let mut described = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.iter().enumerate() {
            let (keys, spend, script_pubkey) = match scripts.get(&input.tweak) {
                Some(s) => s.clone(),
                None => {
                    let s = input_scripts(fed, genesis, input.tweak)
                        .map_err(|source| ShareError::Tweak { input: index, source })?;
                    scripts.insert(input.tweak, s.clone());
                    s
                }
            };
            described.push((keys, spend, TxOut { value: input.amount, script_pubkey }));
        }
        // A taproot sighash commits to every spent output, so the sighashes follow once all are known.
        let taproot = described.iter().any(|(_, spend, _)| matches!(spend, InputSpend::TapLeaf(..)));
        let prevouts: Vec<TxOut> =
            if taproot { described.iter().map(|(_, _, spent)| spent.clone()).collect() } else { Vec::new() };
        let mut cache = SighashCache::new(tx);
        let mut prepared = Vec::with_capacity(inputs.len());
        for (index, (input, (keys, spend, spent))) in inputs.iter().zip(described).enumerate() {
            let sighash = match &spend {
                InputSpend::Wsh(witness_script) => Message::from(
                    cache
                        .p2wsh_signature_hash(index, witness_script, input.amount, EcdsaSighashType::All)
                        .map_err(|source| ShareError::Sighash { input: index, source })?,
                ),
                InputSpend::TapLeaf(_, leaf) => Message::from(
                    cache
                        .taproot_script_spend_signature_hash(
                            index,
                            &Prevouts::All(&prevouts),
                            *leaf,
                            TapSighashType::Default,
                        )
                        .map_err(|source| ShareError::TapSighash { input: index, source })?,
                ),
            };
            prepared.push(PreparedInput { keys, tweak: input.tweak, spent, spend, sighash });
        }
        Ok(PreparedBatch {
            tx: tx.clone(),
            threshold: fed.threshold(),
            keys: fed.keys().len(),
            genesis,
            inputs: prepared,
        })
    }

    /// The unsigned transaction.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// The share of peg key `signer`, whose secret is `secret` (tweaked per input here).
    pub fn sign<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        signer: usize,
        secret: &SecretKey,
    ) -> Result<Share, ShareError> {
        if signer >= self.keys {
            return Err(ShareError::UnknownSigner { signer, keys: self.keys });
        }
        let mut signatures = Vec::with_capacity(self.inputs.len());
        for (index, input) in self.inputs.iter().enumerate() {
            let key = match input.tweak {
                None => *secret,
                Some(recipient) => crate::deposit::tweak_secret(secp, secret, self.genesis, recipient)
                    .map_err(|source| ShareError::Tweak { input: index, source })?,
            };
            if PublicKey::new(key.public_key(secp)) != input.keys[signer] {
                return Err(ShareError::WrongSecret { signer });
            }
            match input.spend {
                InputSpend::Wsh(_) => {
                    // RFC-6979 nonce: deterministic. libsecp256k1 always produces low-S signatures.
                    let signature = secp.sign_ecdsa(&input.sighash, &key);
                    signatures
                        .push(bitcoin::ecdsa::Signature { signature, sighash_type: EcdsaSighashType::All }.to_vec());
                }
                InputSpend::TapLeaf(..) => {
                    // BIP-0340's nonce from the key and message alone: deterministic too.
                    let keypair = bitcoin::secp256k1::Keypair::from_secret_key(secp, &key);
                    signatures.push(secp.sign_schnorr_no_aux_rand(&input.sighash, &keypair).as_ref().to_vec());
                }
            }
        }
        Ok(Share { signer, signatures })
    }

    /// Checks `share` against this version (see the module docs); the first failure, naming the input.
    pub fn verify<C: Verification>(&self, secp: &Secp256k1<C>, share: &Share) -> Result<(), ShareError> {
        let signer = share.signer;
        if signer >= self.keys {
            return Err(ShareError::UnknownSigner { signer, keys: self.keys });
        }
        if share.signatures.len() != self.inputs.len() {
            return Err(ShareError::WrongInputCount { signer, have: share.signatures.len(), want: self.inputs.len() });
        }
        for (input, (prepared, bytes)) in self.inputs.iter().zip(&share.signatures).enumerate() {
            let key = prepared.keys.get(signer).ok_or(ShareError::UnknownSigner { signer, keys: self.keys })?;
            match prepared.spend {
                InputSpend::Wsh(_) => {
                    let signature = parse_signature(bytes, signer, input)?;
                    secp.verify_ecdsa(&prepared.sighash, &signature, &key.inner)
                        .map_err(|_| ShareError::InvalidSignature { signer, input })?;
                }
                InputSpend::TapLeaf(..) => {
                    // Exactly 64 bytes: SIGHASH_DEFAULT has no sighash byte, and one form per signature.
                    let signature = bitcoin::secp256k1::schnorr::Signature::from_slice(bytes)
                        .map_err(|_| ShareError::BadSignatureEncoding { signer, input })?;
                    secp.verify_schnorr(&signature, &prepared.sighash, &key.inner.x_only_public_key().0)
                        .map_err(|_| ShareError::InvalidSignature { signer, input })?;
                }
            }
        }
        Ok(())
    }

    /// The signed transaction from the shares of at least `k` distinct signers, each of which must be valid
    /// (a caller passes shares it has accepted; a bad one is an error, not skipped). The signatures of the
    /// `k` lowest signer indices are used. Miniscript builds the witnesses and checks them with its
    /// interpreter (see the module docs); nothing here assembles a witness by hand.
    pub fn finalize<C: Verification>(&self, secp: &Secp256k1<C>, shares: &[Share]) -> Result<Transaction, ShareError> {
        let mut signers = BTreeSet::new();
        for share in shares {
            if share.signer >= self.keys {
                return Err(ShareError::UnknownSigner { signer: share.signer, keys: self.keys });
            }
            if !signers.insert(share.signer) {
                return Err(ShareError::DuplicateSigner { signer: share.signer });
            }
        }
        if shares.len() < self.threshold {
            return Err(ShareError::NotEnoughShares { have: shares.len(), need: self.threshold });
        }
        for share in shares {
            self.verify(secp, share)?;
        }
        let mut chosen: Vec<&Share> = shares.iter().collect();
        chosen.sort_by_key(|s| s.signer);
        chosen.truncate(self.threshold);

        if self.inputs.iter().any(|i| matches!(i.spend, InputSpend::TapLeaf(..))) {
            return self.finalize_tap_leaves(&chosen);
        }
        let mut psbt = Psbt::from_unsigned_tx(self.tx.clone())
            .map_err(|_| ShareError::InconsistentBatch("the transaction is not unsigned"))?;
        for (index, (psbt_input, input)) in psbt.inputs.iter_mut().zip(&self.inputs).enumerate() {
            psbt_input.witness_utxo = Some(input.spent.clone());
            let InputSpend::Wsh(witness_script) = &input.spend else {
                return Err(ShareError::InconsistentBatch("a wsh and a taproot input in one batch"));
            };
            psbt_input.witness_script = Some(witness_script.clone());
            // Every chosen share was verified above: one signature per input, `signer` a valid index.
            for share in &chosen {
                let signature = bitcoin::ecdsa::Signature::from_slice(&share.signatures[index])
                    .map_err(|_| ShareError::BadSignatureEncoding { signer: share.signer, input: index })?;
                psbt_input.partial_sigs.insert(input.keys[share.signer], signature);
            }
        }
        signing::finalize(secp, psbt).map_err(|e| ShareError::Finalize(e.errors.join("; ")))
    }

    /// Taproot custody: each input's fallback-leaf witness from the chosen (verified) shares, assembled by
    /// miniscript, then the whole transaction through Bitcoin's interpreter.
    fn finalize_tap_leaves(&self, chosen: &[&Share]) -> Result<Transaction, ShareError> {
        let mut tx = self.tx.clone();
        for (index, (txin, input)) in tx.input.iter_mut().zip(&self.inputs).enumerate() {
            let InputSpend::TapLeaf(descriptor, leaf) = &input.spend else {
                return Err(ShareError::InconsistentBatch("a wsh and a taproot input in one batch"));
            };
            let mut signatures = BTreeMap::new();
            for share in chosen {
                let signature = bitcoin::secp256k1::schnorr::Signature::from_slice(&share.signatures[index])
                    .map_err(|_| ShareError::BadSignatureEncoding { signer: share.signer, input: index })?;
                let signature = bitcoin::taproot::Signature { signature, sighash_type: TapSighashType::Default };
                signatures.insert((input.keys[share.signer], *leaf), signature);
            }
            txin.witness = crate::taproot::script_path_witness(descriptor, &signatures, txin.sequence)
                .map_err(|e| ShareError::Finalize(e.to_string()))?;
        }
        let prevouts: Vec<TxOut> = self.inputs.iter().map(|i| i.spent.clone()).collect();
        crate::verify::verify_spends(&tx, &prevouts).map_err(|e| ShareError::Finalize(e.to_string()))?;
        Ok(tx)
    }
}

/// Signs every input of `tx` (BIP-0143, `SIGHASH_ALL`, low-S, RFC-6979) as peg key `signer` of `fed`, whose
/// secret is `secret`; each input's deposit tweak is applied to `secret` here.
pub fn sign_batch<C: Signing>(
    secp: &Secp256k1<C>,
    fed: &Federation,
    genesis: [u8; 32],
    tx: &Transaction,
    inputs: &[BatchInput],
    signer: usize,
    secret: &SecretKey,
) -> Result<Share, ShareError> {
    PreparedBatch::new(fed, genesis, tx, inputs)?.sign(secp, signer, secret)
}

/// Checks `share` against exactly this batch version: one signature per input, each canonical DER, low-S,
/// `SIGHASH_ALL`, valid over input `i`'s BIP-0143 sighash for key `signer` tweaked for input `i`.
pub fn verify_share<C: Verification>(
    secp: &Secp256k1<C>,
    fed: &Federation,
    genesis: [u8; 32],
    tx: &Transaction,
    inputs: &[BatchInput],
    share: &Share,
) -> Result<(), ShareError> {
    PreparedBatch::new(fed, genesis, tx, inputs)?.verify(secp, share)
}

/// The fully signed transaction from at least `fed.threshold()` valid shares of distinct signers (see
/// [`PreparedBatch::finalize`]).
pub fn finalize_batch<C: Verification>(
    secp: &Secp256k1<C>,
    fed: &Federation,
    genesis: [u8; 32],
    tx: &Transaction,
    inputs: &[BatchInput],
    shares: &[Share],
) -> Result<Transaction, ShareError> {
    PreparedBatch::new(fed, genesis, tx, inputs)?.finalize(secp, shares)
}

/// The keys (genesis order), the script a share signs in and the script pubkey of an output, from the same
/// descriptors that [`crate::BatchPlan::psbt`] and the watcher use.
fn input_scripts(
    fed: &Federation,
    genesis: [u8; 32],
    tweak: Option<[u8; 32]>,
) -> Result<(Vec<PublicKey>, InputSpend, ScriptBuf), PegError> {
    let (keys, descriptor) = match tweak {
        None => (fed.keys().to_vec(), fed.descriptor().clone()),
        Some(recipient) => (fed.deposit_keys(genesis, recipient)?, fed.deposit_descriptor(genesis, recipient)?),
    };
    let script_pubkey = descriptor.script_pubkey();
    let spend = match fed.custody() {
        crate::Custody::Wsh => InputSpend::Wsh(descriptor.explicit_script()?),
        crate::Custody::Taproot { .. } => {
            let fallback = crate::taproot::fallback_leaf(&descriptor, fed.threshold())
                .map_err(|e| PegError::Miniscript(e.to_string()))?;
            InputSpend::TapLeaf(Box::new(descriptor), fallback)
        }
    };
    Ok((keys, spend, script_pubkey))
}

/// Parses hostile signature bytes: canonical strict DER, then `SIGHASH_ALL`, then low S.
fn parse_signature(bytes: &[u8], signer: usize, input: usize) -> Result<ecdsa::Signature, ShareError> {
    let bad = || ShareError::BadSignatureEncoding { signer, input };
    let (&sighash, der) = bytes.split_last().ok_or_else(bad)?;
    // Strict DER parsing still maps an out-of-range r or s to zero; serializing again and comparing leaves
    // exactly one accepted byte string per signature.
    let signature = ecdsa::Signature::from_der(der).map_err(|_| bad())?;
    if *signature.serialize_der() != *der {
        return Err(bad());
    }
    if sighash != EcdsaSighashType::All as u8 {
        return Err(ShareError::WrongSighashType { signer, input, found: sighash });
    }
    let mut low = signature;
    low.normalize_s();
    if low != signature {
        return Err(ShareError::HighS { signer, input });
    }
    Ok(signature)
}

#[cfg(test)]
mod tests;
