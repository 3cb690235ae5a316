//! The one Bitcoin Core JSON-RPC client of this project: the validator's bitcoind follower (`node`), the
//! wallet's regtest funding (`sidechain-cli pegin --fund`) and the test harness (`testnet`) all call
//! bitcoind through [`Client`].
//!
//! Why one crate: there used to be three clients (bitcoincore-rpc in the node and the harness, jsonrpsee in
//! the CLI), each with its own errors and its own idea of a timeout. The transport is `bitcoincore-rpc`'s
//! (its `jsonrpc` HTTP client); that crate is barely maintained, so it is named in this file only, and
//! moving to `corepc-client` later touches nothing else. Typed answers come from `corepc-types` (the
//! [`v31`] module: the Bitcoin Core this project runs), not from bitcoincore-rpc's structs, which lag Core.
//!
//! Failure policy: bitcoind is another process that can be down, slow, restarting or reorganising.
//! - Every call is bounded by the transport's timeout, applied to the TCP connect and to each socket read
//!   and write (a broken connection is retried once), so a call that gets no answer fails within about
//!   twice the timeout.
//! - The transport is built on first use and dropped after any failure that is not bitcoind's own error
//!   answer, so a rewritten cookie file (bitcoind writes a new one on every start) or a restarted bitcoind
//!   is picked up by the next call.
//! - Failures are sorted into what a caller can act on ([`Error`]): bad configuration, unreachable, timed
//!   out, refused by HTTP status (401: credentials, 403: `rpcallowip`), bitcoind's JSON-RPC error with its
//!   code, or an answer that cannot be read. Nothing here panics on what bitcoind answers.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use bitcoin::{Address, Block, BlockHash, OutPoint, Transaction, Txid};
use bitcoincore_rpc::jsonrpc;
use bitcoincore_rpc::jsonrpc::simple_http;
use bitcoincore_rpc::RpcApi;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// `corepc-types`' answers for Bitcoin Core v31, the version this project builds and runs.
pub use corepc_types::v31;

/// JSON-RPC error codes of Bitcoin Core that callers tell apart (`src/rpc/protocol.h`).
pub mod codes {
    /// `RPC_INVALID_ADDRESS_OR_KEY`: no such block, transaction or address.
    pub const INVALID_ADDRESS_OR_KEY: i32 = -5;
    /// `RPC_INVALID_PARAMETER`: e.g. "Block height out of range".
    pub const INVALID_PARAMETER: i32 = -8;
}

/// How to authenticate to bitcoind's RPC.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `rpcuser`/`rpcpassword` (or an `rpcauth` user).
    UserPass {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// bitcoind's cookie file (`<datadir>/regtest/.cookie` on regtest), read when the transport is built:
    /// again after every failed call, because bitcoind rewrites it on restart.
    CookieFile(PathBuf),
}

/// Why a call to bitcoind failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL cannot be used.
    #[error("bad bitcoind RPC URL {url}: {source}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why the transport refused it.
        #[source]
        source: UrlError,
    },
    /// The cookie file could not be read (bitcoind not started yet, or another datadir or network).
    #[error("cannot read bitcoind cookie file {path}: {source}")]
    Cookie {
        /// The cookie file.
        path: PathBuf,
        /// Why.
        #[source]
        source: CookieError,
    },
    /// No connection (nothing listens there, refused, reset).
    #[error("bitcoind at {url} is unreachable ({method}): {source}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The RPC method.
        method: String,
        /// What the socket reported.
        source: std::io::Error,
    },
    /// Connected (or connecting), but no answer within the bound.
    #[error("bitcoind at {url} did not answer {method} within {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The RPC method.
        method: String,
        /// The bound on each socket operation.
        timeout: Duration,
    },
    /// bitcoind answered with an HTTP error status and no JSON-RPC answer: 401 (credentials refused) or
    /// 403 (our address is not in `rpcallowip`), or another status.
    #[error("bitcoind at {url} answered {method} with HTTP status {status}")]
    Http {
        /// The URL.
        url: String,
        /// The RPC method.
        method: String,
        /// The HTTP status.
        status: u16,
    },
    /// bitcoind answered the call with a JSON-RPC error (unknown block, rejected transaction, ...).
    #[error("bitcoind {method} failed: {message} (code {code})")]
    Rpc {
        /// The RPC method.
        method: String,
        /// bitcoind's error code (see [`codes`]).
        code: i32,
        /// bitcoind's message.
        message: String,
    },
    /// bitcoind answered something we cannot read.
    #[error("unexpected answer from bitcoind {method}: {detail}")]
    BadAnswer {
        /// The RPC method.
        method: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// Why the transport refused an RPC URL. Opaque: the transport crate is named in this file only (its
/// message and [`std::error::Error::source`] come through).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UrlError(simple_http::Error);

/// Why the cookie file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CookieError {
    /// Reading it failed (missing: bitcoind not started yet, or another datadir or network).
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// It is not `user:password`.
    #[error("expected `user:password`")]
    Malformed,
}

