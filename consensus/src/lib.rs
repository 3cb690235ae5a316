//! The BFT consensus core: Tendermint (Buchman, Kwon, Milosevic 2018) as a pure state machine.
//!
//! It owns the safety of finality: no two honest validators decide different blocks at one height. It does
//! no IO, reads no clock and draws no randomness; the host feeds it inputs and carries out its outputs:
//!
//! ```text
//! host ──Input──► Consensus::handle ──Vec<Output>──► host (persist, broadcast, schedule, decide, evidence)
//! ```
//!
//! # Host contract
//!
//! 1. Create `Consensus::new(config, genesis_hash, Some(validator_key))` (or `None` for a full node), then
//!    send `Input::NewHeight { height, validators }`, or `Input::Restore { height, validators, wal }` after
//!    a restart, where `wal` holds every `WalEntry` persisted for that height, in order.
//! 2. Verify each network message's signature (`Message::verify`) before `Input::Proposal`/`Input::Vote`.
//! 3. Carry out the outputs of each `handle` call in order. `Output::Persist` must be durable (fsync) before
//!    the next output is carried out: it always precedes the `Broadcast` of our own proposal or vote and
//!    follows-up on every lock change. `ScheduleTimeout` comes back as `Input::TimeoutElapsed`;
//!    `RequestValue` as `Input::ProposeValue`; `RequestValidity` as `Input::ProposalValidity` (late or never
//!    is allowed).
//! 4. On `Output::Decide`, store block and certificate atomically, drop the WAL entries of that height,
//!    then send `Input::NewHeight` for the next height. A certificate for the current height obtained by
//!    sync goes in as `Input::Certificate`.
//! 5. Liveness assumes gossip: after a reconnect or partition heal, re-send our own messages of the current
//!    height (they are the `Proposal`/`Vote` entries of the WAL) and serve certificates of decided heights
//!    to peers that are behind. The simulation (`sim` feature) does exactly this.
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
