//! The round state machine of Tendermint: one pure function from `(step, event)` to a new state and the
//! actions to carry out. Every arm names the line of the paper it implements (Buchman, Kwon, Milosevic
//! 2018, Algorithm 1); anything not handled is an explicit "ignored" transition.
//!
//! Invariant owned here: the locking rules. A validator locked on `v` in round `lr` prevotes another value
//! only when shown a polka from a round `>= lr` (L28-L29), and it locks exactly when it precommits a value
//! (L36-L38). Counting votes and deciding which events hold is the driver's job (`driver.rs`); this module
//! only sees the events the driver derived, and only for the current round (except L49 and L55).

use crate::types::{TimeoutStep, Value};
use primitives::{Height, Round};

/// A value together with the round it was seen with a polka (locked or valid value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct RoundValue {
    /// The round of the polka.
    pub round: Round,
    /// The block hash.
    pub value: Value,
}

/// Where a validator is within a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Before the first round of the height started.
    Unstarted,
    /// Waiting for the proposal (or, as proposer, for the host's value).
    Propose,
    /// Prevoted; waiting for 2f+1 prevotes.
    Prevote,
    /// Precommitted; waiting for 2f+1 precommits.
    Precommit,
    /// Decided; waiting for the host to start the next height.
    Commit,
}

/// The per-height state of the algorithm: `round_p`, `step_p`, `lockedValue/lockedRound`,
/// `validValue/validRound`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundState {
    /// The height being decided.
    pub height: Height,
    /// Current round.
    pub round: Round,
    /// Current step.
    pub step: Step,
    /// `lockedValue` and `lockedRound`.
    pub locked: Option<RoundValue>,
    /// `validValue` and `validRound`.
    pub valid: Option<RoundValue>,
    /// Test-only fault: behave as if never locked and with no valid value to re-propose (breaks safety on
    /// purpose, to show the simulation catches it).
    #[cfg(feature = "fault-injection")]
    pub ignore_locks: bool,
}

impl RoundState {
    /// The state at the start of `height`.
    pub fn new(height: Height) -> Self {
        RoundState {
            height,
            round: Round(0),
            step: Step::Unstarted,
            locked: None,
            valid: None,
            #[cfg(feature = "fault-injection")]
            ignore_locks: false,
        }
    }

    fn valid(&self) -> Option<RoundValue> {
        #[cfg(feature = "fault-injection")]
        if self.ignore_locks {
            return None;
        }
        self.valid
    }

    fn locked(&self) -> Option<RoundValue> {
        #[cfg(feature = "fault-injection")]
        if self.ignore_locks {
            return None;
        }
        self.locked
    }
}

/// What the driver observed, already checked to be for the current round unless it carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Start `round` (L11); `proposer` tells whether this validator proposes in it.
    NewRound {
        /// The round to start.
        round: Round,
        /// Whether we are `proposer(h, round)`.
        proposer: bool,
    },
    /// The host answered our request for a value to propose (L18).
    ProposeValue(Value),
    /// A proposal with `pol_round = -1` whose validity is known (L22).
    Proposal {
        /// The proposed block hash.
        value: Value,
        /// `valid(v)`.
        valid: bool,
    },
    /// A proposal with `pol_round = vr < round` and 2f+1 prevotes for it in `vr` (L28).
    ProposalPolkaPrevious {
        /// The proposed block hash.
        value: Value,
        /// The proposal's `vr`.
        pol_round: Round,
        /// `valid(v)`.
        valid: bool,
    },
    /// 2f+1 prevotes for anything in this round, first time (L34).
    PolkaAny,
    /// 2f+1 prevotes for nil in this round (L44).
    PolkaNil,
    /// The proposal of this round, valid, with 2f+1 prevotes for it, first time (L36).
    ProposalPolkaCurrent(Value),
    /// 2f+1 precommits for anything in this round, first time (L47).
    PrecommitAny,
    /// 2f+1 precommits for `value` in `round`, any round (L49).
    PrecommitValue {
        /// The round of the precommits.
        round: Round,
        /// The block hash.
        value: Value,
    },
    /// f+1 validators sent messages for a higher `round` (L55).
    SkipRound(Round),
    /// `timeoutPropose` of this round fired (L57).
    TimeoutPropose,
    /// `timeoutPrevote` of this round fired (L61).
    TimeoutPrevote,
    /// `timeoutPrecommit` of this round fired (L65).
    TimeoutPrecommit,
}