impl Error {
    /// The RPC method the failed call was for; `None` for configuration errors (URL, cookie file), which
    /// no call reached.
    pub fn method(&self) -> Option<&str> {
        match self {
            Error::BadUrl { .. } | Error::Cookie { .. } => None,
            Error::Unreachable { method, .. }
            | Error::Timeout { method, .. }
            | Error::Http { method, .. }
            | Error::Rpc { method, .. }
            | Error::BadAnswer { method, .. } => Some(method),
        }
    }

    /// bitcoind's JSON-RPC error code, when bitcoind answered with one.
    pub fn rpc_code(&self) -> Option<i32> {
        match self {
            Error::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// An answer to `method` that cannot be read, and why.
    pub fn bad_answer(method: &str, detail: impl Into<String>) -> Error {
        Error::BadAnswer { method: method.to_string(), detail: detail.into() }
    }
}

/// A bitcoind JSON-RPC client with bounded calls. Blocking: async callers run it in `spawn_blocking`.
pub struct Client {
    url: String,
    auth: Auth,
    timeout: Duration,
    /// Built lazily and dropped after a failure, so a new cookie or a restarted bitcoind is picked up.
    rpc: Mutex<Option<Arc<bitcoincore_rpc::Client>>>,
}

impl std::fmt::Debug for Client {
    // Not the transport's: it holds the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("url", &self.url).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `url` (e.g. `http://127.0.0.1:18443`) whose every socket operation is bounded by
    /// `timeout`. Checks the URL now; reads the cookie and connects only when asked something (or
    /// [`Self::connect`]).
    pub fn new(url: impl Into<String>, auth: Auth, timeout: Duration) -> Result<Client, Error> {
        let url = url.into();
        simple_http::Builder::new().url(&url).map_err(|e| Error::BadUrl { url: url.clone(), source: UrlError(e) })?;
        Ok(Client { url, auth, timeout, rpc: Mutex::new(None) })
    }

    /// The RPC URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound on each socket operation.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Builds the transport now (reading the cookie file), so bad credentials configuration shows before
    /// the first call. No request is sent.
    pub fn connect(&self) -> Result<(), Error> {
        self.transport().map(drop)
    }

    fn build(&self) -> Result<bitcoincore_rpc::Client, Error> {
        let bad_url = |e| Error::BadUrl { url: self.url.clone(), source: UrlError(e) };
        let builder = simple_http::Builder::new().url(&self.url).map_err(bad_url)?.timeout(self.timeout);
        let builder = match &self.auth {
            Auth::UserPass { user, password } => builder.auth(user.as_str(), Some(password.as_str())),
            Auth::CookieFile(path) => {
                let cookie = |source: CookieError| Error::Cookie { path: path.clone(), source };
                let text = std::fs::read_to_string(path).map_err(|e| cookie(e.into()))?;
                let text = text.trim();
                if !text.contains(':') {
                    return Err(cookie(CookieError::Malformed));
                }
                builder.cookie_auth(text)
            }
        };
        Ok(bitcoincore_rpc::Client::from_jsonrpc(jsonrpc::Client::with_transport(builder.build())))
    }

    fn transport(&self) -> Result<Arc<bitcoincore_rpc::Client>, Error> {
        let mut slot = self.rpc.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(rpc) => Ok(Arc::clone(rpc)),
            None => {
                let rpc = Arc::new(self.build()?);
                *slot = Some(Arc::clone(&rpc));
                Ok(rpc)
            }
        }
    }

    /// Calls `method` with `params` and reads its result as `T` (`serde_json::Value` for any answer).
    pub fn call<T: DeserializeOwned>(&self, method: &str, params: &[Value]) -> Result<T, Error> {
        let answer = self.transport()?.call::<Value>(method, params).map_err(|source| {
            // An error answer from bitcoind is not a transport problem: keep the connection.
            if !matches!(source, bitcoincore_rpc::Error::JsonRpc(jsonrpc::Error::Rpc(_))) {
                *self.rpc.lock().unwrap_or_else(PoisonError::into_inner) = None;
            }
            self.sort(method, source)
        })?;
        serde_json::from_value(answer).map_err(|e| Error::bad_answer(method, e.to_string()))
    }

    /// Sorts the transport's error into what a caller can act on.
    fn sort(&self, method: &str, e: bitcoincore_rpc::Error) -> Error {
        let (url, method) = (self.url.clone(), method.to_string());
        let transport = match e {
            bitcoincore_rpc::Error::JsonRpc(jsonrpc::Error::Rpc(e)) => {
                return Error::Rpc { method, code: e.code, message: e.message }
            }
            bitcoincore_rpc::Error::JsonRpc(jsonrpc::Error::Transport(t)) => t,
            other => return Error::BadAnswer { method, detail: other.to_string() },
        };
        match transport.downcast::<simple_http::Error>() {
            Ok(http) => match *http {
                simple_http::Error::SocketError(e)
                    if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) =>
                {
                    Error::Timeout { url, method, timeout: self.timeout }
                }
                simple_http::Error::SocketError(source) => Error::Unreachable { url, method, source },
                simple_http::Error::HttpErrorCode(status) => Error::Http { url, method, status },
                other => Error::BadAnswer { method, detail: other.to_string() },
            },
            Err(other) => Error::BadAnswer { method, detail: other.to_string() },
        }
    }

