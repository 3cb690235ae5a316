//! The node's event loop: one `select!` over the network, RPC commands, timers and sync answers, which
//! hands each event to the component that owns its state and carries out what the components return
//! (WAL writes, publishes, verdicts, commits).
//!
//! The loop's state is `state::State`, below every handler; the handlers are split by concern: opening
//! the node (`start`), commands (`commands`), commits (`commit`), the status and alerts (`status`).
//!
//! The components, each owning its state:
//! - `consensus_host`: the Tendermint core, its timers, output queue, proposals, resends and evidence;
//!   it returns one `Step` at a time;
//! - `proposer` and `validity`: read-only; build our block, judge another's (typed `validity::Refusal`);
//! - `gossip`: read-only; what a message is and the verdict rules;
//! - `sync`: the peer book, requests in flight, serving peers within their rate;
//! - [`crate::bridge`]: the peg duties and the peg-out signer;
//! - the mempool, the federation pool and the committed chain ([`ChainState`](crate::chain::ChainState)).
//!
//! Invariants owned here:
//! - the host's steps are carried out **in order**, each before the next is asked for, so a `Persist` is
//!   durable (fsynced) before any later output, and a kill -9 can never make this validator sign two
//!   different messages for one (height, round, step);
//! - nothing from the network reaches the core or the mempool before its signature is checked; gossip is
//!   forwarded only after it was found valid;
//! - the only way the tip moves is [`ChainState::commit`](crate::chain::ChainState::commit) (certificate + re-execution), whether the block
//!   was decided here or fetched by sync.

mod commands;
mod commit;
mod consensus_host;
mod gossip;
mod handle;
mod proposer;
mod start;
mod state;
mod status;
mod sync;
mod validity;

pub use crate::command_error::CommandError;
pub use handle::{Command, Faults, NodeStatus, PegSummary, ServiceConfig, ServiceError, ServiceHandle};

use consensus_host::Step;
use gossip::Judged;
use proposer::{now_ms, BlockInputs, Proposed};
use state::State;
use sync::Fetched;
use validity::Judge;

use crate::chain::FullBlock;
use crate::claims::ClaimSource;
use crate::wire::{self, Frame, Gossip, Request, TOPIC_CONSENSUS, TOPIC_STATUS};
use consensus::{Input, WalEntry};
use net::{MessageId, NetEvent, PeerId, Verdict};
use primitives::{BlockId, Height};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, info, info_span, warn};

/// Opens the chain, starts the network and returns the service (not yet running) with its handle.
pub async fn start(cfg: ServiceConfig) -> Result<(Service, ServiceHandle), ServiceError> {
    let (state, handle) = start::open(cfg).await?;
    Ok((Service { state }, handle))
}

/// The node's event loop, ready to [`run`](Service::run).
pub struct Service {
    state: State,
}

impl Service {
    /// Runs until `shutdown` resolves or storage fails.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ServiceError> {
        self.state.run(shutdown).await
    }
}

