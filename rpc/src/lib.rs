//! The JSON-RPC API that explorers, wallets and operators use: one trait from which both the server and
//! a typed client are generated, and the types they exchange.
//!
//! - [`api`]: the `#[rpc]` trait (method names, parameters, results) and [`api::BlockRef`];
//! - [`types`]: the JSON results and the views the node's backend produces;
//! - [`backend`]: [`RpcBackend`], the narrow interface the node implements over its store and services;
//! - [`server`]: [`start_server`] (HTTP + WebSocket on one port, cookie and rpcauth, Host/Origin checks,
//!   size and batch limits); [`handlers`] is the trait implementation it serves;
//! - [`dashboard`]: the page every node serves at `/dashboard/` and its read-only endpoint;
//! - [`errors`]: every error code, in one place; [`openrpc`]: the `rpc.discover` document;
//! - [`client`]: typed clients with credentials; [`fsutil`]: secrets written readable by their owner only.
//!
//! The user's tools (the `sidechain-cli` wallet and its BTC funding) are the `sidechain-wallet` crate: a
//! wallet author depends on this API alone.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod auth;
pub mod backend;
pub mod client;
pub mod dashboard;
pub mod errors;
pub mod fsutil;
pub mod handlers;
pub mod openrpc;
pub mod server;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod types;

pub use api::{BlockRef, SidechainApiClient, SidechainApiServer};
pub use backend::{BackendError, ClaimError, OperatorError, RpcBackend, SubmitError};
pub use client::{connect, connect_ws, ClientAuth};
pub use server::{rpc_module, start_server, RpcError, RpcServerConfig, RpcServerHandle};
