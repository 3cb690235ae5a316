//! A real `bitcoind` on regtest, for tests and the local federation.
//!
//! Each instance runs in its own temporary datadir on free loopback ports, is waited for by polling its
//! RPC with a bound (never a fixed sleep), and is stopped when dropped. When the owning test panics, the
//! datadir (with `debug.log`) is kept and its path printed, so a failure can be read afterwards.
//!
//! Why not `corepc-node` (read at rust-bitcoin/corepc `node/src/lib.rs`): it is the field's spawner, but
//! (1) it talks to the node through its own `corepc-client`, a second Bitcoin Core client beside
//! `bitcoind-client`, which every other part of this project uses; (2) each start takes new ports, and the
//! scenarios restart a validator's bitcoind on the *same* datadir and ports
//! ([`Bitcoind::restart_with`]: a changed relay policy in `node/tests/pegout.rs`, a restart under a running
//! validator in `node/tests/btc_anchor.rs`) so the validator's configured URL stays valid; (3) it refuses
//! fixed ports, which the "port in use" test needs; (4) its errors are `anyhow` strings without the log
//! tail that makes a failed start readable here. What it does that we need (free ports, polling the RPC
//! until it answers, a temporary datadir, kill on drop) is the ~150 lines below.

use crate::wait::{wait_until, WaitError};
use bitcoin::{Address, BlockHash, Network};
use btc_rpc::{Auth, Client};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What can go wrong while starting or talking to a bitcoind.
#[derive(Debug, thiserror::Error)]
pub enum BitcoindError {
    /// No bitcoind binary was found where we looked.
    #[error("bitcoind binary not found at {0} (run scripts/setup, or set BITCOIND to a bitcoind >= v29)")]
    BinaryNotFound(PathBuf),
    /// A requested port is taken by another process.
    #[error("port {0} on 127.0.0.1 is already in use")]
    PortInUse(u16),
    /// The process exited before its RPC answered.
    #[error("bitcoind exited during start-up ({status}); last lines of its log:\n{log_tail}")]
    ExitedEarly { status: String, log_tail: String },
    /// The process runs but its RPC never answered within the bound.
    #[error("bitcoind at {rpc} did not answer RPC within {after:?}; last lines of its log:\n{log_tail}")]
    NotResponding { rpc: SocketAddr, after: Duration, log_tail: String },
    /// An RPC call failed (the client's error names the method).
    #[error("{source}")]
    Rpc {
        method: String,
        #[source]
        source: btc_rpc::Error,
    },
    /// Waiting for a condition timed out.
    #[error(transparent)]
    Timeout(#[from] WaitError),
    /// Filesystem or process IO failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BitcoindError {
    let context = context.into();
    move |source| BitcoindError::Io { context, source }
}

/// How to start a bitcoind.
#[derive(Debug, Clone)]
pub struct BitcoindOptions {
    /// The binary; default from [`default_bitcoind_path`].
    pub binary: Option<PathBuf>,
    /// Fixed RPC port instead of a free one (for testing the "port in use" error).
    pub rpc_port: Option<u16>,
    /// Fixed P2P port instead of a free one.
    pub p2p_port: Option<u16>,
    /// How long to wait for the RPC to answer.
    pub startup_timeout: Duration,
    /// Extra `-arg=value` command-line arguments.
    pub extra_args: Vec<String>,
}

impl Default for BitcoindOptions {
    fn default() -> Self {
        BitcoindOptions {
            binary: None,
            rpc_port: None,
            p2p_port: None,
            startup_timeout: Duration::from_secs(60),
            extra_args: Vec::new(),
        }
    }
}

/// Where the bitcoind built or found by `scripts/setup` lives: `$BITCOIND`, else the path recorded in
/// `$SIDECHAIN_CACHE/bitcoind.env` (default cache `~/.cache/fedpeg-sidechain`), else `bitcoind` on PATH.
pub fn default_bitcoind_path() -> PathBuf {
    if let Some(p) = std::env::var_os("BITCOIND") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("SIDECHAIN_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
        base.join("fedpeg-sidechain")
    });
    if let Ok(env) = fs::read_to_string(cache.join("bitcoind.env")) {
        if let Some(p) = env.lines().find_map(|l| l.strip_prefix("BITCOIND=")) {
            return PathBuf::from(p.trim());
        }
    }
    PathBuf::from("bitcoind")
}

