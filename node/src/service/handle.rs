//! The service's face to the rest of the daemon: its configuration, the handle RPC and `main` hold, the
//! commands the handle sends to the event loop, and what the loop reports about itself.
//!
//! Kept apart from the loop so that a reader of the RPC backend sees the whole contract here, and so the
//! loop's own files never need to be read to call the node.

use super::CommandError;
pub use crate::bridge::PegSummary;
use crate::btc_follow::BtcSnapshot;
use crate::chain::ChainError;
use crate::keys::NodeKeys;
use crate::mempool::MempoolLimits;
use crate::storage::{Store, StoreError};
use consensus::Equivocation;
use ledger::{Chain, SignedUserTx, StateReader};
use net::{Multiaddr, NetHandle};
use primitives::{BlockId, Height, StateRoot, TxId};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

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
    /// Whether to keep the account history (`[index] history`).
    pub history: crate::chain::HistoryIndex,
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
    pub tip_hash: BlockId,
    /// State root after the tip.
    pub state_root: StateRoot,
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
    /// Blocks this node executed (validity checks and commits; building its own proposals is not
    /// counted): one per committed block when every block was judged or built here before it committed.
    pub block_executions: u64,
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
    pub locked: Option<(u32, BlockId)>,
    /// The tip each connected peer last announced, by peer id.
    pub peer_heights: BTreeMap<String, Height>,
    /// The peg at the tip, and what our bitcoind shows.
    pub peg: PegSummary,
    /// The operator's pause switch and the shares the share-time check refuses (see [`crate::breaker`]).
    pub signing: crate::breaker::SigningStatus,
    /// Conditions an operator must look at (see [`crate::alerts`]).
    pub alerts: Vec<crate::alerts::Alert>,
}

/// Requests from RPC to the service (answered from the event loop, which owns the mempool).
pub enum Command {
    /// Submit a transaction to the mempool (and gossip it).
    SubmitTx(SignedUserTx, oneshot::Sender<Result<TxId, CommandError>>),
    /// Mempool size and bytes.
    MempoolInfo(oneshot::Sender<(usize, usize)>),
    /// Ids of pending transactions.
    MempoolTxids(oneshot::Sender<Vec<TxId>>),
    /// A pending transaction.
    MempoolTx(TxId, oneshot::Sender<Option<SignedUserTx>>),
    /// Equivocations seen.
    Evidence(oneshot::Sender<Vec<Equivocation>>),
    /// Claim a deposit whose registration was missed or expired (and gossip the claim).
    ClaimPegin(crate::pegin::PegClaim, oneshot::Sender<Result<(), CommandError>>),
    /// Operator: vote to resume the halted peg from this anchor (validators only).
    ResumePeg(ledger::BtcAnchor, oneshot::Sender<Result<(), CommandError>>),
    /// Operator: this validator's approval of a federation change (members of the set in force only).
    ApproveFederation(ledger::FederationProposal, oneshot::Sender<Result<ledger::Approval, CommandError>>),
    /// A federation change with its approvals, for the federation pool (checked, then gossiped).
    SubmitFederationChange(ledger::ReconfigureTx, oneshot::Sender<Result<TxId, CommandError>>),
    /// Operator: pause (`true`) or resume (`false`) this validator's peg signing (see [`crate::breaker`]).
    SetSigningPaused(bool, oneshot::Sender<Result<crate::breaker::SigningStatus, StoreError>>),
}

/// The running node: send commands, watch status.
#[derive(Clone)]
pub struct ServiceHandle {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) status: watch::Receiver<NodeStatus>,
    pub(super) store: std::sync::Arc<Store>,
    pub(super) chain: Chain,
    pub(super) net: NetHandle,
    pub(super) blocks: tokio::sync::broadcast::Sender<ledger::Block>,
    pub(super) btc: Option<watch::Receiver<BtcSnapshot>>,
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
    pub async fn submit_tx(&self, tx: SignedUserTx) -> Result<TxId, CommandError> {
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
    pub async fn submit_federation_change(&self, change: ledger::ReconfigureTx) -> Result<TxId, CommandError> {
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
