//! How the genesis federation holds BTC: the `wsh` multisig every chain started with, or taproot custody
//! with the FROST group key of the validators' key generation (`sidechaind ceremony`, issue 23).
//!
//! Why the genesis carries the whole DKG transcript (every validator's round-1 package) and not just the
//! group key: the group key alone cannot be checked, and every node needs each validator's verifying share
//! to check FROST signature shares. Both are computed from the round-1 commitments, so a node that reads
//! the genesis computes them itself, and anyone can compare the group key with what the validators printed.
//!
//! Why the custody is written into the genesis hash only when it is taproot ([`codec`]): every chain made
//! before taproot custody keeps its genesis hash, hence its signatures and its state.

use bitcoin::hex::{DisplayHex, FromHex};
use borsh::{BorshDeserialize, BorshSerialize};
use peg::frost::dkg::{round1, Transcript};
use peg::frost::PublicKeyPackage;
use serde::{Deserialize, Serialize};

/// The genesis federation's custody.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[borsh(use_discriminant = true)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[repr(u8)]
pub enum GenesisCustody {
    /// `wsh` multisig over the validators' peg keys (each signs with its own key).
    #[default]
    Wsh = 0,
    /// Taproot: the key path is the FROST group key of the validators' DKG, the `multi_a` leaf over the
    /// peg keys its fallback.
    Taproot {
        /// Every validator's round-1 package, in validator order: lower-case hex of the library's encoding
        /// (as `sidechaind ceremony` writes it in its transcript).
        dkg_round1: Vec<String>,
    } = 1,
}

/// Why a taproot genesis's DKG transcript was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscriptError {
    /// Not one round-1 package per validator.
    #[error("{packages} round-1 packages for {validators} validators")]
    Count {
        /// Packages given.
        packages: usize,
        /// Validators in the genesis.
        validators: usize,
    },
    /// A package that is not lower-case hex of a round-1 package, or not in its one canonical form.
    #[error("validator {0}'s round-1 package is not the lower-case hex of a canonical round-1 package")]
    Encoding(usize),
    /// The packages do not make a group of the federation's threshold.
    #[error("the DKG transcript does not make a group: {0}")]
    Group(#[from] peg::frost::FrostError),
}

impl GenesisCustody {
    /// The FROST group (group key and every validator's verifying share) a taproot genesis's transcript
    /// makes for `n` validators at threshold `k`; `None` for the wsh wallet.
    pub fn group(&self, n: usize, k: usize) -> Result<Option<PublicKeyPackage>, TranscriptError> {
        let GenesisCustody::Taproot { dkg_round1 } = self else { return Ok(None) };
        if dkg_round1.len() != n {
            return Err(TranscriptError::Count { packages: dkg_round1.len(), validators: n });
        }
        let mut transcript = Transcript::new(n, k);
        for (index, text) in dkg_round1.iter().enumerate() {
            let bytes = Vec::<u8>::from_hex(text).map_err(|_| TranscriptError::Encoding(index))?;
            let package = round1::Package::deserialize(&bytes).map_err(|_| TranscriptError::Encoding(index))?;
            // One text per package: the hash of the genesis then names one transcript.
            let canonical = package.serialize().map_err(|_| TranscriptError::Encoding(index))?;
            if canonical.to_lower_hex_string() != *text {
                return Err(TranscriptError::Encoding(index));
            }
            transcript.record(index, package)?;
        }
        Ok(Some(transcript.group()?))
    }
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
