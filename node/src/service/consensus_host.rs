//! The consensus host: the pure Tendermint core with everything around it that is about consensus alone:
//! its timers, the queue of its outputs, the proposed blocks, this validator's own messages (for resends),
//! the idle wait of an empty round 0, a decision that waits for its block, and the evidence seen.
//!
//! It owns that state and hands the event loop one [`Step`] at a time, in the order the core produced its
//! outputs. The loop carries each out (a WAL write, a publish, building a block, judging one, committing)
//! before it asks for the next, and answers through [`ConsensusHost::propose`] and
//! [`ConsensusHost::validity`], which only append to the queue. So the two invariants the loop relies on
//! have one owner and no re-entrancy: a `Persist` is durable before any later output is carried out, and
//! a decision ends its height's queue.
//!
//! Timers are a binary heap keyed by deadline and a sequence number: same-deadline timeouts fire in the
//! order they were scheduled, and clearing them all at a new height is one call. (`tokio_util`'s
//! `DelayQueue` was considered: it returns same-millisecond expiries in no fixed order and its `clear`
//! panics after long uptimes, tokio#5536; the heap is 20 lines.)

use crate::chain::FullBlock;
use crate::fault::VoteFaults;
use crate::proposals::{ProposalRefusal, ProposalStore, Slot, Window};
use crate::wire::{Frame, Gossip};
use consensus::{CommitCertificate, Consensus, Equivocation, Input, Message, Output, Timeout, ValidatorSet, WalEntry};
use primitives::{BlockId, Height, Round, ValidatorIndex};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

/// What the host needs the event loop to do next.
// One step exists at a time (handed out and carried out at once), so the size of a decided block's variant
// costs nothing; boxing it would only add an allocation per height.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step {
    /// Write this entry to the WAL, durably, before asking for the next step.
    Persist(WalEntry),
    /// Publish this on the consensus topic.
    Publish(Gossip),
    /// Our block for `(height, round)` is wanted: answer with [`ConsensusHost::propose`] (or
    /// [`ConsensusHost::wait_for_work`] when round 0 has nothing to carry yet).
    NeedValue { height: Height, round: Round },
    /// Our verdict on the proposed block `value` is wanted: answer with [`ConsensusHost::validity`]. The
    /// block is [`ConsensusHost::proposal`]`(value)`.
    NeedValidity { height: Height, value: BlockId },
    /// `block` is decided with `cert`: commit it, then call [`ConsensusHost::start_height`].
    Decided { block: FullBlock, cert: CommitCertificate },
    /// A block we do not hold was decided: fetch it from peers and hand it to [`ConsensusHost::offer_block`].
    Fetch(BlockId),
}

/// Timeouts the core scheduled, fired in deadline order (ties in scheduling order).
#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    payloads: HashMap<u64, Timeout>,
    seq: u64,
}

impl Timers {
    fn schedule(&mut self, timeout: Timeout, after: Duration) {
        let seq = self.seq;
        self.seq += 1;
        self.payloads.insert(seq, timeout);
        self.heap.push(Reverse((Instant::now() + after, seq)));
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<Timeout> {
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if let Some(t) = self.payloads.remove(&seq) {
                return Some(t);
            }
        }
        None
    }

    fn clear(&mut self) {
        self.heap.clear();
        self.payloads.clear();
    }
}

/// The core and what it needs around it; see the module docs.
pub struct ConsensusHost {
    core: Consensus,
    queue: VecDeque<Output>,
    /// Gossip already made, sent before the next output (a faulty validator's second vote).
    outbox: VecDeque<Gossip>,
    timers: Timers,
    proposals: ProposalStore,
    /// Our proposals and votes of the undecided height, re-sent on every status tick.
    own_messages: Vec<Gossip>,
    resends: u32,
    /// A round-0 value request kept waiting for work until this instant.
    idle: Option<(Height, Round, Instant)>,
    /// Decided, but the block is not here yet.
    pending_decision: Option<(BlockId, CommitCertificate)>,
    evidence: Vec<Equivocation>,
    faults: VoteFaults,
}

