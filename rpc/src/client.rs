//! Connecting a typed client: the generated `SidechainApiClient` methods work on any jsonrpsee client;
//! these helpers add the `Authorization` header from a cookie file or a user and password.
//!
//! HTTP is enough for calls; subscriptions need WebSocket ([`connect_ws`]).

use crate::auth::{basic_auth_header, AuthError, Cookie};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use std::path::PathBuf;

pub use crate::api::SidechainApiClient;

/// How a client proves it may call the node.
#[derive(Clone, Debug)]
pub enum ClientAuth {
    /// Read `__cookie__:<secret>` from the node's cookie file (`<datadir>/.cookie`).
    Cookie(PathBuf),
    /// An `rpcauth` user.
    UserPass {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// No credentials (the server will answer 401; for tests of exactly that).
    None,
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cookie could not be read.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Credentials that cannot go in a header.
    #[error("credentials contain characters not allowed in an http header")]
    BadHeader,
    /// jsonrpsee could not build the client (bad url, ...).
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The url.
        url: String,
        /// jsonrpsee's error.
        source: jsonrpsee::core::ClientError,
    },
}

fn headers(auth: &ClientAuth) -> Result<http::HeaderMap, ClientError> {
    let mut h = http::HeaderMap::new();
    let (user, password) = match auth {
        ClientAuth::Cookie(path) => Cookie::read(path)?,
        ClientAuth::UserPass { user, password } => (user.clone(), password.clone()),
        ClientAuth::None => return Ok(h),
    };
    let value =
        http::HeaderValue::from_str(&basic_auth_header(&user, &password)).map_err(|_| ClientError::BadHeader)?;
    h.insert(http::header::AUTHORIZATION, value);
    Ok(h)
}

/// An HTTP client for `url` (e.g. `http://127.0.0.1:18443`) with credentials.
pub fn connect(url: &str, auth: &ClientAuth) -> Result<HttpClient, ClientError> {
    HttpClientBuilder::default()
        .set_headers(headers(auth)?)
        .max_response_size(64 * 1024 * 1024)
        .build(url)
        .map_err(|source| ClientError::Connect { url: url.to_string(), source })
}

/// A WebSocket client for `url` (e.g. `ws://127.0.0.1:18443`) with credentials; needed for
/// `subscribenewblocks`.
pub async fn connect_ws(url: &str, auth: &ClientAuth) -> Result<WsClient, ClientError> {
    WsClientBuilder::default()
        .set_headers(headers(auth)?)
        .max_response_size(64 * 1024 * 1024)
        .build(url)
        .await
        .map_err(|source| ClientError::Connect { url: url.to_string(), source })
}
