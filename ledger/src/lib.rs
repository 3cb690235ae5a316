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
//!
//! Layers, bottom up (no module reaches up; `testnet/tests/module_graph.rs` checks it):
//! - plain data: [`btc_anchor`], [`codec`], [`validators`], [`peg_records`], [`reconfigure`], [`frost_tx`], [`tx`],
//!   [`block`];
//! - state and parameters: [`state`], [`genesis`], [`batch_records`], [`federation`], [`halt`], [`genesis_state`],
//!   [`frost_records`];
//! - what every rule shares: [`error`], then [`overlay`];
//! - the rules, each an `impl Overlay` over the state it owns: [`fee_rate`], [`mod@peg_cursor`], [`pegout`],
//!   [`economic`], [`halt_vote`], [`pegout_limit`], [`validator_tx`], [`batching`], [`frost_signing`], [`pegin`],
//!   [`bumping`],
//!   [`sweep`], [`federation_change`];
//!   the node's read-only checks over that state, [`breaker`] and [`pegout_wait`], and the account
//!   [`history`] a block makes, sit beside them;
//! - [`execute`] runs the rules; [`select`], [`anchor_move`] and [`testkit`] build on it.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod anchor_move;
pub mod batch_records;
pub mod batching;
pub mod block;
pub mod breaker;
pub mod btc_anchor;
pub mod bumping;
pub mod codec;
pub mod economic;
pub mod error;
pub mod execute;
pub mod federation;
pub mod federation_change;
pub mod fee_rate;
pub mod frost_records;
pub mod frost_signing;
pub mod frost_tx;
pub mod genesis;
pub mod genesis_state;
pub mod halt;
pub mod halt_vote;
pub mod history;
pub mod overlay;
pub mod peg_cursor;
pub mod peg_records;
pub mod pegin;
pub mod pegout;
pub mod pegout_limit;
pub mod pegout_wait;
pub mod reconfigure;
pub mod select;
pub mod state;
pub mod sweep;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tx;
pub mod validator_tx;
pub mod validators;

pub use anchor_move::{plan_early_peg_txs, plan_late_settles, plan_peg_txs, BtcBlockFacts, PegPlan, Room};
pub use block::{Block, BlockHeader};
pub use btc_anchor::BtcAnchor;
pub use error::{BlockError, TxError, WalletError};
pub use execute::{
    build_block, check_tx, execute_block, txs_encoded_len, verify_tx_signatures, BlockTemplate, ExecutionOutcome,
};
pub use federation::{federation_state, FederationState, ProposalError};
pub use federation_change::{check_pool_tx, select_pool_txs};
pub use frost_tx::{FrostRound, FrostTx, FrostTxError};
pub use genesis::{
    federation_threshold, Chain, EmergencyKeys, Genesis, GenesisCustody, GenesisError, InitialAccount, Params,
};
pub use halt::{peg_halt, PegHalt};
pub use overlay::{Overlay, Receipt};
pub use peg_cursor::{peg_cursor, PegCursor};
pub use peg_records::{FederationUtxo, PegInRecord, PegTotals, Registration};
pub use pegout::{BurnRecord, PegOutQueue};
pub use reconfigure::{Approval, FederationProposal, ReconfigureTx};
pub use select::{assemble_proposal, fit_prefix, select_txs, Selection};
pub use state::{
    fee_pool_id, Account, ChainMeta, MemStore, ProofError, Snapshot, StateError, StateKey, StateProof, StateReader,
    WriteSet,
};
pub use tx::{
    tx_branch, tx_root, tx_root_from_branch, txid_is_ambiguous, BtcOutPoint, EvidenceRecord, EvidenceTx, MintKind,
    MintTx, PegShareTx, SettleTx, SignedUserTx, SignedValidatorTx, Tx, UserTx, UserTxKind, ValidatorTx,
    ValidatorTxKind,
};
pub use validators::{FederationEpoch, GenesisValidator};

/// The state tree crate, re-exported so the node implements the same `TreeReader` version.
pub use jmt;