impl ConsensusHost {
    /// A host around `core`; `faults` are the test networks' vote faults (none in production).
    pub fn new(core: Consensus, faults: VoteFaults) -> Self {
        Self {
            core,
            queue: VecDeque::new(),
            outbox: VecDeque::new(),
            timers: Timers::default(),
            proposals: ProposalStore::default(),
            own_messages: Vec::new(),
            resends: 0,
            idle: None,
            pending_decision: None,
            evidence: Vec::new(),
            faults,
        }
    }

    /// Starts `height` with `validators`, restoring what `wal` holds for it; everything of the height
    /// before is dropped (timers, our messages, a decision waiting for its block, blocks at or below it).
    pub fn start_height(&mut self, height: Height, validators: ValidatorSet, wal: Vec<WalEntry>) {
        self.queue.clear();
        self.outbox.clear();
        self.timers.clear();
        self.own_messages.clear();
        self.pending_decision = None;
        self.idle = None;
        self.proposals.prune_committed(Height(height.get().saturating_sub(1)));
        let input = if wal.is_empty() {
            Input::NewHeight { height, validators }
        } else {
            info!(%height, entries = wal.len(), "restoring consensus from the WAL");
            Input::Restore { height, validators, wal }
        };
        self.feed(input);
    }

    /// A block the WAL kept (one our WAL entries name), back among the proposals after a restart, so that
    /// re-proposing our valid value finds its body.
    pub fn restore_block(&mut self, block: FullBlock) {
        self.proposals.insert(block.hash(), block);
    }

    /// Hands the core an input; its outputs join the queue.
    pub fn feed(&mut self, input: Input) {
        let outputs = self.core.handle(input);
        self.queue.extend(outputs);
    }

    /// Whether steps are waiting.
    pub fn has_steps(&self) -> bool {
        !self.queue.is_empty() || !self.outbox.is_empty()
    }

    /// The next thing for the loop to carry out; what concerns the host alone (timers, evidence) is done
    /// here. After a decision the queue is empty: the loop commits and starts the next height.
    pub fn next_step(&mut self) -> Option<Step> {
        if let Some(gossip) = self.outbox.pop_front() {
            return Some(Step::Publish(gossip));
        }
        while let Some(out) = self.queue.pop_front() {
            match out {
                Output::Persist(entry) => return Some(Step::Persist(entry)),
                Output::Broadcast(msg) => {
                    if let Some(gossip) = self.own_gossip(msg) {
                        return Some(Step::Publish(gossip));
                    }
                }
                Output::ScheduleTimeout { timeout, duration_ms } => {
                    self.timers.schedule(timeout, Duration::from_millis(duration_ms))
                }
                Output::RequestValue { height, round } => return Some(Step::NeedValue { height, round }),
                Output::RequestValidity { height, value } => {
                    if self.proposals.contains_key(&value) {
                        return Some(Step::NeedValidity { height, value });
                    }
                }
                Output::Decide { height, value, certificate } => {
                    info!(%height, block = %value, round = %certificate.round, "decided");
                    // What the old height still had queued is moot once it is decided.
                    self.queue.clear();
                    if let Some(block) = self.proposals.get(&value).cloned() {
                        return Some(Step::Decided { block, cert: certificate });
                    }
                    warn!(%height, block = %value, "decided a block we do not have; fetching it");
                    self.pending_decision = Some((value, certificate));
                    return Some(Step::Fetch(value));
                }
                Output::Evidence(e) => {
                    warn!(offender = %e.offender(), height = %e.height(), round = %e.round(), "equivocation");
                    self.evidence.push(e);
                }
            }
        }
        None
    }

