//! The p2p transport of `sidechaind`.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
