//! The vote keeper of one height: every validator's first prevote and precommit per round, weighted
//! tallies, and which validators were heard from in each round.
//!
//! Invariants owned here: thresholds are computed from voting power, not from numbers of messages; a
//! validator's power counts at most once per `(round, kind, value)` and at most once in the "any" totals.
//! An equivocator's second vote is returned as a conflict (for evidence) *and* counted for its own value,
//! as the paper counts messages: otherwise two honest nodes that saw an equivocator's votes in different
//! orders would see different polkas forever, and a locked node could never be shown the polka it needs
//! (a liveness bug the simulation found). Safety is unaffected: quorum intersection already allows the f
//! faulty validators to be counted on both sides. At most `MAX_VALUES_PER_SLOT` values per validator are
//! kept, so an equivocator cannot grow memory without bound.

use crate::types::{SignedVote, Value, VoteKind};
use crate::validators::ValidatorSet;
use primitives::{Round, Signature, ValidatorIndex};
use std::collections::BTreeMap;

/// The outcome of adding a vote.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// First vote of this validator for this round and kind.
    New,
    /// The same vote again.
    Duplicate,
    /// A different vote than the first one, which is returned.
    Conflict(SignedVote),
}

/// Distinct votes kept per validator, round and kind (an honest validator has one).
const MAX_VALUES_PER_SLOT: usize = 3;

#[derive(Default)]
struct Tally {
    votes: BTreeMap<ValidatorIndex, Vec<SignedVote>>,
    power: BTreeMap<Option<Value>, u64>,
    total: u64,
}

#[derive(Default)]
struct RoundVotes {
    prevotes: Tally,
    precommits: Tally,
    /// Validators with any message (vote or proposal) in this round, for L55.
    senders: BTreeMap<ValidatorIndex, ()>,
    sender_power: u64,
}

impl RoundVotes {
    fn tally(&self, kind: VoteKind) -> &Tally {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }
}

/// Votes of one height.
pub(crate) struct VoteKeeper {
    set: ValidatorSet,
    rounds: BTreeMap<Round, RoundVotes>,
}

impl VoteKeeper {
    pub(crate) fn new(set: ValidatorSet) -> Self {
        VoteKeeper { set, rounds: BTreeMap::new() }
    }

    /// Records a message from `who` in `round` for the round-skip rule.
    pub(crate) fn note_sender(&mut self, round: Round, who: ValidatorIndex) {
        let power = self.set.power(who);
        let r = self.rounds.entry(round).or_default();
        if r.senders.insert(who, ()).is_none() {
            r.sender_power = r.sender_power.saturating_add(power);
        }
    }

    /// Adds a vote whose signer the caller checked is in the set.
    pub(crate) fn add(&mut self, sv: SignedVote) -> Added {
        let v = sv.vote;
        self.note_sender(v.round, v.validator);
        let power = self.set.power(v.validator);
        let r = self.rounds.entry(v.round).or_default();
        let tally = match v.kind {
            VoteKind::Prevote => &mut r.prevotes,
            VoteKind::Precommit => &mut r.precommits,
        };
        let list = tally.votes.entry(v.validator).or_default();
        if list.iter().any(|x| x.vote == v) {
            return Added::Duplicate;
        }
        let first = list.first().copied();
        if list.len() >= MAX_VALUES_PER_SLOT {
            return first.map_or(Added::Duplicate, Added::Conflict);
        }
        if list.is_empty() {
            tally.total = tally.total.saturating_add(power);
        }
        list.push(sv);
        let p = tally.power.entry(v.value).or_default();
        *p = p.saturating_add(power);
        first.map_or(Added::New, Added::Conflict)
    }

    fn tally(&self, round: Round, kind: VoteKind) -> Option<&Tally> {
        self.rounds.get(&round).map(|r| r.tally(kind))
    }

    /// 2f+1 votes of `kind` in `round` for `value` (`None`: nil).
    pub(crate) fn quorum_for(&self, round: Round, kind: VoteKind, value: Option<Value>) -> bool {
        self.tally(round, kind).and_then(|t| t.power.get(&value)).is_some_and(|p| self.set.is_quorum(*p))
    }

    /// 2f+1 votes of `kind` in `round`, for anything.
    pub(crate) fn quorum_any(&self, round: Round, kind: VoteKind) -> bool {
        self.tally(round, kind).is_some_and(|t| self.set.is_quorum(t.total))
    }

    /// The first (lowest) round with 2f+1 precommits for one non-nil value, and that value.
    pub(crate) fn decision(&self) -> Option<(Round, Value)> {
        self.rounds.iter().find_map(|(round, r)| {
            r.precommits
                .power
                .iter()
                .find(|(value, p)| value.is_some() && self.set.is_quorum(**p))
                .and_then(|(value, _)| value.map(|v| (*round, v)))
        })
    }

    /// The highest round above `round` from which f+1 power has sent messages (L55).
    pub(crate) fn skip_to(&self, round: Round) -> Option<Round> {
        self.rounds
            .range(round.next()..)
            .rev()
            .find(|(_, r)| self.set.is_one_third(r.sender_power))
            .map(|(round, _)| *round)
    }

    /// The precommit signatures for `value` in `round`, in validator order.
    pub(crate) fn precommit_signatures(&self, round: Round, value: Value) -> Vec<(ValidatorIndex, Signature)> {
        self.tally(round, VoteKind::Precommit)
            .map(|t| {
                t.votes
                    .iter()
                    .filter_map(|(i, list)| {
                        list.iter().find(|sv| sv.vote.value == Some(value)).map(|sv| (*i, sv.signature))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}