    /// `getblockchaininfo`.
    pub fn get_blockchain_info(&self) -> Result<v31::GetBlockchainInfo, Error> {
        self.call("getblockchaininfo", &[])
    }

    /// `getblock <hash> 0`: the raw block, parsed by rust-bitcoin (exact amounts) and checked to hash to
    /// `hash`.
    pub fn get_block(&self, hash: &BlockHash) -> Result<Block, Error> {
        const METHOD: &str = "getblock";
        let hex: String = self.call(METHOD, &[json!(hash.to_string()), json!(0)])?;
        let block: Block = bitcoin::consensus::encode::deserialize_hex(&hex)
            .map_err(|e| Error::bad_answer(METHOD, format!("block {hash}: {e}")))?;
        if block.block_hash() != *hash {
            return Err(Error::bad_answer(METHOD, format!("asked for block {hash}, got {}", block.block_hash())));
        }
        Ok(block)
    }

    /// `generatetoaddress <n> <address>`: mines `n` blocks paying `address` (regtest); their hashes.
    pub fn generate_to_address(&self, n: u64, address: &Address) -> Result<Vec<BlockHash>, Error> {
        self.call("generatetoaddress", &[json!(n), json!(address.to_string())])
    }

    /// `sendrawtransaction <hex>`: broadcasts `tx`; its txid as bitcoind computed it.
    pub fn send_raw_transaction(&self, tx: &Transaction) -> Result<Txid, Error> {
        self.call("sendrawtransaction", &[json!(bitcoin::consensus::encode::serialize_hex(tx))])
    }

