//! The node's event loop: it hosts the consensus core, carries out its outputs, and keeps the committed
//! chain, the mempool and the network in step.
//!
//! Invariants owned here:
//! - outputs of the core are carried out **in order**, and a `Persist` is durable (fsynced) before any
//!   later output, so a kill -9 can never make this validator sign two different messages for one
//!   (height, round, step);
//! - nothing from the network reaches the core or the mempool before its signature is checked; gossip is
//!   forwarded only after it was found valid;
//! - the only way the tip moves is [`ChainState::commit`] (certificate + re-execution), whether the block
//!   was decided here or fetched by sync.

mod command_error;

pub use command_error::CommandError;

use crate::btc_follow::{from_peg, to_peg, BtcSnapshot};
use crate::chain::{commit_hash, ChainError, ChainState, FullBlock};
use crate::claims::{ClaimLimits, ClaimSource, ClaimStore};
use crate::keys::NodeKeys;
use crate::mempool::{Mempool, MempoolError, MempoolLimits};
use crate::proposals::{ProposalStore, Slot, Window};
use crate::storage::{Store, StoreError};
use crate::sync_serve::{Allowance, RequestLimiter};
use crate::wire::{
    self, Frame, Gossip, Request, Response, MAX_BLOCKS_PER_RESPONSE, TOPIC_CONSENSUS, TOPIC_STATUS, TOPIC_TXS,
};
use consensus::{CommitCertificate, Consensus, Equivocation, Input, Message, Output, Timeout, WalEntry};
use ledger::{BlockTemplate, Chain, SignedUserTx, StateReader};
use net::{MessageId, Multiaddr, NetConfig, NetEvent, NetHandle, Network, PeerId, Verdict};
use primitives::{Hash32, Height, ValidatorIndex};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, info_span, warn, Instrument};

/// Everything the service needs to start.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Where the database lives.
    pub datadir: PathBuf,
    /// The chain.
    pub genesis: ledger::Genesis,
    /// This node's keys (validator or not depends on whether its key is in the genesis set).
    pub keys: NodeKeys,
    /// P2P listen address.
    pub p2p_listen: Multiaddr,
    /// Peers to keep connected to.
    pub bootstrap: Vec<Multiaddr>,
    /// Consensus timeouts.
    pub consensus: consensus::Config,
    /// Mempool bounds.
    pub mempool: MempoolLimits,
    /// How often the tip is announced.
    pub status_interval: Duration,
    /// Largest clock skew tolerated in a proposed block's time (validators only).
    pub max_future_block_ms: u64,
    /// Deliberate misbehaviour for fault tests (all off in production; see [`Faults`]).
    pub faults: Faults,
    /// This validator's own bitcoind (the anchor rule); `None`: never moves the anchor, votes nil on moves.
    pub bitcoind: Option<std::sync::Arc<crate::bitcoin::BitcoindClient>>,
    /// How often the follower polls bitcoind (it also polls at once when the anchor or registrations change).
    pub btc_poll_interval: Duration,
    /// The least fee rate this validator votes for (sat/vB; `[peg] fee_rate_floor_sat_vb`).
    pub fee_rate_floor_sat_vb: u64,
}

/// Test-only misbehaviour, switched on per node by the fault scenarios (`[fault]` in the config, honoured
/// only with `SIDECHAIND_ALLOW_FAULTS=1`). Each switch makes this node an honest-but-faulty or Byzantine
/// participant so tests can build situations the network would otherwise rarely produce.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Send a nil precommit in place of each of ours and ignore everyone else's precommits: with two
    /// such validators of four, the others lock on a block and rounds go on, but no height completes.
    #[serde(default)]
    pub precommit_nil: bool,
    /// With every prevote for a block, also send a nil prevote for the same round: a Byzantine
    /// validator the others must record evidence against while the chain stays single.
    #[serde(default)]
    pub equivocate: bool,
    /// As proposer, advance the anchor but leave out the mints it requires: the others must vote the
    /// block down, and the next proposer mints the deposits.
    #[serde(default)]
    pub omit_mints: bool,
    /// A file listing peer ids to drop and refuse, polled while running: the partition switch of the
    /// fault scenarios (see [`crate::fault`]).
    #[serde(default)]
    pub partition_file: Option<PathBuf>,
    /// Abort at this step (see [`crate::fault::CrashPoint`]), the first time it comes at or above
    /// `crash_height`.
    #[serde(default)]
    pub crash_point: Option<crate::fault::CrashPoint>,
    /// Lowest height at which `crash_point` fires.
    #[serde(default)]
    pub crash_height: u64,
    /// Every status tick, sign and gossip 64 junk proposals for the rounds this validator proposes at the
    /// height being decided and the next (see [`crate::fault::junk_proposals`]): the others must keep
    /// the honest proposers' blocks and go on committing.
    #[serde(default)]
    pub flood_proposals: bool,
}

/// Why the service stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The genesis is invalid.
    #[error("genesis: {0}")]
    Genesis(#[from] ledger::GenesisError),
    /// Storage failed; the node stops rather than risk its safety.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain could not be opened or extended.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The network could not start.
    #[error("p2p: {0}")]
    Net(#[from] net::NetError),
    /// A WAL entry on disk does not decode.
    #[error("consensus WAL entry does not decode: {0}")]
    CorruptWal(#[source] std::io::Error),
}

/// What the node reports about itself (RPC and metrics read this).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// Committed tip.
    pub height: Height,
    /// Hash of the tip block.
    pub tip_hash: Hash32,
    /// State root after the tip.
    pub state_root: Hash32,
    /// Round of the height being decided.
    pub round: u32,
    /// Pending transactions.
    pub mempool_txs: usize,
    /// Connected peers.
    pub peers: usize,
    /// Our peer id.
    pub peer_id: String,
    /// Where we listen for p2p.
    pub listen_addrs: Vec<String>,
    /// Our validator index, if we are one.
    pub validator_index: Option<u16>,
    /// Equivocations seen.
    pub evidence: usize,
    /// Heights committed through sync (not decided here).
    pub synced_blocks: u64,
    /// Millisecond time the tip was committed here.
    pub tip_committed_ms: u64,
    /// The tip block's own (proposer) time.
    pub tip_time_ms: u64,
    /// The round in which the tip was decided.
    pub last_commit_round: u32,
    /// The highest tip a peer announced.
    pub best_peer_height: Height,
    /// The consensus step of the height being decided (`propose`, `prevote`, `precommit`, `commit`).
    pub step: String,
    /// The round and block this validator is locked on at the height being decided, if any.
    pub locked: Option<(u32, Hash32)>,
    /// The tip each connected peer last announced, by peer id.
    pub peer_heights: BTreeMap<String, Height>,
    /// The peg at the tip, and what our bitcoind shows.
    pub peg: PegSummary,
    /// The operator's pause switch and the shares the share-time check refuses (see [`crate::breaker`]).
    pub signing: crate::breaker::SigningStatus,
    /// Conditions an operator must look at (see [`crate::alerts`]).
    pub alerts: Vec<crate::alerts::Alert>,
}

/// The peg at a glance (metrics, RPC, dashboard).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PegSummary {
    /// Totals in state at the tip.
    pub totals: ledger::PegTotals,
    /// The tip's BTC anchor height.
    pub anchor_height: u32,
    /// Our bitcoind's best height (validators with a reachable bitcoind).
    pub bitcoind_best: Option<u32>,
    /// Deposits our bitcoind shows above the anchor, not minted yet.
    pub deposits_seen: usize,
    /// Claims pending here.
    pub claims_pending: usize,
    /// Peg operations halted (f+1 validators reported a Bitcoin reorg deeper than N).
    pub halted: bool,
}

/// Requests from RPC to the service (answered from the event loop, which owns the mempool).
pub enum Command {
    /// Submit a transaction to the mempool (and gossip it).
    SubmitTx(SignedUserTx, oneshot::Sender<Result<Hash32, CommandError>>),
    /// Mempool size and bytes.
    MempoolInfo(oneshot::Sender<(usize, usize)>),
    /// Ids of pending transactions.
    MempoolTxids(oneshot::Sender<Vec<Hash32>>),
    /// A pending transaction.
    MempoolTx(Hash32, oneshot::Sender<Option<SignedUserTx>>),
    /// Equivocations seen.
    Evidence(oneshot::Sender<Vec<Equivocation>>),
    /// Claim a deposit whose registration was missed or expired (and gossip the claim).
    ClaimPegin(crate::pegin::PegClaim, oneshot::Sender<Result<(), CommandError>>),
    /// Operator: vote to resume the halted peg from this anchor (validators only).
    ResumePeg(ledger::BtcAnchor, oneshot::Sender<Result<(), CommandError>>),
    /// Operator: this validator's approval of a federation change (members of the set in force only).
    ApproveFederation(ledger::FederationProposal, oneshot::Sender<Result<ledger::Approval, CommandError>>),
    /// A federation change with its approvals, for the federation pool (checked, then gossiped).
    SubmitFederationChange(ledger::ReconfigureTx, oneshot::Sender<Result<Hash32, CommandError>>),
    /// Operator: pause (`true`) or resume (`false`) this validator's peg signing (see [`crate::breaker`]).
    SetSigningPaused(bool, oneshot::Sender<Result<crate::breaker::SigningStatus, StoreError>>),
}