    /// Our message as gossip (a proposal with its block), kept for resends; the vote faults apply here.
    fn own_gossip(&mut self, msg: Message) -> Option<Gossip> {
        let gossip = match msg {
            Message::Proposal(p) => match self.proposals.get(&p.proposal.value) {
                Some(block) => Gossip::Proposal { proposal: p, block: Box::new(block.clone()) },
                None => {
                    warn!(block = %p.proposal.value, "own proposal without its block; not sent");
                    return None;
                }
            },
            Message::Vote(v) => {
                let (vote, twin) = self.faults.apply(v);
                if let Some(twin) = twin {
                    // Sent first, and never re-sent.
                    self.own_messages.push(Gossip::Vote(vote));
                    self.outbox.push_back(Gossip::Vote(vote));
                    return Some(Gossip::Vote(twin));
                }
                Gossip::Vote(vote)
            }
        };
        self.own_messages.push(gossip.clone());
        Some(gossip)
    }

    /// Our block for `(height, round)`: kept, and handed to the core. `None`: we propose nothing (the
    /// round times out as for an absent proposer).
    pub fn propose(&mut self, height: Height, round: Round, block: Option<FullBlock>) {
        let Some(block) = block else { return };
        let value = block.hash();
        self.proposals.insert(value, block);
        self.feed(Input::ProposeValue { height, round, value });
    }

    /// Our verdict on the proposed block `value`.
    pub fn validity(&mut self, height: Height, value: BlockId, valid: bool) {
        self.feed(Input::ProposalValidity { height, value, valid });
    }

    /// Keeps a round-0 value request waiting until `until` or until [`Self::take_idle`] is called.
    pub fn wait_for_work(&mut self, height: Height, round: Round, until: Instant) {
        self.idle = Some((height, round, until));
    }

    /// When the idle wait ends, if one is running.
    pub fn idle_deadline(&self) -> Option<Instant> {
        self.idle.map(|(_, _, at)| at)
    }

    /// Ends the idle wait: the `(height, round)` whose value is now wanted, if that round is still current.
    pub fn take_idle(&mut self) -> Option<(Height, Round)> {
        let (height, round, _) = self.idle.take()?;
        (self.core.height() == height && self.core.round() == round).then_some((height, round))
    }

    /// When the next timeout fires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Hands the core every timeout due at `now`.
    pub fn fire_due(&mut self, now: Instant) {
        while let Some(t) = self.timers.pop_due(now) {
            self.feed(Input::TimeoutElapsed(t));
        }
    }

    /// Admits a gossiped, signature-checked proposal for `slot` (see [`crate::proposals`]). On admission,
    /// the decided block we were waiting for comes back to commit; otherwise the core gets the proposal.
    pub fn admit_proposal(
        &mut self,
        tip_next: Height,
        expected: ValidatorIndex,
        slot: Slot,
        proposal: consensus::SignedProposal,
        block: FullBlock,
    ) -> Result<Option<(FullBlock, CommitCertificate)>, ProposalRefusal> {
        let window = Window { height: tip_next, round: self.core.round() };
        // Old rounds go (a long stall must not grow the store), but never a value consensus needs.
        let needed = [self.core.locked(), self.core.valid()].into_iter().flatten().map(|v| v.value);
        let keep: Vec<BlockId> = needed.chain(self.pending_decision.as_ref().map(|d| d.0)).collect();
        self.proposals.prune_rounds(window, &keep);
        // Kept per (height, round, proposer), so a flood by one validator cannot crowd out another's block;
        // what is not kept is not handed to the core either (it could never judge it).
        self.proposals.admit(window, expected, slot, proposal.proposal.value, block)?;
        if let Some(ready) = self.take_ready_decision() {
            return Ok(Some(ready));
        }
        self.feed(Input::Proposal(proposal));
        Ok(None)
    }

    /// A block fetched for the decision waiting for it: back to commit when it is that block.
    pub fn offer_block(&mut self, block: FullBlock) -> Option<(FullBlock, CommitCertificate)> {
        let (value, _) = self.pending_decision.as_ref()?;
        if block.hash() != *value {
            return None;
        }
        self.proposals.insert(*value, block);
        self.take_ready_decision()
    }

    fn take_ready_decision(&mut self) -> Option<(FullBlock, CommitCertificate)> {
        let (value, _) = self.pending_decision.as_ref()?;
        let block = self.proposals.get(value)?.clone();
        let (_, cert) = self.pending_decision.take()?;
        Some((block, cert))
    }

