//! The FROST signing rounds of a taproot batch as chain transactions (issue 23): a signer's nonce
//! commitments, then its signature shares, for one attempt of one batch version.
//!
//! Why each message is signed by the signer's peg key (BIP340): the session rule takes the first `k`
//! committers of an attempt as its signers and excludes a signer whose share is invalid or missing. Anyone
//! able to send a message in a validator's name could take its seat and then withhold, or send a bad share
//! for it, and so exclude honest validators one by one until the batch falls back. The peg key is the
//! signer's authority in its wallet epoch, as for a `PegShare`, so any node relays these messages and any
//! proposer includes them; execution checks the signature before the session sees the message.

use crate::codec;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{canonical_bytes, tagged_hash, GenesisHash, TxId, ValidatorIndex};
use serde::{Deserialize, Serialize};

/// Tag of a FROST message's id.
pub const FROST_TXID_TAG: &str = "sidechain/frost-txid";
/// Tag of what a FROST message's peg-key signature signs.
pub const FROST_SIGN_TAG: &str = "sidechain/frost-message";

/// One round's payload, one item per input of the batch version, in input order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum FrostRound {
    /// Nonce commitments: 66 bytes each (`peg::frost::wire`).
    Commit(Vec<Vec<u8>>) = 0,
    /// Signature shares: 32 bytes each.
    Share(Vec<Vec<u8>>) = 1,
}

/// Signer `signer` of batch `batch`'s wallet epoch, in attempt `attempt` of the FROST signing of version
/// `txid`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct FrostTx {
    /// The batch.
    pub batch: u64,
    /// The version being signed (the unsigned transaction's txid).
    #[borsh(serialize_with = "codec::btc_hash::serialize", deserialize_with = "codec::btc_hash::deserialize")]
    #[serde(with = "codec::btc_hash_json")]
    pub txid: bitcoin::Txid,
    /// The attempt (from 0).
    pub attempt: u32,
    /// The signer's position in the validator list of the batch's wallet epoch.
    pub signer: ValidatorIndex,
    /// Commitments or shares.
    pub round: FrostRound,
    /// BIP340 signature by the signer's peg key over [`FrostTx::message`] (64 bytes).
    pub signature: Vec<u8>,
}

impl FrostTx {
    /// Builds and signs a message with the peg key `secret`.
    pub fn sign(
        batch: u64,
        txid: bitcoin::Txid,
        attempt: u32,
        signer: ValidatorIndex,
        round: FrostRound,
        secret: &bitcoin::secp256k1::SecretKey,
        genesis: &GenesisHash,
    ) -> FrostTx {
        let mut tx = FrostTx { batch, txid, attempt, signer, round, signature: Vec::new() };
        let secp = bitcoin::secp256k1::Secp256k1::signing_only();
        let keypair = bitcoin::secp256k1::Keypair::from_secret_key(&secp, secret);
        tx.signature = secp.sign_schnorr_no_aux_rand(&tx.message(genesis), &keypair).as_ref().to_vec();
        tx
    }

    /// What the peg key signs: `tagged_hash("sidechain/frost-message", genesis hash || borsh(the message
    /// without its signature))`, so a message of one chain is void on another.
    pub fn message(&self, genesis: &GenesisHash) -> bitcoin::secp256k1::Message {
        let body = canonical_bytes(&(self.batch, internal_bytes(&self.txid), self.attempt, self.signer, &self.round));
        bitcoin::secp256k1::Message::from_digest(tagged_hash(FROST_SIGN_TAG, &[genesis.as_bytes(), &body]).0)
    }

    /// Checks the signature against `peg_key`.
    pub fn verify(&self, genesis: &GenesisHash, peg_key: &bitcoin::PublicKey) -> Result<(), FrostTxError> {
        let secp = bitcoin::secp256k1::Secp256k1::verification_only();
        let bad = || FrostTxError::BadSignature { signer: self.signer };
        let signature = bitcoin::secp256k1::schnorr::Signature::from_slice(&self.signature).map_err(|_| bad())?;
        secp.verify_schnorr(&signature, &self.message(genesis), &peg_key.inner.x_only_public_key().0).map_err(|_| bad())
    }

    /// `tagged_hash("sidechain/frost-txid", borsh(message))`.
    pub fn txid(&self) -> TxId {
        TxId(tagged_hash(FROST_TXID_TAG, &[&canonical_bytes(self)]))
    }
}

/// The txid's 32 bytes in internal order (as `codec::btc_hash` writes them).
fn internal_bytes(txid: &bitcoin::Txid) -> [u8; 32] {
    use bitcoin::hashes::Hash as _;
    txid.to_byte_array()
}

/// Why a FROST message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrostTxError {
    /// The batch's wallet is not a taproot wallet, or its key path was given up (it is signed in the leaf
    /// with `PegShare` transactions).
    #[error("peg-out batch {0} is not being signed by key path")]
    NotKeyPath(u64),
    /// The peg-key signature does not verify.
    #[error("the FROST message of signer {signer} is not signed by its peg key")]
    BadSignature {
        /// The named signer.
        signer: ValidatorIndex,
    },
    /// A commitment or share that is not in the on-chain encoding.
    #[error("signer {signer}'s FROST message: {source}")]
    Encoding {
        /// The signer.
        signer: ValidatorIndex,
        /// Why.
        #[source]
        source: peg::frost::wire::WireError,
    },
    /// The session refused it (wrong attempt, not a signer, excluded, repeated, wrong count...).
    #[error("FROST signing of peg-out batch {batch}: {source}")]
    Refused {
        /// The batch.
        batch: u64,
        /// Why.
        #[source]
        source: peg::frost::session::Refusal,
    },
    /// The session cannot be opened or restored (a guard: execution opened it).
    #[error("FROST session of peg-out batch {batch}: {source}")]
    Session {
        /// The batch.
        batch: u64,
        /// Why.
        #[source]
        source: peg::frost::session::SessionError,
    },
    /// The key-path sighashes cannot be computed (a guard: execution built the batch from the same wallet).
    #[error("peg-out batch {0}'s key-path sighashes cannot be computed")]
    KeyPath(u64),
    /// A leaf share (`PegShare`) for a version that is signed by key path.
    #[error("peg-out batch {0} is signed by key path (FROST), not with leaf shares")]
    LeafShareOnKeyPath(u64),
}
