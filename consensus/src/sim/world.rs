//! The simulated world: an event queue over simulated milliseconds, the network model, one host per
//! validator carrying out its core's outputs (WAL, timers, block factory, validity oracle), and the checks
//! of every property on every event.
//!
//! Invariant owned here: the checks see everything. Every decision is compared across validators
//! (agreement), against the set of proposed valid blocks (validity) and against its certificate; every own
//! message an honest validator broadcasts must already be in its WAL and must be the only one it ever signed
//! for that `(height, round, step)`.

use super::byzantine::{self, Behaviour};
use super::{Options, Outcome, Rng, Scenario};
use crate::cert::CommitCertificate;
use crate::config::Config;
use crate::driver::Consensus;
use crate::interface::{Input, Output, WalEntry};
use crate::types::{Message, SignedVote, Value, VoteKind};
use crate::validators::ValidatorSet;
use primitives::{canonical_bytes, tagged_hash, BlockId, GenesisHash, Hash32, Height, Keypair, Round, ValidatorIndex};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

const GENESIS: GenesisHash = GenesisHash(Hash32([0x5c; 32]));
/// Message delay bound after GST.
const DELTA_MS: u64 = 40;

/// How an honest validator's bitcoind judges blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// Right, quickly.
    Correct,
    /// Right, but seconds late.
    Late,
    /// Never answers.
    Never,
    /// Says every block is invalid.
    Dissent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Honest(View),
    Byzantine(Behaviour),
}

#[derive(Clone, Debug)]
enum Payload {
    Msg(Message),
    Status(Height),
    Cert(CommitCertificate),
}

#[derive(Clone, Debug)]
enum Ev {
    Deliver { to: usize, from: usize, payload: Payload },
    Timer { node: usize, epoch: u32, input: Input },
    Crash { node: usize },
    Restart { node: usize },
    Gst,
}

/// Min-heap entry ordered by `(time, seq)`; `seq` makes ties deterministic.
struct Queued {
    at: u64,
    seq: u64,
    ev: Ev,
}
impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Node {
    role: Role,
    key: Keypair,
    core: Option<Consensus>,
    epoch: u32,
    /// The durable WAL of the current height (what `Persist` asked for).
    wal: Vec<WalEntry>,
    /// Durable block store: decided heights and their certificates.
    decided: BTreeMap<Height, CommitCertificate>,
    /// Sim-side record of every own message ever broadcast, by `(height, round, step)`.
    signed: BTreeMap<(Height, Round, u8), Message>,
    /// Distinct messages per `(signer, height, round, step)` delivered to the current core at its height.
    received: BTreeMap<(ValidatorIndex, Height, Round, u8), BTreeSet<Vec<u8>>>,
    /// Evidence this validator reported.
    evidence: BTreeSet<(ValidatorIndex, Height, Round, u8)>,
    /// Status replies already sent, to rate-limit sync.
    status_sent: BTreeSet<(usize, Height)>,
}

impl Node {
    fn height(&self) -> Height {
        Height(self.decided.len() as u64 + 1)
    }
    fn honest(&self) -> bool {
        matches!(self.role, Role::Honest(_))
    }
}

struct World {
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Queued>,
    nodes: Vec<Node>,
    set: ValidatorSet,
    config: Config,
    opts: Options,
    gst: u64,
    /// Nodes on side A of the partition (messages across sides are lost before GST), if any.
    partition: Option<(u64, Vec<bool>)>,
    valid_blocks: BTreeSet<Value>,
    proposed: BTreeSet<Value>,
    decisions: BTreeMap<Height, Value>,
    sig_ok: HashMap<Vec<u8>, bool>,
    violations: Vec<String>,
    trace: u64,
    events: u64,
    block_counter: u64,
}

fn tag_of(m: &Message) -> u8 {
    match m {
        Message::Proposal(_) => 2,
        Message::Vote(v) if v.vote.kind == VoteKind::Prevote => 0,
        Message::Vote(_) => 1,
    }
}

/// Runs one simulation.
pub fn run(seed: u64, scenario: Scenario, n: usize, opts: &Options) -> Outcome {
    let mut w = World::new(seed, scenario, n, opts.clone());
    w.main_loop();
    w.final_checks();
    let roles: Vec<String> = w.nodes.iter().map(|x| format!("{:?}", x.role)).collect();
    let setup = format!("roles {roles:?}, gst {} ms, partition {:?}", w.gst, w.partition);
    let evidence = w.nodes.iter().filter(|x| x.honest()).map(|x| x.evidence.len()).sum();
    Outcome {
        seed,
        scenario,
        n,
        trace_hash: w.trace,
        violations: w.violations,
        end_ms: w.now,
        events: w.events,
        evidence,
        setup,
    }
}