fn resolve_binary(p: &Path) -> Option<PathBuf> {
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(p)).find(|c| c.is_file()))
}

/// A free loopback port: a random one below Linux's ephemeral range (32768+), checked by binding it.
///
/// Not port 0's answer: tests run in parallel processes, and the kernel hands out ephemeral ports in
/// sequence, so a port released here is soon given to another test's `bind(0)` or outgoing connection
/// before our child process binds it. Ports come from 10000..32000 instead (below Linux's ephemeral
/// range), in sequence from a random start per process: one process never hands out a port twice (a
/// federation asks for a score of ports before its processes bind any), and two processes collide only if
/// their runs of ports overlap. A child that still loses the race fails to start with a clear "address in
/// use" and the test says so.
pub fn free_port() -> Result<u16, BitcoindError> {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: std::sync::Mutex<Option<u32>> = std::sync::Mutex::new(None);
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    let mut next = NEXT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut offset = *next.get_or_insert_with(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        (h.finish() % u64::from(SPAN)) as u32
    });
    for _ in 0..SPAN {
        let port = (FIRST + offset % SPAN) as u16;
        offset = (offset + 1) % SPAN;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            *next = Some(offset);
            return Ok(port);
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").map_err(io_err("binding a free loopback port"))?;
    Ok(l.local_addr().map_err(io_err("reading a bound port"))?.port())
}

fn ensure_port_free(port: u16) -> Result<(), BitcoindError> {
    TcpListener::bind(("127.0.0.1", port)).map(drop).map_err(|_| BitcoindError::PortInUse(port))
}

/// A running regtest bitcoind.
pub struct Bitcoind {
    binary: PathBuf,
    child: Option<Child>,
    datadir: Option<tempfile::TempDir>,
    datadir_path: PathBuf,
    rpc_addr: SocketAddr,
    p2p_port: u16,
    client: Client,
}

const RPC_USER: &str = "sidechain";
const RPC_PASSWORD: &str = "regtest-only-password";
/// The bound on each socket operation of a call (bitcoincore-rpc's default, which this harness used before).
const RPC_TIMEOUT: Duration = Duration::from_secs(15);

impl Bitcoind {
    /// Starts bitcoind with default options.
    pub fn start() -> Result<Bitcoind, BitcoindError> {
        Bitcoind::start_with(BitcoindOptions::default())
    }

    /// Starts bitcoind and waits (bounded) until its RPC answers.
    pub fn start_with(opts: BitcoindOptions) -> Result<Bitcoind, BitcoindError> {
        let wanted = opts.binary.clone().unwrap_or_else(default_bitcoind_path);
        let binary = resolve_binary(&wanted).ok_or_else(|| BitcoindError::BinaryNotFound(wanted.clone()))?;
        let rpc_port = match opts.rpc_port {
            Some(p) => {
                ensure_port_free(p)?;
                p
            }
            None => free_port()?,
        };
        let p2p_port = match opts.p2p_port {
            Some(p) => {
                ensure_port_free(p)?;
                p
            }
            None => free_port()?,
        };
        let datadir = tempfile::Builder::new()
            .prefix("sidechain-bitcoind-")
            .tempdir()
            .map_err(io_err("creating a temporary datadir"))?;
        let datadir_path = datadir.path().to_path_buf();
        let conf = format!(
            "regtest=1\nserver=1\nlisten=1\ndnsseed=0\nfixedseeds=0\ndiscover=0\nlistenonion=0\nupnp=0\n\
             natpmp=0\nprinttoconsole=0\nrpcuser={RPC_USER}\nrpcpassword={RPC_PASSWORD}\n\
             rpcthreads=8\nrpcworkqueue=64\ntxindex=1\nfallbackfee=0.0001\n[regtest]\n\
             bind=127.0.0.1:{p2p_port}\nrpcbind=127.0.0.1:{rpc_port}\nrpcallowip=127.0.0.1\nrpcport={rpc_port}\nport={p2p_port}\n"
        );
        fs::write(datadir_path.join("bitcoin.conf"), conf).map_err(io_err("writing bitcoin.conf"))?;
        let child = spawn(&binary, &datadir_path, &opts.extra_args)?;
        let rpc_addr: SocketAddr = ([127, 0, 0, 1], rpc_port).into();
        let auth = Auth::UserPass { user: RPC_USER.to_string(), password: RPC_PASSWORD.to_string() };
        let client = Client::new(format!("http://{rpc_addr}"), auth, RPC_TIMEOUT)
            .map_err(|source| BitcoindError::Rpc { method: "connect".into(), source })?;
        let mut node =
            Bitcoind { binary, child: Some(child), datadir: Some(datadir), datadir_path, rpc_addr, p2p_port, client };
        node.wait_ready(opts.startup_timeout)?;
        Ok(node)
    }