/// The running node: send commands, watch status.
#[derive(Clone)]
pub struct ServiceHandle {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<NodeStatus>,
    store: std::sync::Arc<Store>,
    chain: Chain,
    net: NetHandle,
    blocks: tokio::sync::broadcast::Sender<ledger::Block>,
    btc: Option<watch::Receiver<BtcSnapshot>>,
}

impl ServiceHandle {
    /// What this validator's bitcoind showed at its last poll (`None` without a bitcoind).
    pub fn btc_snapshot(&self) -> Option<BtcSnapshot> {
        self.btc.as_ref().map(|b| b.borrow().clone())
    }

    /// Operator: vote to resume the halted peg from `anchor` (this validator signs a `ResumePeg` in the next
    /// block it proposes; 2f+1 such votes for one anchor resume the peg).
    pub async fn resume_peg(&self, anchor: ledger::BtcAnchor) -> Result<(), CommandError> {
        self.request(|done| Command::ResumePeg(anchor, done)).await
    }

    /// Submits a peg-in claim: checked against state now (`Err` if the outpoint was already minted), then
    /// gossiped; validators check it against their bitcoind and a proposer mints it once 2f+1 agree.
    pub async fn claim_pegin(&self, claim: crate::pegin::PegClaim) -> Result<(), CommandError> {
        self.request(|done| Command::ClaimPegin(claim, done)).await
    }

    /// Submits a transaction; `Ok(txid)` when the mempool took it.
    pub async fn submit_tx(&self, tx: SignedUserTx) -> Result<Hash32, CommandError> {
        self.request(|done| Command::SubmitTx(tx, done)).await
    }

    /// Operator: this validator's approval of a federation change.
    pub async fn approve_federation(
        &self,
        proposal: ledger::FederationProposal,
    ) -> Result<ledger::Approval, CommandError> {
        self.request(|done| Command::ApproveFederation(proposal, done)).await
    }

    /// A federation change with its approvals, for the federation pool; `Ok(txid)` when the pool took it.
    pub async fn submit_federation_change(&self, change: ledger::ReconfigureTx) -> Result<Hash32, CommandError> {
        self.request(|done| Command::SubmitFederationChange(change, done)).await
    }

    /// Asks the event loop to do something that it may refuse; [`CommandError::ShuttingDown`] when it is gone.
    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, CommandError>>) -> Command,
    ) -> Result<T, CommandError> {
        self.ask(make).await.ok_or(CommandError::ShuttingDown)?
    }

    /// Asks the event loop something; `None` when it is shutting down.
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (done, rx) = oneshot::channel();
        self.commands.send(make(done)).await.ok()?;
        rx.await.ok()
    }

    /// The p2p handle (peer list).
    pub fn net(&self) -> &NetHandle {
        &self.net
    }

    /// Every block committed from now on, once it is durable.
    pub fn subscribe_blocks(&self) -> tokio::sync::broadcast::Receiver<ledger::Block> {
        self.blocks.subscribe()
    }

    /// The latest status.
    pub fn status(&self) -> NodeStatus {
        self.status.borrow().clone()
    }

    /// The database, for read-only queries (blocks, certificates, state at a committed height).
    pub fn store(&self) -> &std::sync::Arc<Store> {
        &self.store
    }

    /// The chain definition (genesis, parameters).
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// An account as of the committed tip (zero if it never received anything).
    pub fn account(&self, id: &primitives::AccountId) -> Result<ledger::Account, ledger::StateError> {
        let tip = self.status.borrow().height;
        Ok(ledger::Snapshot::new(&*self.store, tip.get()).get_account(id)?.unwrap_or_default())
    }

    /// A receiver that changes whenever the status does.
    pub fn watch(&self) -> watch::Receiver<NodeStatus> {
        self.status.clone()
    }
}

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
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
    let (blocks_tx, _) = tokio::sync::broadcast::channel(256);
    let (status_tx, status_rx) = watch::channel(NodeStatus::default());
    let mut service = Service {
        mempool: Mempool::new(cfg.mempool),
        cfg,
        chain,
        core,
        net: started.handle.clone(),
        blocks: blocks_tx.clone(),
        best_peer_height: Height(0),
        peer_heights: HashMap::new(),
        net_events: Some(started.events),
        commands: Some(cmd_rx),
        status: status_tx,
        peer_id: started.local_peer_id,
        listen_addrs: started.listen_addrs,
        validator_index,
        timers: BinaryHeap::new(),
        timer_seq: 0,
        timer_payloads: HashMap::new(),
        proposals: ProposalStore::default(),
        peers: HashSet::new(),
        pending_decision: None,
        sync_in_flight: false,
        sync_results: mpsc::channel(16),
        evidence: Vec::new(),
        synced_blocks: 0,
        tip_committed_ms: now_ms(),
        own_messages: Vec::new(),
        resends: 0,
        deferred: Default::default(),
        draining: false,
        btc,
        anchor_height,
        registry,
        claims,
        batch_versions,
        claim_store: ClaimStore::new(ClaimLimits::default()),
        sync_limiter: RequestLimiter::new(crate::sync_serve::BURST, crate::sync_serve::PER_SEC),
        serving: crate::sync_serve::SyncServer::new(),
        flood_batches: 0,
        pending_value: None,
        tip_committed_at: Instant::now(),
        resume_request: watch::channel(None).0,
        signed_batches,
        finalized: HashMap::new(),
        bump_warned: HashSet::new(),
        alerts: (crate::alerts::AlertTracker::new(Default::default()), Height(u64::MAX), None),
        peg_summary: PegSummary::default(),
        fed_pool: crate::fed_pool::FedPool::default(),
        signing,
    };
    service.peg_summary = service.compute_peg_summary();
    service.publish_status();
    let handle = ServiceHandle {
        commands: cmd_tx,
        status: status_rx,
        store: service.chain.store().clone(),
        chain: service.chain.chain().clone(),
        net: started.handle,
        blocks: blocks_tx,
        btc: service.btc.clone(),
    };
    Ok((service, handle))
}

type SyncResult = (PeerId, Result<Response, SyncError>);

