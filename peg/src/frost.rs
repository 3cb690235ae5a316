//! The federation's taproot key as one FROST threshold key (Zcash Foundation's `frost-secp256k1-tr`).
//!
//! Why: a `wsh` multisig input shows the whole federation script and costs 132 vB for 3-of-4 (370 vB for
//! 11-of-15); a taproot key-path input is one 64-byte BIP340 signature, 57.5 vB whatever the federation's
//! size, and looks like any single-signer spend. FROST (RFC 9591) lets any `k` of the `n` validators produce
//! that one signature without anyone ever holding the whole key: a distributed key generation ([`dkg`]) gives
//! each validator a share of a group key `P`, and two signing rounds give a signature for `P` tweaked by the
//! output's script tree (BIP341), which the library applies to shares and keys alike.
//!
//! What this module fixes, so every node computes the same thing:
//! - validator `i` (0-based, the order of the federation's key list) is FROST participant `i + 1`
//!   (identifiers are non-zero scalars): [`participant`];
//! - the group key `P` a descriptor shows is the DKG's result as the library finishes it: the sum of the
//!   participants' commitments, BIP341-tweaked once with no script tree and with even y (BIP340 x-only), so
//!   that no key-path signature is ever made for the raw sum ([`KeyShare::group_key`]);
//! - the message is the BIP341 key-path sighash (`SIGHASH_DEFAULT`) of the input; the tweak is the merkle
//!   root of the input's script tree (every deposit has its own tree, see [`crate::federation`]), so the
//!   signature is for the output key `Q = P + H_TapTweak(P || root)·G` that the input spends;
//! - a signature share is checked against the signer's verifying share before it is used
//!   ([`verify_share`]): a bad share names its signer, so a later step can retry without it.
//!
//! All of it is pure: randomness comes in as an argument, and keeping a nonce for exactly one use (persisted
//! before its commitment leaves the node, destroyed after) is the node's job.

use bitcoin::hashes::Hash;
use bitcoin::key::XOnlyPublicKey;
use bitcoin::secp256k1::schnorr;
use bitcoin::taproot::{self, TapNodeHash};
use bitcoin::TapSighash;
use frost_secp256k1_tr as tr;
/// The group's public data (group key, each participant's verifying share), as the crates above use it.
pub use frost_secp256k1_tr::keys::PublicKeyPackage;
use frost_secp256k1_tr::keys::{EvenY, KeyPackage, Tweak};
use frost_secp256k1_tr::rand_core::{CryptoRng, RngCore};
use frost_secp256k1_tr::round1::SigningCommitments;
/// A signer's secret nonces of one signing (used once, then gone).
pub use frost_secp256k1_tr::round1::SigningNonces;
use frost_secp256k1_tr::round2::SignatureShare;
/// The FROST ciphersuite (secp256k1, BIP340/341 taproot).
pub use frost_secp256k1_tr::Secp256K1Sha256TR as Ciphersuite;
use frost_secp256k1_tr::{Identifier, SigningPackage};
use std::collections::BTreeMap;

pub mod dkg;
pub mod session;
pub mod wire;

