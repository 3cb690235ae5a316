//! ed25519 keys and signatures with domain separation.
//!
//! Every signature in the protocol covers [`signing_bytes`]: a domain string naming the kind of message,
//! the genesis hash of the chain, then the message's canonical bytes. A vote can therefore never be
//! replayed as a transaction, nor a signature from one chain on another.

use crate::hash::{tagged_hash, GenesisHash, Hash32};
use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// What a signature is for. Its name is part of the signed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignDomain {
    /// A block proposal by the round's proposer.
    Proposal,
    /// A prevote or precommit.
    Vote,
    /// A user transaction (transfer, deposit registration, peg-out).
    UserTx,
    /// A transaction signed by one validator (fee-rate vote, halt votes, ...).
    ValidatorTx,
    /// A validator's approval of a federation change.
    FederationChange,
}

impl SignDomain {
    /// The domain string that starts the signed bytes.
    pub fn tag(self) -> &'static [u8] {
        match self {
            SignDomain::Proposal => b"sidechain/v1/proposal",
            SignDomain::Vote => b"sidechain/v1/vote",
            SignDomain::UserTx => b"sidechain/v1/user-tx",
            SignDomain::ValidatorTx => b"sidechain/v1/validator-tx",
            SignDomain::FederationChange => b"sidechain/v1/federation-change",
        }
    }
}

/// `tag || 0x00 || genesis_hash (32 bytes) || body`: the exact bytes every ed25519 signature covers.
pub fn signing_bytes(domain: SignDomain, genesis: &GenesisHash, body: &[u8]) -> Vec<u8> {
    let tag = domain.tag();
    let mut out = Vec::with_capacity(tag.len() + 1 + 32 + body.len());
    out.extend_from_slice(tag);
    out.push(0);
    out.extend_from_slice(genesis.as_bytes());
    out.extend_from_slice(body);
    out
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The 32 bytes are not a valid ed25519 point.
    #[error("public key {0} is not a valid ed25519 key")]
    MalformedKey(PublicKey),
    /// The signature does not verify for that key and message.
    #[error("invalid signature by {0}")]
    Invalid(PublicKey),
    /// Batch verification failed: at least one signature of the batch is invalid.
    #[error("batch of {0} signatures does not verify")]
    BatchInvalid(usize),
}

/// An ed25519 public key as 32 raw bytes (validity is checked when it is used).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature as 64 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

/// An account: the tagged hash of the ed25519 public key that controls it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct AccountId(pub Hash32);

impl PublicKey {
    /// The account this key controls.
    pub fn account_id(&self) -> AccountId {
        AccountId(tagged_hash("sidechain/account", &[&self.0]))
    }

    /// Checks that the 32 bytes decode to an ed25519 point, so that a set of keys can be validated once
    /// (e.g. a validator set at genesis) instead of failing later at every verification.
    pub fn check(&self) -> Result<(), SignatureError> {
        self.verifying_key().map(|_| ())
    }

    fn verifying_key(&self) -> Result<VerifyingKey, SignatureError> {
        VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::MalformedKey(*self))
    }

    /// Checks `sig` over `signing_bytes(domain, genesis, body)`. Uses strict verification (no malleable
    /// or small-order signatures) so a signature is valid everywhere or nowhere.
    pub fn verify(
        &self,
        domain: SignDomain,
        genesis: &GenesisHash,
        body: &[u8],
        sig: &Signature,
    ) -> Result<(), SignatureError> {
        let key = self.verifying_key()?;
        let msg = signing_bytes(domain, genesis, body);
        key.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig.0))
            .map_err(|_| SignatureError::Invalid(*self))
    }
}