/// Why a sync request got no usable answer (logged; the next tip announcement asks again).
#[derive(Debug, thiserror::Error)]
enum SyncError {
    /// The request failed (timeout, disconnect, refused).
    #[error(transparent)]
    Request(#[from] net::NetError),
    /// The answer is not a [`Response`].
    #[error("undecodable response: {0}")]
    Undecodable(#[source] std::io::Error),
}

/// A batch version the share-time check refused: (batch, unsigned txid, why).
type Refused = (u64, Hash32, ledger::breaker::ShareCheckError);

/// The event loop's state.
pub struct Service {
    cfg: ServiceConfig,
    chain: ChainState,
    core: Consensus,
    mempool: Mempool,
    net: NetHandle,
    blocks: tokio::sync::broadcast::Sender<ledger::Block>,
    best_peer_height: Height,
    peer_heights: HashMap<PeerId, Height>,
    net_events: Option<mpsc::Receiver<NetEvent>>,
    commands: Option<mpsc::Receiver<Command>>,
    status: watch::Sender<NodeStatus>,
    peer_id: PeerId,
    listen_addrs: Vec<Multiaddr>,
    validator_index: Option<ValidatorIndex>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_seq: u64,
    timer_payloads: HashMap<u64, Timeout>,
    /// Blocks proposed for the height being decided (and the next), by hash, admitted per slot.
    proposals: ProposalStore,
    peers: HashSet<PeerId>,
    /// Decided but the block body is not here yet.
    pending_decision: Option<(Hash32, CommitCertificate)>,
    sync_in_flight: bool,
    sync_results: (mpsc::Sender<SyncResult>, mpsc::Receiver<SyncResult>),
    evidence: Vec<Equivocation>,
    synced_blocks: u64,
    tip_committed_ms: u64,
    /// Our own proposals and votes of the height being decided, re-sent until it is decided.
    own_messages: Vec<Gossip>,
    resends: u32,
    /// Core outputs not carried out yet, in order (see [`Service::pending_outputs`]).
    deferred: std::collections::VecDeque<Output>,
    /// Whether `deferred` is being drained (calls meanwhile only append).
    draining: bool,
    /// Our bitcoind as last polled (validators with a bitcoind only).
    btc: Option<watch::Receiver<BtcSnapshot>>,
    /// The anchor height of the tip, for the follower to know which hashes matter.
    anchor_height: watch::Sender<u32>,
    /// Every registered deposit script, for the follower's deposit index.
    registry: watch::Sender<std::sync::Arc<crate::pegin::Registry>>,
    /// Pending peg-in claims (not minted yet), for the follower to verify: `claim_store`'s list.
    claims: watch::Sender<Vec<crate::pegin::PegClaim>>,
    /// Signed versions of the batches in flight (txid, outputs), for the follower to locate on Bitcoin.
    batch_versions: watch::Sender<Vec<(Hash32, u32)>>,
    /// The pending claims with their source and verdict (see [`crate::claims`]).
    claim_store: ClaimStore,
    /// Sync requests allowed per peer (see [`crate::sync_serve`]).
    sync_limiter: RequestLimiter<PeerId>,
    /// Sync answers being read off the loop (at most [`crate::sync_serve::MAX_SERVING`], fairly shared).
    serving: crate::sync_serve::SyncServer<PeerId>,
    /// Test-only: junk proposals sent so far (`[fault] flood_proposals`), to make each batch new content.
    flood_batches: u64,
    /// The anchor an operator asked this validator to vote to resume the halted peg from.
    resume_request: watch::Sender<Option<ledger::BtcAnchor>>,
    /// A round-0 proposal waiting for work (or until the instant) on an idle chain.
    pending_value: Option<(Height, primitives::Round, Instant)>,
    /// When the tip was committed here (monotonic).
    tip_committed_at: Instant,
    /// The peg at the tip, for the status (see [`Service::compute_peg_summary`]).
    peg_summary: PegSummary,
    /// Fully signed peg-out batches for the broadcaster (validators with a bitcoind).
    signed_batches: Option<watch::Sender<Vec<bitcoin::Transaction>>>,
    /// Finalized batch versions, by (batch id, unsigned txid).
    finalized: HashMap<(u64, Hash32), bitcoin::Transaction>,
    /// Batch versions due for a fee bump that execution could not build, already warned about.
    bump_warned: HashSet<(u64, Hash32)>,
    /// Alerts, and the peg-out queue's wait at the tip (recomputed when the tip moves).
    alerts: (crate::alerts::AlertTracker, Height, Option<ledger::pegout_wait::PegOutWait>),
    /// Signature shares and federation changes waiting for a block.
    fed_pool: crate::fed_pool::FedPool,
    /// The pause switch and the share-time check's refusals: asked before any share leaves.
    signing: crate::breaker::SigningGuard,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
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
            let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
            let timer = async {
                match next_timer {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let idle_until = self.pending_value.map(|(_, _, at)| at);
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
                _ = timer => self.on_timers().await,
                _ = idle_over => self.release_pending_value(),
                Some((peer, res)) = self.sync_results.1.recv() => self.on_sync_result(peer, res).await,
                // Outputs left after a decision (the next height's first steps).
                _ = std::future::ready(()), if !self.deferred.is_empty() => self.pending_outputs(Vec::new()),
                _ = status_tick.tick() => {
                    self.announce_tip().await;
                    self.resend_own_messages();
                    self.apply_claim_verdicts();
                    self.observe_alerts();
                    if self.cfg.faults.flood_proposals {
                        self.flood_junk_proposals();
                    }
                    Ok(())
                }
            };
            if let Err(e) = step {
                break Err(e);
            }
            if self.pending_value.is_some() && self.has_block_work() {
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
            round: self.core.round().get(),
            mempool_txs: self.mempool.len(),
            peers: self.peers.len(),
            peer_id: self.peer_id.to_string(),
            listen_addrs: self.listen_addrs.iter().map(|a| a.to_string()).collect(),
            validator_index: self.validator_index.map(|i| i.get()),
            evidence: self.evidence.len(),
            synced_blocks: self.synced_blocks,
            tip_committed_ms: self.tip_committed_ms,
            tip_time_ms: self.chain.state().chain_meta().ok().flatten().map_or(0, |m| m.time_ms),
            last_commit_round: self.chain.tip_cert().map_or(0, |c| c.round.get()),
            best_peer_height: self.best_peer_height,
            step: format!("{:?}", self.core.step()).to_lowercase(),
            locked: self.core.locked().map(|rv| (rv.round.get(), rv.value)),
            peer_heights: self.peer_heights.iter().map(|(p, h)| (p.to_string(), *h)).collect(),
            peg: PegSummary { claims_pending: self.claims.borrow().len(), ..self.peg_summary.clone() },
            signing: self.signing.status(),
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
        let snap = self.btc.as_ref().map(|b| b.borrow().clone());
        let (tracker, _, wait) = &mut self.alerts;
        let facts =
            crate::alerts::facts_at(chain, &state, snap.as_ref(), now_ms(), tracker.build_failures(), wait.clone());
        crate::alerts::log_changes(&tracker.observe(&facts));
    }

    /// Recomputed when the tip moves (it reads state): the status is published after every event.
    fn compute_peg_summary(&self) -> PegSummary {
        let state = self.chain.state();
        let snap = self.btc.as_ref().map(|b| b.borrow().clone());
        PegSummary {
            totals: state.peg_totals().unwrap_or_default(),
            anchor_height: state.chain_meta().ok().flatten().map_or(0, |m| m.btc_anchor.height.get()),
            bitcoind_best: snap.as_ref().and_then(|s| s.best),
            deposits_seen: snap.as_ref().map_or(0, |s| {
                s.deposits
                    .values()
                    .flat_map(|b| b.scan.deposits.iter())
                    .filter(|d| matches!(state.get_pegin(&crate::pegin::mint_for(d).outpoint), Ok(None)))
                    .count()
            }),
            claims_pending: self.claims.borrow().len(),
            halted: ledger::peg_halt(&state).is_ok_and(|h| h.is_halted()),
        }
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
        let input = if wal.is_empty() {
            Input::NewHeight { height, validators }
        } else {
            info!(%height, entries = wal.len(), "restoring consensus from the WAL");
            Input::Restore { height, validators, wal }
        };
        let outputs = self.core.handle(input);
        self.pending_outputs(outputs)
    }

    /// Carries out outputs in order; outputs that produce inputs feed them back until none is left.
    ///
    /// One queue for all outputs, so they run in the order the core produced them even when carrying one
    /// out produces more (a decision starts the next height). A call made while the queue is being drained
    /// only appends, so nothing recurses; draining stops after each decision and the run loop resumes it,
    /// so a chain that decides instantly (one validator) still serves RPC, the network and SIGTERM.
    fn pending_outputs(&mut self, outputs: Vec<Output>) -> Result<(), ServiceError> {
        self.deferred.extend(outputs);
        if self.draining {
            return Ok(());
        }
        self.draining = true;
        let result = self.drain_outputs();
        self.draining = false;
        result
    }

    fn drain_outputs(&mut self) -> Result<(), ServiceError> {
        while let Some(out) = self.deferred.pop_front() {
            let height = self.core.height();
            let round = self.core.round();
            let _span = info_span!("consensus", height = %height, round = %round).entered();
            match out {
                Output::Persist(entry) => {
                    // Durable before anything after it: the safety of a restart depends on it.
                    self.chain.store().wal_append(&wire::encode(&entry))?;
                    if let WalEntry::Vote(v) = &entry {
                        if v.vote.kind == consensus::VoteKind::Precommit {
                            self.crash_point(crate::fault::CrashPoint::PrecommitPersisted, v.vote.height);
                        }
                    }
                }
                Output::Broadcast(msg) => self.broadcast(msg),
                Output::ScheduleTimeout { timeout, duration_ms } => {
                    let seq = self.timer_seq;
                    self.timer_seq += 1;
                    self.timer_payloads.insert(seq, timeout);
                    self.timers.push(Reverse((Instant::now() + Duration::from_millis(duration_ms), seq)));
                }
                Output::RequestValue { height, round } => {
                    let idle_wait = Duration::from_millis(self.cfg.consensus.empty_block_interval_ms);
                    if round.get() == 0 && !idle_wait.is_zero() && !self.has_block_work() {
                        // Nothing to put in a block yet: wait for work or the interval (see `Config`).
                        self.pending_value = Some((height, round, self.tip_committed_at + idle_wait));
                        continue;
                    }
                    if let Some(value) = self.build_proposal(height, round)? {
                        let outputs = self.core.handle(Input::ProposeValue { height, round, value });
                        self.deferred.extend(outputs);
                    }
                }
                Output::RequestValidity { height, value } => {
                    if let Some(valid) = self.check_validity(height, &value) {
                        let outputs = self.core.handle(Input::ProposalValidity { height, value, valid });
                        self.deferred.extend(outputs);
                    }
                }
                Output::Decide { height, value, certificate } => {
                    info!(%height, block = %value, round = %certificate.round, "decided");
                    // What the old height still had queued is moot once it is decided.
                    self.deferred.clear();
                    if self.proposals.contains_key(&value) {
                        self.commit_decided(value, certificate)?;
                    } else {
                        warn!(%height, block = %value, "decided a block we do not have; fetching it");
                        self.pending_decision = Some((value, certificate));
                        self.fetch_block(value);
                    }
                    break;
                }
                Output::Evidence(e) => {
                    warn!(offender = %e.offender(), height = %e.height(), round = %e.round(), "equivocation");
                    self.evidence.push(e);
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
        if self.evidence_to_include(&state).is_ok_and(|e| !e.is_empty()) {
            return true;
        }
        if !self.fed_pool.select(self.chain.chain(), &state).is_empty() {
            return true;
        }
        let Some(btc) = &self.btc else { return false };
        let Ok(Some(meta)) = state.chain_meta() else { return false };
        let p = self.chain.chain().params();
        let snap = btc.borrow();
        if peg::choose_anchor(&*snap, to_peg(&meta.btc_anchor), p.pegin_confirmations, p.max_anchor_step).is_some() {
            return true;
        }
        // Verified claims execution would accept (one it refuses is no reason for a block).
        let version = self.registry.borrow().version;
        let (prev, height) = (meta.btc_anchor, self.chain.tip().next());
        let room = crate::pegin::Room::block(self.chain.chain());
        crate::pegin::peg_plan(self.chain.chain(), &state, &snap, version, &prev, &prev, height, true, room)
            .is_ok_and(|plan| !plan.claims.is_empty())
    }

    /// Proposes the value a round-0 request was kept waiting for, if that round is still current.
    fn release_pending_value(&mut self) -> Result<(), ServiceError> {
        let Some((height, round, _)) = self.pending_value.take() else { return Ok(()) };
        if self.core.height() != height || self.core.round() != round {
            return Ok(());
        }
        let _span = info_span!("consensus", height = %height, round = %round).entered();
        if let Some(value) = self.build_proposal(height, round)? {
            let outputs = self.core.handle(Input::ProposeValue { height, round, value });
            self.pending_outputs(outputs)?;
        }
        Ok(())
    }

    fn broadcast(&mut self, msg: Message) {
        let gossip = match msg {
            Message::Proposal(p) => match self.proposals.get(&p.proposal.value) {
                Some(block) => Gossip::Proposal { proposal: p, block: Box::new(block.clone()) },
                None => {
                    warn!(block = %p.proposal.value, "own proposal without its block; not sent");
                    return;
                }
            },
            Message::Vote(v) => {
                if self.cfg.faults.equivocate && v.vote.kind == consensus::VoteKind::Prevote && v.vote.value.is_some() {
                    let genesis = *self.chain.chain().genesis_hash();
                    let twin = consensus::Vote { value: None, ..v.vote }.sign(&self.cfg.keys.consensus, &genesis);
                    self.spawn_publish(TOPIC_CONSENSUS, Gossip::Vote(twin));
                }
                if self.cfg.faults.precommit_nil && v.vote.kind == consensus::VoteKind::Precommit {
                    let genesis = *self.chain.chain().genesis_hash();
                    Gossip::Vote(consensus::Vote { value: None, ..v.vote }.sign(&self.cfg.keys.consensus, &genesis))
                } else {
                    Gossip::Vote(v)
                }
            }
        };
        if matches!(gossip, Gossip::Proposal { .. } | Gossip::Vote(_)) {
            self.own_messages.push(gossip.clone());
        }
        let precommit = match &gossip {
            Gossip::Vote(v) if v.vote.kind == consensus::VoteKind::Precommit => Some(v.vote.height),
            _ => None,
        };
        self.spawn_publish(TOPIC_CONSENSUS, gossip);
        if let Some(height) = precommit {
            self.crash_point(crate::fault::CrashPoint::PrecommitSent, height);
        }
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

    /// Builds our block for `height` from the mempool; returns its hash.
    fn build_proposal(&mut self, height: Height, round: primitives::Round) -> Result<Option<Hash32>, ServiceError> {
        if height != self.chain.tip().next() {
            return Ok(None);
        }
        let Some(proposer) = self.validator_index else { return Ok(None) };
        let state = self.chain.state();
        let meta = state.chain_meta().map_err(ChainError::from)?.ok_or(ChainError::Corrupt {
            what: "chain meta",
            height: self.chain.tip(),
            reason: "missing".into(),
        })?;
        let chain = self.chain.chain();
        // The peg's transactions go first, in the order `ledger::plan_peg_txs` applied them (settlements,
        // required mints, claims), so what it judged acceptable is exactly what this block executes; then
        // the federation pool's, evidence (few, small, must not wait behind a full mempool); user
        // transactions fill what is left; this validator's own go last (`ledger::assemble_proposal` says why).
        let own = self.own_validator_txs(&state, &meta.btc_anchor, height, proposer);
        let mut pool: Vec<ledger::Tx> = self.fed_pool.select(chain, &state);
        if !self.signing.may_sign() {
            // Paused: none of our shares through our own blocks (one relayed back to us included).
            let (federation, mine) = (self.chain.federation(), self.cfg.keys.peg_public());
            pool.retain(
                |t| !matches!(t, ledger::Tx::PegShare(s) if crate::breaker::own_share(federation, &state, &mine, s)),
            );
        }
        // Evidence first (at most 8, small), then the pool, cut to what fits beside our own (the pool may
        // hold more than a block): a big pool never keeps evidence out.
        let mut evidence = self.evidence_to_include(&state)?;
        evidence.append(&mut pool);
        let mut pool = ledger::fit_prefix(chain.params(), &own, evidence);
        let reserved: Vec<ledger::Tx> = own.iter().chain(&pool).cloned().collect();
        let room = crate::pegin::Room::after(chain, &reserved);
        let (btc_anchor, mut plan) = self.next_anchor(&state, &meta.btc_anchor, round, height, room);
        if round.get() == 0 {
            if let Some(btc) = &self.btc {
                let late = crate::pegin::late_settles(&state, &btc.borrow(), height, &btc_anchor, &plan, room);
                plan.settles.extend(late);
            }
        }
        if self.cfg.faults.omit_mints && !plan.mints.is_empty() {
            warn!(%height, left_out = plan.mints.len(), "FAULT: proposing an anchor move without its mints");
            plan.mints.clear();
        }
        let mut front = plan.txs();
        pool.retain(|t| !plan.supersedes(t));
        front.append(&mut pool);
        let candidates = self.mempool.candidates(chain.params().block_max_txs as usize * 2);
        let selection = ledger::select_txs(chain, &state, candidates).map_err(ChainError::from)?;
        let txs = ledger::assemble_proposal(chain.params(), front, selection.txs, own);
        let template = BlockTemplate {
            height,
            prev_hash: self.chain.tip_hash(),
            time_ms: now_ms().max(meta.time_ms + 1),
            proposer,
            btc_anchor,
            last_commit_hash: commit_hash(self.chain.tip_cert()),
        };
        match ledger::build_block(chain, &**self.chain.store(), template, txs) {
            Ok((block, _)) => {
                let fb = FullBlock { block, last_commit: self.chain.tip_cert().cloned() };
                let hash = fb.hash();
                info!(%height, block = %hash, txs = fb.block.txs.len(), "proposing");
                self.alerts.0.proposal_built(true);
                self.proposals.insert(hash, fb);
                Ok(Some(hash))
            }
            Err(e) => {
                warn!(%height, error = %e, "could not build a block; proposing nothing this round");
                self.alerts.0.proposal_built(false);
                Ok(None)
            }
        }
    }

    /// Evidence this node saw that the state does not hold yet, as transactions (at most 8 per block).
    fn evidence_to_include<S: StateReader>(&self, state: &S) -> Result<Vec<ledger::Tx>, ServiceError> {
        let mut out = Vec::new();
        let mut keys = HashSet::new();
        for e in &self.evidence {
            if out.len() == 8 {
                break;
            }
            // One record per (offender, height, round), however many message pairs show it.
            if keys.insert((e.offender(), e.height(), e.round()))
                && state.get_evidence(e.offender(), e.height(), e.round()).map_err(ChainError::from)?.is_none()
            {
                out.push(ledger::Tx::Evidence(ledger::EvidenceTx {
                    offender: e.offender(),
                    height: e.height(),
                    round: e.round(),
                    proof: wire::encode(e),
                }));
            }
        }
        Ok(out)
    }

    /// The anchor to propose and the peg transactions it carries: in round 0 the highest block our bitcoind
    /// shows with enough confirmations (within `max_anchor_step`) whose settlements and mints our index can
    /// list and `room` can hold; if no move fits, the previous anchor with the first early items of the
    /// next BTC block that fit (`crate::pegin::early_plan`), so a BTC block with more outputs than a block
    /// holds cannot freeze the anchor; from round 1 on, the previous anchor and only verified claims, so a
    /// lagging minority of bitcoinds cannot stall the chain.
    fn next_anchor<S: StateReader>(
        &self,
        state: &S,
        prev: &ledger::BtcAnchor,
        round: primitives::Round,
        height: Height,
        room: crate::pegin::Room,
    ) -> (ledger::BtcAnchor, ledger::PegPlan) {
        let halt = ledger::peg_halt(state).unwrap_or_default();
        if let Some(agreed) = halt.resume_to {
            return (agreed, ledger::PegPlan::default());
        }
        let Some(btc) = &self.btc else { return (*prev, ledger::PegPlan::default()) };
        if round.get() > 0 || halt.is_halted() {
            return (*prev, ledger::PegPlan::default());
        }
        let chain = self.chain.chain();
        let p = chain.params();
        let snap = btc.borrow().clone();
        let version = self.registry.borrow().version;
        let keep = || {
            // Claims only (the anchor stays), planned as far as `room`: all of it can go in.
            let plan = crate::pegin::peg_plan(chain, state, &snap, version, prev, prev, height, true, room)
                .unwrap_or_else(|why| {
                    debug!(%height, reason = %why, "no claims to mint");
                    ledger::PegPlan::default()
                });
            (*prev, plan)
        };
        let Some(wanted) = peg::choose_anchor(&snap, to_peg(prev), p.pegin_confirmations, p.max_anchor_step) else {
            return keep();
        };
        let wanted = from_peg(wanted);
        crate::pegin::anchor_with_plan(chain, state, &snap, version, prev, &wanted, height, room)
            .or_else(|| {
                crate::pegin::early_plan(chain, state, &snap, version, prev, &wanted, height, room).map(|e| (*prev, e))
            })
            .unwrap_or_else(keep)
    }

    /// This validator's own transactions for the block it proposes at `height`: a reorg report when its
    /// bitcoind no longer has the anchor in force, and its resume vote when an operator asked for one.
    fn own_validator_txs<S: StateReader>(
        &self,
        state: &S,
        anchor: &ledger::BtcAnchor,
        height: Height,
        me: ValidatorIndex,
    ) -> Vec<ledger::Tx> {
        let halt = ledger::peg_halt(state).unwrap_or_default();
        let mut kinds = Vec::new();
        let reported = halt.reported_anchor == Some(*anchor) && halt.reports.contains(&me);
        if let (Some(btc), false, None) = (&self.btc, reported, halt.resume_to) {
            let snap = btc.borrow();
            // The anchored chain is the anchor and, when early peg items went in, the block they named
            // above it (the peg cursor): either one replaced is a reorg deeper than N.
            let cursor = ledger::peg_cursor(state).unwrap_or_default().map(|c| c.btc_block);
            let reorged = [Some(*anchor), cursor].into_iter().flatten().find_map(|a| {
                match peg::check_in_best_chain(&*snap, to_peg(&a)) {
                    Err(why @ peg::AnchorRejection::PreviousAnchorReorged { .. }) => Some(why),
                    _ => None,
                }
            });
            if let Some(why) = reorged {
                error!(%height, anchor = anchor.height.get(), reason = %why, "reporting a Bitcoin reorg deeper than N");
                kinds.push(ledger::ValidatorTxKind::ReportReorg { anchor: *anchor });
            }
        }
        if let Some(resume) = *self.resume_request.borrow() {
            if halt.is_halted() && !halt.resume_votes.iter().any(|(_, v)| *v == me) {
                kinds.push(ledger::ValidatorTxKind::ResumePeg { anchor: resume });
            }
        }
        kinds.extend(self.fee_rate_vote(state, height, me));
        let genesis = *self.chain.chain().genesis_hash();
        kinds
            .into_iter()
            .map(|kind| {
                let tx = ledger::ValidatorTx { validator: me, height, kind };
                ledger::Tx::Validator(tx.sign(&self.cfg.keys.consensus, &genesis))
            })
            .collect()
    }

    /// Hands every in-flight batch's newest version with k shares, finalized, to the broadcaster (validators
    /// with a bitcoind). While a fee bump collects its shares, the previous signed version keeps going out:
    /// all versions conflict, so whichever Bitcoin takes, the batch is paid once.
    fn publish_signed_batches(&mut self) {
        let Some(tx) = &self.signed_batches else { return };
        let state = self.chain.state();
        let chain = self.chain.chain();
        let federation = self.chain.federation();
        let Ok(index) = ledger::batching::batch_index(&state) else { return };
        let secp = bitcoin::secp256k1::Secp256k1::verification_only();
        let mut txs = Vec::new();
        let mut versions = Vec::new();
        let meta = state.chain_meta().ok().flatten();
        for id in &index.in_flight {
            let Ok(Some(b)) = ledger::batching::batch(&state, *id) else { continue };
            // Every signed version may have gone out: where one confirmed is what a late settlement needs.
            for v in std::iter::once(b.current_version()).chain(b.earlier.iter().cloned()) {
                if v.shares.len() >= b.signers_needed as usize {
                    let outputs = v.unsigned(b.id).map(|t| t.output.len() as u32).unwrap_or(0);
                    versions.push((v.txid, outputs));
                }
            }
            // Still due after the block executed: the bump could not be built (the fee pool cannot pay it,
            // no spendable coins cover it, or the batch has its last version). Operators must hear of it.
            if meta.is_some_and(|m| ledger::bumping::bump_due(chain, &b, &m)) && self.bump_warned.insert((b.id, b.txid))
            {
                let pool = state.get_account(&ledger::fee_pool_id()).ok().flatten().map(|a| a.balance);
                warn!(batch = id, version = b.bumps() + 1, fee_pool = ?pool,
                    "peg-out batch is due for a fee bump that cannot be built: fund the fee pool (pay the plain \
                     federation address) or wait for more federation coins");
            }
            let k = b.signers_needed as usize;
            let newest_signed = std::iter::once(b.current_version())
                .chain(b.earlier.iter().rev().cloned())
                .find(|v| v.shares.len() >= k);
            let Some(v) = newest_signed else { continue };
            let Some(wallet) = federation.epoch(b.epoch).and_then(|e| chain.wallet(e).ok()) else { continue };
            if let Some(done) = self.finalized.get(&(b.id, v.txid)) {
                txs.push(done.clone());
                continue;
            }
            let shares: Vec<peg::shares::Share> = v
                .shares
                .iter()
                .map(|(v, s)| peg::shares::Share { signer: v.as_usize(), signatures: s.clone() })
                .collect();
            let finalized = v.unsigned(b.id).map_err(|e| e.to_string()).and_then(|unsigned| {
                peg::shares::finalize_batch(&secp, &wallet, chain.genesis_hash().0, &unsigned, &v.peg_inputs(), &shares)
                    .map_err(|e| e.to_string())
            });
            match finalized {
                Ok(signed) => {
                    info!(batch = id, version = b.bumps() + 1, btc_txid = %signed.compute_txid(),
                        "peg-out batch signed by a threshold: broadcasting");
                    self.finalized.insert((b.id, v.txid), signed.clone());
                    txs.push(signed);
                }
                Err(e) => error!(batch = id, error = %e, "cannot finalize a peg-out batch with k recorded shares"),
            }
        }
        self.finalized.retain(|(id, _), _| index.in_flight.contains(id));
        self.batch_versions.send_if_modified(|old| {
            let changed = *old != versions;
            *old = versions;
            changed
        });
        tx.send_if_modified(|old| {
            let changed = *old != txs;
            *old = txs;
            changed
        });
    }

    /// This validator's fee-rate vote, when it has none in state, its rate changed, or it is half as old as
    /// votes may be: the highest of its bitcoind's rate, its operator's floor and the chain's floor. None
    /// while its bitcoind does not answer (its old vote then ages out).
    fn fee_rate_vote<S: StateReader>(
        &self,
        state: &S,
        height: Height,
        me: ValidatorIndex,
    ) -> Option<ledger::ValidatorTxKind> {
        // Only two fields: the snapshot also holds the deposit index, too big to clone per proposal.
        let (best, estimate) = {
            let snap = self.btc.as_ref()?.borrow();
            (snap.best, snap.fee_rate_sat_vb)
        };
        best?;
        let chain = self.chain.chain();
        let want = estimate
            .unwrap_or(0)
            .max(self.cfg.fee_rate_floor_sat_vb)
            .max(chain.params().pegin_fee_rate_sat_vb)
            .clamp(1, ledger::fee_rate::MAX_FEE_RATE);
        let rates = ledger::fee_rate::fee_rates(state).ok()?;
        let refresh = chain.params().fee_vote_max_age / 2;
        match rates.votes.iter().find(|(v, _, _)| *v == me) {
            Some((_, rate, at)) if *rate == want && at.get().saturating_add(refresh) > height.get() => None,
            _ => Some(ledger::ValidatorTxKind::FeeRateVote { sat_per_vb: want }),
        }
    }

    /// Our signature shares for in-flight batches of every wallet epoch that holds our peg key (in force or
    /// earlier: a validator that left the federation still signs the sweep of its old wallet), that lack
    /// ours and lack their threshold. Batches are built by execution, each burn in exactly one; and each
    /// version must pass the share-time check ([`ledger::breaker::check_batch`]) first: the versions it
    /// refuses come back second, with why.
    fn batch_shares_to_sign<S: StateReader>(&self, state: &S) -> (Vec<ledger::PegShareTx>, Vec<Refused>) {
        let chain = self.chain.chain();
        let mut refused = Vec::new();
        let Ok(index) = ledger::batching::batch_index(state) else { return (Vec::new(), refused) };
        if index.in_flight.is_empty() {
            return (Vec::new(), refused);
        }
        let federation = self.chain.federation();
        let my_peg_key = self.cfg.keys.peg_public();
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let mut out = Vec::new();
        for id in index.in_flight.iter().take(8) {
            let Ok(Some(b)) = ledger::batching::batch(state, *id) else { continue };
            let Some(epoch) = federation.epoch(b.epoch) else { continue };
            let Some(me) = epoch.peg_signer(&my_peg_key) else { continue };
            let signer = ValidatorIndex(me as u16);
            if b.is_signed() || b.shares.iter().any(|(v, _)| *v == signer) {
                continue;
            }
            let Ok(wallet) = chain.wallet(epoch) else { continue };
            let Ok(tx) = b.unsigned() else { continue };
            if let Err(why) = ledger::breaker::check_batch(chain, state, &b) {
                refused.push((b.id, b.txid, why));
                continue;
            }
            // Persist what we sign before the share leaves, and never sign a version that would not conflict
            // with one signed before (a restart or a bug must not let two versions both confirm).
            let inputs: Vec<ledger::BtcOutPoint> = b.inputs.iter().map(|i| i.outpoint).collect();
            let store = self.chain.store();
            match store.signed_batch_versions(*id) {
                Ok(signed) if crate::pegin::safe_to_sign(&signed, &b.txid, &inputs) => {}
                Ok(_) => {
                    error!(
                        batch = id,
                        "refusing to sign a batch version that does not conflict with one signed before"
                    );
                    continue;
                }
                Err(e) => {
                    error!(batch = id, error = %e, "cannot read what this node signed; not signing");
                    continue;
                }
            }
            if let Err(e) = store.record_signed_batch_version(*id, (b.txid, inputs)) {
                error!(batch = id, error = %e, "cannot persist the signature record; not signing");
                continue;
            }
            self.crash_point(crate::fault::CrashPoint::BatchSignatureRecorded, self.chain.tip().next());
            let genesis = chain.genesis_hash().0;
            match peg::shares::sign_batch(&secp, &wallet, genesis, &tx, &b.peg_inputs(), me, &self.cfg.keys.peg) {
                Ok(share) => {
                    info!(batch = id, kind = ?b.kind, epoch = b.epoch, btc_txid = %rpc::types::btc_txid(&b.txid),
                        "signing batch");
                    out.push(ledger::PegShareTx { batch: *id, txid: b.txid, signer, signatures: share.signatures });
                }
                Err(e) => error!(batch = id, error = %e, "cannot sign batch"),
            }
        }
        (out, refused)
    }

    /// Signs what is ours to sign at the tip and hands new shares to the pool and the network. Our shares stay
    /// in our pool until a block has them, and we include them ourselves when we propose.
    /// Nothing while an operator has paused signing.
    fn sign_and_share(&mut self) {
        if !self.signing.may_sign() {
            let index = ledger::batching::batch_index(&self.chain.state()).ok();
            self.signing.paused_pass(index.as_ref().map(|i| i.in_flight.as_slice()));
            return;
        }
        let state = self.chain.state();
        let (shares, refused) = self.batch_shares_to_sign(&state);
        self.signing.set_refused(refused);
        if let Ok(index) = ledger::batching::batch_index(&state) {
            self.signing.retain_in_flight(&index.in_flight);
        }
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
        let (federation, mine) = (self.chain.federation(), self.cfg.keys.peg_public());
        self.fed_pool.drop_shares(|s| crate::breaker::own_share(federation, &state, &mine, s))
    }

    /// A validator's external check of a proposed anchor move against its own bitcoind (`None`: fine).
    fn anchor_objection(&self, prev: &ledger::BtcAnchor, proposed: &ledger::BtcAnchor) -> Option<String> {
        if proposed == prev || self.validator_index.is_none() {
            return None;
        }
        // The anchor 2f+1 validators agreed to resume from (execution holds the block to exactly it).
        if ledger::peg_halt(&self.chain.state()).is_ok_and(|h| h.resume_to == Some(*proposed)) {
            return None;
        }
        let Some(btc) = &self.btc else {
            return Some("no bitcoind configured, so this validator cannot check anchor moves".into());
        };
        let p = self.chain.chain().params();
        let snap = btc.borrow().clone();
        peg::check_anchor_move(&snap, to_peg(prev), to_peg(proposed), p.pegin_confirmations, p.max_anchor_step)
            .err()
            .map(|r| r.to_string())
    }

    /// Our verdict on a proposed block: re-execution and (validators) its time. `None`: block unknown.
    fn check_validity(&self, height: Height, value: &Hash32) -> Option<bool> {
        let fb = self.proposals.get(value)?;
        if height != self.chain.tip().next() {
            return Some(false);
        }
        let prev_anchor = self.chain.state().chain_meta().ok().flatten().map(|m| m.btc_anchor).unwrap_or_default();
        if let Some(why) = self.anchor_objection(&prev_anchor, &fb.block.header.btc_anchor) {
            warn!(%height, block = %value, anchor = fb.block.header.btc_anchor.height.get(), reason = %why,
                "voting nil: cannot confirm the proposed BTC anchor");
            return Some(false);
        }
        if self.validator_index.is_some() {
            let snap = self.btc.as_ref().map(|b| b.borrow().clone());
            let version = self.registry.borrow().version;
            let state = self.chain.state();
            if let Err(why) = crate::pegin::check_block_peg(
                self.chain.chain(),
                &state,
                snap.as_ref(),
                version,
                &prev_anchor,
                &fb.block,
            ) {
                warn!(%height, block = %value, reason = %why, "voting nil: the block's peg-in mints do not match our bitcoind");
                return Some(false);
            }
        }
        if fb.block.header.time_ms > now_ms() + self.cfg.max_future_block_ms {
            warn!(%height, block = %value, "proposed block's time is too far in the future");
            return Some(false);
        }
        match self.chain.validate_next(fb) {
            Ok(_) => Some(true),
            Err(e) => {
                warn!(%height, block = %value, error = %e, "proposed block is invalid");
                Some(false)
            }
        }
    }

    fn commit_decided(&mut self, value: Hash32, cert: CommitCertificate) -> Result<(), ServiceError> {
        let Some(fb) = self.proposals.get(&value).cloned() else { return Ok(()) };
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
                let included: Vec<Hash32> = outcome.receipts.iter().map(|r| r.txid).collect();
                self.mempool.on_block(self.chain.chain(), &self.chain.state(), &included);
                let state = self.chain.state();
                if let Ok(h) = ledger::peg_halt(&state) {
                    if h.halted_at == Some(fb.height()) {
                        error!(height = %fb.height(), reporters = ?h.reports,
                            "PEG HALTED: f+1 validators report a Bitcoin reorg deeper than N; no mints and no anchor \
                             moves until 2f+1 validators vote ResumePeg (transfers go on)");
                    }
                    if h.resume_to.is_some() {
                        warn!(height = %fb.height(), anchor = ?h.resume_to, "peg resumes from the agreed anchor");
                        self.resume_request.send_replace(None);
                    }
                }
                let tip = fb.height();
                // Minted claims are done; claims nobody could mint for CLAIM_TTL_BLOCKS are dropped (those
                // our bitcoind rejects go at once, see `apply_claim_verdicts`).
                let dropped = self.claim_store.retain(|c, at| {
                    let fresh = tip.get().saturating_sub(at.get()) <= crate::pegin::CLAIM_TTL_BLOCKS;
                    fresh && matches!(state.get_pegin(&c.outpoint), Ok(None))
                });
                if dropped {
                    self.publish_claims();
                }
                self.fed_pool.prune(self.chain.chain(), &state, &included);
                self.follow_federation(fb.height());
                self.publish_signed_batches();
                self.sign_and_share();
                let registered = crate::pegin::registrations_in(&fb.block);
                if !registered.is_empty() {
                    let chain = self.chain.chain().clone();
                    self.registry.send_modify(|r| {
                        std::sync::Arc::make_mut(r).add(&chain, &registered);
                    });
                }
                self.tip_committed_ms = now_ms();
                self.tip_committed_at = Instant::now();
                if synced {
                    self.synced_blocks += 1;
                }
                self.peg_summary = self.compute_peg_summary();
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
        let chain = self.chain.chain();
        let next_height = height.next();
        // Checked first: `make_mut` copies the whole registry while the follower holds it.
        if self.registry.borrow().epochs_changed(chain, fs, next_height) {
            self.registry.send_if_modified(|r| std::sync::Arc::make_mut(r).set_epochs(chain, fs, next_height));
        }
        self.warn_unswept_coins(height, fs);
    }

    /// Execution sweeps earlier wallets and refreshes coins nearing the emergency delay at every interval
    /// height; what is still due right after one could not be swept (the fee pool cannot pay, or the coins
    /// do not cover their own fee). Operators must hear of it: past the delay, the emergency keys can spend.
    fn warn_unswept_coins(&self, height: Height, fs: &ledger::FederationState) {
        let chain = self.chain.chain();
        if !height.get().is_multiple_of(chain.params().pegout_interval) {
            return;
        }
        let state = self.chain.state();
        if ledger::peg_halt(&state).is_ok_and(|h| h.is_halted()) {
            return;
        }
        let Ok(Some(meta)) = state.chain_meta() else { return };
        let Ok(spendable) = ledger::batching::spendable_utxos(&state) else { return };
        let in_force = fs.in_force().epoch;
        let (mut old, mut aging) = (0usize, 0usize);
        for o in &spendable.0 {
            let Ok(Some(u)) = state.get_federation_utxo(o) else { continue };
            if u.epoch != in_force {
                old += 1;
            } else if ledger::sweep::refresh_due(chain, u.btc_block.height, meta.btc_anchor.height) {
                aging += 1;
            }
        }
        if old + aging > 0 {
            let pool = state.get_account(&ledger::fee_pool_id()).ok().flatten().map(|a| a.balance);
            warn!(%height, earlier_wallet_outputs = old, outputs_due_for_refresh = aging, fee_pool = ?pool,
                "federation outputs could not be swept or refreshed: fund the fee pool (pay the plain federation \
                 address); outputs left past the emergency delay can be spent by the emergency keys");
        }
    }

    fn after_tip_moved(&mut self) -> Result<(), ServiceError> {
        if let Ok(Some(meta)) = self.chain.state().chain_meta() {
            self.anchor_height.send_if_modified(|h| std::mem::replace(h, meta.btc_anchor.height.get()) != *h);
        }
        self.chain.store().wal_clear()?;
        self.own_messages.clear();
        self.proposals.prune_committed(self.chain.tip());
        self.pending_decision = None;
        self.timers.clear();
        self.timer_payloads.clear();
        let outputs = self
            .core
            .handle(Input::NewHeight { height: self.chain.tip().next(), validators: self.chain.validators().clone() });
        self.pending_outputs(outputs)?;
        self.spawn_publish(TOPIC_STATUS, Gossip::Status { height: self.chain.tip() });
        Ok(())
    }

    async fn on_timers(&mut self) -> Result<(), ServiceError> {
        let now = Instant::now();
        while let Some(Reverse((at, seq))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(t) = self.timer_payloads.remove(&seq) {
                let outputs = self.core.handle(Input::TimeoutElapsed(t));
                self.pending_outputs(outputs)?;
            }
        }
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
                let _ = done.send(self.evidence.clone());
            }
            Command::ResumePeg(anchor, done) => {
                let res = match (self.validator_index, ledger::peg_halt(&self.chain.state())) {
                    (None, _) => Err(CommandError::NotAValidator),
                    (_, Err(e)) => Err(CommandError::State(e)),
                    (_, Ok(h)) if !h.is_halted() => Err(CommandError::PegNotHalted),
                    (Some(_), Ok(_)) => {
                        warn!(anchor = anchor.height.get(), "operator asks to resume the peg; voting when proposing");
                        self.resume_request.send_replace(Some(anchor));
                        Ok(())
                    }
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
                    true => self.signing.pause(self.chain.store(), now_ms()),
                    false => self.signing.resume(self.chain.store()),
                };
                if !self.signing.may_sign() {
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
                let _ = done.send(res.map(|()| self.signing.status()));
            }
            Command::ClaimPegin(claim, done) => {
                let res = self.add_claim(claim.clone(), ClaimSource::Local);
                if res.is_ok() {
                    self.spawn_publish(TOPIC_TXS, Gossip::Claim(claim));
                }
                let _ = done.send(res);
            }
        }
        Ok(())
    }

    /// Keeps a claim for the follower to verify and proposers to mint; refused when already minted, already
    /// pending, or when its source has no room left (see [`crate::claims`] for who may evict whom).
    fn add_claim(&mut self, claim: crate::pegin::PegClaim, source: ClaimSource) -> Result<(), CommandError> {
        if let Some(record) = self.chain.state().get_pegin(&claim.outpoint)? {
            return Err(CommandError::AlreadyMinted { outpoint: claim.outpoint, record: Box::new(record) });
        }
        // Keyed by the whole claim, not the outpoint: a wrong claim (another recipient, another block)
        // must not keep the right one out; at most one of them can ever be confirmed.
        let rejected = self.btc.as_ref().is_some_and(|b| b.borrow().rejected_claims.iter().any(|(c, _)| *c == claim));
        let added = self.claim_store.add(claim, source, self.chain.tip(), rejected)?;
        if !added.evicted.is_empty() {
            debug!(evicted = added.evicted.len(), "unverified gossip claims evicted for a new one");
        }
        self.publish_claims();
        Ok(())
    }

    /// Hands the pending claims to the follower (and the status) when they changed.
    fn publish_claims(&self) {
        let list = self.claim_store.list();
        self.claims.send_if_modified(|old| {
            let changed = *old != list;
            *old = list;
            changed
        });
    }

    /// Takes our bitcoind's verdicts on pending claims: confirmed ones become unevictable, rejected ones
    /// are dropped now rather than kept until their TTL.
    fn apply_claim_verdicts(&mut self) {
        let Some(btc) = &self.btc else { return };
        let (verified, rejected) = {
            let snap = btc.borrow();
            let verified: HashSet<crate::pegin::PegClaim> = snap
                .claims
                .iter()
                .map(|d| {
                    let m = crate::pegin::mint_for(d);
                    crate::pegin::PegClaim { outpoint: m.outpoint, recipient: m.recipient, btc_block: m.btc_block.hash }
                })
                .collect();
            let rejected: HashSet<crate::pegin::PegClaim> =
                snap.rejected_claims.iter().map(|(c, _)| c.clone()).collect();
            (verified, rejected)
        };
        if self.claim_store.apply_verdicts(&verified, &rejected) {
            self.publish_claims();
        }
    }

    fn admit_tx(&mut self, tx: SignedUserTx) -> Result<Hash32, MempoolError> {
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
                self.peers.insert(peer);
                self.announce_tip().await;
                Ok(())
            }
            NetEvent::PeerDisconnected(peer) => {
                self.peers.remove(&peer);
                self.peer_heights.remove(&peer);
                self.sync_limiter.prune(Instant::now());
                self.serving.forget(&peer);
                Ok(())
            }
            NetEvent::Request { peer, data, respond } => {
                match wire::decode::<Request>(&data) {
                    Ok(req) => self.answer(peer, req, respond),
                    Err(e) => {
                        let _ = self.net.penalize(peer, &format!("undecodable request: {e}"));
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
        let genesis = *self.chain.chain().genesis_hash();
        match g {
            Gossip::Status { height } => {
                // Never forwarded: only direct neighbours learn each other's tips.
                self.verdict(msg_id, source, Verdict::Ignore);
                self.best_peer_height = self.best_peer_height.max(height);
                if self.peers.contains(&source) {
                    self.peer_heights.insert(source, height);
                }
                if height > self.chain.tip() {
                    self.start_sync(source);
                }
                Ok(())
            }
            Gossip::Claim(claim) => {
                let verdict = if self.add_claim(claim, ClaimSource::Peer(source)).is_ok() {
                    Verdict::Accept
                } else {
                    Verdict::Ignore
                };
                self.verdict(msg_id, source, verdict);
                Ok(())
            }
            Gossip::Fed(tx) => {
                // A share for a version we have not seen yet (we lag) is not the sender's fault: ignored,
                // never punished; what applies is kept and forwarded.
                let state = self.chain.state();
                let verdict = match self.fed_pool.admit(self.chain.chain(), &state, tx) {
                    Ok(true) => Verdict::Accept,
                    Err(e) if e.is_forged() => {
                        debug!(%source, error = %e, "forged federation transaction");
                        Verdict::Reject
                    }
                    Ok(false) | Err(_) => Verdict::Ignore,
                };
                self.verdict(msg_id, source, verdict);
                Ok(())
            }
            Gossip::Tx(tx) => {
                let verdict = match self.admit_tx(tx) {
                    Ok(_) => Verdict::Accept,
                    Err(MempoolError::Invalid(ledger::TxError::BadSignature(_))) => Verdict::Reject,
                    Err(_) => Verdict::Ignore,
                };
                self.verdict(msg_id, source, verdict);
                Ok(())
            }
            Gossip::Vote(v) => {
                if self.outside_height_window(v.vote.height, &msg_id, source) {
                    return Ok(());
                }
                if self.cfg.faults.precommit_nil && v.vote.kind == consensus::VoteKind::Precommit {
                    self.verdict(msg_id, source, Verdict::Ignore);
                    return Ok(());
                }
                // Against the set of the vote's own height: a change may take effect at the next one.
                let set = self.chain.validators_at(v.vote.height).unwrap_or(self.chain.validators());
                if let Err(e) = v.verify(set, &genesis) {
                    // Not punished for the height after next: a set we cannot know yet may decide it.
                    let verdict =
                        if v.vote.height > self.chain.tip().next() { Verdict::Ignore } else { Verdict::Reject };
                    debug!(%source, error = %e, "vote rejected");
                    self.verdict(msg_id, source, verdict);
                    return Ok(());
                }
                self.verdict(msg_id, source, Verdict::Accept);
                let outputs = self.core.handle(Input::Vote(v));
                self.pending_outputs(outputs)
            }
            Gossip::Proposal { proposal, block } => {
                let h = proposal.proposal.height;
                if self.outside_height_window(h, &msg_id, source) {
                    return Ok(());
                }
                // Judged only against the set in force at its own height (tip + 1 or tip + 2), never another.
                let Some(set) = self.chain.validators_at(h) else {
                    self.verdict(msg_id, source, Verdict::Ignore);
                    return Ok(());
                };
                if let Err(e) = proposal.verify(set, &genesis) {
                    let verdict = if h > self.chain.tip().next() { Verdict::Ignore } else { Verdict::Reject };
                    debug!(%source, error = %e, "proposal rejected");
                    self.verdict(msg_id, source, verdict);
                    return Ok(());
                }
                let p = &proposal.proposal;
                let expected = set.proposer(h, p.round);
                let window = Window { height: self.chain.tip().next(), round: self.core.round() };
                // Old rounds go (a long stall must not grow the store), but never a value consensus needs.
                let needed = [self.core.locked(), self.core.valid()].into_iter().flatten().map(|v| v.value);
                let keep: Vec<Hash32> = needed.chain(self.pending_decision.as_ref().map(|d| d.0)).collect();
                self.proposals.prune_rounds(window, &keep);
                let slot = Slot { height: h, round: p.round, proposer: p.proposer };
                // Kept per (height, round, proposer), so a flood by one validator cannot crowd out another's
                // block; what is not kept is not handed to the core either (it could never judge it).
                if let Err(e) = self.proposals.admit(window, expected, slot, p.value, *block) {
                    debug!(%source, error = %e, "proposal not kept");
                    self.verdict(msg_id, source, if e.is_forged() { Verdict::Reject } else { Verdict::Ignore });
                    return Ok(());
                }
                self.verdict(msg_id, source, Verdict::Accept);
                if let Some((value, cert)) = self.pending_decision.clone() {
                    if self.proposals.contains_key(&value) {
                        return self.commit_decided(value, cert);
                    }
                }
                let outputs = self.core.handle(Input::Proposal(proposal));
                self.pending_outputs(outputs)
            }
        }
    }

    /// Only heights h and h+1 are handed to the core. Older messages are ignored; newer ones are ignored
    /// too but tell us we are behind, so we sync from the sender. Returns whether the message was dropped.
    fn outside_height_window(&mut self, h: Height, msg_id: &MessageId, source: PeerId) -> bool {
        let current = self.chain.tip().next();
        if h >= current && h <= current.next() {
            return false;
        }
        self.verdict(msg_id.clone(), source, Verdict::Ignore);
        if h > current.next() {
            self.start_sync(source);
        }
        true
    }

    /// Answers a peer's request within its rate (see [`crate::sync_serve`]): a block still being decided
    /// from memory, anything read from disk on a blocking thread, never on this loop.
    fn answer(&mut self, peer: PeerId, req: Request, respond: net::Responder) {
        match self.sync_limiter.check(&peer, Instant::now()) {
            Allowance::Granted => {}
            refused => {
                debug!(%peer, "sync request over the peer's rate: refused");
                if refused == Allowance::RefusedPenalize {
                    let _ = self.net.penalize(peer, "sync requests far over the rate limit");
                }
                let _ = respond.send(wire::encode(&Response::Busy));
                return;
            }
        }
        if let Request::GetBlock { hash } = &req {
            if let Some(fb) = self.proposals.get(hash) {
                let _ = respond.send(wire::encode(&Response::Block(Some(Box::new(fb.clone())))));
                return;
            }
        }
        // Committed blocks never change: what is at or below this tip can be read while the loop goes on,
        // on a blocking thread, with slots shared fairly between peers (see `crate::sync_serve`).
        let job = crate::sync_serve::answer_job(self.chain.store().clone(), self.chain.tip(), req, respond);
        self.serving.submit(peer, job);
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
        if self.own_messages.is_empty() {
            return;
        }
        self.resends = self.resends.wrapping_add(1);
        // The latest few are what matters: the current round's proposal and votes.
        let start = self.own_messages.len().saturating_sub(4);
        for body in self.own_messages[start..].iter().cloned() {
            self.spawn_publish_frame(TOPIC_CONSENSUS, Frame { resend: self.resends, body });
        }
    }

    async fn announce_tip(&mut self) {
        self.spawn_publish(TOPIC_STATUS, Gossip::Status { height: self.chain.tip() });
    }

    fn start_sync(&mut self, peer: PeerId) {
        if self.sync_in_flight {
            return;
        }
        self.sync_in_flight = true;
        let net = self.net.clone();
        let tx = self.sync_results.0.clone();
        let req = wire::encode(&Request::GetBlocks { from: self.chain.tip().next(), max: MAX_BLOCKS_PER_RESPONSE });
        tokio::spawn(
            async move {
                let res = match net.request(peer, req).await {
                    Ok(bytes) => wire::decode::<Response>(&bytes).map_err(SyncError::Undecodable),
                    Err(e) => Err(SyncError::Request(e)),
                };
                let _ = tx.send((peer, res)).await;
            }
            .instrument(info_span!("sync", %peer)),
        );
    }

    fn fetch_block(&mut self, hash: Hash32) {
        let net = self.net.clone();
        let tx = self.sync_results.0.clone();
        let peers: Vec<PeerId> = self.peers.iter().copied().collect();
        tokio::spawn(async move {
            for peer in peers {
                if let Ok(bytes) = net.request(peer, wire::encode(&Request::GetBlock { hash })).await {
                    if let Ok(Response::Block(Some(b))) = wire::decode::<Response>(&bytes) {
                        let _ = tx.send((peer, Ok(Response::Block(Some(b))))).await;
                        return;
                    }
                }
            }
        });
    }

    async fn on_sync_result(&mut self, peer: PeerId, res: Result<Response, SyncError>) -> Result<(), ServiceError> {
        match res {
            Err(e) => {
                self.sync_in_flight = false;
                debug!(%peer, error = %e, "sync request failed");
                Ok(())
            }
            Ok(Response::Block(Some(fb))) => {
                if let Some((value, cert)) = self.pending_decision.clone() {
                    if fb.hash() == value {
                        self.proposals.insert(value, *fb);
                        return self.commit_decided(value, cert);
                    }
                }
                Ok(())
            }
            Ok(Response::Block(None)) => Ok(()),
            Ok(Response::Busy) => {
                // Asked again on the peer's next tip announcement (or another peer's).
                self.sync_in_flight = false;
                debug!(%peer, "peer is busy: sync later");
                Ok(())
            }
            Ok(Response::Blocks(blocks)) => {
                self.sync_in_flight = false;
                let full = blocks.len() as u32 == MAX_BLOCKS_PER_RESPONSE;
                let mut committed = 0u64;
                let mut by_height: BTreeMap<Height, (FullBlock, CommitCertificate)> = BTreeMap::new();
                for (fb, cert) in blocks {
                    by_height.insert(fb.height(), (fb, cert));
                }
                for (h, (fb, cert)) in by_height {
                    if h != self.chain.tip().next() {
                        continue;
                    }
                    match self.commit_block(&fb, &cert, true) {
                        Ok(()) => committed += 1,
                        Err(ServiceError::Chain(e)) => {
                            warn!(%peer, error = %e, "peer served an invalid block");
                            let _ = self.net.penalize(peer, "invalid block in sync response");
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
