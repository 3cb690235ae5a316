//! The node's event loop: one `select!` over the network, RPC commands, timers and sync answers, which
//! hands each event to the component that owns its state and carries out what the components return
//! (WAL writes, publishes, verdicts, commits).
//!
//! The components, each owning its state:
//! - `consensus_host`: the Tendermint core, its timers, output queue, proposals, resends and evidence;
//!   it returns one `Step` at a time;
//! - `proposer` and `validity`: read-only; build our block, judge another's (typed `validity::Refusal`);
//! - `gossip`: read-only; what a message is and the verdict rules;
//! - `sync`: the peer book, requests in flight, serving peers within their rate;
//! - [`crate::bridge`]: the peg duties and the peg-out signer;
//! - the mempool, the federation pool and the committed chain ([`ChainState`]).
//!
//! Invariants owned here:
//! - the host's steps are carried out **in order**, each before the next is asked for, so a `Persist` is
//!   durable (fsynced) before any later output, and a kill -9 can never make this validator sign two
//!   different messages for one (height, round, step);
//! - nothing from the network reaches the core or the mempool before its signature is checked; gossip is
//!   forwarded only after it was found valid;
//! - the only way the tip moves is [`ChainState::commit`] (certificate + re-execution), whether the block
//!   was decided here or fetched by sync.

mod consensus_host;
mod gossip;
mod handle;
mod proposer;
mod sync;
mod validity;

pub use crate::command_error::CommandError;
pub use handle::{Command, Faults, NodeStatus, PegSummary, ServiceConfig, ServiceError, ServiceHandle};

use consensus_host::{ConsensusHost, Step};
use gossip::Judged;
use proposer::{now_ms, BlockInputs, Proposed};
use sync::{Fetched, SyncDriver};
use validity::Judge;

use crate::bridge::{BatchSigner, FollowerLinks, PegDuties};
use crate::chain::{ChainError, ChainState, FullBlock};
use crate::claims::ClaimSource;
use crate::mempool::{Mempool, MempoolError};
use crate::storage::{Store, StoreError};
use crate::wire::{self, Frame, Gossip, Request, TOPIC_CONSENSUS, TOPIC_STATUS, TOPIC_TXS};
use consensus::{CommitCertificate, Consensus, Input, WalEntry};
use ledger::{Chain, SignedUserTx, StateReader};
use net::{MessageId, Multiaddr, NetConfig, NetEvent, NetHandle, Network, PeerId, Verdict};
use primitives::{Hash32, Height, ValidatorIndex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, info_span, warn};