/// Verifies many `(key, message, signature)` triples at once (about twice as fast as one by one).
/// Messages are the full signed bytes, e.g. from [`signing_bytes`].
pub fn verify_batch(items: &[(PublicKey, Vec<u8>, Signature)]) -> Result<(), SignatureError> {
    let mut keys = Vec::with_capacity(items.len());
    for (k, _, _) in items {
        keys.push(k.verifying_key()?);
    }
    let msgs: Vec<&[u8]> = items.iter().map(|(_, m, _)| m.as_slice()).collect();
    let sigs: Vec<ed25519_dalek::Signature> =
        items.iter().map(|(_, _, s)| ed25519_dalek::Signature::from_bytes(&s.0)).collect();
    ed25519_dalek::verify_batch(&msgs, &sigs, &keys).map_err(|_| SignatureError::BatchInvalid(items.len()))
}

/// A secret ed25519 key with its public half.
pub struct Keypair(SigningKey);

impl Keypair {
    /// A key from 32 secret bytes (deterministic: tests and simulations derive keys from seeds).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Keypair(SigningKey::from_bytes(&secret))
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut secret = [0u8; 32];
        getrandom_fill(&mut secret);
        Keypair::from_secret(secret)
    }

    /// The 32 secret bytes (for writing a key file; handle with care).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `signing_bytes(domain, genesis, body)`.
    pub fn sign(&self, domain: SignDomain, genesis: &GenesisHash, body: &[u8]) -> Signature {
        Signature(self.0.sign(&signing_bytes(domain, genesis, body)).to_bytes())
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        Keypair(self.0.clone())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.public())
    }
}

fn getrandom_fill(buf: &mut [u8]) {
    use rand_core::{OsRng, RngCore};
    OsRng.fill_bytes(buf);
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pk:{}", &hex::encode(self.0)[..8])
    }
}
impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", &hex::encode(self.0)[..8])
    }
}
impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn hex_array<'de, const N: usize, D: Deserializer<'de>>(d: D) -> Result<[u8; N], D::Error> {
    let s = <String as Deserialize>::deserialize(d)?;
    let mut out = [0u8; N];
    hex::decode_to_slice(&s, &mut out)
        .map_err(|_| serde::de::Error::custom(format!("expected {} hex digits", N * 2)))?;
    Ok(out)
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}
impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        hex_array::<'de, 32, D>(d).map(PublicKey)
    }
}
impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}
impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        hex_array::<'de, 64, D>(d).map(Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_bound_to_domain_and_chain() {
        let k = Keypair::from_secret([7; 32]);
        let g = GenesisHash(Hash32([1; 32]));
        let sig = k.sign(SignDomain::Vote, &g, b"body");
        assert_eq!(k.public().verify(SignDomain::Vote, &g, b"body", &sig), Ok(()));
        assert!(k.public().verify(SignDomain::UserTx, &g, b"body", &sig).is_err());
        assert!(k.public().verify(SignDomain::Vote, &GenesisHash(Hash32([2; 32])), b"body", &sig).is_err());
        assert!(k.public().verify(SignDomain::Vote, &g, b"bodx", &sig).is_err());
    }

    #[test]
    fn batch_verification_accepts_good_and_rejects_one_bad() {
        let g = GenesisHash::ZERO;
        let mut items: Vec<_> = (0u8..5)
            .map(|i| {
                let k = Keypair::from_secret([i + 1; 32]);
                let body = vec![i];
                let sig = k.sign(SignDomain::Vote, &g, &body);
                (k.public(), signing_bytes(SignDomain::Vote, &g, &body), sig)
            })
            .collect();
        assert_eq!(verify_batch(&items), Ok(()));
        items[3].1.push(0);
        assert_eq!(verify_batch(&items), Err(SignatureError::BatchInvalid(5)));
    }

    #[test]
    fn malformed_key_is_an_error_not_a_panic() {
        // y = 2 does not decompress to a curve point.
        let mut bad = [0u8; 32];
        bad[0] = 2;
        let pk = PublicKey(bad);
        let r = pk.verify(SignDomain::Vote, &GenesisHash::ZERO, b"", &Signature([0; 64]));
        assert!(matches!(r, Err(SignatureError::MalformedKey(_)) | Err(SignatureError::Invalid(_))));
    }
}
