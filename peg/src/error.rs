//! The crate's error type for the peg-in building blocks (deposit tweaks, fees).
//!
//! Why one enum: the node turns every peg failure into a log line, a metric label and an RPC error; one type
//! with a human-readable message per case keeps that mapping in one place. The older, narrower errors
//! ([`FederationError`], [`SignError`]) stay as they are (callers match on them) and convert into it.

use crate::federation::FederationError;
use crate::signing::SignError;
use bitcoin::{FeeRate, PublicKey};

/// Why a peg operation could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PegError {
    /// The federation itself is malformed.
    #[error(transparent)]
    Federation(#[from] FederationError),
    /// The tagged hash for this key is not below the secp256k1 group order (probability about 2^-128).
    #[error("the deposit tweak for peg key {key} is not a valid secp256k1 scalar; use another recipient id")]
    TweakOutOfRange {
        /// The untweaked peg key.
        key: PublicKey,
    },
    /// Adding the tweak gave the point at infinity or the zero secret (only if the tweak is the key's negation).
    #[error("tweaking peg key {key} gives an invalid key")]
    TweakedKeyInvalid {
        /// The untweaked peg key.
        key: PublicKey,
    },
    /// Miniscript refused a deposit descriptor or could not size its satisfaction.
    #[error("miniscript: {0}")]
    Miniscript(String),
    /// The fee does not fit in an amount.
    #[error("peg-in fee overflows: {vbytes} vB at {rate} sat/kwu")]
    FeeOverflow {
        /// Virtual size that was priced.
        vbytes: u64,
        /// The fee rate.
        rate: FeeRate,
    },
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(String),
}

impl From<SignError> for PegError {
    fn from(e: SignError) -> Self {
        PegError::Sign(e.to_string())
    }
}

impl From<miniscript::Error> for PegError {
    fn from(e: miniscript::Error) -> Self {
        PegError::Miniscript(e.to_string())
    }
}