/// Opens the chain, starts the network and returns the service (not yet running) with its handle.
pub async fn start(cfg: ServiceConfig) -> Result<(Service, ServiceHandle), ServiceError> {
    let chain = Chain::new(cfg.genesis.clone())?;
    std::fs::create_dir_all(&cfg.datadir)
        .map_err(|source| ServiceError::Store(StoreError::CreateDir { path: cfg.datadir.clone(), source }))?;
    let store = std::sync::Arc::new(Store::open(&cfg.datadir.join("db"))?);
    let chain = ChainState::open(chain, store)?;
    let validator_index = chain.validators().index_of(&cfg.keys.consensus_public());
    let signing = crate::breaker::SigningGuard::open(chain.store())?;
    // Always the key: the core signs only at heights whose set holds it, so a node that joins the federation
    // later (or leaves it) needs no restart.
    let core = Consensus::new(cfg.consensus.clone(), *chain.chain().genesis_hash(), Some(cfg.keys.consensus.clone()));
    let vote_faults = crate::fault::VoteFaults {
        equivocate: cfg.faults.equivocate,
        precommit_nil: cfg.faults.precommit_nil,
        key: (crate::fault::ENABLED && (cfg.faults.equivocate || cfg.faults.precommit_nil))
            .then(|| (cfg.keys.consensus.clone(), *chain.chain().genesis_hash())),
    };

    let libp2p_key = net::Keypair::ed25519_from_bytes(cfg.keys.consensus.secret_bytes())
        .map_err(|e| net::NetError::Transport(format!("node key as libp2p identity: {e}")))?;
    let mut net_cfg = NetConfig::new(libp2p_key, cfg.p2p_listen.clone());
    net_cfg.bootstrap = cfg.bootstrap.clone();
    net_cfg.topics = vec![TOPIC_CONSENSUS.into(), TOPIC_TXS.into(), TOPIC_STATUS.into()];
    // A proposal carries its block: gossip must fit the largest block (see the note in wire.rs).
    let block_max = chain.chain().params().block_max_bytes as usize;
    net_cfg.max_gossip_bytes = block_max + 64 * 1024;
    net_cfg.max_response_bytes = (block_max + 64 * 1024).max(16 * net::MIB);
    let started = Network::start(net_cfg).await?;
    if let Some(path) = &cfg.faults.partition_file {
        crate::fault::follow_partition_file(path.clone(), started.handle.clone());
    }

    let tip_anchor = chain.state().chain_meta().map_err(ChainError::from)?.map(|m| m.btc_anchor).unwrap_or_default();
    let (anchor_height, anchor_rx) = watch::channel(tip_anchor.height.get());
    let registry = crate::pegin::Registry::new(
        chain.chain(),
        chain.federation(),
        chain.tip().next(),
        &chain.store().registered_accounts()?,
    );
    let (registry, registry_rx) = watch::channel(std::sync::Arc::new(registry));
    let (claims, claims_rx) = watch::channel(Vec::new());
    let (batch_versions, batch_versions_rx) = watch::channel(Vec::new());
    // Every node with a bitcoind follows it: a full node may join the federation later.
    let btc = match &cfg.bitcoind {
        Some(client) => {
            let follow = crate::btc_follow::FollowConfig {
                anchor: anchor_rx,
                registry: registry_rx,
                claims: claims_rx,
                batch_versions: batch_versions_rx,
                max_step: chain.chain().params().max_anchor_step,
                chain: chain.chain().clone(),
                interval: cfg.btc_poll_interval,
            };
            Some(crate::btc_follow::follow(client.clone(), follow))
        }
        None => None,
    };
    let signed_batches = match &cfg.bitcoind {
        Some(client) => {
            let (tx, rx) = watch::channel(Vec::new());
            crate::btc_follow::rebroadcast(client.clone(), rx, Duration::from_secs(5));
            Some(tx)
        }
        None => None,
    };
    let crash = crate::fault::CrashConfig { point: cfg.faults.crash_point, from_height: cfg.faults.crash_height };
    let signer = BatchSigner::new(signing, &cfg.keys, signed_batches, batch_versions, crash);
    let links = FollowerLinks { btc, anchor_height, registry, claims };
    let duties = PegDuties::new(
        cfg.keys.clone(),
        links,
        cfg.fee_rate_floor_sat_vb,
        crate::fault::ENABLED && cfg.faults.omit_mints,
    );
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
    let (blocks_tx, _) = tokio::sync::broadcast::channel(256);
    let (status_tx, status_rx) = watch::channel(NodeStatus::default());
    let mut service = Service {
        mempool: Mempool::new(cfg.mempool),
        cfg,
        chain,
        host: ConsensusHost::new(core, vote_faults),
        sync: SyncDriver::new(started.handle.clone()),
        net: started.handle.clone(),
        blocks: blocks_tx.clone(),
        net_events: Some(started.events),
        commands: Some(cmd_rx),
        status: status_tx,
        peer_id: started.local_peer_id,
        listen_addrs: started.listen_addrs,
        validator_index,
        synced_blocks: 0,
        tip_committed_ms: now_ms(),
        flood_batches: 0,
        tip_committed_at: Instant::now(),
        alerts: (crate::alerts::AlertTracker::new(Default::default()), Height(u64::MAX), None),
        peg_summary: PegSummary::default(),
        fed_pool: crate::fed_pool::FedPool::default(),
        duties,
        signer,
    };
    service.peg_summary = service.duties.summary(&service.chain);
    service.publish_status();
    let handle = ServiceHandle {
        commands: cmd_tx,
        status: status_rx,
        store: service.chain.store().clone(),
        chain: service.chain.chain().clone(),
        net: started.handle,
        blocks: blocks_tx,
        btc: service.duties.snapshot_receiver(),
    };
    Ok((service, handle))
}

