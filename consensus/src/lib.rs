//! The BFT consensus core: Tendermint (Buchman, Kwon, Milosevic 2018) as a pure state machine.
//!
//! It owns the safety of finality: no two honest validators decide different blocks at one height. It does
//! no IO, reads no clock and draws no randomness; the host feeds it inputs and carries out its outputs:
//!
//! ```text
//! host ──Input──► Consensus::handle ──Vec<Output>──► host (persist, broadcast, schedule, decide, evidence)
//! ```
//!
//! Layers, as in Malachite: `state_machine` (the paper's rules, one pure function), `driver` (keeps votes
//! and proposals, derives the rules' conditions, loops until none holds), `interface` (the effects).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

pub mod cert;
pub mod config;
pub mod driver;
pub mod evidence;
pub mod interface;
pub mod state_machine;
pub mod types;
pub mod validators;
mod votes;

#[cfg(feature = "sim")]
pub mod sim;

pub use cert::{CertificateError, CommitCertificate};
pub use config::Config;
pub use driver::Consensus;
pub use evidence::{Equivocation, EvidenceError};
pub use interface::{Input, Output, WalEntry};
pub use primitives::{Height, Round, ValidatorIndex};
pub use state_machine::{RoundValue, Step};
pub use types::{
    Message, MessageError, Proposal, SignedProposal, SignedVote, Timeout, TimeoutStep, Value, Vote, VoteKind,
};
pub use validators::{Validator, ValidatorSet, ValidatorSetError};
