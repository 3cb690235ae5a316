//! `sidechaind` as a library: the pieces the daemon wires together, each testable alone.
//!
//! - [`storage`]: RocksDB, with atomic per-height commits and the consensus WAL.
//! - [`chain`]: the committed chain; the only writer of blocks (after certificate and re-execution).
//! - [`mempool`]: pending user transactions, bounded, nonce-contiguous per sender.
//! - [`keys`]: the node's key file.
//! - [`bitcoin`]: the validator's own bitcoind (the peg's `BitcoinView`) and the deposit index over it.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod alerts;
pub mod bitcoin;
pub mod breaker;
pub mod btc_follow;
pub mod chain;
pub mod claims;
pub mod config;
pub mod fault;
pub mod fed_pool;
pub mod keys;
pub mod mempool;
pub mod metrics;
pub mod peg_sim;
pub mod pegin;
pub mod proposals;
pub mod rpc_backend;
mod rpc_dashboard;
pub mod service;
pub mod storage;
pub mod sync_serve;
pub mod wire;
