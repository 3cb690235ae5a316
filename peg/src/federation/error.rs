//! Why a federation wallet cannot be built: [`FederationError`].
//!
//! It sits below both halves of the wallet that refuse with it, [`crate::federation`] (threshold and peg keys)
//! and [`crate::recovery`] (the emergency path, which `federation.rs` builds on): as a part of `federation.rs`
//! it made the two files need each other. `crate::federation::FederationError` re-exports it.

use bitcoin::PublicKey;

/// Why a federation cannot be built from the given keys and threshold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationError {
    /// The threshold is zero or larger than the number of keys.
    #[error("threshold {threshold} is not between 1 and the number of keys ({keys})")]
    BadThreshold { threshold: usize, keys: usize },
    /// The same key appears twice: one validator would count twice toward the threshold.
    #[error("peg key {0} appears more than once")]
    DuplicateKey(PublicKey),
    /// An uncompressed key is not allowed in segwit scripts.
    #[error("peg key {0} is uncompressed; segwit requires compressed keys")]
    UncompressedKey(PublicKey),
    /// Miniscript refused the descriptor (e.g. more than 20 keys for `multi`).
    #[error("miniscript rejected the federation descriptor: {0}")]
    Miniscript(String),
    /// An emergency key is also a validator's peg key: one party would hold both paths.
    #[error("emergency key {0} is also a federation peg key")]
    EmergencyKeyIsValidatorKey(PublicKey),
    /// A recovery delay BIP68 cannot encode in blocks (1 to 65535).
    #[error("recovery delay of {0} blocks is not between 1 and 65535")]
    BadRecoveryDelay(u32),
    /// Taproot custody: the FROST group is not a DKG of exactly these validators with this threshold.
    #[error("the FROST group does not match the federation: {0}")]
    GroupMismatch(&'static str),
    /// Taproot custody: two keys (peg, emergency or the group key) with the same x coordinate, which
    /// tapscript would treat as one key.
    #[error("key {0} has the same x coordinate as another key of the wallet")]
    DuplicateXOnlyKey(PublicKey),
}
