//! The local federation: real bitcoind processes on regtest, real `sidechaind` processes, and the e2e
//! fault scenarios that run against them.
//!
//! Nothing here is a stand-in: bitcoind is the real Bitcoin Core built by `scripts/setup`, and every wait
//! is a bounded poll ([`wait::wait_until`]). Every fault scenario ends with [`scenario::Scenario::finish`]:
//! one chain, every commit certificate verified against the validators in force at its height, reserves proved and
//! covering what is owed, no double signing, no crash, and the scenario's wall time.

pub mod bench;
pub mod bitcoind;
pub mod browser;
pub mod btc_wallet;
pub mod demo;
pub mod federation;
pub mod process;
pub mod reconfigure;
pub mod scenario;
pub mod wait;

pub use bitcoind::{Bitcoind, BitcoindError, BitcoindOptions};
pub use btc_wallet::{BtcWallet, Utxo, WalletError};
pub use wait::{wait_until, WaitError};