    /// A proposed block we hold.
    pub fn proposal(&self, value: &BlockId) -> Option<&FullBlock> {
        self.proposals.get(value)
    }

    /// Our latest few messages of the undecided height, framed as the `resend`-th re-send (gossip drops an
    /// identical message, so each re-send is a new frame). Gossip delivers once, to whoever is connected
    /// then: re-sending keeps the eventual delivery Tendermint's liveness assumes.
    pub fn resends(&mut self) -> Vec<Frame> {
        if self.own_messages.is_empty() {
            return Vec::new();
        }
        self.resends = self.resends.wrapping_add(1);
        let start = self.own_messages.len().saturating_sub(4);
        self.own_messages[start..].iter().map(|body| Frame { resend: self.resends, body: body.clone() }).collect()
    }

    /// Equivocations seen (newest last).
    pub fn evidence(&self) -> &[Equivocation] {
        &self.evidence
    }

    /// The core, for the status (height, round, step, lock).
    pub fn core(&self) -> &Consensus {
        &self.core
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proposals::test_block as block;
    use consensus::{Vote, VoteKind};
    use primitives::Keypair;
    use primitives::{GenesisHash, Hash32};

    const GENESIS: GenesisHash = GenesisHash(Hash32([7; 32]));

    fn keys(n: u8) -> Vec<Keypair> {
        (1..=n).map(|i| Keypair::from_secret([i; 32])).collect()
    }

    fn set(keys: &[Keypair]) -> ValidatorSet {
        ValidatorSet::new(keys.iter().map(|k| (k.public(), 1)).collect()).expect("valid set")
    }

    fn host(key: &Keypair, faults: VoteFaults) -> ConsensusHost {
        ConsensusHost::new(Consensus::new(consensus::Config::default(), GENESIS, Some(key.clone())), faults)
    }

    /// Every step until the queue is empty or a step the test must answer comes.
    fn steps_until_answer(host: &mut ConsensusHost, log: &mut Vec<String>) -> Option<Step> {
        while let Some(step) = host.next_step() {
            match &step {
                Step::Persist(WalEntry::Vote(v)) => log.push(format!("persist {:?}", v.vote.kind)),
                Step::Persist(_) => log.push("persist other".into()),
                Step::Publish(Gossip::Vote(v)) => log.push(format!("publish {:?}", v.vote.kind)),
                Step::Publish(_) => log.push("publish other".into()),
                _ => return Some(step),
            }
        }
        None
    }

    #[test]
    fn a_lone_validator_decides_its_own_block_and_persists_each_vote_before_sending_it() {
        let keys = keys(1);
        let mut host = host(&keys[0], VoteFaults::default());
        host.start_height(Height(1), set(&keys), Vec::new());
        let mut log = Vec::new();
        let Some(Step::NeedValue { height, round }) = steps_until_answer(&mut host, &mut log) else {
            panic!("the proposer is asked for a value first")
        };
        let ours = block(1, 1);
        host.propose(height, round, Some(ours.clone()));
        let decided = loop {
            match steps_until_answer(&mut host, &mut log) {
                Some(Step::NeedValidity { height, value }) => {
                    assert_eq!(host.proposal(&value).map(FullBlock::hash), Some(ours.hash()));
                    host.validity(height, value, true);
                }
                Some(Step::Decided { block, cert }) => break (block, cert),
                other => panic!("unexpected step {other:?}"),
            }
        };
        assert_eq!(decided.0.hash(), ours.hash());
        assert_eq!(decided.1.value, ours.hash());
        assert!(!host.has_steps(), "a decision ends its height's queue");
        for kind in ["Prevote", "Precommit"] {
            let persisted = log.iter().position(|l| *l == format!("persist {kind}")).expect("persisted");
            let published = log.iter().position(|l| *l == format!("publish {kind}")).expect("published");
            assert!(persisted < published, "{kind} sent before it was durable: {log:?}");
        }
    }

    #[test]
    fn a_decision_on_a_block_we_lack_asks_for_it_and_takes_only_that_block() {
        let keys = keys(4);
        let validators = set(&keys);
        let mut host = host(&keys[0], VoteFaults::default());
        host.start_height(Height(1), validators.clone(), Vec::new());
        let decided = block(1, 42);
        for key in &keys[1..] {
            let validator = validators.index_of(&key.public()).expect("member");
            let vote = Vote {
                kind: VoteKind::Precommit,
                height: Height(1),
                round: Round(0),
                value: Some(decided.hash()),
                validator,
            };
            host.feed(Input::Vote(vote.sign(key, &GENESIS)));
        }
        let mut log = Vec::new();
        let step = loop {
            match steps_until_answer(&mut host, &mut log) {
                Some(Step::NeedValue { .. }) | Some(Step::NeedValidity { .. }) => continue,
                other => break other,
            }
        };
        assert!(matches!(step, Some(Step::Fetch(h)) if h == decided.hash()), "got {step:?}");
        assert!(host.offer_block(block(1, 43)).is_none(), "another block is not the decided one");
        let (fb, cert) = host.offer_block(decided.clone()).expect("the decided block completes the decision");
        assert_eq!((fb.hash(), cert.value), (decided.hash(), decided.hash()));
        assert!(host.offer_block(decided).is_none(), "handed back once");
    }

    #[test]
    fn vote_faults_change_what_is_sent_and_resends_carry_only_our_real_votes() {
        let keys = keys(1);
        let faults = VoteFaults { equivocate: true, precommit_nil: true, key: Some((keys[0].clone(), GENESIS)) };
        let mut host = host(&keys[0], faults);
        host.start_height(Height(1), set(&keys), Vec::new());
        let mut published = Vec::new();
        let mut answer = |host: &mut ConsensusHost, step: Step| match step {
            Step::Publish(Gossip::Vote(v)) => published.push(v.vote),
            Step::NeedValue { height, round } => host.propose(height, round, Some(block(1, 1))),
            Step::NeedValidity { height, value } => host.validity(height, value, true),
            _ => {}
        };
        for _ in 0..64 {
            let Some(step) = host.next_step() else { break };
            answer(&mut host, step);
        }
        let prevotes: Vec<_> = published.iter().filter(|v| v.kind == VoteKind::Prevote).collect();
        assert_eq!(prevotes.len(), 2, "equivocation: a nil twin and the real prevote: {published:?}");
        assert_eq!((prevotes[0].value, prevotes[1].value.is_some()), (None, true), "the twin goes first");
        let precommits: Vec<_> = published.iter().filter(|v| v.kind == VoteKind::Precommit).collect();
        assert!(!precommits.is_empty() && precommits.iter().all(|v| v.value.is_none()), "precommits are nil");
        let resent: Vec<Gossip> = host.resends().into_iter().map(|f| f.body).collect();
        let twin_resent = resent
            .iter()
            .any(|g| matches!(g, Gossip::Vote(v) if v.vote.kind == VoteKind::Prevote && v.vote.value.is_none()));
        assert!(!twin_resent, "the twin is never re-sent");
        assert!(resent.len() <= 4 && !resent.is_empty());
        let again = host.resends();
        assert!(again.iter().all(|f| f.resend == 2), "each re-send is a new frame");
    }

    #[test]
    fn timers_fire_in_deadline_order_and_clear_at_once() {
        let mut timers = Timers::default();
        let t = |r: u32| Timeout { height: Height(1), round: Round(r), step: consensus::TimeoutStep::Propose };
        timers.schedule(t(2), Duration::from_millis(20));
        timers.schedule(t(0), Duration::from_millis(10));
        timers.schedule(t(1), Duration::from_millis(10));
        let later = Instant::now() + Duration::from_secs(1);
        let fired: Vec<u32> = std::iter::from_fn(|| timers.pop_due(later)).map(|t| t.round.get()).collect();
        assert_eq!(fired, vec![0, 1, 2]);
        timers.schedule(t(3), Duration::from_secs(60));
        assert!(timers.pop_due(Instant::now()).is_none(), "not due yet");
        timers.clear();
        assert!(timers.next_deadline().is_none());
    }
}
