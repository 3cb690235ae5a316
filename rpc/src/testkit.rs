//! A plain HTTP/1.1 client for tests that must send what the typed client never would: a foreign `Host`
//! or `Origin`, a wrong cookie, a WebSocket handshake, a body past the size limit, junk that is not
//! JSON-RPC. Behind the `testkit` feature, so the daemon users run does not carry it. One thing it cannot
//! do: read an answer the server sends before reading a body larger than the socket buffers (hyper fails
//! writing the body first); `node/tests/rpc_methods.rs` reads that 413 on a raw socket.
//!
//! Why not the typed client: it only sends well-formed calls. Why hyper rather than bytes on a socket: the
//! framing (chunked bodies, upgrades) is hyper's job, the same library the server runs on, so a test
//! cannot pass because of a bug in a hand-written reader.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

/// What went wrong with a test request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No TCP connection.
    #[error("connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: std::io::Error },
    /// The request could not be built (a bad method or header).
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The exchange failed.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
}

/// One response: status, headers in order, body as text (lossy).
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection, with exactly the headers given (no `Host` is added) and
/// `Content-Type: application/json` when the body is not empty. A `101 Switching Protocols` answer is
/// returned with its head only.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<HttpReply, HttpError> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|source| HttpError::Connect { addr, source })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection.with_upgrades());
    let mut builder = hyper::Request::builder().method(method).uri(path);
    if !body.is_empty() {
        builder = builder.header("Content-Type", "application/json");
    }
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = sender.send_request(builder.body(Full::new(Bytes::from(body.to_owned())))?).await?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = if status == 101 {
        String::new()
    } else {
        String::from_utf8_lossy(&response.into_body().collect().await?.to_bytes()).into_owned()
    };
    driver.abort();
    Ok(HttpReply { status, headers, body })
}