/// The event loop's state.
pub struct Service {
    cfg: ServiceConfig,
    chain: ChainState,
    host: ConsensusHost,
    /// The peer book, sync requests and serving (see [`sync`]).
    sync: SyncDriver,
    mempool: Mempool,
    net: NetHandle,
    blocks: tokio::sync::broadcast::Sender<ledger::Block>,
    net_events: Option<mpsc::Receiver<NetEvent>>,
    commands: Option<mpsc::Receiver<Command>>,
    status: watch::Sender<NodeStatus>,
    peer_id: PeerId,
    listen_addrs: Vec<Multiaddr>,
    validator_index: Option<ValidatorIndex>,
    synced_blocks: u64,
    tip_committed_ms: u64,
    /// Test-only: junk proposals sent so far (`[fault] flood_proposals`), to make each batch new content.
    flood_batches: u64,
    /// When the tip was committed here (monotonic).
    tip_committed_at: Instant,
    /// The peg at the tip, for the status (see [`PegDuties::summary`]).
    peg_summary: PegSummary,
    /// This validator's peg duties: anchor moves, mints, claims, objections (see [`crate::bridge`]).
    duties: PegDuties,
    /// This validator's peg-out signing (see [`crate::bridge::signing`]).
    signer: BatchSigner,
    /// Alerts, and the peg-out queue's wait at the tip (recomputed when the tip moves).
    alerts: (crate::alerts::AlertTracker, Height, Option<ledger::pegout_wait::PegOutWait>),
    /// Signature shares and federation changes waiting for a block.
    fed_pool: crate::fed_pool::FedPool,
}

impl Service {
    /// Runs until `shutdown` resolves or storage fails.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ServiceError> {
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

    fn publish_status(&self) {
        let state_root = self.chain.state().root().unwrap_or_default();
        let s = NodeStatus {
            height: self.chain.tip(),
            tip_hash: self.chain.tip_hash(),
            state_root,
            round: self.host.core().round().get(),
            mempool_txs: self.mempool.len(),
            peers: self.sync.peer_count(),
            peer_id: self.peer_id.to_string(),
            listen_addrs: self.listen_addrs.iter().map(|a| a.to_string()).collect(),
            validator_index: self.validator_index.map(|i| i.get()),
            evidence: self.host.evidence().len(),
            synced_blocks: self.synced_blocks,
            tip_committed_ms: self.tip_committed_ms,
            tip_time_ms: self.chain.state().chain_meta().ok().flatten().map_or(0, |m| m.time_ms),
            last_commit_round: self.chain.tip_cert().map_or(0, |c| c.round.get()),
            best_peer_height: self.sync.best_peer_height(),
            step: format!("{:?}", self.host.core().step()).to_lowercase(),
            locked: self.host.core().locked().map(|rv| (rv.round.get(), rv.value)),
            peer_heights: self.sync.peer_heights().map(|(p, h)| (p.to_string(), *h)).collect(),
            peg: PegSummary { claims_pending: self.duties.claims_pending(), ..self.peg_summary.clone() },
            signing: self.signer.guard.status(),
            alerts: self.alerts.0.active(),
        };
        self.status.send_if_modified(|old| {
            let changed = *old != s;
            *old = s;
            changed
        });
    }