/// What the driver must do after a transition, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Sign and broadcast `PROPOSAL(h, round, value, pol_round)`.
    Propose {
        /// The block hash.
        value: Value,
        /// `validRound`, when re-proposing the valid value.
        pol_round: Option<Round>,
    },
    /// Ask the host for a value to propose (`getValue()`, asynchronous here).
    RequestValue,
    /// Sign and broadcast a prevote.
    Prevote(Option<Value>),
    /// Sign and broadcast a precommit.
    Precommit(Option<Value>),
    /// The lock changed: persist it before anything else is sent.
    Lock(RoundValue),
    /// The valid value changed: persist it.
    SetValid(RoundValue),
    /// Schedule the timeout of this round's step.
    ScheduleTimeout(TimeoutStep),
    /// Decide `value` (with the precommits of `round` as certificate).
    Decide(RoundValue),
    /// Start another round (the driver feeds back `NewRound`).
    StartRound(Round),
}

/// The result of applying one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The new state.
    pub state: RoundState,
    /// Actions to carry out, in order.
    pub actions: Vec<Action>,
    /// False when the event did not apply in this state (nothing changed).
    pub applied: bool,
}

impl Transition {
    fn to(state: RoundState, actions: Vec<Action>) -> Self {
        Transition { state, actions, applied: true }
    }

    fn ignored(state: RoundState) -> Self {
        Transition { state, actions: Vec::new(), applied: false }
    }
}

