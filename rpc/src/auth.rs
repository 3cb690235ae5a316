//! Who may call the RPC server, checked before jsonrpsee sees a request: HTTP Basic auth against the
//! cookie or `rpcauth` users (as Bitcoin Core), the `Host` header (no DNS rebinding) and the `Origin`
//! header (no drive-by requests from web pages).
//!
//! Why each check:
//! - **Cookie** (`__cookie__:<64 hex>` in `<datadir>/.cookie`, mode 0600, a fresh secret every start,
//!   removed at stop): a local user who can read the data directory can call the node; nobody else,
//!   and no password sits in a config file.
//! - **rpcauth** (`user:salt$hmac_sha256(salt, password)`, Core's `share/rpcauth` format): named users
//!   for remote tools, with only a salted hash in the config.
//! - **Host**: a web page on `evil.example` whose DNS later points at 127.0.0.1 reaches the port with
//!   `Host: evil.example`; only loopback names and configured hosts pass.
//! - **Origin**: a browser adds it to cross-site requests and WebSocket handshakes; our clients never
//!   send one, so a foreign origin is refused. The server sends no CORS headers at all.
//!
//! The dashboard's page and its read-only endpoint (`/dashboard/...`, see [`crate::dashboard`]) pass the
//! same Host and Origin checks but need no credentials; its calls are marked [`Access::ReadOnly`] and only
//! read-only methods answer them. Every other request is marked [`Access::Full`] once authenticated.
//!
//! Comparisons of secrets are constant-time (HMAC verification, and a fold over the cookie bytes).

use crate::dashboard::{self, Access, Route};
use crate::fsutil;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use sha2::Sha256;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use subtle::ConstantTimeEq;

/// How long a request with wrong or missing credentials waits for its 401 (Bitcoin Core: 250 ms).
pub const AUTH_FAILURE_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// The user name of cookie authentication (as Bitcoin Core).
pub const COOKIE_USER: &str = "__cookie__";

/// Why credentials could not be set up or parsed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The cookie file could not be written.
    #[error("cannot write rpc cookie file {path}: {source}")]
    WriteCookie {
        /// The cookie path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The cookie file could not be read (client side).
    #[error("cannot read rpc cookie file {path}: {source} (is sidechaind running with this datadir?)")]
    ReadCookie {
        /// The cookie path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// An `rpcauth` line that is not `user:salt$hash`.
    #[error("rpcauth entry {0:?} is not of the form user:salt$hex_hmac_sha256")]
    BadRpcAuth(String),
}

/// The cookie of a running server: its file exists while this value lives (removed on drop).
#[derive(Debug)]
pub struct Cookie {
    path: PathBuf,
    secret: String,
}

impl Cookie {
    /// Writes a fresh random cookie to `path` with mode 0600 (via a temporary file and a rename, so a
    /// client never reads half a cookie), replacing a stale one from an earlier run.
    pub fn create(path: &Path) -> Result<Cookie, AuthError> {
        let secret = hex::encode(fsutil::random_bytes::<32>());
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            // A leftover temporary file may have another mode: start from a new one.
            if let Err(e) = std::fs::remove_file(&tmp) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(e);
                }
            }
            fsutil::write_private(&tmp, format!("{COOKIE_USER}:{secret}").as_bytes(), true)?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|source| AuthError::WriteCookie { path: path.to_path_buf(), source })?;
        Ok(Cookie { path: path.to_path_buf(), secret })
    }

    /// Where the cookie is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads a cookie file: the `user:password` pair a client sends.
    pub fn read(path: &Path) -> Result<(String, String), AuthError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| AuthError::ReadCookie { path: path.to_path_buf(), source })?;
        let (user, pass) = text.trim().split_once(':').ok_or_else(|| AuthError::ReadCookie {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "expected user:password"),
        })?;
        Ok((user.to_string(), pass.to_string()))
    }
}

