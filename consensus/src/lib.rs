//! The BFT consensus core: Tendermint (Buchman, Kwon, Milosevic 2018) as a pure state machine.
//!
//! It owns the safety of finality: no two honest validators decide different blocks at one height. It does
//! no IO, reads no clock and draws no randomness; the host feeds it inputs and carries out its outputs.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

pub mod cert;
pub mod evidence;
pub mod types;
pub mod validators;

pub use cert::{CertificateError, CommitCertificate};
pub use evidence::{Equivocation, EvidenceError};
pub use primitives::{Height, Round, ValidatorIndex};
pub use types::{
    Message, MessageError, Proposal, SignedProposal, SignedVote, Timeout, TimeoutStep, Value, Vote, VoteKind,
};
pub use validators::{Validator, ValidatorSet, ValidatorSetError};
