//! `sidechaind` as a library: the pieces the daemon wires together, each testable alone.
//!
//! A tour for a newcomer, in the order data flows:
//! - [`btc_follow`] polls this node's own bitcoind ([`bitcoin`]) and publishes a [`btc_follow::BtcSnapshot`]:
//!   the best chain, the deposits to the scripts [`pegin::Registry`] watches, claims it verified, fee rates;
//! - [`bridge`] reads that snapshot with committed state: the peg duties (anchor moves, mints,
//!   settlements, claims, objections to others' blocks) and the peg-out signer;
//! - [`service`] is the event loop: its consensus host runs the Tendermint core, its proposer builds our
//!   blocks from what the bridge, the [`mempool`] and the [`fed_pool`] offer, its validity judge votes on
//!   others', its gossip judge guards the network, its sync driver fetches and serves blocks;
//! - [`chain`] commits a decided block (certificate + re-execution) to [`storage`] (RocksDB, atomic per
//!   height, with the consensus WAL), and the tip's new facts flow back to the follower;
//! - [`rpc_backend`] answers JSON-RPC from the service's handle; [`metrics`] serves Prometheus.
//!
//! [`fault`] holds the test networks' deliberate faults; `peg_sim` (feature `peg-sim`) the seeded
//! adversarial simulation of the whole peg.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod alerts;
pub mod bitcoin;
pub mod breaker;
pub mod bridge;
pub mod btc_follow;
pub mod ceremony;
pub mod chain;
pub mod claims;
pub mod command_error;
pub mod config;
pub mod fault;
pub mod fed_pool;
pub mod keys;
pub mod mempool;
pub mod metrics;
#[cfg(feature = "peg-sim")]
pub mod peg_sim;
pub mod pegin;
pub mod proposals;
pub mod registry;
pub mod rpc_backend;
mod rpc_dashboard;
pub mod service;
pub mod storage;
pub mod sync_serve;
pub mod wire;