impl Drop for Cookie {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "could not remove rpc cookie");
            }
        }
    }
}

/// One `rpcauth` user: a name, a salt and `HMAC-SHA256(key = salt, message = password)` (Core's format).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcAuth {
    user: String,
    salt: String,
    hmac: [u8; 32],
}

impl RpcAuth {
    /// Parses `user:salt$hex_hmac` (the value of Core's `rpcauth=` option).
    pub fn parse(line: &str) -> Result<RpcAuth, AuthError> {
        let bad = || AuthError::BadRpcAuth(line.chars().take(200).collect());
        let (user, rest) = line.split_once(':').ok_or_else(bad)?;
        let (salt, hash) = rest.split_once('$').ok_or_else(bad)?;
        let mut hmac = [0u8; 32];
        hex::decode_to_slice(hash, &mut hmac).map_err(|_| bad())?;
        if user.is_empty() || salt.is_empty() || user == COOKIE_USER {
            return Err(bad());
        }
        Ok(RpcAuth { user: user.to_string(), salt: salt.to_string(), hmac })
    }

    /// An entry for `user` with `password` and a fresh random salt.
    pub fn generate(user: &str, password: &str) -> RpcAuth {
        let salt = hex::encode(fsutil::random_bytes::<16>());
        let hmac = hmac_of(&salt, password).finalize().into_bytes().into();
        RpcAuth { user: user.to_string(), salt, hmac }
    }

    /// The `user:salt$hash` line for a config file.
    pub fn to_line(&self) -> String {
        format!("{}:{}${}", self.user, self.salt, hex::encode(self.hmac))
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    fn accepts(&self, user: &str, password: &str) -> bool {
        user == self.user && hmac_of(&self.salt, password).verify_slice(&self.hmac).is_ok()
    }
}

fn hmac_of(salt: &str, password: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salt.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(password.as_bytes());
    mac
}

/// The request checks the server applies, shared by every connection.
#[derive(Debug)]
pub struct Guard {
    cookie_secret: String,
    users: Vec<RpcAuth>,
    allowed_hosts: Vec<String>,
    dashboard: bool,
}

/// Why a request was refused (the text is the response body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No or wrong credentials.
    #[error("authorization required: send http basic auth with the cookie (user __cookie__, from <datadir>/.cookie) or an rpcauth user")]
    Unauthorized,
    /// A `Host` that is not loopback or configured.
    #[error(
        "host {0:?} not allowed: connect as localhost, 127.0.0.1 or [::1], or add the host to the rpc allowed hosts"
    )]
    Host(String),
    /// A browser `Origin` from elsewhere.
    #[error("origin {0:?} not allowed: the rpc serves no web pages")]
    Origin(String),
}

impl Guard {
    /// Checks against the cookie secret, the users and the hosts (lowercase names without port; the
    /// loopback names are always allowed).
    pub fn new(cookie: &Cookie, users: Vec<RpcAuth>, extra_hosts: &[String]) -> Guard {
        let mut allowed_hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).to_vec();
        allowed_hosts.extend(extra_hosts.iter().map(|h| h.to_ascii_lowercase()));
        Guard { cookie_secret: cookie.secret.clone(), users, allowed_hosts, dashboard: false }
    }

    /// Serves the dashboard page and its read-only endpoint (off unless set).
    pub fn with_dashboard(mut self, on: bool) -> Guard {
        self.dashboard = on;
        self
    }

    fn host_allowed(&self, authority: &str) -> bool {
        let host = strip_port(authority).to_ascii_lowercase();
        self.allowed_hosts.contains(&host)
    }

    /// The verdict on a request's headers: [`check_site`](Self::check_site), then credentials.
    pub fn check(&self, headers: &http::HeaderMap, uri: &http::Uri) -> Result<(), Refusal> {
        self.check_site(headers, uri)?;
        self.check_credentials(headers)
    }

    /// The Host and Origin checks alone (what the dashboard's requests pass).
    pub fn check_site(&self, headers: &http::HeaderMap, uri: &http::Uri) -> Result<(), Refusal> {
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| uri.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        if !self.host_allowed(&host) {
            return Err(Refusal::Host(host));
        }
        if let Some(origin) = headers.get(http::header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("<not ascii>").to_string();
            let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
            if !self.host_allowed(authority.trim_end_matches('/')) {
                return Err(Refusal::Origin(origin));
            }
        }
        Ok(())
    }

    fn check_credentials(&self, headers: &http::HeaderMap) -> Result<(), Refusal> {
        let Some((user, password)) = basic_credentials(headers) else {
            return Err(Refusal::Unauthorized);
        };
        let ok = if user == COOKIE_USER {
            bool::from(password.as_bytes().ct_eq(self.cookie_secret.as_bytes()))
        } else {
            self.users.iter().any(|u| u.accepts(&user, &password))
        };
        if ok {
            Ok(())
        } else {
            Err(Refusal::Unauthorized)
        }
    }
}

