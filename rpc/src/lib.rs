//! The JSON-RPC API that explorers, wallets and operators use: one trait from which both the server and
//! a typed client are generated, and the types they exchange.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
