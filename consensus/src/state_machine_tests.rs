//! Table tests for the round state machine: one row per rule of the paper (and per branch of a rule),
//! each `{ state before, event, actions, state after }`.

use super::*;
use primitives::{BlockId, Hash32};

const V: Value = BlockId(Hash32([1; 32]));
const W: Value = BlockId(Hash32([2; 32]));

fn rv(round: u32, value: Value) -> Option<RoundValue> {
    Some(RoundValue { round: Round(round), value })
}

struct Row {
    line: &'static str,
    step: Step,
    round: u32,
    locked: Option<RoundValue>,
    valid: Option<RoundValue>,
    event: Event,
    actions: Vec<Action>,
    /// Expected `(step, round, locked, valid)` after.
    after: (Step, u32, Option<RoundValue>, Option<RoundValue>),
    applied: bool,
}

fn row(
    line: &'static str,
    (step, round, locked, valid): (Step, u32, Option<RoundValue>, Option<RoundValue>),
    event: Event,
    actions: Vec<Action>,
    after: (Step, u32, Option<RoundValue>, Option<RoundValue>),
) -> Row {
    Row { line, step, round, locked, valid, event, actions, after, applied: true }
}

fn ignored(line: &'static str, before: (Step, u32, Option<RoundValue>, Option<RoundValue>), event: Event) -> Row {
    let mut r = row(line, before, event, vec![], before);
    r.applied = false;
    r
}

use Action as A;
use Event as E;
use Step as S;