/// Why a FROST step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrostError {
    /// A validator index that is not a FROST participant (at most 65,534 validators).
    #[error("validator index {0} is not a FROST participant")]
    BadIndex(usize),
    /// A participant that is not in the group or not in this signing.
    #[error("participant {0} is not part of this group or signing")]
    UnknownParticipant(usize),
    /// A DKG message out of turn: a second package from one sender, or a round-2 package before round 1 ended.
    #[error("DKG message from participant {from} out of turn: {why}")]
    OutOfTurn {
        /// The sender's validator index.
        from: usize,
        /// What was wrong.
        why: &'static str,
    },
    /// Two participants of one DKG disagree on the group (a different public key package).
    #[error("the DKG transcript gives a different group key than this participant's own result")]
    TranscriptMismatch,
    /// The library refused: a bad proof, share or package.
    #[error("FROST: {0}")]
    Frost(#[from] tr::Error),
    /// The aggregated signature did not parse as BIP340 (never for a valid aggregation).
    #[error("the aggregated signature is not a BIP340 signature")]
    BadSignature,
    /// The signing package's message is not the sighash this signer computed itself.
    #[error("the signing package's message is not the sighash this validator computed")]
    WrongMessage,
    /// A group key that is not a valid x-only key (the identity, or a package that does not serialize).
    #[error("the group's verifying key is not a valid secp256k1 point")]
    BadGroupKey,
    /// A transcript that does not describe one `k`-of-`n` DKG.
    #[error("DKG transcript: {0}")]
    Transcript(&'static str),
    /// A FROST message that is not in the on-chain encoding.
    #[error("FROST message encoding: {0}")]
    Wire(#[from] wire::WireError),
    /// A round-1 package whose signature is not its validator's peg key's over this setup.
    #[error("the round-1 package of validator {0} is not signed by its peg key for this setup")]
    Round1Signature(usize),
    /// A round-1 package that is not the library's one encoding of a package.
    #[error("the round-1 package of validator {0} is not a canonical round-1 package")]
    Round1Encoding(usize),
}

/// The FROST identifier of validator `index` (0-based): `index + 1`.
pub fn participant(index: usize) -> Result<Identifier, FrostError> {
    let id = index.checked_add(1).and_then(|i| u16::try_from(i).ok()).ok_or(FrostError::BadIndex(index))?;
    Identifier::try_from(id).map_err(|_| FrostError::BadIndex(index))
}

/// The validator index of a participant made by [`participant`].
fn index_of(id: &Identifier, n: usize) -> Option<usize> {
    (0..n).find(|&i| participant(i).ok().as_ref() == Some(id))
}

/// A validator's share of the group key, with the group's public data (every participant's verifying share).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyShare {
    index: usize,
    secret: KeyPackage,
    public: PublicKeyPackage,
}

impl KeyShare {
    /// This validator's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The group's public data.
    pub fn public(&self) -> &PublicKeyPackage {
        &self.public
    }

    /// The group key as a descriptor shows it (x-only, even y).
    pub fn group_key(&self) -> Result<XOnlyPublicKey, FrostError> {
        group_key(&self.public)
    }

    /// The share and the group's public data in the library's encodings, for the node's key share file.
    pub fn to_bytes(&self) -> Result<(Vec<u8>, Vec<u8>), FrostError> {
        Ok((self.secret.serialize()?, self.public.serialize()?))
    }

    /// A key share read back from [`KeyShare::to_bytes`]; refuses a share that is not participant `index`'s
    /// or does not belong to the group.
    pub fn from_bytes(index: usize, secret: &[u8], public: &[u8]) -> Result<Self, FrostError> {
        let secret = KeyPackage::deserialize(secret)?;
        let public = PublicKeyPackage::deserialize(public)?;
        let id = participant(index)?;
        let derived = frost_secp256k1_tr::keys::VerifyingShare::from(*secret.signing_share());
        if *secret.identifier() != id
            || public.verifying_shares().get(&id) != Some(secret.verifying_share())
            || derived != *secret.verifying_share()
            || public.verifying_key() != secret.verifying_key()
            || public.min_signers() != Some(*secret.min_signers())
        {
            return Err(FrostError::TranscriptMismatch);
        }
        Ok(KeyShare { index, secret, public })
    }

    /// Round 1: fresh nonces (kept secret, used once) and their commitments (sent to the others).
    pub fn commit<R: RngCore + CryptoRng>(&self, rng: &mut R) -> (SigningNonces, SigningCommitments) {
        tr::round1::commit(self.secret.signing_share(), rng)
    }

    /// Round 2: this validator's signature share of `sighash` for the output key tweaked by `merkle_root`.
    ///
    /// The key path has no script to check, so the signer must derive both from the transaction it has
    /// judged (the input's sighash, the root of the prevout's script tree): a package whose message is not
    /// `sighash` is refused. The nonces are moved in, but `SigningNonces` is `Clone`: that a nonce signs only
    /// once is the caller's promise (persist before the commitment leaves, destroy after).
    pub fn sign(
        &self,
        package: &SigningPackage,
        sighash: TapSighash,
        nonces: SigningNonces,
        merkle_root: Option<TapNodeHash>,
    ) -> Result<SignatureShare, FrostError> {
        if package.message().as_slice() != AsRef::<[u8]>::as_ref(&sighash) {
            return Err(FrostError::WrongMessage);
        }
        let root = merkle_root.map(|r| r.to_byte_array());
        Ok(tr::round2::sign_with_tweak(package, &nonces, &self.secret, root.as_ref().map(|r| &r[..]))?)
    }
}

/// The x-only group key (even y) of `public`.
pub fn group_key(public: &PublicKeyPackage) -> Result<XOnlyPublicKey, FrostError> {
    let even = public.verifying_key().into_even_y(None);
    let bytes = even.serialize().map_err(|_| FrostError::BadGroupKey)?;
    // A verifying key serializes as a 33-byte SEC1 point, whose last 32 bytes are x.
    XOnlyPublicKey::from_slice(bytes.get(1..).unwrap_or_default()).map_err(|_| FrostError::BadGroupKey)
}

/// What the signers sign: the commitments of this signing's participants (validator index → commitments) and
/// the key-path sighash.
pub fn signing_package(
    commitments: &BTreeMap<usize, SigningCommitments>,
    sighash: TapSighash,
) -> Result<SigningPackage, FrostError> {
    let mut by_id = BTreeMap::new();
    for (&index, c) in commitments {
        by_id.insert(participant(index)?, *c);
    }
    Ok(SigningPackage::new(by_id, sighash.as_ref()))
}

/// Checks validator `from`'s signature share against its verifying share, for the output key tweaked by
/// `merkle_root`: a bad share is refused here and names its signer.
pub fn verify_share(
    public: &PublicKeyPackage,
    from: usize,
    share: &SignatureShare,
    package: &SigningPackage,
    merkle_root: Option<TapNodeHash>,
) -> Result<(), FrostError> {
    let id = participant(from)?;
    if package.signing_commitment(&id).is_none() {
        return Err(FrostError::UnknownParticipant(from));
    }
    verify_share_tweaked(&tweaked(public, merkle_root), from, share, package)
}

/// [`verify_share`] against a group already tweaked for the input's tree (a session tweaks once per input).
pub(crate) fn verify_share_tweaked(
    tweaked: &PublicKeyPackage,
    from: usize,
    share: &SignatureShare,
    package: &SigningPackage,
) -> Result<(), FrostError> {
    let id = participant(from)?;
    let verifying_share = tweaked.verifying_shares().get(&id).ok_or(FrostError::UnknownParticipant(from))?;
    Ok(frost_core::verify_signature_share(id, verifying_share, share, package, tweaked.verifying_key())?)
}

/// Aggregates the shares (validator index → share) of every participant of `package` into the BIP340
/// signature for the tweaked output key, as a `SIGHASH_DEFAULT` taproot signature.
pub fn aggregate(
    public: &PublicKeyPackage,
    package: &SigningPackage,
    shares: &BTreeMap<usize, SignatureShare>,
    merkle_root: Option<TapNodeHash>,
) -> Result<taproot::Signature, FrostError> {
    let n = public.verifying_shares().len();
    let mut by_id = BTreeMap::new();
    for (&index, share) in shares {
        let id = participant(index)?;
        if index_of(&id, n).is_none() {
            return Err(FrostError::UnknownParticipant(index));
        }
        by_id.insert(id, *share);
    }
    let root = merkle_root.map(|r| r.to_byte_array());
    let signature = tr::aggregate_with_tweak(package, &by_id, public, root.as_ref().map(|r| &r[..]))?;
    let bytes = signature.serialize().map_err(|_| FrostError::BadSignature)?;
    let signature = schnorr::Signature::from_slice(&bytes).map_err(|_| FrostError::BadSignature)?;
    Ok(taproot::Signature { signature, sighash_type: bitcoin::TapSighashType::Default })
}

fn tweaked(public: &PublicKeyPackage, merkle_root: Option<TapNodeHash>) -> PublicKeyPackage {
    let root = merkle_root.map(|r| r.to_byte_array());
    public.clone().tweak(root.as_ref().map(|r| &r[..]))
}

#[cfg(test)]
mod tests;
