//! The ledger: accounts, transactions and block execution.
//!
//! Execution is pure and deterministic: the new state is a function of the previous state and the block
//! alone. It never calls bitcoind or reads the clock, so every full node re-runs it and must reach the
//! state root in the header.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