/// Applies one event to the state. Pure: same state and event, same transition.
pub fn apply(mut s: RoundState, event: Event) -> Transition {
    use Event as E;
    use Step as S;
    let live = !matches!(s.step, S::Commit);
    match (s.step, event) {
        // L11-L16: start a round as its proposer; re-propose the valid value if there is one.
        (_, E::NewRound { round, proposer: true }) if live && starts(&s, round) => {
            s.round = round;
            s.step = S::Propose;
            let actions = match s.valid() {
                Some(v) => vec![Action::Propose { value: v.value, pol_round: Some(v.round) }],
                // L18 getValue(): asked of the host; timeoutPropose covers a host that never answers.
                None => vec![Action::RequestValue, Action::ScheduleTimeout(TimeoutStep::Propose)],
            };
            Transition::to(s, actions)
        }
        // L11, L20-L21: start a round as a non-proposer; schedule timeoutPropose.
        (_, E::NewRound { round, proposer: false }) if live && starts(&s, round) => {
            s.round = round;
            s.step = S::Propose;
            Transition::to(s, vec![Action::ScheduleTimeout(TimeoutStep::Propose)])
        }
        // L18-L19: the host's value arrived; broadcast the proposal (no polka round).
        (S::Propose, E::ProposeValue(value)) => Transition::to(s, vec![Action::Propose { value, pol_round: None }]),
        // L22-L27: a proposal without polka round; prevote it if valid and not locked on another value.
        (S::Propose, E::Proposal { value, valid }) => {
            let ok = valid && s.locked().is_none_or(|l| l.value == value);
            s.step = S::Prevote;
            Transition::to(s, vec![Action::Prevote(ok.then_some(value))])
        }
        // L28-L33: a proposal with a polka in an earlier round vr; prevote it if valid and our lock is
        // no newer than vr, or is on the same value.
        (S::Propose, E::ProposalPolkaPrevious { value, pol_round, valid }) if pol_round < s.round => {
            let ok = valid && s.locked().is_none_or(|l| l.round <= pol_round || l.value == value);
            s.step = S::Prevote;
            Transition::to(s, vec![Action::Prevote(ok.then_some(value))])
        }
        // L34-L35: 2f+1 prevotes for anything, first time; schedule timeoutPrevote.
        (S::Prevote, E::PolkaAny) => Transition::to(s, vec![Action::ScheduleTimeout(TimeoutStep::Prevote)]),
        // L36-L41 (step = prevote): lock on the value, mark it valid, precommit it.
        (S::Prevote, E::ProposalPolkaCurrent(value)) => {
            let rv = RoundValue { round: s.round, value };
            let mut actions = Vec::with_capacity(3);
            if s.locked != Some(rv) {
                s.locked = Some(rv);
                actions.push(Action::Lock(rv));
            }
            if s.valid != Some(rv) {
                s.valid = Some(rv);
                actions.push(Action::SetValid(rv));
            }
            actions.push(Action::Precommit(Some(value)));
            s.step = S::Precommit;
            Transition::to(s, actions)
        }
        // L36, L42-L43 (step = precommit): already precommitted this round; only record the valid value.
        (S::Precommit, E::ProposalPolkaCurrent(value)) => {
            let rv = RoundValue { round: s.round, value };
            if s.valid == Some(rv) {
                return Transition::ignored(s);
            }
            s.valid = Some(rv);
            Transition::to(s, vec![Action::SetValid(rv)])
        }
        // L44-L46: 2f+1 prevotes for nil; precommit nil.
        (S::Prevote, E::PolkaNil) => {
            s.step = S::Precommit;
            Transition::to(s, vec![Action::Precommit(None)])
        }
        // L47-L48: 2f+1 precommits for anything, first time; schedule timeoutPrecommit.
        (S::Propose | S::Prevote | S::Precommit, E::PrecommitAny) => {
            Transition::to(s, vec![Action::ScheduleTimeout(TimeoutStep::Precommit)])
        }
        // L49-L54: 2f+1 precommits for a value in any round; decide it. The certificate carries the
        // validity judgement of at least f+1 honest validators, so a validator whose own bitcoind disagrees
        // (or has not answered) follows it like a full node does instead of stalling the height.
        (_, E::PrecommitValue { round, value }) if live => {
            s.step = S::Commit;
            Transition::to(s, vec![Action::Decide(RoundValue { round, value })])
        }
        // L55-L56: f+1 validators are in a higher round; skip to it.
        (_, E::SkipRound(round)) if live && s.step != S::Unstarted && round > s.round => {
            Transition::to(s, vec![Action::StartRound(round)])
        }
        // L57-L60: timeoutPropose fired while still in propose; prevote nil.
        (S::Propose, E::TimeoutPropose) => {
            s.step = S::Prevote;
            Transition::to(s, vec![Action::Prevote(None)])
        }
        // L61-L64: timeoutPrevote fired while still in prevote; precommit nil.
        (S::Prevote, E::TimeoutPrevote) => {
            s.step = S::Precommit;
            Transition::to(s, vec![Action::Precommit(None)])
        }
        // L65-L67: timeoutPrecommit fired in this round; go to the next round.
        (S::Propose | S::Prevote | S::Precommit, E::TimeoutPrecommit) => {
            let next = s.round.next();
            Transition::to(s, vec![Action::StartRound(next)])
        }
        // Anything else does not apply in this step (e.g. a late timeout, a second polka).
        _ => Transition::ignored(s),
    }
}

/// L11 StartRound: a round only moves forward (the first round of a height starts from `Unstarted`).
fn starts(s: &RoundState, round: Round) -> bool {
    round > s.round || (s.step == Step::Unstarted && round == s.round)
}

#[cfg(test)]
#[path = "state_machine_tests.rs"]
mod tests;
