//! The narrow interface between the RPC server and the node: every piece of data the API serves.
//!
//! Why a trait: the server (parameter checks, error codes, JSON shapes, auth) is tested here against an
//! in-memory backend, while `node` implements it over RocksDB and its service handles. The server never
//! sees storage or consensus internals, and the node never sees JSON.
//!
//! Reads return `Result<Option<T>, BackendError>` as in reth: `Ok(None)` is "not there" (the server turns
//! it into a -5 or -8 a person understands), `Err` is "the node could not read" (-32603).
//! Futures are `Send` so the jsonrpsee server can run them on any worker.

use crate::types::{
    BitcoinViewInfo, ChainInfo, ConsensusStateInfo, EvidenceInfo, FederationInfo, HistoryEntryInfo, MempoolInfo,
    NetworkInfo, PeerInfo, PegInAddressInfo, PegInFacts, PegOutInfo, ReserveProofInfo, SigningInfo, StoredBlock,
    TxLookup, ValidatorInfo,
};
use consensus::CommitCertificate;
use ledger::{Account, BtcOutPoint, SignedUserTx};
use primitives::{AccountId, BlockId, Height, TxId};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::broadcast;

use crate::types::BlockSummary;

/// A refusal the node explains with its own error type (a mempool policy, a claim limit, a proposal
/// the ledger would not accept). The server shows its message as is and decides nothing by it: every
/// decision (the error code, what a client may do next) is made by the variant that carries it. Shared
/// (`Arc`) so the errors stay `Clone`, as jsonrpsee's handlers and the test backends want.
pub type Refusal = Arc<dyn std::error::Error + Send + Sync>;

/// Wraps any error as a [`Refusal`].
pub fn refusal(e: impl std::error::Error + Send + Sync + 'static) -> Refusal {
    Arc::new(e)
}

/// The node could not answer (not a verdict on the request).
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// Reading storage failed.
    #[error("node storage read failed: {0}")]
    Storage(Refusal),
    /// The node is stopping and no longer serves this.
    #[error("node is shutting down")]
    ShuttingDown,
}

impl BackendError {
    /// A storage (or decoding) failure, keeping its error.
    pub fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        BackendError::Storage(Arc::new(e))
    }
}

/// Why `sendrawtransaction` did not admit a transaction.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    /// The same transaction is already in the mempool.
    #[error("transaction {0} is already in the mempool")]
    Duplicate(TxId),
    /// It is not valid against the tip (e.g. `account 3fa4..: expected nonce 3, got 5`, `fee 10 sat is below
    /// the minimum 100 sat`, a deposit registration refreshed while still live).
    #[error(transparent)]
    Invalid(ledger::TxError),
    /// The mempool's own policy refused it (a nonce gap, the pool full, too large); shown as is.
    #[error(transparent)]
    Policy(Refusal),
    /// The node could not check it.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Why the node did not take a peg-in claim (`claimpegin`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClaimError {
    /// The ledger already recorded the deposit (minted, or held below the minimum).
    #[error(
        "deposit {}:{} was already {} at height {at}{}",
        outpoint.txid,
        outpoint.vout,
        if *held { "recorded (below the minimum, held)" } else { "minted" },
        mint_txid.map(|t| format!(" (mint txid {t})")).unwrap_or_default()
    )]
    AlreadyMinted {
        /// The deposit.
        outpoint: BtcOutPoint,
        /// The height of the block that recorded it.
        at: Height,
        /// Recorded below the minimum: held by the federation, nothing credited.
        held: bool,
        /// The sidechain transaction that recorded it, when known.
        mint_txid: Option<TxId>,
    },
    /// A claim for the same outpoint is already pending.
    #[error(
        "deposit {}:{}: a claim for this deposit is already pending",
        outpoint.txid,
        outpoint.vout
    )]
    AlreadyPending {
        /// The deposit.
        outpoint: BtcOutPoint,
    },
    /// Refused for another reason (too many claims pending, our bitcoind rejected it); shown as is.
    #[error(transparent)]
    Rejected(Refusal),
    /// The node could not check it.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Why the node refused an operator's request (`resumepeg`, `approvefederationchange`,