impl World {
    fn new(seed: u64, scenario: Scenario, n: usize, opts: Options) -> World {
        let mut rng = Rng::new(seed);
        let f = (n - 1) / 3;
        let keys: Vec<Keypair> = (0..n)
            .map(|i| {
                let mut s = [0u8; 32];
                s[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                Keypair::from_secret(s)
            })
            .collect();
        let set = ValidatorSet::equal_power(keys.iter().map(|k| k.public()).collect())
            .expect("distinct keys with power 1 form a valid set");
        let (byz, dissent, crashes) = match scenario {
            Scenario::Clean => (0, 0, 0),
            Scenario::Byzantine => (f, 0, 0),
            Scenario::Validity => (0, f, 0),
            Scenario::Crash => (0, 0, rng.range(1, 3)),
            Scenario::Mixed => (f.min(1), f - f.min(1), rng.range(1, 2)),
        };
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let mut roles = vec![Role::Honest(View::Correct); n];
        for &i in &order[..byz] {
            roles[i] = Role::Byzantine(Behaviour::ALL[rng.index(Behaviour::ALL.len())]);
        }
        for &i in &order[byz..byz + dissent] {
            roles[i] = Role::Honest([View::Late, View::Never, View::Dissent][rng.index(3)]);
        }
        let gst = rng.range(500, 4000);
        let partition = rng.chance(500).then(|| {
            let side = (0..n).map(|_| rng.chance(500)).collect();
            (rng.range(0, gst), side)
        });
        let config = Config {
            propose_ms: 300,
            propose_delta_ms: 100,
            prevote_ms: 150,
            prevote_delta_ms: 100,
            precommit_ms: 150,
            precommit_delta_ms: 100,
            ..Config::default()
        };
        assert!(
            cfg!(feature = "fault-injection") || !opts.ignore_locks,
            "ignore_locks needs the fault-injection feature"
        );
        let nodes = keys
            .into_iter()
            .zip(roles)
            .map(|(key, role)| Node {
                role,
                core: None,
                key,
                epoch: 0,
                wal: vec![],
                decided: BTreeMap::new(),
                signed: BTreeMap::new(),
                received: BTreeMap::new(),
                evidence: BTreeSet::new(),
                status_sent: BTreeSet::new(),
            })
            .collect();
        let mut w = World {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            set,
            config,
            opts,
            gst,
            partition,
            valid_blocks: BTreeSet::new(),
            proposed: BTreeSet::new(),
            decisions: BTreeMap::new(),
            sig_ok: HashMap::new(),
            violations: vec![],
            trace: 0xcbf2_9ce4_8422_2325,
            events: 0,
            block_counter: 0,
        };
        // Crash-restarts of honest validators, all back before GST so liveness is measured from GST.
        let honest: Vec<usize> = (0..n).filter(|&i| w.nodes[i].honest()).collect();
        for _ in 0..crashes {
            let node = honest[w.rng.index(honest.len())];
            let at = w.rng.range(1, w.gst.saturating_sub(60).max(2));
            let back = (at + w.rng.range(20, 2000)).min(w.gst);
            w.push(at, Ev::Crash { node });
            w.push(back.max(at + 1), Ev::Restart { node });
        }
        w.push(w.gst, Ev::Gst);
        for i in 0..n {
            w.start_node(i, false);
        }
        w
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued { at, seq: self.seq, ev });
    }

    fn mix(&mut self, x: u64) {
        self.trace = (self.trace ^ x).wrapping_mul(0x0000_0100_0000_01b3);
    }

    fn honest_done(&self) -> bool {
        self.nodes.iter().filter(|x| x.honest()).all(|x| x.height().0 > self.opts.heights)
    }

    fn deadline(&self) -> u64 {
        self.gst + 20_000 + self.opts.heights * self.opts.per_height_bound_ms
    }

