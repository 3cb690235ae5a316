//! The driver: `Consensus::handle(Input) -> Vec<Output>`. It keeps the proposals, votes and validity
//! verdicts of the current height, derives the paper's `upon` conditions from them, feeds them to the round
//! state machine until nothing more applies, and turns the resulting actions into outputs.
//!
//! Invariants owned here: (1) own messages are signed at most once per `(height, round, step)`: a second
//! request returns the first message, also after `Input::Restore`; (2) `Persist` precedes the `Broadcast`
//! of what it persists; (3) only messages of heights `h` and `h+1` are kept, and `h+1` only in a bounded
//! buffer; (4) each equivocation is reported once.

use crate::cert::CommitCertificate;
use crate::config::Config;
use crate::evidence::Equivocation;
use crate::interface::{Input, Output, WalEntry};
use crate::state_machine::{self, Action, Event, RoundState, RoundValue, Step};
use crate::types::{Message, Proposal, SignedProposal, SignedVote, Timeout, TimeoutStep, Value, Vote, VoteKind};
use crate::validators::ValidatorSet;
use crate::votes::{Added, VoteKeeper};
use primitives::{GenesisHash, Height, Keypair, Round, ValidatorIndex};
use std::collections::{BTreeMap, BTreeSet};

/// A proposer may equivocate; keep at most this many distinct proposals per round (one is evidence).
const MAX_PROPOSALS_PER_ROUND: usize = 2;

/// "For the first time" rules of the paper, fired at most once per round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Once {
    L34,
    L36,
    L47,
}

/// Everything the core knows about the height being decided.
struct HeightState {
    set: ValidatorSet,
    me: Option<ValidatorIndex>,
    keeper: VoteKeeper,
    proposals: BTreeMap<Round, Vec<SignedProposal>>,
    validity: BTreeMap<Value, bool>,
    validity_requested: BTreeSet<Value>,
    own_votes: BTreeMap<(Round, VoteKind), SignedVote>,
    own_proposals: BTreeMap<Round, SignedProposal>,
    fired: BTreeSet<(Round, Once)>,
    evidence_sent: BTreeSet<(ValidatorIndex, Round, u8)>,
}

/// The consensus core of one node (validator if it has a key in the set, observer otherwise).
pub struct Consensus {
    config: Config,
    genesis: GenesisHash,
    key: Option<Keypair>,
    state: RoundState,
    height: Option<HeightState>,
    next_height: Vec<Message>,
    #[cfg(feature = "fault-injection")]
    ignore_locks: bool,
}

impl Consensus {
    /// A core for the chain `genesis`; `key` is the validator's consensus key (`None` for a full node).
    /// Nothing happens until `Input::NewHeight` or `Input::Restore`.
    pub fn new(config: Config, genesis: GenesisHash, key: Option<Keypair>) -> Self {
        Consensus {
            config,
            genesis,
            key,
            state: RoundState::new(Height(0)),
            height: None,
            next_height: Vec::new(),
            #[cfg(feature = "fault-injection")]
            ignore_locks: false,
        }
    }

