//! The user's tools, apart from the API they use: the `sidechain-cli` wallet (one ed25519 key in a private
//! file, amounts with an explicit unit, signed transfers, peg-outs and deposit registrations) and its
//! regtest BTC funding (`sidechain-cli pegin --fund`).
//!
//! Why a crate of its own: `sidechain-rpc` is the API every client shares (the `#[rpc]` trait, its types,
//! the server and a typed client); a wallet is one client of it among others. Kept apart, the API crate
//! carries no command-line parser or wallet code, and a wallet author depends on `sidechain-rpc` alone, as
//! this crate does. The binary is in `src/bin/`; the library holds what the e2e tests drive directly.
//!
//! - [`account`]: the key file and the transactions it signs; [`parse_amount`];
//! - [`btc_funding`]: paying BTC on regtest from a key the CLI owns.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod account;
pub mod btc_funding;

pub use account::{parse_amount, AmountError, CorruptWallet, InvalidAmount, Wallet, WalletError};