    fn main_loop(&mut self) {
        while let Some(q) = self.queue.pop() {
            if self.honest_done() || q.at > self.deadline() || !self.violations.is_empty() {
                break;
            }
            self.now = q.at;
            self.events += 1;
            self.mix(q.at);
            self.mix(q.seq);
            match q.ev {
                Ev::Deliver { to, from, payload } => self.deliver(to, from, payload),
                Ev::Timer { node, epoch, input } => {
                    if self.nodes[node].epoch == epoch && self.nodes[node].core.is_some() {
                        self.mix(node as u64);
                        self.feed(node, input);
                    }
                }
                Ev::Crash { node } => self.crash(node),
                Ev::Restart { node } => {
                    // Overlapping crash windows of one node: a restart of a running node crashes it first.
                    if self.nodes[node].core.is_some() {
                        self.crash(node);
                    }
                    self.start_node(node, true)
                }
                Ev::Gst => {
                    // Partitions heal; every node announces its height so peers resend what was lost.
                    for i in 0..self.nodes.len() {
                        self.announce(i);
                    }
                }
            }
        }
    }

    fn crash(&mut self, node: usize) {
        self.check_evidence(node);
        let x = &mut self.nodes[node];
        x.core = None;
        x.epoch += 1;
        x.received.clear();
    }

    fn start_node(&mut self, i: usize, restore: bool) {
        if matches!(self.nodes[i].role, Role::Byzantine(Behaviour::Silent)) {
            return;
        }
        let key = self.nodes[i].key.clone();
        #[allow(unused_mut)] // mutated only with the fault-injection feature
        let mut core = Consensus::new(self.config.clone(), GENESIS, Some(key));
        #[cfg(feature = "fault-injection")]
        core.inject_ignore_locks(self.opts.ignore_locks);
        self.nodes[i].core = Some(core);
        let height = self.nodes[i].height();
        let validators = self.set.clone();
        let input = if restore {
            Input::Restore { height, validators, wal: self.nodes[i].wal.clone() }
        } else {
            Input::NewHeight { height, validators }
        };
        self.feed(i, input);
        self.announce(i);
    }

    fn announce(&mut self, i: usize) {
        if self.nodes[i].core.is_none() {
            return;
        }
        let h = self.nodes[i].height();
        for j in 0..self.nodes.len() {
            if j != i {
                self.send(i, j, Payload::Status(h));
            }
        }
    }