    /// Test-only fault (feature `fault-injection`): ignore locks and valid values from the next height on,
    /// which breaks safety on purpose so the simulation can show it catches it. A method rather than a
    /// config field so that enabling the feature never changes the shape of a public type.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn inject_ignore_locks(&mut self, on: bool) {
        self.ignore_locks = on;
        self.state.ignore_locks = on;
    }

    /// The height being decided.
    pub fn height(&self) -> Height {
        self.state.height
    }

    /// The current round.
    pub fn round(&self) -> Round {
        self.state.round
    }

    /// The current step.
    pub fn step(&self) -> Step {
        self.state.step
    }

    /// `lockedValue` and `lockedRound`.
    pub fn locked(&self) -> Option<RoundValue> {
        self.state.locked
    }

    /// `validValue` and `validRound`.
    pub fn valid(&self) -> Option<RoundValue> {
        self.state.valid
    }

    /// Handles one input and returns what the host must do, in order.
    #[must_use = "outputs must be carried out in order"]
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::NewHeight { height, validators } => self.on_new_height(height, validators, &mut out),
            Input::Restore { height, validators, wal } => self.on_restore(height, validators, wal, &mut out),
            Input::Proposal(p) => self.on_message(Message::Proposal(p), &mut out),
            Input::Vote(v) => self.on_message(Message::Vote(v), &mut out),
            Input::TimeoutElapsed(t) => self.on_timeout(t, &mut out),
            Input::ProposalValidity { height, value, valid } => {
                if let Some(hs) = self.current(height) {
                    hs.validity.entry(value).or_insert(valid);
                }
            }
            Input::ProposeValue { height, round, value } => self.on_propose_value(height, round, value, &mut out),
            Input::Certificate(cert) => self.on_certificate(cert),
        }
        self.drive(&mut out);
        out
    }

    fn current(&mut self, height: Height) -> Option<&mut HeightState> {
        if height == self.state.height {
            self.height.as_mut()
        } else {
            None
        }
    }

    fn reset(&mut self, height: Height, set: ValidatorSet) {
        let me = self.key.as_ref().and_then(|k| set.index_of(&k.public()));
        #[cfg(feature = "fault-injection")]
        let ignore_locks = self.ignore_locks;
        self.state = RoundState::new(height);
        #[cfg(feature = "fault-injection")]
        {
            self.state.ignore_locks = ignore_locks;
        }
        self.height = Some(HeightState {
            keeper: VoteKeeper::new(set.clone()),
            set,
            me,
            proposals: BTreeMap::new(),
            validity: BTreeMap::new(),
            validity_requested: BTreeSet::new(),
            own_votes: BTreeMap::new(),
            own_proposals: BTreeMap::new(),
            fired: BTreeSet::new(),
            evidence_sent: BTreeSet::new(),
        });
    }

    fn on_new_height(&mut self, height: Height, set: ValidatorSet, out: &mut Vec<Output>) {
        if self.height.is_some() && height <= self.state.height {
            return; // heights only move forward
        }
        let buffered = std::mem::take(&mut self.next_height);
        self.reset(height, set);
        self.start_round(Round(0), out);
        for m in buffered.into_iter().filter(|m| m.height() == height) {
            self.on_message(m, out);
        }
    }

    fn on_restore(&mut self, height: Height, set: ValidatorSet, wal: Vec<WalEntry>, out: &mut Vec<Output>) {
        if self.height.is_some() && height <= self.state.height {
            return;
        }
        self.next_height.clear();
        self.reset(height, set);
        let mut max_round: Option<Round> = None;
        for entry in wal.into_iter().filter(|e| e.height() == height) {
            max_round = max_round.max(Some(entry.round()));
            match entry {
                WalEntry::Proposal(sp) => {
                    if let Some(hs) = self.height.as_mut() {
                        hs.own_proposals.insert(sp.proposal.round, sp);
                        hs.validity.insert(sp.proposal.value, true);
                    }
                    self.record_proposal(sp, out);
                    out.push(Output::Broadcast(Message::Proposal(sp)));
                }
                WalEntry::Vote(sv) => {
                    if let Some(hs) = self.height.as_mut() {
                        hs.own_votes.insert((sv.vote.round, sv.vote.kind), sv);
                        hs.keeper.add(sv);
                    }
                    out.push(Output::Broadcast(Message::Vote(sv)));
                }
                WalEntry::Locked { locked, .. } => {
                    if self.state.locked.is_none_or(|l| locked.round >= l.round) {
                        self.state.locked = Some(locked);
                    }
                }
                WalEntry::Valid { valid, .. } => {
                    if self.state.valid.is_none_or(|v| valid.round >= v.round) {
                        self.state.valid = Some(valid);
                    }
                }
            }
        }
        let Some(round) = max_round else {
            self.start_round(Round(0), out);
            return;
        };
        let (voted_prevote, voted_precommit, proposed) = match &self.height {
            Some(hs) => (
                hs.own_votes.contains_key(&(round, VoteKind::Prevote)),
                hs.own_votes.contains_key(&(round, VoteKind::Precommit)),
                hs.own_proposals.contains_key(&round),
            ),
            None => (false, false, false),
        };
        let step = if voted_precommit {
            Some(Step::Precommit)
        } else if voted_prevote {
            Some(Step::Prevote)
        } else if proposed {
            Some(Step::Propose)
        } else {
            None
        };
        self.state.round = round;
        match step {
            Some(step) => {
                self.state.step = step;
                if step == Step::Propose {
                    self.schedule(TimeoutStep::Propose, out);
                }
            }
            // Only a lock or valid value of this round was persisted: start the round afresh (a vote is
            // still signed at most once, see `cast`).
            None => self.start_round(round, out),
        }
    }

    fn on_message(&mut self, msg: Message, out: &mut Vec<Output>) {
        let Some(hs) = self.height.as_ref() else { return };
        let (h, r) = (msg.height(), msg.round());
        if h == self.state.height.next() {
            if self.next_height.len() < self.config.max_buffered_next_height && !self.next_height.contains(&msg) {
                self.next_height.push(msg);
            }
            return;
        }
        if h != self.state.height
            || hs.set.get(msg.signer()).is_none()
            || r.get() > self.state.round.get().saturating_add(self.config.max_round_lookahead)
        {
            return;
        }
        match msg {
            Message::Proposal(sp) => {
                if sp.proposal.proposer != hs.set.proposer(h, r) {
                    return;
                }
                self.record_proposal(sp, out);
            }
            Message::Vote(sv) => self.record_vote(sv, out),
        }
    }

    fn record_proposal(&mut self, sp: SignedProposal, out: &mut Vec<Output>) {
        let height = self.state.height;
        let Some(hs) = self.height.as_mut() else { return };
        let p = sp.proposal;
        let list = hs.proposals.entry(p.round).or_default();
        if list.iter().any(|q| q.proposal == p) {
            return;
        }
        if let Some(first) = list.first().copied() {
            if hs.evidence_sent.insert((p.proposer, p.round, 2)) {
                out.push(Output::Evidence(Equivocation::Proposals(first, sp)));
            }
        }
        if list.len() >= MAX_PROPOSALS_PER_ROUND {
            return;
        }
        list.push(sp);
        hs.keeper.note_sender(p.round, p.proposer);
        if !hs.validity.contains_key(&p.value) && hs.validity_requested.insert(p.value) {
            out.push(Output::RequestValidity { height, value: p.value });
        }
    }

    fn record_vote(&mut self, sv: SignedVote, out: &mut Vec<Output>) {
        let Some(hs) = self.height.as_mut() else { return };
        if let Added::Conflict(first) = hs.keeper.add(sv) {
            let v = sv.vote;
            let tag = match v.kind {
                VoteKind::Prevote => 0,
                VoteKind::Precommit => 1,
            };
            if hs.evidence_sent.insert((v.validator, v.round, tag)) {
                out.push(Output::Evidence(Equivocation::Votes(first, sv)));
            }
        }
    }

    fn on_timeout(&mut self, t: Timeout, out: &mut Vec<Output>) {
        if self.height.is_none() || t.height != self.state.height || t.round != self.state.round {
            return; // L57, L61, L65 act only on the current height and round
        }
        let event = match t.step {
            TimeoutStep::Propose => Event::TimeoutPropose,
            TimeoutStep::Prevote => Event::TimeoutPrevote,
            TimeoutStep::Precommit => Event::TimeoutPrecommit,
        };
        self.apply(event, out);
    }

    fn on_propose_value(&mut self, height: Height, round: Round, value: Value, out: &mut Vec<Output>) {
        let Some(hs) = self.height.as_mut() else { return };
        if height != self.state.height
            || round != self.state.round
            || hs.me.is_none()
            || hs.me != Some(hs.set.proposer(height, round))
            || hs.own_proposals.contains_key(&round)
        {
            return;
        }
        // The host built this block itself: it is valid for us.
        hs.validity.entry(value).or_insert(true);
        self.apply(Event::ProposeValue(value), out);
    }

    fn on_certificate(&mut self, cert: CommitCertificate) {
        let Some(hs) = self.height.as_mut() else { return };
        if self.state.step == Step::Commit || cert.verify(&hs.set, &self.genesis, self.state.height).is_err() {
            return;
        }
        // Its precommits are ordinary verified votes: L49 fires from them in `drive`.
        for (i, sig) in &cert.signatures {
            hs.keeper.add(SignedVote { vote: cert.precommit(*i), signature: *sig });
        }
    }

    /// Loops until no `upon` condition of the paper holds any more.
    fn drive(&mut self, out: &mut Vec<Output>) {
        while let Some(event) = self.pending_event() {
            self.apply(event, out);
        }
    }

    /// The next enabled rule, marking "first time" rules as fired.
    fn pending_event(&mut self) -> Option<Event> {
        let s = &self.state;
        let hs = self.height.as_mut()?;
        if matches!(s.step, Step::Commit | Step::Unstarted) {
            return None;
        }
        let round = s.round;
        // L49: 2f+1 precommits for a value, in any round.
        if let Some((round, value)) = hs.keeper.decision() {
            return Some(Event::PrecommitValue { round, value });
        }
        // L55: f+1 power in a higher round.
        if let Some(r) = hs.keeper.skip_to(round) {
            return Some(Event::SkipRound(r));
        }
        let proposals = hs.proposals.get(&round).map(Vec::as_slice).unwrap_or_default();
        match s.step {
            // L22, L28: the proposal of this round once its validity is known (and its polka, for L28).
            Step::Propose => {
                for sp in proposals {
                    let p = sp.proposal;
                    let Some(&valid) = hs.validity.get(&p.value) else { continue };
                    match p.pol_round {
                        None => return Some(Event::Proposal { value: p.value, valid }),
                        Some(vr) if vr < round && hs.keeper.quorum_for(vr, VoteKind::Prevote, Some(p.value)) => {
                            return Some(Event::ProposalPolkaPrevious { value: p.value, pol_round: vr, valid });
                        }
                        Some(_) => {}
                    }
                }
            }
            // L36: a valid proposal of this round with 2f+1 prevotes for it, first time.
            Step::Prevote | Step::Precommit if !hs.fired.contains(&(round, Once::L36)) => {
                let polka = proposals.iter().map(|sp| sp.proposal.value).find(|v| {
                    hs.validity.get(v) == Some(&true) && hs.keeper.quorum_for(round, VoteKind::Prevote, Some(*v))
                });
                if let Some(value) = polka {
                    hs.fired.insert((round, Once::L36));
                    return Some(Event::ProposalPolkaCurrent(value));
                }
            }
            _ => {}
        }
        if s.step == Step::Prevote {
            // L44: 2f+1 prevotes for nil.
            if hs.keeper.quorum_for(round, VoteKind::Prevote, None) {
                return Some(Event::PolkaNil);
            }
            // L34: 2f+1 prevotes for anything, first time.
            if hs.keeper.quorum_any(round, VoteKind::Prevote) && hs.fired.insert((round, Once::L34)) {
                return Some(Event::PolkaAny);
            }
        }
        // L47: 2f+1 precommits for anything, first time.
        if hs.keeper.quorum_any(round, VoteKind::Precommit) && hs.fired.insert((round, Once::L47)) {
            return Some(Event::PrecommitAny);
        }
        None
    }

    fn start_round(&mut self, round: Round, out: &mut Vec<Output>) {
        let Some(hs) = self.height.as_ref() else { return };
        let proposer = hs.me.is_some() && hs.me == Some(hs.set.proposer(self.state.height, round));
        self.apply(Event::NewRound { round, proposer }, out);
    }

    fn apply(&mut self, event: Event, out: &mut Vec<Output>) {
        let state = self.state.clone();
        let t = state_machine::apply(state, event);
        self.state = t.state;
        for action in t.actions {
            self.execute(action, out);
        }
    }

    fn execute(&mut self, action: Action, out: &mut Vec<Output>) {
        let height = self.state.height;
        let round = self.state.round;
        match action {
            Action::Propose { value, pol_round } => self.propose(value, pol_round, out),
            Action::RequestValue => {
                // Already proposed in this round before a restart: send that proposal again instead.
                let existing = self.height.as_ref().and_then(|hs| hs.own_proposals.get(&round).copied());
                match existing {
                    Some(sp) => {
                        out.push(Output::Broadcast(Message::Proposal(sp)));
                        self.record_proposal(sp, out);
                    }
                    None => out.push(Output::RequestValue { height, round }),
                }
            }
            Action::Prevote(value) => self.cast(VoteKind::Prevote, value, out),
            Action::Precommit(value) => self.cast(VoteKind::Precommit, value, out),
            Action::Lock(locked) => out.push(Output::Persist(WalEntry::Locked { height, locked })),
            Action::SetValid(valid) => out.push(Output::Persist(WalEntry::Valid { height, valid })),
            Action::ScheduleTimeout(step) => self.schedule(step, out),
            Action::Decide(rv) => {
                let Some(hs) = self.height.as_ref() else { return };
                let certificate = CommitCertificate {
                    height,
                    round: rv.round,
                    value: rv.value,
                    signatures: hs.keeper.precommit_signatures(rv.round, rv.value),
                };
                out.push(Output::Decide { height, value: rv.value, certificate });
            }
            Action::StartRound(r) => self.start_round(r, out),
        }
    }

    fn schedule(&self, step: TimeoutStep, out: &mut Vec<Output>) {
        let timeout = Timeout { height: self.state.height, round: self.state.round, step };
        out.push(Output::ScheduleTimeout { timeout, duration_ms: self.config.timeout_ms(step, self.state.round) });
    }

    /// Signs (once per round) and sends our proposal; a proposal persisted before a crash is re-sent as is.
    fn propose(&mut self, value: Value, pol_round: Option<Round>, out: &mut Vec<Output>) {
        let (height, round) = (self.state.height, self.state.round);
        let Some(hs) = self.height.as_mut() else { return };
        let (Some(me), Some(key)) = (hs.me, self.key.as_ref()) else { return };
        let sp = match hs.own_proposals.get(&round) {
            Some(existing) => *existing,
            None => {
                let sp = Proposal { height, round, value, pol_round, proposer: me }.sign(key, &self.genesis);
                hs.own_proposals.insert(round, sp);
                out.push(Output::Persist(WalEntry::Proposal(sp)));
                sp
            }
        };
        hs.validity.entry(sp.proposal.value).or_insert(true);
        out.push(Output::Broadcast(Message::Proposal(sp)));
        self.record_proposal(sp, out);
    }

    /// Signs (once per round and kind) and sends our vote; a vote persisted before a crash is re-sent as is.
    fn cast(&mut self, kind: VoteKind, value: Option<Value>, out: &mut Vec<Output>) {
        let (height, round) = (self.state.height, self.state.round);
        let Some(hs) = self.height.as_mut() else { return };
        let (Some(me), Some(key)) = (hs.me, self.key.as_ref()) else { return };
        let sv = match hs.own_votes.get(&(round, kind)) {
            Some(existing) => *existing,
            None => {
                let sv = Vote { kind, height, round, value, validator: me }.sign(key, &self.genesis);
                hs.own_votes.insert((round, kind), sv);
                out.push(Output::Persist(WalEntry::Vote(sv)));
                sv
            }
        };
        out.push(Output::Broadcast(Message::Vote(sv)));
        self.record_vote(sv, out);
    }
}