impl State {
    /// The loop itself (see [`Service::run`]).
    async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ServiceError> {
        self.start_consensus()?;
        let mut net_events = self.net_events.take().expect("run is called once");
        let mut commands = self.commands.take().expect("run is called once");
        let mut status_tick = tokio::time::interval(self.cfg.status_interval);
        tokio::pin!(shutdown);
        let result = loop {
            let next_timer = self.host.next_deadline();
            let timer = async {
                match next_timer {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let idle_until = self.host.idle_deadline();
            let idle_over = async {
                match idle_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let step = tokio::select! {
                _ = &mut shutdown => break Ok(()),
                ev = net_events.recv() => match ev {
                    Some(ev) => self.on_net_event(ev).await,
                    None => break Ok(()),
                },
                Some(cmd) = commands.recv() => self.on_command(cmd).await,
                _ = timer => {
                    self.host.fire_due(Instant::now());
                    Ok(())
                }
                _ = idle_over => self.release_pending_value(),
                (peer, fetched) = self.sync.next_result() => self.on_fetched(peer, fetched),
                // Outputs left after a decision (the next height's first steps).
                _ = std::future::ready(()), if self.host.has_steps() => Ok(()),
                _ = status_tick.tick() => {
                    self.announce_tip().await;
                    self.resend_own_messages();
                    self.duties.apply_claim_verdicts();
                    self.observe_alerts();
                    if crate::fault::ENABLED && self.cfg.faults.flood_proposals {
                        self.flood_junk_proposals();
                    }
                    Ok(())
                }
            };
            if let Err(e) = step.and_then(|()| self.carry_out_steps()) {
                break Err(e);
            }
            if self.host.idle_deadline().is_some() && self.has_block_work() {
                if let Err(e) = self.release_pending_value() {
                    break Err(e);
                }
            }
            self.publish_status();
        };
        self.net.shutdown().await;
        result
    }

    /// Starts consensus at the height after the tip, restoring what the WAL holds for it.
    fn start_consensus(&mut self) -> Result<(), ServiceError> {
        let height = self.chain.tip().next();
        let validators = self.chain.validators().clone();
        let mut wal = Vec::new();
        for bytes in self.chain.store().wal_entries()? {
            let e: WalEntry = borsh::from_slice(&bytes).map_err(ServiceError::CorruptWal)?;
            if e.height() == height {
                wal.push(e);
            }
        }
        // The blocks the last lock, valid value and own proposal name: what re-proposing needs (the
        // others kept would only crowd them out of the proposal store).
        let needed: Vec<primitives::BlockId> = {
            let last = |f: fn(&WalEntry) -> Option<primitives::BlockId>| wal.iter().rev().find_map(f);
            [
                last(|e| if let WalEntry::Locked { locked, .. } = e { Some(locked.value) } else { None }),
                last(|e| if let WalEntry::Valid { valid, .. } = e { Some(valid.value) } else { None }),
                last(|e| if let WalEntry::Proposal(p) = e { Some(p.proposal.value) } else { None }),
            ]
            .into_iter()
            .flatten()
            .collect()
        };
        self.host.start_height(height, validators, wal);
        for bytes in self.chain.store().wal_blocks()? {
            // Liveness only: a block that does not decode is skipped (re-proposing then waits for a peer).
            match borsh::from_slice::<FullBlock>(&bytes) {
                Ok(fb) if fb.block.header.height == height && needed.contains(&fb.hash()) => {
                    self.host.restore_block(fb)
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "a block kept with the WAL does not decode; skipped"),
            }
        }
        self.carry_out_steps()
    }

    /// Carries out the host's steps in order until none is left or a height is decided (the run loop then
    /// serves the network, RPC and SIGTERM before the next height's first steps, so a chain that decides
    /// instantly, one validator, still answers). Each step is done before the next is asked for: a
    /// `Persist` is durable before anything after it.
    fn carry_out_steps(&mut self) -> Result<(), ServiceError> {
        while let Some(step) = self.host.next_step() {
            let (height, round) = (self.host.core().height(), self.host.core().round());
            let _span = info_span!("consensus", height = %height, round = %round).entered();
            match step {
                Step::Persist(entry) => {
                    // The block the entry names first, so a restart can propose it again (liveness).
                    let named = match &entry {
                        WalEntry::Proposal(p) => Some(p.proposal.value),
                        WalEntry::Locked { locked: rv, .. } | WalEntry::Valid { valid: rv, .. } => Some(rv.value),
                        WalEntry::Vote(_) => None,
                    };
                    if let Some(v) = named.filter(|v| self.wal_kept != Some(*v)) {
                        match self.host.proposal(&v) {
                            Some(fb) => {
                                self.chain.store().wal_keep_block(&v, &wire::encode(fb))?;
                                self.wal_kept = Some(v);
                            }
                            None => warn!(block = %v, "a WAL entry names a block this node does not hold; not kept"),
                        }
                    }
                    // Durable before anything after it: the safety of a restart depends on it.
                    self.chain.store().wal_append(&wire::encode(&entry))?;
                    if let WalEntry::Vote(v) = &entry {
                        if v.vote.kind == consensus::VoteKind::Precommit {
                            self.crash_point(crate::fault::CrashPoint::PrecommitPersisted, v.vote.height);
                        }
                    }
                }
                Step::Publish(gossip) => {
                    let precommit = match &gossip {
                        Gossip::Vote(v) if v.vote.kind == consensus::VoteKind::Precommit => Some(v.vote.height),
                        _ => None,
                    };
                    self.spawn_publish(TOPIC_CONSENSUS, gossip);
                    if let Some(height) = precommit {
                        self.crash_point(crate::fault::CrashPoint::PrecommitSent, height);
                    }
                }
                Step::NeedValue { height, round } => {
                    let idle_wait = Duration::from_millis(self.cfg.consensus.empty_block_interval_ms);
                    if round.get() == 0 && !idle_wait.is_zero() && !self.has_block_work() {
                        // Nothing to put in a block yet: wait for work or the interval (see `Config`).
                        self.host.wait_for_work(height, round, self.tip_committed_at + idle_wait);
                        continue;
                    }
                    let block = self.build_proposal(height, round)?;
                    self.host.propose(height, round, block);
                }
                Step::NeedValidity { height, value } => {
                    let judge = Judge {
                        chain: &self.chain,
                        duties: &self.duties,
                        is_validator: self.validator_index.is_some(),
                        max_future_block_ms: self.cfg.max_future_block_ms,
                    };
                    let verdict = match self.host.proposal(&value) {
                        Some(fb) => judge.judge(height, fb, now_ms()),
                        None => continue,
                    };
                    if let Err(why) = &verdict {
                        warn!(%height, block = %value, reason = %why, "voting nil on the proposed block");
                    }
                    self.host.validity(height, value, verdict.is_ok());
                }
                Step::Decided { block, cert } => return self.commit_decided(block, cert),
                Step::Fetch(hash) => {
                    self.fetch_block(hash);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Whether a block now would carry something: transactions, evidence, peg-in mints or an anchor move.
    fn has_block_work(&self) -> bool {
        if !self.mempool.is_empty() {
            return true;
        }
        let state = self.chain.state();
        if self.block_inputs().evidence_to_include(&state).is_ok_and(|e| !e.is_empty()) {
            return true;
        }
        if !self.fed_pool.select(self.chain.chain(), &state).is_empty() {
            return true;
        }
        self.duties.has_work(&self.chain, &state)
    }

    /// Proposes the value a round-0 request was kept waiting for, if that round is still current.
    fn release_pending_value(&mut self) -> Result<(), ServiceError> {
        let Some((height, round)) = self.host.take_idle() else { return Ok(()) };
        let _span = info_span!("consensus", height = %height, round = %round).entered();
        let block = self.build_proposal(height, round)?;
        self.host.propose(height, round, block);
        self.carry_out_steps()
    }

    /// What the proposer reads, lent by the components that own it.
    fn block_inputs(&self) -> BlockInputs<'_> {
        BlockInputs {
            chain: &self.chain,
            duties: &self.duties,
            signer: &self.signer,
            fed_pool: &self.fed_pool,
            mempool: &self.mempool,
            evidence: self.host.evidence(),
        }
    }

    /// Our block for `(height, round)`, if it is ours to build and builds (the alerts count failures).
    fn build_proposal(&mut self, height: Height, round: primitives::Round) -> Result<Option<FullBlock>, ServiceError> {
        Ok(match self.block_inputs().propose(self.validator_index, height, round)? {
            Proposed::Block(fb) => {
                self.alerts.0.proposal_built(true);
                Some(fb)
            }
            Proposed::Unbuildable(e) => {
                warn!(%height, error = %e, "could not build a block; proposing nothing this round");
                self.alerts.0.proposal_built(false);
                None
            }
            Proposed::NotOurs => None,
        })
    }

    fn verdict(&self, msg_id: MessageId, source: PeerId, verdict: Verdict) {
        if let Err(e) = self.net.report_validation(msg_id, source, verdict) {
            debug!(error = %e, "validation report not delivered");
        }
    }

    async fn on_net_event(&mut self, ev: NetEvent) -> Result<(), ServiceError> {
        match ev {
            NetEvent::PeerConnected(peer, _) => {
                self.sync.connected(peer);
                self.announce_tip().await;
                Ok(())
            }
            NetEvent::PeerDisconnected(peer) => {
                self.sync.disconnected(&peer);
                Ok(())
            }
            NetEvent::Request { peer, data, respond } => {
                match wire::decode::<Request>(&data) {
                    Ok(req) => self.answer(peer, req, respond),
                    Err(e) => {
                        self.sync.penalize(peer, &format!("undecodable request: {e}"));
                    }
                }
                Ok(())
            }
            NetEvent::Gossip { msg_id, source, data, .. } => match wire::decode::<Frame>(&data).map(|f| f.body) {
                Err(e) => {
                    debug!(%source, error = %e, "undecodable gossip");
                    self.verdict(msg_id, source, Verdict::Reject);
                    Ok(())
                }
                Ok(g) => self.on_gossip(msg_id, source, g),
            },
        }
    }

    fn on_gossip(&mut self, msg_id: MessageId, source: PeerId, g: Gossip) -> Result<(), ServiceError> {
        let verdict = match gossip::judge(&self.chain, g, crate::fault::ENABLED && self.cfg.faults.precommit_nil) {
            Judged::Drop(verdict) => {
                if verdict == Verdict::Reject {
                    debug!(%source, "gossip rejected: bad signature");
                }
                verdict
            }
            Judged::Ahead => {
                self.start_sync(source);
                Verdict::Ignore
            }
            Judged::Status(height) => {
                self.sync.heard_tip(source, height);
                if height > self.chain.tip() {
                    self.start_sync(source);
                }
                Verdict::Ignore
            }
            Judged::Claim(claim) => match self.duties.add_claim(&self.chain, claim, ClaimSource::Peer(source)) {
                Ok(()) => Verdict::Accept,
                Err(_) => Verdict::Ignore,
            },
            Judged::Fed(tx) => {
                let admitted = self.fed_pool.admit(self.chain.chain(), &self.chain.state(), tx);
                if let Some(e) = admitted.as_ref().err().filter(|e| e.is_forged()) {
                    debug!(%source, error = %e, "forged federation transaction");
                }
                gossip::fed_verdict(&admitted)
            }
            Judged::Tx(tx) => gossip::tx_verdict(&self.admit_tx(tx)),
            Judged::Vote(v) => {
                self.verdict(msg_id, source, Verdict::Accept);
                self.host.feed(Input::Vote(v));
                return Ok(());
            }
            Judged::Proposal { proposal, block, slot, expected } => {
                match self.host.admit_proposal(self.chain.tip().next(), expected, slot, proposal, *block) {
                    Err(e) => {
                        debug!(%source, error = %e, "proposal not kept");
                        gossip::proposal_verdict(&e)
                    }
                    Ok(ready) => {
                        self.verdict(msg_id, source, Verdict::Accept);
                        return match ready {
                            Some((fb, cert)) => self.commit_decided(fb, cert),
                            None => Ok(()),
                        };
                    }
                }
            }
        };
        self.verdict(msg_id, source, verdict);
        Ok(())
    }

    /// Answers a peer's request within its rate (see [`crate::sync_serve`]): a block still being decided
    /// from memory, anything read from disk on a blocking thread, never on this loop.
    fn answer(&mut self, peer: PeerId, req: Request, respond: net::Responder) {
        let host = &self.host;
        let held = |hash: &BlockId| host.proposal(hash).cloned();
        self.sync.answer(peer, req, respond, held, self.chain.store().clone(), self.chain.tip());
    }

    /// Test-only Byzantine flood (`[fault] flood_proposals`): junk proposals for our slots at the height
    /// being decided and the next.
    fn flood_junk_proposals(&mut self) {
        let (Some(me), Ok(Some(template))) = (self.validator_index, self.chain.block(self.chain.tip())) else {
            return;
        };
        self.flood_batches += 1;
        let next = self.chain.tip().next();
        let genesis = *self.chain.chain().genesis_hash();
        // Each height's slots by the set in force there (a change may take effect at the height after next).
        let mut junk = Vec::new();
        for h in [next, next.next()] {
            let Some(set) = self.chain.validators_at(h) else { continue };
            let me = set.index_of(&self.cfg.keys.consensus_public()).unwrap_or(me);
            let key = &self.cfg.keys.consensus;
            junk.extend(crate::fault::junk_proposals(&template, key, &genesis, me, set, &[h], self.flood_batches, 32));
        }
        warn!(height = %next, proposals = junk.len(), "FAULT: flooding junk proposals");
        for (proposal, block) in junk {
            self.spawn_publish(TOPIC_CONSENSUS, Gossip::Proposal { proposal, block: Box::new(block) });
        }
    }

    /// Gossip delivers once, to whoever is connected then; a vote a peer missed (it was restarting, or
    /// partitioned) would be lost for good. Re-sending our own messages of the undecided height keeps
    /// the "eventual delivery" that Tendermint's liveness assumes.
    fn resend_own_messages(&mut self) {
        for frame in self.host.resends() {
            self.spawn_publish_frame(TOPIC_CONSENSUS, frame);
        }
    }

    async fn announce_tip(&mut self) {
        self.spawn_publish(TOPIC_STATUS, Gossip::Status { height: self.chain.tip() });
    }

    fn start_sync(&mut self, peer: PeerId) {
        self.sync.request_blocks(peer, self.chain.tip().next());
    }

    fn fetch_block(&mut self, hash: BlockId) {
        self.sync.fetch_block(hash);
    }

    fn on_fetched(&mut self, peer: PeerId, fetched: Fetched) -> Result<(), ServiceError> {
        match fetched {
            Fetched::Failed(e) => {
                debug!(%peer, error = %e, "sync request failed");
                if matches!(e, sync::SyncError::WrongAnswer) {
                    self.sync.penalize(peer, "a block-range request answered with a single block");
                }
                Ok(())
            }
            Fetched::Busy => {
                // Asked again on the peer's next tip announcement (or another peer's).
                debug!(%peer, "peer is busy: sync later");
                Ok(())
            }
            Fetched::Block(None) => Ok(()),
            Fetched::Block(Some(fb)) => match self.host.offer_block(*fb) {
                Some((fb, cert)) => self.commit_decided(fb, cert),
                None => Ok(()),
            },
            Fetched::Blocks { blocks, full } => {
                let mut committed = 0u64;
                for (h, (fb, cert)) in blocks {
                    if h != self.chain.tip().next() {
                        continue;
                    }
                    match self.commit_block(&fb, &cert, true) {
                        Ok(()) => committed += 1,
                        Err(ServiceError::Chain(e)) => {
                            warn!(%peer, error = %e, "peer served an invalid block");
                            self.sync.penalize(peer, "invalid block in sync response");
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
                if committed > 0 {
                    info!(%peer, blocks = committed, tip = %self.chain.tip(), "synced");
                    self.after_tip_moved()?;
                    if full {
                        self.start_sync(peer);
                    }
                }
                Ok(())
            }
        }
    }
}