fn table() -> Vec<Row> {
    let prop = |value| A::Propose { value, pol_round: None };
    vec![
        // L11-L18: proposer without a valid value asks the host, with timeoutPropose as a fallback.
        row(
            "L11/L18 proposer, no valid value",
            (S::Unstarted, 0, None, None),
            E::NewRound { round: Round(0), proposer: true },
            vec![A::RequestValue, A::ScheduleTimeout(TimeoutStep::Propose)],
            (S::Propose, 0, None, None),
        ),
        // L14-L16: proposer re-proposes its valid value with its round.
        row(
            "L16 proposer re-proposes valid value",
            (S::Precommit, 1, rv(1, V), rv(1, V)),
            E::NewRound { round: Round(2), proposer: true },
            vec![A::Propose { value: V, pol_round: Some(Round(1)) }],
            (S::Propose, 2, rv(1, V), rv(1, V)),
        ),
        row(
            "L11/L21 non-proposer schedules timeoutPropose",
            (S::Unstarted, 0, None, None),
            E::NewRound { round: Round(0), proposer: false },
            vec![A::ScheduleTimeout(TimeoutStep::Propose)],
            (S::Propose, 0, None, None),
        ),
        ignored(
            "L11 rounds never go back",
            (S::Prevote, 3, None, None),
            E::NewRound { round: Round(2), proposer: false },
        ),
        row(
            "L19 host value is proposed",
            (S::Propose, 0, None, None),
            E::ProposeValue(V),
            vec![prop(V)],
            (S::Propose, 0, None, None),
        ),
        ignored("L19 host value too late", (S::Prevote, 0, None, None), E::ProposeValue(V)),
        // L22-L27
        row(
            "L24 valid, not locked: prevote it",
            (S::Propose, 0, None, None),
            E::Proposal { value: V, valid: true },
            vec![A::Prevote(Some(V))],
            (S::Prevote, 0, None, None),
        ),
        row(
            "L24 valid, locked on it: prevote it",
            (S::Propose, 2, rv(1, V), rv(1, V)),
            E::Proposal { value: V, valid: true },
            vec![A::Prevote(Some(V))],
            (S::Prevote, 2, rv(1, V), rv(1, V)),
        ),
        row(
            "L26 valid, locked on another: prevote nil",
            (S::Propose, 2, rv(1, W), rv(1, W)),
            E::Proposal { value: V, valid: true },
            vec![A::Prevote(None)],
            (S::Prevote, 2, rv(1, W), rv(1, W)),
        ),
        row(
            "L26 invalid: prevote nil",
            (S::Propose, 0, None, None),
            E::Proposal { value: V, valid: false },
            vec![A::Prevote(None)],
            (S::Prevote, 0, None, None),
        ),
        ignored("L22 only in step propose", (S::Prevote, 0, None, None), E::Proposal { value: V, valid: true }),
        // L28-L33
        row(
            "L30 polka in vr >= locked round: prevote it",
            (S::Propose, 3, rv(1, W), rv(1, W)),
            E::ProposalPolkaPrevious { value: V, pol_round: Round(2), valid: true },
            vec![A::Prevote(Some(V))],
            (S::Prevote, 3, rv(1, W), rv(1, W)),
        ),
        row(
            "L30 locked on the same value in a newer round: prevote it",
            (S::Propose, 3, rv(2, V), rv(2, V)),
            E::ProposalPolkaPrevious { value: V, pol_round: Round(1), valid: true },
            vec![A::Prevote(Some(V))],
            (S::Prevote, 3, rv(2, V), rv(2, V)),
        ),
        row(
            "L32 locked on another value after vr: prevote nil",
            (S::Propose, 3, rv(2, W), rv(2, W)),
            E::ProposalPolkaPrevious { value: V, pol_round: Round(1), valid: true },
            vec![A::Prevote(None)],
            (S::Prevote, 3, rv(2, W), rv(2, W)),
        ),
        row(
            "L32 invalid: prevote nil",
            (S::Propose, 3, None, None),
            E::ProposalPolkaPrevious { value: V, pol_round: Round(1), valid: false },
            vec![A::Prevote(None)],
            (S::Prevote, 3, None, None),
        ),
        ignored(
            "L28 needs vr < round",
            (S::Propose, 1, None, None),
            E::ProposalPolkaPrevious { value: V, pol_round: Round(1), valid: true },
        ),
        // L34
        row(
            "L34 polka any: timeoutPrevote",
            (S::Prevote, 0, None, None),
            E::PolkaAny,
            vec![A::ScheduleTimeout(TimeoutStep::Prevote)],
            (S::Prevote, 0, None, None),
        ),
        ignored("L34 only in prevote", (S::Precommit, 0, None, None), E::PolkaAny),
        // L36-L43
        row(
            "L36 polka for proposal in prevote: lock, valid, precommit",
            (S::Prevote, 2, rv(0, W), rv(0, W)),
            E::ProposalPolkaCurrent(V),
            vec![A::Lock(rv(2, V).unwrap()), A::SetValid(rv(2, V).unwrap()), A::Precommit(Some(V))],
            (S::Precommit, 2, rv(2, V), rv(2, V)),
        ),
        row(
            "L42 polka for proposal after precommit: valid only",
            (S::Precommit, 2, rv(0, W), rv(0, W)),
            E::ProposalPolkaCurrent(V),
            vec![A::SetValid(rv(2, V).unwrap())],
            (S::Precommit, 2, rv(0, W), rv(2, V)),
        ),
        ignored("L36 needs step >= prevote", (S::Propose, 0, None, None), E::ProposalPolkaCurrent(V)),
        // L44
        row(
            "L44 polka nil: precommit nil",
            (S::Prevote, 1, None, None),
            E::PolkaNil,
            vec![A::Precommit(None)],
            (S::Precommit, 1, None, None),
        ),
        ignored("L44 only in prevote", (S::Precommit, 1, None, None), E::PolkaNil),
        // L47
        row(
            "L47 precommit any: timeoutPrecommit",
            (S::Prevote, 0, None, None),
            E::PrecommitAny,
            vec![A::ScheduleTimeout(TimeoutStep::Precommit)],
            (S::Prevote, 0, None, None),
        ),
        // L49
        row(
            "L49 precommits for a value decide it, in any round and step",
            (S::Propose, 4, rv(1, W), rv(1, W)),
            E::PrecommitValue { round: Round(2), value: V },
            vec![A::Decide(rv(2, V).unwrap())],
            (S::Commit, 4, rv(1, W), rv(1, W)),
        ),
        ignored("L49 decides once", (S::Commit, 0, None, None), E::PrecommitValue { round: Round(0), value: V }),
        // L55
        row(
            "L55 f+1 in a higher round: skip",
            (S::Prevote, 1, None, None),
            E::SkipRound(Round(5)),
            vec![A::StartRound(Round(5))],
            (S::Prevote, 1, None, None),
        ),
        ignored("L55 not to a lower round", (S::Prevote, 5, None, None), E::SkipRound(Round(3))),
        // L57
        row(
            "L57 timeoutPropose: prevote nil",
            (S::Propose, 0, None, None),
            E::TimeoutPropose,
            vec![A::Prevote(None)],
            (S::Prevote, 0, None, None),
        ),
        ignored("L57 only in propose", (S::Prevote, 0, None, None), E::TimeoutPropose),
        // L61
        row(
            "L61 timeoutPrevote: precommit nil",
            (S::Prevote, 0, None, None),
            E::TimeoutPrevote,
            vec![A::Precommit(None)],
            (S::Precommit, 0, None, None),
        ),
        ignored("L61 only in prevote", (S::Precommit, 0, None, None), E::TimeoutPrevote),
        // L65
        row(
            "L65 timeoutPrecommit: next round",
            (S::Precommit, 3, None, None),
            E::TimeoutPrecommit,
            vec![A::StartRound(Round(4))],
            (S::Precommit, 3, None, None),
        ),
        ignored("L65 not after deciding", (S::Commit, 3, None, None), E::TimeoutPrecommit),
    ]
}

#[test]
fn every_rule_of_the_paper() {
    for r in table() {
        let mut s = RoundState::new(Height(1));
        s.step = r.step;
        s.round = Round(r.round);
        s.locked = r.locked;
        s.valid = r.valid;
        let t = apply(s, r.event);
        assert_eq!(t.actions, r.actions, "{}: actions", r.line);
        assert_eq!(t.applied, r.applied, "{}: applied", r.line);
        let (step, round, locked, valid) = r.after;
        assert_eq!(
            (t.state.step, t.state.round, t.state.locked, t.state.valid),
            (step, Round(round), locked, valid),
            "{}: state after",
            r.line
        );
    }
}