/// `submitfederationchange`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum OperatorError {
    /// Refused (not a validator, the peg not halted, a proposal that would not apply); shown as is.
    #[error(transparent)]
    Refused(Refusal),
    /// The node could not check it.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Why a node without the capability refuses an operator request (the defaults of [`RpcBackend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// Not a node that can approve federation changes.
    #[error("this node cannot approve federation changes")]
    ApproveFederation,
    /// Not a node that can relay federation changes.
    #[error("this node cannot relay federation changes")]
    RelayFederation,
}

/// Everything the RPC server reads from, or hands to, the node.
///
/// Heights are sidechain heights: 0 is the genesis (not a block), blocks are `1..=chain_info().height`.
pub trait RpcBackend: Send + Sync + 'static {
    /// The chain tip and node status (`getblockchaininfo`, and the tip for range checks).
    fn chain_info(&self) -> impl Future<Output = Result<ChainInfo, BackendError>> + Send;

    /// The committed block at `height` with its certificate; `None` above the tip or at 0.
    fn block_by_height(&self, height: Height)
        -> impl Future<Output = Result<Option<StoredBlock>, BackendError>> + Send;

    /// The height of the committed block with this hash; `None` if unknown.
    fn block_height_by_hash(&self, hash: BlockId) -> impl Future<Output = Result<Option<Height>, BackendError>> + Send;

    /// The hash of the committed block at `height`. The default loads the whole block; a store with a
    /// height index should override it.
    fn block_hash(&self, height: Height) -> impl Future<Output = Result<Option<BlockId>, BackendError>> + Send {
        async move { Ok(self.block_by_height(height).await?.map(|b| b.block.hash())) }
    }

    /// The commit certificate of the block at `height`. The default loads the whole block.
    fn commit(&self, height: Height) -> impl Future<Output = Result<Option<CommitCertificate>, BackendError>> + Send {
        async move { Ok(self.block_by_height(height).await?.map(|b| b.commit)) }
    }

    /// A transaction by id, from the mempool or a committed block.
    fn transaction(&self, txid: TxId) -> impl Future<Output = Result<Option<TxLookup>, BackendError>> + Send;

    /// An account in the state at the tip; `None` if it never received anything.
    fn account(&self, id: AccountId) -> impl Future<Output = Result<Option<Account>, BackendError>> + Send;

    /// Admits a transaction to the mempool (signature, nonce, fee and balance checked against the tip
    /// and pending transactions) and relays it; returns its txid.
    fn submit_tx(&self, tx: SignedUserTx) -> impl Future<Output = Result<TxId, SubmitError>> + Send;

    /// Mempool size.
    fn mempool_info(&self) -> impl Future<Output = Result<MempoolInfo, BackendError>> + Send;

    /// Txids in the mempool, in the order the node would include them.
    fn mempool_txids(&self) -> impl Future<Output = Result<Vec<TxId>, BackendError>> + Send;

    /// Connected peers.
    fn peers(&self) -> impl Future<Output = Result<Vec<PeerInfo>, BackendError>> + Send;

    /// Our p2p identity and listeners.
    fn network(&self) -> impl Future<Output = Result<NetworkInfo, BackendError>> + Send;

    /// The validator set in force at the tip.
    fn validators(&self) -> impl Future<Output = Result<Vec<ValidatorInfo>, BackendError>> + Send;

    /// Equivocation evidence the node knows of (committed to state or seen), oldest first.
    fn evidence(&self) -> impl Future<Output = Result<Vec<EvidenceInfo>, BackendError>> + Send;

    /// The federation wallet in force, its history and any pending change.
    fn federation(&self) -> impl Future<Output = Result<FederationInfo, BackendError>> + Send;

    /// The deposit address bound to `recipient`.
    fn pegin_address(
        &self,
        recipient: AccountId,
    ) -> impl Future<Output = Result<PegInAddressInfo, BackendError>> + Send;

    /// What the node knows about the deposit at `outpoint`: the ledger's record at
    /// the tip with its block time, what its bitcoind shows (validators only), the recipient's registration.
    fn pegin_facts(&self, outpoint: BtcOutPoint) -> impl Future<Output = Result<PegInFacts, BackendError>> + Send;

    /// Keeps and gossips a claim that the deposit at `outpoint` in BTC block `btc_block` (both internal
    /// byte order) is to be minted to `recipient`. Validators check it against their own bitcoinds later;
    /// here it is refused only when the deposit is already recorded or claimed, or too many claims wait.
    fn claim_pegin(
        &self,
        outpoint: BtcOutPoint,
        recipient: AccountId,
        btc_block: bitcoin::BlockHash,
    ) -> impl Future<Output = Result<(), ClaimError>> + Send;

    /// `account`'s history, newest first: `count` entries after skipping the `skip` newest; `None` when this
    /// node keeps no history.
    fn account_history(
        &self,
        account: AccountId,
        count: usize,
        skip: usize,
    ) -> impl Future<Output = Result<Option<Vec<HistoryEntryInfo>>, BackendError>> + Send;

    /// Burns at the tip, newest first (burn ids `next_burn_id - 1 - skip` down), at most `count`.
    fn pegouts(&self, count: usize, skip: usize) -> impl Future<Output = Result<Vec<PegOutInfo>, BackendError>> + Send;

    /// The burn made by the sidechain transaction `txid`; `None` if it made none.
    fn pegout_by_txid(&self, txid: TxId) -> impl Future<Output = Result<Option<PegOutInfo>, BackendError>> + Send;

    /// Operator: this validator votes to resume the halted peg from `anchor`. `Err(Refused)` when this
    /// node is not a validator or the peg is not halted.
    fn resume_peg(&self, anchor: ledger::BtcAnchor) -> impl Future<Output = Result<(), OperatorError>> + Send;

    /// Operator: pause (`true`) or resume (`false`) this node's peg signing, durably; the signing status
    /// after the change.
    fn set_signing_paused(&self, paused: bool) -> impl Future<Output = Result<SigningInfo, BackendError>> + Send;

    /// Operator: this validator's approval of a federation change. `Err(Refused)` when this node is not in
    /// the set in force or the proposal is not acceptable. The default: a node that cannot approve.
    fn approve_federation(
        &self,
        _proposal: ledger::FederationProposal,
    ) -> impl Future<Output = Result<ledger::Approval, OperatorError>> + Send {
        async move { Err(OperatorError::Refused(refusal(Unsupported::ApproveFederation))) }
    }

    /// A federation change with its approvals: checked against the tip, then relayed for the next block.
    /// `Err(Refused)` says why it would not apply. The default: a node that cannot relay.
    fn submit_federation_change(
        &self,
        _change: ledger::ReconfigureTx,
    ) -> impl Future<Output = Result<primitives::TxId, OperatorError>> + Send {
        async move { Err(OperatorError::Refused(refusal(Unsupported::RelayFederation))) }
    }

    /// The entries `keys` of the state after `height` (`None`: the tip) with their proofs against that
    /// state's root; `None` when `height` is above the tip.
    fn state_proof(
        &self,
        height: Option<Height>,
        keys: Vec<ledger::StateKey>,
    ) -> impl Future<Output = Result<Option<crate::types::StateProofInfo>, BackendError>> + Send;

    /// The chain's `federation_change_min_lead`: a light client knows the validator sets that far past a
    /// proved federation entry, so `getheaders` attaches one at least that often.
    fn federation_change_min_lead(&self) -> u64;

    /// The reserves at the tip with their proofs.
    fn reserve_proof(&self) -> impl Future<Output = Result<ReserveProofInfo, BackendError>> + Send;

    /// The consensus state of the height being decided.
    fn consensus_state(&self) -> impl Future<Output = Result<ConsensusStateInfo, BackendError>> + Send;

    /// What this node's bitcoind shows (`getbitcoinview`). The default is a node without one; a node with
    /// a bitcoind overrides it.
    fn bitcoin_view(&self) -> impl Future<Output = Result<BitcoinViewInfo, BackendError>> + Send {
        async move {
            let anchor = self.chain_info().await?.btc_anchor.height.get();
            let required = self.federation().await?.pegin_confirmations;
            Ok(BitcoinViewInfo::without_bitcoind(anchor, required))
        }
    }

    /// A receiver of every block committed from now on. The node sends a [`BlockSummary`] after the
    /// block is durable; a subscriber that lags behind the channel capacity misses blocks (it is told
    /// so and the subscription ends, so it can resync with `getblock`).
    fn subscribe_blocks(&self) -> broadcast::Receiver<BlockSummary>;
}
