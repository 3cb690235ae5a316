//! Starting and stopping the JSON-RPC server: HTTP and WebSocket on one port, loopback by default, every
//! request through the [`Guard`] (Host, Origin, Basic auth), request size and batch
//! limits, and the cookie file that lives exactly as long as the server.
//!
//! With `dashboard` on (the default) it also serves the page at `/dashboard/` and a read-only endpoint for
//! it ([`crate::dashboard`]).
//!
//! The node calls [`start_server`] with its [`RpcBackend`] and keeps the [`RpcServerHandle`] until
//! shutdown; `handle.stop().await` refuses new requests, waits for the server and removes the cookie.

use crate::api::SidechainApiServer;
use crate::auth::{AuthError, Cookie, Guard, GuardLayer, RpcAuth};
use crate::backend::RpcBackend;
use crate::dashboard::ReadOnlyLayer;
use crate::handlers::RpcImpl;
use crate::openrpc;
use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{BatchRequestConfig, ServerBuilder, ServerConfig, ServerHandle};
use jsonrpsee::RpcModule;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default RPC port (Bitcoin Core's regtest port, so regtest habits carry over).
pub const DEFAULT_RPC_PORT: u16 = 18443;
/// The cookie file name inside the node's data directory (as Bitcoin Core).
pub const COOKIE_FILE: &str = ".cookie";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The address is taken or not ours.
    #[error("cannot bind rpc server to {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
    /// Credentials could not be set up.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A method name registered twice (a bug in this crate).
    #[error("cannot register rpc methods: {0}")]
    Register(#[from] jsonrpsee::core::RegisterMethodError),
}

/// Server settings. Build with [`RpcServerConfig::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct RpcServerConfig {
    /// Where to listen; `127.0.0.1:18443` by default. Binding beyond loopback is the operator's choice
    /// (and needs `allowed_hosts` for the names clients use).
    pub bind: SocketAddr,
    /// Where the cookie is written: `<datadir>/.cookie` ([`COOKIE_FILE`]).
    pub cookie_path: PathBuf,
    /// `rpcauth` users besides the cookie.
    pub users: Vec<RpcAuth>,
    /// Largest request body in bytes (1 MiB); larger ones get HTTP 413 / a WebSocket error.
    pub max_request_bytes: u32,
    /// Largest response in bytes (64 MiB: a full block at verbosity 2 is several times its 4 MiB).
    pub max_response_bytes: u32,
    /// Most calls in one batch (100); a longer batch gets error -32010.
    pub max_batch: u32,
    /// Most simultaneous connections (100).
    pub max_connections: u32,
    /// Host names (without port) accepted in the `Host` header besides localhost, 127.0.0.1 and `[::1]`.
    pub allowed_hosts: Vec<String>,
    /// Serve the dashboard page at `/dashboard/` and its read-only endpoint (on by default; see
    /// [`crate::dashboard`] for why that is safe).
    pub dashboard: bool,
}

impl RpcServerConfig {
    /// Defaults, with the cookie at `<datadir>/.cookie`.
    pub fn new(datadir: &Path) -> Self {
        RpcServerConfig {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_RPC_PORT),
            cookie_path: datadir.join(COOKIE_FILE),
            users: Vec::new(),
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 64 * 1024 * 1024,
            max_batch: 100,
            max_connections: 100,
            allowed_hosts: Vec::new(),
            dashboard: true,
        }
    }
}

/// A running server. Dropping it stops the server and removes the cookie; [`stop`](Self::stop) also
/// waits until the server has finished.
#[derive(Debug)]
pub struct RpcServerHandle {
    local_addr: SocketAddr,
    handle: ServerHandle,
    cookie: Cookie,
}

impl RpcServerHandle {
    /// The bound address (the real port when `bind` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The cookie file clients read.
    pub fn cookie_path(&self) -> &Path {
        self.cookie.path()
    }

    /// Stops accepting requests, waits for the server task to end, removes the cookie.
    pub async fn stop(self) {
        // `stop` fails only if the server already stopped, which is the state we want.
        let _ = self.handle.stop();
        self.handle.clone().stopped().await;
        drop(self);
    }
}

impl Drop for RpcServerHandle {
    fn drop(&mut self) {
        let _ = self.handle.stop();
    }
}

/// Every method the server serves, `rpc.discover` included.
pub fn rpc_module<B: RpcBackend>(backend: Arc<B>) -> Result<RpcModule<()>, RpcError> {
    let mut module = RpcModule::new(());
    module.merge(RpcImpl::new(backend).into_rpc()).map_err(RpcError::Register)?;
    let doc = Arc::new(openrpc::document());
    module.register_method(openrpc::DISCOVER, move |_, _, _| (*doc).clone()).map_err(RpcError::Register)?;
    Ok(module)
}

/// Binds, writes the cookie and starts serving `backend`.
pub async fn start_server<B: RpcBackend>(
    config: RpcServerConfig,
    backend: Arc<B>,
) -> Result<RpcServerHandle, RpcError> {
    let module = rpc_module(backend)?;
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.max_request_bytes)
        .max_response_body_size(config.max_response_bytes)
        .max_connections(config.max_connections)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch))
        .build();
    let mut hosts = config.allowed_hosts.clone();
    if !config.bind.ip().is_unspecified() && !config.bind.ip().is_loopback() {
        hosts.push(match config.bind.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        });
    }
    // Bind before writing the cookie: a second node on the same port must not replace the cookie of
    // the first.
    let builder = ServerBuilder::with_config(server_config);
    let listener = std::net::TcpListener::bind(config.bind)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| RpcError::Bind { addr: config.bind, source })?;
    let local_addr = listener.local_addr().map_err(|source| RpcError::Bind { addr: config.bind, source })?;
    let cookie = Cookie::create(&config.cookie_path)?;
    let guard = Arc::new(Guard::new(&cookie, config.users.clone(), &hosts).with_dashboard(config.dashboard));
    let server = builder
        .set_http_middleware(tower::ServiceBuilder::new().layer(GuardLayer(guard)))
        // Every call logged (target `jsonrpsee-server`, method and params cut to 256 bytes).
        // Then the read-only check of the dashboard's calls (crate::dashboard).
        .set_rpc_middleware(RpcServiceBuilder::new().rpc_logger(256).layer(ReadOnlyLayer))
        .build_from_tcp(listener)
        .map_err(|source| RpcError::Bind { addr: config.bind, source })?;
    let handle = server.start(module);
    tracing::info!(addr = %local_addr, cookie = %config.cookie_path.display(), "rpc server listening");
    Ok(RpcServerHandle { local_addr, handle, cookie })
}
