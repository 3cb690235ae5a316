//! The messages of the protocol (proposals, prevotes, precommits), what exactly each one signs, and the
//! timeouts the host schedules.
//!
//! Invariant owned here: a signature covers `signing_bytes(domain, genesis, canonical_bytes(body))`, where
//! the body carries height, round, kind and signer. A signature therefore cannot be replayed on another
//! chain (genesis hash), at another height or round, as another kind of vote, or as a proposal.

use crate::validators::ValidatorSet;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{
    canonical_bytes, BlockId, GenesisHash, Height, Keypair, Round, SignDomain, Signature, ValidatorIndex,
};
use serde::{Deserialize, Serialize};

/// What consensus agrees on: the hash of a block. The block body travels (and is checked) elsewhere.
pub type Value = BlockId;

/// A block proposal by the proposer of `(height, round)`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Proposal {
    /// Height the block is for.
    pub height: Height,
    /// Round of the proposal.
    pub round: Round,
    /// Hash of the proposed block.
    pub value: Value,
    /// The round in which this value got a polka, when the proposer re-proposes its valid value (L16).
    pub pol_round: Option<Round>,
    /// Who proposes; must be the proposer of `(height, round)`.
    pub proposer: ValidatorIndex,
}

/// Prevote or precommit.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub enum VoteKind {
    /// First voting step of a round.
    Prevote,
    /// Second voting step; 2f+1 precommits for a value decide it.
    Precommit,
}

/// A vote for a block hash, or for nil (`value == None`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Vote {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// Height voted at.
    pub height: Height,
    /// Round voted in.
    pub round: Round,
    /// The block hash, or `None` for nil.
    pub value: Option<Value>,
    /// Who votes.
    pub validator: ValidatorIndex,
}

/// A proposal with its proposer's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedProposal {
    /// The signed body.
    pub proposal: Proposal,
    /// Signature with [`SignDomain::Proposal`] over the body's canonical bytes.
    pub signature: Signature,
}

/// A vote with its validator's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedVote {
    /// The signed body.
    pub vote: Vote,
    /// Signature with [`SignDomain::Vote`] over the body's canonical bytes.
    pub signature: Signature,
}

/// Why a signed message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The signer index is not in the validator set.
    #[error("signer index {0} is not in the validator set of {1} validators")]
    UnknownSigner(ValidatorIndex, usize),
    /// The signature does not verify under the signer's key.
    #[error("bad signature from validator {0} at height {1} round {2}")]
    BadSignature(ValidatorIndex, Height, Round),
}

impl Proposal {
    /// Signs the proposal for the chain whose genesis hash is `genesis`.
    pub fn sign(self, key: &Keypair, genesis: &GenesisHash) -> SignedProposal {
        let signature = key.sign(SignDomain::Proposal, genesis, &canonical_bytes(&self));
        SignedProposal { proposal: self, signature }
    }
}

impl Vote {
    /// Signs the vote for the chain whose genesis hash is `genesis`.
    pub fn sign(self, key: &Keypair, genesis: &GenesisHash) -> SignedVote {
        let signature = key.sign(SignDomain::Vote, genesis, &canonical_bytes(&self));
        SignedVote { vote: self, signature }
    }
}

impl SignedProposal {
    /// Checks the proposer is in `set` and the signature is theirs, for this chain.
    pub fn verify(&self, set: &ValidatorSet, genesis: &GenesisHash) -> Result<(), MessageError> {
        let p = &self.proposal;
        let key = set.public_key(p.proposer).ok_or(MessageError::UnknownSigner(p.proposer, set.len()))?;
        key.verify(SignDomain::Proposal, genesis, &canonical_bytes(p), &self.signature)
            .map_err(|_| MessageError::BadSignature(p.proposer, p.height, p.round))
    }
}

impl SignedVote {
    /// Checks the voter is in `set` and the signature is theirs, for this chain.
    pub fn verify(&self, set: &ValidatorSet, genesis: &GenesisHash) -> Result<(), MessageError> {
        let v = &self.vote;
        let key = set.public_key(v.validator).ok_or(MessageError::UnknownSigner(v.validator, set.len()))?;
        key.verify(SignDomain::Vote, genesis, &canonical_bytes(v), &self.signature)
            .map_err(|_| MessageError::BadSignature(v.validator, v.height, v.round))
    }
}

/// Anything a validator gossips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Message {
    /// A signed proposal.
    Proposal(SignedProposal),
    /// A signed prevote or precommit.
    Vote(SignedVote),
}

impl Message {
    /// Height of the message.
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal(p) => p.proposal.height,
            Message::Vote(v) => v.vote.height,
        }
    }

    /// Round of the message.
    pub fn round(&self) -> Round {
        match self {
            Message::Proposal(p) => p.proposal.round,
            Message::Vote(v) => v.vote.round,
        }
    }

    /// Who signed it.
    pub fn signer(&self) -> ValidatorIndex {
        match self {
            Message::Proposal(p) => p.proposal.proposer,
            Message::Vote(v) => v.vote.validator,
        }
    }

    /// Checks signer and signature (the host's job before it hands the message to the core).
    pub fn verify(&self, set: &ValidatorSet, genesis: &GenesisHash) -> Result<(), MessageError> {
        match self {
            Message::Proposal(p) => p.verify(set, genesis),
            Message::Vote(v) => v.verify(set, genesis),
        }
    }
}

/// The step a timeout belongs to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub enum TimeoutStep {
    /// `timeoutPropose` (L21, L57).
    Propose,
    /// `timeoutPrevote` (L34, L61).
    Prevote,
    /// `timeoutPrecommit` (L47, L65).
    Precommit,
}

/// A timeout the host schedules and reports back through `Input::TimeoutElapsed` when it fires.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Timeout {
    /// Height it was scheduled at.
    pub height: Height,
    /// Round it was scheduled in.
    pub round: Round,
    /// Which step.
    pub step: TimeoutStep,
}