/// `host[:port]` or `[v6][:port]` to the host part (brackets kept for IPv6).
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |end| &authority[..=end]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

fn basic_credentials(headers: &http::HeaderMap) -> Option<(String, String)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The `Authorization` header value for `user:password`.
pub fn basic_auth_header(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn refusal_response(refusal: &Refusal) -> HttpResponse {
    let mut resp = HttpResponse::new(HttpBody::from(format!("{refusal}\n")));
    *resp.status_mut() = match refusal {
        Refusal::Unauthorized => http::StatusCode::UNAUTHORIZED,
        Refusal::Host(_) | Refusal::Origin(_) => http::StatusCode::FORBIDDEN,
    };
    let headers = resp.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    if matches!(refusal, Refusal::Unauthorized) {
        headers.insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Basic realm=\"jsonrpc\""));
    }
    resp
}

/// Tower layer applying a [`Guard`] to every HTTP request and WebSocket handshake.
#[derive(Clone, Debug)]
pub struct GuardLayer(pub Arc<Guard>);

impl<S> tower::Layer<S> for GuardLayer {
    type Service = GuardService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GuardService { inner, guard: self.0.clone() }
    }
}

/// The service of [`GuardLayer`].
#[derive(Clone, Debug)]
pub struct GuardService<S> {
    inner: S,
    guard: Arc<Guard>,
}

