//! The boundary between the pure core and its host: what goes in (`Input`), what comes out (`Output`), and
//! what the host must persist (`WalEntry`).
//!
//! Invariant owned here (crash safety as part of the interface): the core emits `Output::Persist` for its
//! own proposal or vote, and for a lock or valid-value change, *before* the `Output::Broadcast` that
//! depends on it. A host that carries outputs out in order, and makes each `Persist` durable before going
//! on, can hand the persisted entries of the height back with `Input::Restore` after a crash; the core
//! then never signs a different message for a `(height, round, step)` and stays locked where it was.

use crate::cert::CommitCertificate;
use crate::evidence::Equivocation;
use crate::state_machine::RoundValue;
use crate::types::{Message, SignedProposal, SignedVote, Timeout, Value};
use crate::validators::ValidatorSet;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{Height, Round};

/// What the host feeds the core. Messages must have had their signatures verified by the host
/// (`Message::verify`); the core still checks signer membership, height, round and proposer.
#[derive(Clone, Debug)]
pub enum Input {
    /// Start `height` (the first, or the one after a decision) with its validator set.
    NewHeight {
        /// The height to decide next.
        height: Height,
        /// Its validators.
        validators: ValidatorSet,
    },
    /// After a restart: start `height` again from what was persisted for it.
    Restore {
        /// The height that was being decided.
        height: Height,
        /// Its validators.
        validators: ValidatorSet,
        /// Every `WalEntry` persisted for this height, in the order they were persisted.
        wal: Vec<WalEntry>,
    },
    /// A proposal from the network (signature verified).
    Proposal(SignedProposal),
    /// A vote from the network (signature verified).
    Vote(SignedVote),
    /// A timeout scheduled by `Output::ScheduleTimeout` fired.
    TimeoutElapsed(Timeout),
    /// This validator's verdict on a proposed block (its execution and its bitcoind view), answering
    /// `Output::RequestValidity`. It may come late or never; the first verdict for a value counts.
    ProposalValidity {
        /// Height of the block.
        height: Height,
        /// The block hash.
        value: Value,
        /// Whether the block is valid for this validator.
        valid: bool,
    },
    /// The block to propose, answering `Output::RequestValue`.
    ProposeValue {
        /// Height asked for.
        height: Height,
        /// Round asked for.
        round: Round,
        /// Hash of the block the host built (and will serve to peers).
        value: Value,
    },
    /// A commit certificate for the current height obtained by sync; the core verifies it and decides.
    Certificate(CommitCertificate),
}

/// What the core asks the host to do, in order.
#[must_use = "outputs are the only way the core acts: persist, send, schedule, decide"]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Make this entry durable (fsync) before carrying out any later output.
    Persist(WalEntry),
    /// Send this message to all peers.
    Broadcast(Message),
    /// Report `timeout` back after `duration_ms`.
    ScheduleTimeout {
        /// What to report back.
        timeout: Timeout,
        /// After how long.
        duration_ms: u64,
    },
    /// This validator proposes in `(height, round)`: answer with `Input::ProposeValue`.
    RequestValue {
        /// Height to propose for.
        height: Height,
        /// Round to propose in.
        round: Round,
    },
    /// Check the block `value` (execute it, ask bitcoind about its BTC facts); answer with
    /// `Input::ProposalValidity`.
    RequestValidity {
        /// Height of the block.
        height: Height,
        /// The block hash.
        value: Value,
    },
    /// `value` is final at `height`. Store block and certificate atomically, then send `Input::NewHeight`.
    Decide {
        /// The height decided.
        height: Height,
        /// The decided block hash.
        value: Value,
        /// 2f+1 precommits for it.
        certificate: CommitCertificate,
    },
    /// A validator equivocated (emitted once per validator, round and step).
    Evidence(Equivocation),
}

/// One write-ahead-log record: what a validator signed or locked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WalEntry {
    /// Our own proposal.
    Proposal(SignedProposal),
    /// Our own prevote or precommit.
    Vote(SignedVote),
    /// `lockedValue`, `lockedRound` changed.
    Locked {
        /// Height of the lock.
        height: Height,
        /// The locked round and value.
        locked: RoundValue,
    },
    /// `validValue`, `validRound` changed.
    Valid {
        /// Height of the valid value.
        height: Height,
        /// The valid round and value.
        valid: RoundValue,
    },
}

impl WalEntry {
    /// The height the entry belongs to (entries of decided heights can be dropped).
    pub fn height(&self) -> Height {
        match self {
            WalEntry::Proposal(p) => p.proposal.height,
            WalEntry::Vote(v) => v.vote.height,
            WalEntry::Locked { height, .. } | WalEntry::Valid { height, .. } => *height,
        }
    }

    /// The round the entry belongs to.
    pub fn round(&self) -> Round {
        match self {
            WalEntry::Proposal(p) => p.proposal.round,
            WalEntry::Vote(v) => v.vote.round,
            WalEntry::Locked { locked: rv, .. } | WalEntry::Valid { valid: rv, .. } => rv.round,
        }
    }
}