    /// `getrawtransaction <txid> false`: the transaction (from the mempool, or any block with `txindex`),
    /// checked to have `txid`.
    pub fn get_raw_transaction(&self, txid: &Txid) -> Result<Transaction, Error> {
        const METHOD: &str = "getrawtransaction";
        let hex: String = self.call(METHOD, &[json!(txid.to_string()), json!(false)])?;
        let tx: Transaction = bitcoin::consensus::encode::deserialize_hex(&hex)
            .map_err(|e| Error::bad_answer(METHOD, format!("transaction {txid}: {e}")))?;
        if tx.compute_txid() != *txid {
            return Err(Error::bad_answer(METHOD, format!("asked for {txid}, got {}", tx.compute_txid())));
        }
        Ok(tx)
    }

    /// `scantxoutset start [<descriptors>]`: the unspent outputs the descriptors match, at the tip.
    pub fn scan_tx_out_set(&self, descriptors: &[String]) -> Result<v31::ScanTxOutSetStart, Error> {
        self.call("scantxoutset", &[json!("start"), json!(descriptors)])
    }

    /// `gettxspendingprevout [<outpoints>]`: which mempool transaction spends each outpoint, if any.
    pub fn get_tx_spending_prevout(&self, outpoints: &[OutPoint]) -> Result<v31::GetTxSpendingPrevout, Error> {
        let outputs: Vec<Value> =
            outpoints.iter().map(|o| json!({ "txid": o.txid.to_string(), "vout": o.vout })).collect();
        self.call("gettxspendingprevout", &[Value::Array(outputs)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_pass() -> Auth {
        Auth::UserPass { user: "u".into(), password: "p".into() }
    }

    #[test]
    fn nothing_listening_is_unreachable_and_the_url_is_checked_first() {
        // Bind a port, then free it: nothing listens there any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let client = Client::new(format!("http://127.0.0.1:{port}"), user_pass(), Duration::from_secs(5)).expect("url");
        let err = client.get_blockchain_info().expect_err("nothing listens");
        assert!(matches!(&err, Error::Unreachable { method, .. } if method == "getblockchaininfo"), "{err:?}");
        assert_eq!(err.rpc_code(), None);
        assert_eq!(err.method(), Some("getblockchaininfo"));
        let bad = Client::new("not a url", user_pass(), Duration::from_secs(1)).expect_err("not a url");
        assert!(matches!(&bad, Error::BadUrl { .. }), "{bad:?}");
        assert!(std::error::Error::source(&bad).is_some(), "the transport's error is kept as the source");
    }

    #[test]
    fn a_silent_peer_is_a_timeout_within_the_bound() {
        // Accepts TCP connections (the kernel's backlog) but never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", silent.local_addr().expect("addr"));
        let client = Client::new(url, user_pass(), Duration::from_millis(300)).expect("url");
        let started = std::time::Instant::now();
        let err = client.call::<Value>("getblockcount", &[]).expect_err("no answer");
        assert!(matches!(&err, Error::Timeout { method, .. } if method == "getblockcount"), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }

    #[test]
    fn a_missing_or_malformed_cookie_is_a_cookie_error_read_again_on_the_next_call() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".cookie");
        let client = Client::new("http://127.0.0.1:1", Auth::CookieFile(path.clone()), Duration::from_secs(1))
            .expect("the cookie is not read yet");
        let err = client.connect().expect_err("no cookie file yet");
        assert!(
            matches!(&err, Error::Cookie { source: CookieError::Read(e), .. } if e.kind() == std::io::ErrorKind::NotFound)
        );
        assert_eq!(err.method(), None);
        assert!(std::error::Error::source(&err).is_some(), "the io error is kept as the source");
        std::fs::write(&path, "no colon").expect("write");
        assert!(matches!(client.connect(), Err(Error::Cookie { source: CookieError::Malformed, .. })));
        std::fs::write(&path, "__cookie__:secret").expect("write");
        client.connect().expect("read once it is there");
    }
}
