//! The ledger: accounts, transactions and block execution.
//!
//! Execution is pure and deterministic: the new state is a function of the previous state and the block
//! alone. It never calls bitcoind or reads the clock, so every full node re-runs it and must reach the
//! state root in the header.
//!
//! The node's entry points:
//! - [`Chain::new`] from the [`Genesis`] file, then [`Chain::genesis_state`] once on an empty store;
//! - [`check_tx`] for mempool admission, [`select_txs`] and [`build_block`] to propose,
//!   [`execute_block`] before prevoting and when applying a committed block;
//! - persist [`ExecutionOutcome::write_set`] atomically with the block; reads go through
//!   `jmt::storage::TreeReader` implemented over the node's database ([`MemStore`] in memory).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod anchor_move;
pub mod batching;
pub mod block;
pub mod breaker;
pub mod bumping;
pub mod codec;
pub mod economic;
pub mod execute;
pub mod federation;
pub mod fee_rate;
pub mod genesis;
pub mod halt;
pub mod peg_cursor;
pub mod pegin;
pub mod pegout;
pub mod pegout_limit;
pub mod pegout_wait;
pub mod select;
pub mod state;
pub mod sweep;
pub mod testkit;
pub mod tx;
pub mod validator_tx;

pub use anchor_move::{plan_early_peg_txs, plan_late_settles, plan_peg_txs, BtcBlockFacts, PegPlan, Room};
pub use block::{Block, BlockHeader, BtcAnchor};
pub use execute::{
    build_block, check_tx, execute_block, txs_encoded_len, verify_tx_signatures, BlockError, BlockTemplate,
    ExecutionOutcome, Overlay, Receipt, TxError, WalletError,
};
pub use federation::{
    check_pool_tx, federation_state, select_pool_txs, Approval, FederationEpoch, FederationProposal, FederationState,
    ProposalError, ReconfigureTx,
};
pub use genesis::{Chain, EmergencyKeys, Genesis, GenesisError, GenesisValidator, InitialAccount, Params};
pub use halt::{peg_halt, PegHalt};
pub use peg_cursor::{peg_cursor, PegCursor};
pub use pegin::{FederationUtxo, PegInRecord, PegTotals, Registration};
pub use pegout::{BurnRecord, PegOutQueue};
pub use select::{assemble_proposal, fit_prefix, select_txs, Selection};
pub use state::{
    fee_pool_id, Account, ChainMeta, MemStore, ProofError, Snapshot, StateError, StateKey, StateProof, StateReader,
    WriteSet,
};
pub use tx::{
    tx_root, BtcOutPoint, EvidenceRecord, EvidenceTx, MintKind, MintTx, PegShareTx, SettleTx, SignedUserTx,
    SignedValidatorTx, Tx, UserTx, UserTxKind, ValidatorTx, ValidatorTxKind,
};

/// The state tree crate, re-exported so the node implements the same `TreeReader` version.
pub use jmt;