impl<S, B> tower::Service<HttpRequest<B>> for GuardService<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: HttpRequest<B>) -> Self::Future {
        let upgrade = req.headers().contains_key(http::header::UPGRADE);
        let route = dashboard::route(req.method(), req.uri().path(), upgrade, self.guard.dashboard);
        let verdict = match route {
            Route::Rpc => self.guard.check(req.headers(), req.uri()),
            _ => self.guard.check_site(req.headers(), req.uri()),
        };
        match verdict {
            Ok(()) => {
                if let Some(resp) = dashboard::respond(route) {
                    return Box::pin(async move { Ok(resp) });
                }
                let access = if route == Route::Rpc { Access::Full } else { Access::ReadOnly };
                if access == Access::ReadOnly {
                    // jsonrpsee serves the JSON-RPC at `/`.
                    *req.uri_mut() = http::Uri::from_static("/");
                }
                req.extensions_mut().insert(access);
                Box::pin(self.inner.call(req))
            }
            Err(refusal) => {
                tracing::debug!(reason = %refusal, "rpc request refused");
                let resp = refusal_response(&refusal);
                // As Bitcoin Core: slow down password guessing (each connection waits its turn).
                let delay = matches!(refusal, Refusal::Unauthorized).then_some(AUTH_FAILURE_DELAY);
                Box::pin(async move {
                    if let Some(d) = delay {
                        tokio::time::sleep(d).await;
                    }
                    Ok(resp)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> (tempfile::TempDir, Cookie, Guard) {
        let dir = tempfile::tempdir().unwrap();
        let cookie = Cookie::create(&dir.path().join(".cookie")).unwrap();
        let users = vec![RpcAuth::generate("alice", "pw")];
        let g = Guard::new(&cookie, users, &["node.lan".to_string()]);
        (dir, cookie, g)
    }

    fn headers(pairs: &[(http::header::HeaderName, String)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn strip_port_handles_v4_v6_and_names() {
        assert_eq!(strip_port("127.0.0.1:18443"), "127.0.0.1");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("localhost"), "localhost");
    }

    #[test]
    fn rpcauth_line_round_trips_and_checks_the_password() {
        let a = RpcAuth::generate("bob", "secret");
        let b = RpcAuth::parse(&a.to_line()).unwrap();
        assert_eq!(a, b);
        assert!(b.accepts("bob", "secret"));
        assert!(!b.accepts("bob", "Secret"));
        assert!(!b.accepts("eve", "secret"));
        assert!(RpcAuth::parse("bob:salt$nothex").is_err());
        assert!(RpcAuth::parse(&format!("__cookie__:s${}", "00".repeat(32))).is_err());
    }

    #[test]
    fn rpcauth_matches_bitcoin_core_share_rpcauth() {
        // `share/rpcauth/rpcauth.py` computes hmac.new(salt.encode(), password.encode(), "SHA256").
        // Vector computed with Python's hmac: salt "cb77f0957de88ff388cf817ddbc7273", password "pass".
        let line =
            "user:cb77f0957de88ff388cf817ddbc7273$00f38ebf667f384f94165d44e8bbe088d5726d392b4f36d6100bb5b6f6685e48";
        let auth = RpcAuth::parse(line).unwrap();
        assert!(auth.accepts("user", "pass"));
        assert!(!auth.accepts("user", "pas"));
    }

    #[test]
    fn cookie_file_is_private_and_removed_on_drop() {
        let (dir, cookie, g) = guard();
        let path = dir.path().join(".cookie");
        let (user, pass) = Cookie::read(&path).unwrap();
        assert_eq!(user, COOKIE_USER);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let uri: http::Uri = "/".parse().unwrap();
        let ok = headers(&[
            (http::header::HOST, "127.0.0.1:1".into()),
            (http::header::AUTHORIZATION, basic_auth_header(&user, &pass)),
        ]);
        assert_eq!(g.check(&ok, &uri), Ok(()));
        drop(cookie);
        assert!(!path.exists());
    }

    #[test]
    fn guard_refuses_foreign_hosts_origins_and_bad_credentials() {
        let (_dir, _cookie, g) = guard();
        let uri: http::Uri = "/".parse().unwrap();
        let auth = (http::header::AUTHORIZATION, basic_auth_header("alice", "pw"));
        let host = |h: &str| (http::header::HOST, h.to_string());
        assert_eq!(g.check(&headers(&[host("localhost:5"), auth.clone()]), &uri), Ok(()));
        assert_eq!(g.check(&headers(&[host("NODE.lan"), auth.clone()]), &uri), Ok(()));
        assert_eq!(g.check(&headers(&[host("[::1]:5"), auth.clone()]), &uri), Ok(()));
        assert!(matches!(g.check(&headers(&[host("evil.example:5"), auth.clone()]), &uri), Err(Refusal::Host(_))));
        let origin = (http::header::ORIGIN, "https://evil.example".to_string());
        assert!(matches!(g.check(&headers(&[host("localhost"), auth.clone(), origin]), &uri), Err(Refusal::Origin(_))));
        let wrong = (http::header::AUTHORIZATION, basic_auth_header("alice", "nope"));
        assert_eq!(g.check(&headers(&[host("localhost"), wrong]), &uri), Err(Refusal::Unauthorized));
        assert_eq!(g.check(&headers(&[host("localhost")]), &uri), Err(Refusal::Unauthorized));
    }
}
