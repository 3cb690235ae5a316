//! How the genesis federation holds BTC: the `wsh` multisig every chain started with, or taproot custody
//! with the FROST group key of the validators' key generation (`sidechaind ceremony`, issue 23).
//!
//! Why the genesis carries the whole DKG transcript (every validator's round-1 package, signed by its peg
//! key) and not just the group key: the group key alone cannot be checked, and every node needs each
//! validator's verifying share to check FROST signature shares. Both are computed from the round-1
//! commitments, so a node that reads the genesis computes them itself. What makes the key the validators'
//! and nobody else's: each package is signed by its validator's peg key for this setup (threshold and
//! peg keys in order), so whoever assembles the genesis cannot put in a package of its own making, and each
//! package's proof of knowledge holds, so no package cancels another's commitment.
//!
//! Why the custody is written into the genesis hash only when it is taproot ([`codec`]): every chain made
//! before taproot custody keeps its genesis hash, hence its signatures and its state.

use bitcoin::hex::{DisplayHex, FromHex};
use borsh::{BorshDeserialize, BorshSerialize};
use peg::frost::dkg::{check_signed_round1, Transcript};
use peg::frost::{FrostError, PublicKeyPackage};
use serde::{Deserialize, Serialize};

/// The genesis federation's custody.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[borsh(use_discriminant = true)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[repr(u8)]
pub enum GenesisCustody {
    /// `wsh` multisig over the validators' peg keys (each signs with its own key).
    #[default]
    Wsh = 0,
    /// Taproot: the key path is the FROST group key of the validators' DKG, the `multi_a` leaf over the
    /// peg keys its fallback.
    Taproot {
        /// Every validator's signed round-1 package, in validator order (as `sidechaind ceremony` writes them
        /// in its transcript).
        dkg_round1: Vec<SignedRound1>,
    } = 1,
}

/// One validator's round-1 package of the genesis DKG and its peg key's signature over it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRound1 {
    /// Lower-case hex of the library's encoding of the package.
    pub package: String,
    /// Lower-case hex of the 64-byte BIP340 signature by the validator's peg key over
    /// `peg::frost::dkg::round1_message` (the setup's bytes, the index and the package).
    pub signature: String,
}

/// Most validators a taproot genesis takes: bounds the work of checking its transcript (every node does
/// it at start) and the size of the `multi_a` fallback leaf, whose input a standard batch must still fit
/// many of (100 keys: about 1,000 vB an input).
pub const MAX_TAPROOT_VALIDATORS: usize = 100;

/// Why a taproot genesis's DKG transcript was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscriptError {
    /// More validators than [`MAX_TAPROOT_VALIDATORS`].
    #[error("{0} validators, a taproot genesis takes at most {MAX_TAPROOT_VALIDATORS}")]
    TooManyValidators(usize),
    /// Not one round-1 package per validator.
    #[error("{packages} round-1 packages for {validators} validators")]
    Count {
        /// Packages given.
        packages: usize,
        /// Validators in the genesis.
        validators: usize,
    },
    /// A package or signature that is not lower-case hex, or a package not in its one canonical form.
    #[error("validator {0}'s round-1 package or signature is not the lower-case hex of a canonical one")]
    Encoding(usize),
    /// A package its validator's peg key did not sign for this setup.
    #[error("validator {0}'s round-1 package is not signed by its peg key for this genesis's validators")]
    Signature(usize),
    /// The packages do not make a group of the federation's threshold.
    #[error("the DKG transcript does not make a group: {0}")]
    Group(#[from] peg::frost::FrostError),
}

impl GenesisCustody {
    /// The FROST group (group key and every validator's verifying share) a taproot genesis's transcript
    /// makes for validators with `peg_keys` (in genesis order) at threshold `k`; `None` for the wsh wallet.
    pub fn group(
        &self,
        peg_keys: &[bitcoin::PublicKey],
        k: usize,
    ) -> Result<Option<PublicKeyPackage>, TranscriptError> {
        let GenesisCustody::Taproot { dkg_round1 } = self else { return Ok(None) };
        let n = peg_keys.len();
        if n > MAX_TAPROOT_VALIDATORS {
            return Err(TranscriptError::TooManyValidators(n));
        }
        if dkg_round1.len() != n {
            return Err(TranscriptError::Count { packages: dkg_round1.len(), validators: n });
        }
        let secp = bitcoin::secp256k1::Secp256k1::verification_only();
        let setup = peg::frost::dkg::setup_bytes(k, peg_keys);
        let mut transcript = Transcript::new(n, k);
        for (index, (signed, peg_key)) in dkg_round1.iter().zip(peg_keys).enumerate() {
            let package = lower_hex(&signed.package).ok_or(TranscriptError::Encoding(index))?;
            let signature = lower_hex(&signed.signature).ok_or(TranscriptError::Encoding(index))?;
            let decoded =
                check_signed_round1(&secp, &setup, index, peg_key, &package, &signature).map_err(|e| match e {
                    FrostError::Round1Signature(i) => TranscriptError::Signature(i),
                    _ => TranscriptError::Encoding(index),
                })?;
            transcript.record(index, decoded)?;
        }
        Ok(Some(transcript.group()?))
    }
}

/// The bytes of `text` if it is lower-case hex (one text per byte string, so the genesis hash names one
/// transcript).
fn lower_hex(text: &str) -> Option<Vec<u8>> {
    let bytes = Vec::<u8>::from_hex(text).ok()?;
    (bytes.to_lower_hex_string() == text).then_some(bytes)
}

/// The genesis's last field: nothing for the wsh wallet, the borsh enum for taproot. Reading takes what is
/// left of the input, so it only works as the last field of a top-level document, which the genesis is.
pub mod codec {
    use super::GenesisCustody;
    use borsh::io::{Error, ErrorKind, Read, Write};
    use borsh::BorshSerialize;

    /// Writes nothing for [`GenesisCustody::Wsh`], the enum otherwise.
    pub fn serialize<W: Write>(value: &GenesisCustody, writer: &mut W) -> Result<(), Error> {
        match value {
            GenesisCustody::Wsh => Ok(()),
            taproot => taproot.serialize(writer),
        }
    }

    /// Reads what [`serialize`] wrote: no byte left is the wsh wallet; an explicit `Wsh` is refused (a
    /// second encoding of it).
    pub fn deserialize<R: Read>(reader: &mut R) -> Result<GenesisCustody, Error> {
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest)?;
        if rest.is_empty() {
            return Ok(GenesisCustody::Wsh);
        }
        match borsh::from_slice::<GenesisCustody>(&rest)? {
            GenesisCustody::Wsh => Err(Error::new(ErrorKind::InvalidData, "the wsh custody is written as nothing")),
            taproot => Ok(taproot),
        }
    }
}