    /// Network model: loss, duplication and delay before GST, a partition until GST, bounded delay after.
    fn send(&mut self, from: usize, to: usize, payload: Payload) {
        let before_gst = self.now < self.gst;
        if before_gst {
            if let Some((start, side)) = &self.partition {
                if self.now >= *start && side[from] != side[to] {
                    return;
                }
            }
            if self.rng.chance(100) {
                return;
            }
        }
        let copies = if self.rng.chance(50) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = if before_gst { self.rng.range(1, 400) } else { self.rng.range(1, DELTA_MS) };
            self.push(self.now + delay, Ev::Deliver { to, from, payload: payload.clone() });
        }
    }

    fn verified(&mut self, m: &Message) -> bool {
        let bytes = canonical_bytes(m);
        if let Some(ok) = self.sig_ok.get(&bytes) {
            return *ok;
        }
        let ok = m.verify(&self.set, &GENESIS).is_ok();
        self.sig_ok.insert(bytes, ok);
        ok
    }

    /// A certificate verifies: the first one per height through `CommitCertificate::verify` itself, later
    /// ones signature by signature through the gossip memo (same checks, no repeated crypto).
    fn cert_verified(&mut self, c: &CommitCertificate) -> bool {
        if !self.decisions.contains_key(&c.height) {
            return c.verify(&self.set, &GENESIS, c.height).is_ok();
        }
        let mut signers = BTreeSet::new();
        for (i, sig) in &c.signatures {
            let m = Message::Vote(SignedVote { vote: c.precommit(*i), signature: *sig });
            if !signers.insert(*i) || !self.verified(&m) {
                return false;
            }
        }
        self.set.is_quorum(signers.iter().map(|i| self.set.power(*i)).sum())
    }

    fn deliver(&mut self, to: usize, from: usize, payload: Payload) {
        if self.nodes[to].core.is_none() {
            return;
        }
        self.mix((to as u64) << 32 | from as u64);
        let here = self.nodes[to].height();
        match payload {
            Payload::Msg(m) => {
                self.mix(u64::from_le_bytes(sig_prefix(&m)));
                if !self.verified(&m) {
                    return; // the host drops bad signatures before the core sees them
                }
                let h = m.height();
                if h == here {
                    let key = (m.signer(), h, m.round(), tag_of(&m));
                    self.nodes[to].received.entry(key).or_default().insert(canonical_bytes(&m));
                } else if h > here && self.nodes[to].status_sent.insert((from, here)) {
                    // A peer is ahead: ask it for the certificates we miss.
                    self.send(to, from, Payload::Status(here));
                }
                let input = match m {
                    Message::Proposal(p) => Input::Proposal(p),
                    Message::Vote(v) => Input::Vote(v),
                };
                self.feed(to, input);
            }
            Payload::Status(h) => {
                if h < here {
                    if let Some(c) = self.nodes[to].decided.get(&h).cloned() {
                        self.send(to, from, Payload::Cert(c));
                    }
                } else if h == here {
                    let own: Vec<Message> = self.nodes[to]
                        .wal
                        .iter()
                        .filter_map(|e| match e {
                            WalEntry::Proposal(p) => Some(Message::Proposal(*p)),
                            WalEntry::Vote(v) => Some(Message::Vote(*v)),
                            _ => None,
                        })
                        .collect();
                    for m in own {
                        self.send_own(to, Some(from), m);
                    }
                } else if self.nodes[to].status_sent.insert((from, here)) {
                    self.send(to, from, Payload::Status(here));
                }
            }
            Payload::Cert(c) => {
                if c.height == here {
                    self.feed(to, Input::Certificate(c));
                }
            }
        }
    }

    /// Hands an input to node `i`'s core and carries out the outputs, checking them.
    fn feed(&mut self, i: usize, input: Input) {
        let Some(core) = self.nodes[i].core.as_mut() else { return };
        let outs = core.handle(input);
        for o in outs {
            self.carry_out(i, o);
        }
    }

    fn carry_out(&mut self, i: usize, o: Output) {
        let epoch = self.nodes[i].epoch;
        match o {
            Output::Persist(e) => self.nodes[i].wal.push(e),
            Output::Broadcast(m) => {
                let own = match m {
                    Message::Proposal(p) => WalEntry::Proposal(p),
                    Message::Vote(v) => WalEntry::Vote(v),
                };
                if !self.nodes[i].wal.contains(&own) {
                    self.fail(format!("node {i} broadcast {m:?} before persisting it"));
                }
                let slot = (m.height(), m.round(), tag_of(&m));
                match self.nodes[i].signed.get(&slot) {
                    Some(prev) if *prev != m && self.nodes[i].honest() => {
                        self.fail(format!("honest node {i} signed two messages for {slot:?}: {prev:?} / {m:?}"))
                    }
                    _ => {
                        self.nodes[i].signed.insert(slot, m);
                    }
                }
                if let Message::Proposal(p) = m {
                    self.proposed.insert(p.proposal.value);
                }
                self.send_own(i, None, m);
            }
            Output::ScheduleTimeout { timeout, duration_ms } => {
                let input = Input::TimeoutElapsed(timeout);
                self.push(self.now + duration_ms, Ev::Timer { node: i, epoch, input });
            }
            Output::RequestValue { height, round } => {
                let value = self.fresh_block(height, round);
                let delay = self.rng.range(1, 30);
                self.push(
                    self.now + delay,
                    Ev::Timer { node: i, epoch, input: Input::ProposeValue { height, round, value } },
                );
            }
            Output::RequestValidity { height, value } => {
                let truth = self.valid_blocks.contains(&value);
                let (delay, valid) = match self.nodes[i].role {
                    Role::Honest(View::Correct) | Role::Byzantine(_) => (self.rng.range(1, 50), truth),
                    Role::Honest(View::Late) => (self.rng.range(500, 6000), truth),
                    Role::Honest(View::Dissent) => (self.rng.range(1, 50), false),
                    Role::Honest(View::Never) => return,
                };
                let input = Input::ProposalValidity { height, value, valid };
                self.push(self.now + delay, Ev::Timer { node: i, epoch, input });
            }
            Output::Decide { height, value, certificate } => self.on_decide(i, height, value, certificate),
            Output::Evidence(e) => {
                if e.verify(&self.set, &GENESIS).is_err() {
                    self.fail(format!("node {i} reported evidence that does not verify: {e:?}"));
                }
                let tag = match e {
                    crate::Equivocation::Votes(a, _) if a.vote.kind == VoteKind::Prevote => 0,
                    crate::Equivocation::Votes(..) => 1,
                    crate::Equivocation::Proposals(..) => 2,
                };
                self.nodes[i].evidence.insert((e.offender(), e.height(), e.round(), tag));
            }
        }
    }

    fn fresh_block(&mut self, height: Height, round: Round) -> Value {
        self.block_counter += 1;
        let v = BlockId(tagged_hash(
            "sim/block",
            &[&height.0.to_le_bytes(), &round.0.to_le_bytes(), &self.block_counter.to_le_bytes()],
        ));
        self.valid_blocks.insert(v);
        v
    }

    /// Sends an own message to everyone (or to `only`), through the node's Byzantine behaviour if any.
    fn send_own(&mut self, i: usize, only: Option<usize>, m: Message) {
        let sends = match self.nodes[i].role {
            Role::Honest(_) => vec![(m, true)],
            Role::Byzantine(b) => {
                let key = self.nodes[i].key.clone();
                let mut rng = self.rng.clone();
                let mut minted = Vec::new();
                let out = byzantine::mutate(b, m, &key, &GENESIS, &mut rng, &mut |h, r| {
                    let v = BlockId(tagged_hash("sim/byz-block", &[&h.0.to_le_bytes(), &r.0.to_le_bytes()]));
                    minted.push(v);
                    v
                });
                self.rng = rng;
                for v in minted {
                    self.valid_blocks.insert(v);
                    self.proposed.insert(v);
                }
                out
            }
        };
        for (msg, to_all) in sends {
            for j in 0..self.nodes.len() {
                if j == i || only.is_some_and(|o| o != j) || (!to_all && self.rng.chance(500)) {
                    continue;
                }
                self.send(i, j, Payload::Msg(msg));
            }
        }
    }

    fn on_decide(&mut self, i: usize, height: Height, value: Value, cert: CommitCertificate) {
        if height != self.nodes[i].height() {
            self.fail(format!("node {i} decided height {height} while at {}", self.nodes[i].height()));
            return;
        }
        if cert.value != value || !self.cert_verified(&cert) {
            self.fail(format!("node {i} decided {value:?} at {height} with a bad certificate"));
        }
        if self.nodes[i].honest() {
            match self.decisions.get(&height) {
                Some(first) if *first != value => {
                    self.fail(format!("agreement: height {height} decided {first:?} and {value:?} (node {i})"))
                }
                _ => {
                    self.decisions.insert(height, value);
                }
            }
            if !self.valid_blocks.contains(&value) || !self.proposed.contains(&value) {
                self.fail(format!("validity: node {i} decided {value:?} at {height}, not a proposed valid block"));
            }
        }
        self.check_evidence(i);
        let x = &mut self.nodes[i];
        x.decided.insert(height, cert);
        x.wal.clear();
        x.received.clear();
        let next = x.height();
        if next.0 <= self.opts.heights + 1 {
            let validators = self.set.clone();
            self.feed(i, Input::NewHeight { height: next, validators });
            self.announce(i);
        }
    }

    fn final_checks(&mut self) {
        if !self.honest_done() && self.violations.is_empty() {
            let behind: Vec<(usize, u64)> = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, x)| x.honest() && x.height().0 <= self.opts.heights)
                .map(|(i, x)| (i, x.height().0))
                .collect();
            let states: Vec<String> = self
                .nodes
                .iter()
                .map(|x| match &x.core {
                    Some(c) => {
                        format!("h{} r{} {:?} lock {:?}", c.height(), c.round(), c.step(), c.locked().map(|l| l.round))
                    }
                    None => "down".into(),
                })
                .collect();
            self.fail(format!("states {states:?}"));
            self.fail(format!(
                "liveness: by {} ms (GST {} ms) honest nodes (index, height) {behind:?} had not decided {} heights",
                self.now, self.gst, self.opts.heights
            ));
        }
        for i in 0..self.nodes.len() {
            self.check_evidence(i);
        }
    }

    /// Every equivocation delivered to an honest core at its height was reported by it.
    fn check_evidence(&mut self, i: usize) {
        let x = &self.nodes[i];
        if !x.honest() {
            return;
        }
        let missing: Vec<String> = x
            .received
            .iter()
            .filter(|(key, bodies)| bodies.len() >= 2 && !x.evidence.contains(key))
            .map(|(key, bodies)| {
                format!("evidence: node {i} saw {} messages for {key:?} and reported none", bodies.len())
            })
            .collect();
        self.violations.extend(missing);
    }

    fn fail(&mut self, v: String) {
        self.violations.push(v);
    }
}

fn sig_prefix(m: &Message) -> [u8; 8] {
    let s = match m {
        Message::Proposal(p) => p.signature.0,
        Message::Vote(v) => v.signature.0,
    };
    let mut out = [0u8; 8];
    out.copy_from_slice(&s[..8]);
    out
}
