//! The peg: everything that touches Bitcoin.
//!
//! The pure half (federation descriptor, deposit tweaks, batch building, signature-share checks) is
//! deterministic and re-run by every node; the IO half (the bitcoind client and watcher) sits behind a
//! small trait so that the pure half can be tested without a bitcoind and the IO half with a real one.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod federation;
pub mod signing;

pub use federation::{Federation, FederationError};
pub use signing::{finalize, sign_all_inputs, sign_input, FinalizeError, SignError};