    /// Takes the facts of now into the alert tracker and logs what changed (see [`crate::alerts`]).
    fn observe_alerts(&mut self) {
        let state = self.chain.state();
        let chain = self.chain.chain();
        if self.alerts.1 != self.chain.tip() {
            self.alerts.1 = self.chain.tip();
            self.alerts.2 = crate::alerts::queue_wait_at(chain, &state);
        }
        let snap = self.duties.snapshot();
        let (tracker, _, wait) = &mut self.alerts;
        let facts =
            crate::alerts::facts_at(chain, &state, snap.as_ref(), now_ms(), tracker.build_failures(), wait.clone());
        crate::alerts::log_changes(&tracker.observe(&facts));
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
        self.host.start_height(height, validators, wal);
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

    /// Test-only: dies here if this is the configured crash point (see [`crate::fault::CrashPoint`]).
    fn crash_point(&self, point: crate::fault::CrashPoint, height: Height) {
        crate::fault::maybe_crash(self.cfg.faults.crash_point, self.cfg.faults.crash_height, point, height.get());
    }

    fn spawn_publish(&self, topic: &'static str, body: Gossip) {
        self.spawn_publish_frame(topic, Frame { resend: 0, body });
    }

    fn spawn_publish_frame(&self, topic: &'static str, frame: Frame) {
        let data = wire::encode(&frame);
        let net = self.net.clone();
        tokio::spawn(async move {
            match net.publish(topic, data).await {
                Ok(_) => {}
                // Out already (ours or a peer's copy, within gossip's duplicate window): nothing to do.
                Err(net::NetError::Duplicate { .. }) => {}
                // With no peer subscribed yet publishing fails; consensus re-sends on later rounds.
                Err(e) => debug!(topic, error = %e, "publish failed"),
            }
        });
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

    /// Signs what is ours to sign at the tip and hands new shares to the pool and the network. Our shares stay
    /// in our pool until a block has them, and we include them ourselves when we propose.
    /// Nothing while an operator has paused signing.
    fn sign_and_share(&mut self) {
        let shares = self.signer.shares_to_sign(&self.chain);
        let state = self.chain.state();
        for share in shares {
            let tx = ledger::Tx::PegShare(share);
            match self.fed_pool.admit(self.chain.chain(), &state, tx.clone()) {
                Ok(true) => self.spawn_publish(TOPIC_TXS, Gossip::Fed(tx)),
                // Known already and gossiped when it was new (gossipsub drops a second identical message).
                Ok(false) => {}
                Err(e) => error!(error = %e, "our own signature share does not apply"),
            }
        }
    }

    /// Drops this validator's shares from the federation pool (signing paused); how many.
    fn drop_own_shares(&mut self) -> usize {
        let state = self.chain.state();
        let (signer, chain) = (&self.signer, &self.chain);
        self.fed_pool.drop_shares(|s| signer.is_own_share(chain, &state, s))
    }

    fn commit_decided(&mut self, fb: FullBlock, cert: CommitCertificate) -> Result<(), ServiceError> {
        self.commit_block(&fb, &cert, false)?;
        self.after_tip_moved()
    }

    /// Commits one block; the caller restarts consensus afterwards.
    /// `synced`: the block came by sync rather than being decided here (counted apart in the status, so
    /// metrics never take a synced block's age for a finality time).
    fn commit_block(&mut self, fb: &FullBlock, cert: &CommitCertificate, synced: bool) -> Result<(), ServiceError> {
        self.crash_point(crate::fault::CrashPoint::BeforeCommitWrite, fb.height());
        match self.chain.commit(fb, cert) {
            Ok(outcome) => {
                self.crash_point(crate::fault::CrashPoint::AfterCommitWrite, fb.height());
                let included: Vec<TxId> = outcome.receipts.iter().map(|r| r.txid).collect();
                self.mempool.on_block(self.chain.chain(), &self.chain.state(), &included);
                let state = self.chain.state();
                self.duties.after_commit(&self.chain, fb);
                self.fed_pool.prune(self.chain.chain(), &state, &included);
                self.follow_federation(fb.height());
                self.signer.publish_signed(&self.chain);
                self.sign_and_share();
                self.tip_committed_ms = now_ms();
                self.tip_committed_at = Instant::now();
                if synced {
                    self.synced_blocks += 1;
                }
                self.peg_summary = self.duties.summary(&self.chain);
                // RPC reads the tip from the status: publish it before anyone hears of the block, so a
                // subscriber (or a client that saw the tx leave the mempool) can read the block at once.
                self.publish_status();
                // Nobody listening is fine.
                let _ = self.blocks.send(fb.block.clone());
                info!(height = %fb.height(), block = %fb.hash(), txs = included.len(), "committed");
                Ok(())
            }
            // Storage failures stop the node; a block that does not verify is the sender's problem.
            Err(ChainError::Store(e)) => Err(e.into()),
            Err(ChainError::State(e)) => Err(ChainError::State(e).into()),
            Err(e) => {
                warn!(height = %fb.height(), error = %e, "refusing block");
                Err(e.into())
            }
        }
    }

    /// After block `height`: our place in the set of the next height (we may have joined or left the
    /// federation), and the deposit scripts to watch (a new epoch, or the end of a deposit window).
    fn follow_federation(&mut self, height: Height) {
        let next = self.chain.validators().index_of(&self.cfg.keys.consensus_public());
        if next != self.validator_index {
            match next {
                Some(i) => warn!(%height, index = %i, "this node is a validator from the next height on"),
                None => {
                    warn!(%height, "this node is no longer a validator (federation change); running as a full node")
                }
            }
            self.validator_index = next;
        }
        let fs = self.chain.federation();
        if let Some(p) = &fs.pending {
            debug!(%height, epoch = p.epoch, from = %p.from_height, "federation change pending");
        }
    }

    fn after_tip_moved(&mut self) -> Result<(), ServiceError> {
        self.duties.tip_moved(&self.chain);
        self.chain.store().wal_clear()?;
        self.host.start_height(self.chain.tip().next(), self.chain.validators().clone(), Vec::new());
        self.spawn_publish(TOPIC_STATUS, Gossip::Status { height: self.chain.tip() });
        Ok(())
    }

    async fn on_command(&mut self, cmd: Command) -> Result<(), ServiceError> {
        match cmd {
            Command::SubmitTx(tx, done) => {
                let res = self.admit_tx(tx.clone());
                if res.is_ok() {
                    self.spawn_publish(TOPIC_TXS, Gossip::Tx(tx));
                }
                let _ = done.send(res.map_err(CommandError::from));
            }
            Command::MempoolInfo(done) => {
                let _ = done.send((self.mempool.len(), self.mempool.bytes()));
            }
            Command::MempoolTxids(done) => {
                let _ = done.send(self.mempool.candidates(usize::MAX).iter().map(SignedUserTx::txid).collect());
            }
            Command::MempoolTx(id, done) => {
                let _ = done.send(self.mempool.get(&id).cloned());
            }
            Command::Evidence(done) => {
                let _ = done.send(self.host.evidence().to_vec());
            }
            Command::ResumePeg(anchor, done) => {
                let res = match self.validator_index {
                    None => Err(CommandError::NotAValidator),
                    Some(_) => self.duties.request_resume(&self.chain, anchor),
                };
                let _ = done.send(res);
            }
            Command::ApproveFederation(proposal, done) => {
                let res = match self.validator_index {
                    None => Err(CommandError::NotInSetInForce),
                    // Signed for the epoch in force: the approval is void once that epoch is over.
                    Some(me) => ledger::federation::check_proposal(self.chain.chain(), &proposal)
                        .map(|()| {
                            let epoch = self.chain.federation().in_force().epoch;
                            proposal.approve(me, epoch, &self.cfg.keys.consensus, self.chain.chain().genesis_hash())
                        })
                        .map_err(CommandError::from),
                };
                if res.is_ok() {
                    warn!(validators = proposal.validators.len(), from = %proposal.activation_height,
                        "operator approves a federation change");
                }
                let _ = done.send(res);
            }
            Command::SubmitFederationChange(change, done) => {
                let tx = ledger::Tx::Reconfigure(change);
                let id = tx.txid();
                let state = self.chain.state();
                let res =
                    self.fed_pool.admit(self.chain.chain(), &state, tx.clone()).map(|_| id).map_err(CommandError::from);
                if res.is_ok() {
                    warn!(txid = %id, "federation change accepted into the pool");
                    self.spawn_publish(TOPIC_TXS, Gossip::Fed(tx));
                }
                let _ = done.send(res);
            }
            Command::SetSigningPaused(pause, done) => {
                let res = match pause {
                    true => self.signer.guard.pause(self.chain.store(), now_ms()),
                    false => self.signer.guard.resume(self.chain.store()),
                };
                if !self.signer.guard.may_sign() {
                    // Even if the write failed (the switch is on in memory): our shares still waiting for a
                    // block leave the pool, so our own proposals do not carry them.
                    let dropped = self.drop_own_shares();
                    info!(dropped, "signing paused: our pending signature shares left the federation pool");
                }
                if res.is_ok() && !pause {
                    // Whatever waits for our share gets it now, not at the next block.
                    self.sign_and_share();
                }
                // Published before the answer, so a status read right after it shows the switch.
                self.publish_status();
                let _ = done.send(res.map(|()| self.signer.guard.status()));
            }
            Command::ClaimPegin(claim, done) => {
                let res = self.duties.add_claim(&self.chain, claim.clone(), ClaimSource::Local);
                if res.is_ok() {
                    self.spawn_publish(TOPIC_TXS, Gossip::Claim(claim));
                }
                let _ = done.send(res);
            }
        }
        Ok(())
    }

    fn admit_tx(&mut self, tx: SignedUserTx) -> Result<TxId, MempoolError> {
        let state = self.chain.state();
        self.mempool.add(self.chain.chain(), &state, tx)
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