    /// Stops it and starts it again on the same datadir and ports with `extra_args` (e.g. a raised
    /// `-minrelaytxfee`), waiting (bounded) until its RPC answers. Its p2p connections must be made again.
    pub fn restart_with(&mut self, extra_args: &[String]) -> Result<(), BitcoindError> {
        self.stop();
        let child = spawn(&self.binary, &self.datadir_path, extra_args)?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60))
    }

    fn wait_ready(&mut self, bound: Duration) -> Result<(), BitcoindError> {
        let deadline = std::time::Instant::now() + bound;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(BitcoindError::ExitedEarly { status: status.to_string(), log_tail: self.log_tail(20) });
                }
            }
            match self.client.call::<Value>("getblockchaininfo", &[]) {
                Ok(_) => return Ok(()),
                Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => {
                    return Err(BitcoindError::NotResponding {
                        rpc: self.rpc_addr,
                        after: bound,
                        log_tail: self.log_tail(20),
                    })
                }
            }
        }
    }

    /// The last `n` lines of `debug.log` and stderr, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        let mut out = String::new();
        for f in [self.datadir_path.join("regtest/debug.log"), self.datadir_path.join("stderr.log")] {
            if let Ok(s) = fs::read_to_string(&f) {
                let lines: Vec<&str> = s.lines().collect();
                for l in &lines[lines.len().saturating_sub(n)..] {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        if out.is_empty() {
            out.push_str("(no log written)");
        }
        out
    }

    /// Whether the process runs (it was started and not stopped since; a crash shows as RPC errors).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The RPC client (the project's one, [`btc_rpc::Client`]; [`Bitcoind::call`] adds the method to errors).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// RPC address.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// RPC URL, user and password (for handing to a sidechaind).
    pub fn rpc_credentials(&self) -> (String, String, String) {
        (format!("http://{}", self.rpc_addr), RPC_USER.to_string(), RPC_PASSWORD.to_string())
    }

    /// P2P address, for connecting other bitcoinds.
    pub fn p2p_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.p2p_port).into()
    }

    /// The datadir.
    pub fn datadir(&self) -> &Path {
        &self.datadir_path
    }

    /// A raw RPC call with the method name in the error.
    pub fn call<T: DeserializeOwned>(&self, method: &str, params: &[Value]) -> Result<T, BitcoindError> {
        self.client.call(method, params).map_err(|source| BitcoindError::Rpc { method: method.to_string(), source })
    }

    /// Current best height.
    pub fn height(&self) -> Result<u64, BitcoindError> {
        self.call("getblockcount", &[])
    }

    /// Best block hash.
    pub fn best_hash(&self) -> Result<BlockHash, BitcoindError> {
        self.call("getbestblockhash", &[])
    }

    /// Mines `n` blocks paying `address`; returns their hashes.
    pub fn mine_to(&self, n: u64, address: &Address) -> Result<Vec<BlockHash>, BitcoindError> {
        self.call("generatetoaddress", &[json!(n), json!(address.to_string())])
    }

    /// Mines `n` blocks to an address nobody holds (burns the subsidy; for confirmations only).
    pub fn mine(&self, n: u64) -> Result<Vec<BlockHash>, BitcoindError> {
        // A P2WSH of a script nobody knows: unspendable in our tests. It differs per instance (by datadir),
        // so two bitcoinds mining in the same second on the same parent still make different blocks.
        let tag = format!("sidechain-testnet-burn:{}", self.datadir_path.display());
        let script = bitcoin::ScriptBuf::new_p2wsh(&bitcoin::WScriptHash::from_raw_hash(bitcoin::hashes::Hash::hash(
            tag.as_bytes(),
        )));
        let address = Address::from_script(&script, Network::Regtest).expect("p2wsh has an address");
        self.mine_to(n, &address)
    }

    /// Connects to `other` over P2P (a one-shot connection that is never retried automatically) and waits
    /// until both sides see it.
    pub fn connect(&self, other: &Bitcoind) -> Result<(), BitcoindError> {
        let addr = other.p2p_addr().to_string();
        self.call::<Value>("addnode", &[json!(addr), json!("onetry")])?;
        let bound = Duration::from_secs(20);
        wait_until(&format!("p2p connection to {addr}"), bound, || Ok(self.is_connected_to(other)?))?;
        Ok(())
    }

    /// Whether either side has an outbound connection to the other (we only ever create outbound ones).
    fn is_connected_to(&self, other: &Bitcoind) -> Result<bool, BitcoindError> {
        Ok(self.has_outbound_to(other)? || other.has_outbound_to(self)?)
    }

    fn has_outbound_to(&self, other: &Bitcoind) -> Result<bool, BitcoindError> {
        let theirs = other.p2p_addr().to_string();
        let peers: Vec<Value> = self.call("getpeerinfo", &[])?;
        Ok(peers.iter().any(|p| p["addr"].as_str() == Some(theirs.as_str())))
    }

    /// Drops the P2P connection to `other` (whichever side opened it) and waits until it is gone.
    pub fn disconnect(&self, other: &Bitcoind) -> Result<(), BitcoindError> {
        for (a, b) in [(self, other), (other, self)] {
            if a.has_outbound_to(b)? {
                // The peer may already be gone by now; that is the outcome we want, so the error is moot.
                let _ = a.call::<Value>("disconnectnode", &[json!(b.p2p_addr().to_string())]);
            }
        }
        wait_until("p2p disconnection", Duration::from_secs(20), || Ok(!self.is_connected_to(other)?))?;
        Ok(())
    }

    /// Waits until the best height is at least `height`.
    pub fn wait_for_height(&self, height: u64, bound: Duration) -> Result<(), BitcoindError> {
        wait_until(&format!("bitcoind {} at height {height}", self.rpc_addr), bound, || Ok(self.height()? >= height))?;
        Ok(())
    }

    /// Stops the process: `stop` over RPC, then kill if it has not exited within 15 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // If the RPC does not take `stop`, there is nothing to wait for: kill at once.
            let asked = self.client.call::<Value>("stop", &[]).is_ok();
            let wait = if asked { Duration::from_secs(15) } else { Duration::ZERO };
            let deadline = std::time::Instant::now() + wait;
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Keeps the datadir after drop (returns its path).
    pub fn keep_datadir(&mut self) -> PathBuf {
        if let Some(d) = self.datadir.take() {
            let _ = d.keep();
        }
        self.datadir_path.clone()
    }
}

fn spawn(binary: &Path, datadir: &Path, extra_args: &[String]) -> Result<Child, BitcoindError> {
    let stdout = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(datadir.join("stdout.log"))
        .map_err(io_err("opening stdout.log"))?;
    let stderr = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(datadir.join("stderr.log"))
        .map_err(io_err("opening stderr.log"))?;
    Command::new(binary)
        .arg(format!("-datadir={}", datadir.display()))
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(io_err(format!("spawning {}", binary.display())))
}

impl Drop for Bitcoind {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let p = self.keep_datadir();
            eprintln!("bitcoind datadir kept for inspection: {} (debug.log under regtest/)", p.display());
        }
    }
}
