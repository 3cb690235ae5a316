//! A local federation of real `sidechaind` processes on loopback: validators and full nodes, each in its
//! own datadir with its own ports, made with the daemon's own `init` and `genesis` commands, driven over
//! its JSON-RPC, and killed, restarted or frozen by the fault scenarios.
//!
//! The whole directory is kept when the owning test panics (the logs are under `node*/sidechaind.log`).

use crate::bitcoind::free_port;
use crate::process::ManagedProcess;
use crate::wait::WaitError;
use rpc::client::{connect, ClientAuth, SidechainApiClient};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Errors of the harness.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The daemon binary is not where we looked.
    #[error("sidechaind not found at {0} (build it with `cargo build -p sidechain-node --features faults`, or set SIDECHAIND)")]
    NoBinary(PathBuf),
    /// A setup command failed.
    #[error("`sidechaind {cmd}` failed: {output}")]
    Command { cmd: String, output: String },
    /// IO failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// An RPC call failed.
    #[error("rpc to {node}: {reason}")]
    Rpc { node: String, reason: String },
    /// A bounded wait ran out.
    #[error(transparent)]
    Timeout(#[from] WaitError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> FederationError {
    let context = context.into();
    move |source| FederationError::Io { context, source }
}

/// Where the `sidechaind` binary is: `$SIDECHAIND`, else next to the running test binary's target dir.
pub fn sidechaind_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SIDECHAIND") {
        return PathBuf::from(p);
    }
    // Test binaries live in target/<profile>/deps/; the daemon in target/<profile>/.
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    profile_dir.join("sidechaind")
}

/// How to set the federation up.
#[derive(Clone, Debug)]
pub struct FederationConfig {
    /// Number of validators (3f+1).
    pub validators: usize,
    /// Number of full nodes started with it.
    pub full_nodes: usize,
    /// Test-network balances in genesis: (account id hex, sats).
    pub initial_accounts: Vec<(String, u64)>,
    /// Consensus timeouts in the nodes' config (TOML table body).
    pub consensus_toml: String,
    /// Extra environment for every node (e.g. RUST_LOG).
    pub env: Vec<(String, String)>,
    /// The daemon binary (default [`sidechaind_path`]).
    pub binary: Option<PathBuf>,
    /// Extra TOML appended to one node's config, by node index (e.g. a `[fault]` table).
    pub node_toml: Vec<(usize, String)>,
    /// Nodes (by index) that are set up but not started; `process.restart()` starts them later.
    pub deferred: Vec<usize>,
    /// Give every validator its own regtest bitcoind (connected to the others) and anchor the genesis at
    /// the regtest genesis block.
    pub bitcoind: bool,
    /// Genesis parameters to override (a JSON object merged into the genesis file's `params`).
    pub genesis_params: Option<serde_json::Value>,
    /// Nodes after the validators, each with its own bitcoind when `bitcoind` is set, started as full nodes:
    /// a federation change can make them validators (`spare0`, `spare1`, ...; full nodes come after them).
    pub spare_validators: usize,
    /// Emergency keys in the genesis: `(threshold, delay in BTC blocks, secrets)`; the harness derives the
    /// public keys (tests hold the secrets to spend through the emergency path).
    pub emergency: Option<(u32, u32, Vec<bitcoin::secp256k1::SecretKey>)>,
    /// Give every node the partition switch (`[fault] partition_file`, with `SIDECHAIND_ALLOW_FAULTS=1`)
    /// so [`Federation::partition`] and [`Federation::heal`] can cut and restore p2p links.
    pub partition_switch: bool,
    /// Taproot custody: the validators run `sidechaind ceremony` (the FROST key generation over files, each
    /// in its own datadir) before the genesis, which then carries the transcript.
    pub taproot: bool,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            validators: 4,
            full_nodes: 1,
            initial_accounts: Vec::new(),
            consensus_toml: "propose_ms = 1000\npropose_delta_ms = 300\nprevote_ms = 500\nprevote_delta_ms = 300\n\
                             precommit_ms = 500\nprecommit_delta_ms = 300\nmax_round_lookahead = 1024\n\
                             max_buffered_next_height = 4096\nempty_block_interval_ms = 100\n"
                .into(),
            env: vec![("RUST_LOG".into(), "info,libp2p=warn".into())],
            binary: None,
            node_toml: Vec::new(),
            deferred: Vec::new(),
            bitcoind: false,
            genesis_params: None,
            partition_switch: false,
            spare_validators: 0,
            emergency: None,
            taproot: false,
        }
    }
}

/// One node of the federation.
pub struct SidechainNode {
    /// `validator0`, `full0`, ...
    pub name: String,
    /// Its datadir.
    pub datadir: PathBuf,
    /// Its JSON-RPC address.
    pub rpc_addr: SocketAddr,
    /// Its metrics address.
    pub metrics_addr: SocketAddr,
    /// Its p2p port.
    pub p2p_port: u16,
    /// Its libp2p peer id.
    pub peer_id: String,
    /// Its ed25519 consensus public key (hex).
    pub consensus_key: String,
    /// Its compressed secp256k1 peg key (hex).
    pub peg_key: String,
    /// The process.
    pub process: ManagedProcess,
}

impl SidechainNode {
    /// The node's RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.rpc_addr)
    }

    /// The node's dashboard page (served on its RPC port, read-only, no credentials).
    pub fn dashboard_url(&self) -> String {
        format!("http://{}{}", self.rpc_addr, rpc::dashboard::PAGE_PATH)
    }

    /// A typed RPC client authenticated with the node's cookie.
    pub fn client(&self) -> Result<jsonrpsee::http_client::HttpClient, FederationError> {
        connect(&self.rpc_url(), &ClientAuth::Cookie(self.datadir.join(".cookie")))
            .map_err(|e| FederationError::Rpc { node: self.name.clone(), reason: e.to_string() })
    }

    /// The node's Prometheus text (`GET /metrics`).
    pub fn metrics(&self) -> Result<String, FederationError> {
        use std::io::{Read, Write};
        let err = |e: std::io::Error| FederationError::Rpc { node: self.name.clone(), reason: format!("metrics: {e}") };
        let mut s = std::net::TcpStream::connect_timeout(&self.metrics_addr, Duration::from_secs(5)).map_err(err)?;
        s.set_read_timeout(Some(Duration::from_secs(5))).map_err(err)?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").map_err(err)?;
        let mut body = String::new();
        s.read_to_string(&mut body).map_err(err)?;
        Ok(body)
    }

    /// One sample of the node's metrics (`name value` line), if present.
    pub fn metric(&self, name: &str) -> Result<Option<f64>, FederationError> {
        Ok(self.metrics()?.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()))
    }

    /// The committed height, if the node answers.
    pub async fn height(&self) -> Result<u64, FederationError> {
        let c = self.client()?;
        c.get_block_count()
            .await
            .map(|h| h.get())
            .map_err(|e| FederationError::Rpc { node: self.name.clone(), reason: e.to_string() })
    }
}

/// How often nodes read their partition file (the daemon's `node::fault::PARTITION_POLL`).
pub const PARTITION_POLL: Duration = Duration::from_millis(100);

fn partition_path(datadir: &Path) -> PathBuf {
    datadir.join("partition")
}

/// A running federation.
pub struct Federation {
    /// Validator `i`'s own bitcoind (when asked for), in validator order.
    pub bitcoinds: Vec<crate::Bitcoind>,
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    /// Validators first, then full nodes.
    pub nodes: Vec<SidechainNode>,
    /// Path of the genesis file.
    pub genesis_path: PathBuf,
    binary: PathBuf,
    config: FederationConfig,
}

fn run_cmd(binary: &Path, args: &[String]) -> Result<String, FederationError> {
    let out = Command::new(binary).args(args).output().map_err(io(format!("running {}", binary.display())))?;
    if !out.status.success() {
        return Err(FederationError::Command {
            cmd: args.join(" "),
            output: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Runs `sidechaind ceremony` for `validators` (datadir, peg key hex, in genesis order) at the federation
/// threshold, with the files in `dir`, as operators would carry them; returns the transcript's path.
fn run_ceremony(binary: &Path, dir: &Path, validators: &[(PathBuf, String)]) -> Result<PathBuf, FederationError> {
    std::fs::create_dir_all(dir).map_err(io("ceremony dir"))?;
    let n = validators.len();
    let mut setup: Vec<String> = vec!["--threshold".into(), (n - n.saturating_sub(1) / 3).to_string()];
    for (_, key) in validators {
        setup.extend(["--peg-key".into(), key.clone()]);
    }
    let step = |name: &str, datadir: &Path, tail: Vec<String>| -> Result<String, FederationError> {
        let mut args: Vec<String> =
            vec!["ceremony".into(), name.into(), "--datadir".into(), datadir.display().to_string()];
        args.extend(setup.iter().cloned());
        args.extend(tail);
        run_cmd(binary, &args)
    };
    let round1: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("round1-{i}.json"))).collect();
    for ((datadir, _), out) in validators.iter().zip(&round1) {
        step("round1", datadir, vec!["--out".into(), out.display().to_string()])?;
    }
    let round1_args: Vec<String> = round1.iter().flat_map(|p| ["--round1".into(), p.display().to_string()]).collect();
    let round2_dir = dir.join("round2");
    for (datadir, _) in validators {
        let mut tail = round1_args.clone();
        tail.extend(["--out-dir".into(), round2_dir.display().to_string()]);
        step("round2", datadir, tail)?;
    }
    let mut round2_args = Vec::new();
    for entry in std::fs::read_dir(&round2_dir).map_err(io("round2 dir"))? {
        round2_args.extend(["--round2".to_string(), entry.map_err(io("round2 dir"))?.path().display().to_string()]);
    }
    let transcript = dir.join("transcript.json");
    for (i, (datadir, _)) in validators.iter().enumerate() {
        let mut tail = round1_args.clone();
        tail.extend(round2_args.iter().cloned());
        let own = dir.join(format!("transcript-{i}.json"));
        tail.extend(["--transcript".into(), own.display().to_string()]);
        step("finish", datadir, tail)?;
        if i == 0 {
            std::fs::copy(&own, &transcript).map_err(io("transcript"))?;
        }
    }
    Ok(transcript)
}

impl Federation {
    /// Creates keys, a genesis and configs, then starts every node.
    pub fn start(config: FederationConfig) -> Result<Federation, FederationError> {
        let binary = config.binary.clone().unwrap_or_else(sidechaind_path);
        let mut config = config;
        if config.partition_switch && !config.env.iter().any(|(k, _)| k == "SIDECHAIND_ALLOW_FAULTS") {
            config.env.push(("SIDECHAIND_ALLOW_FAULTS".into(), "1".into()));
        }
        if !binary.is_file() {
            return Err(FederationError::NoBinary(binary));
        }
        let dir = tempfile::Builder::new().prefix("sidechain-federation-").tempdir().map_err(io("tempdir"))?;
        let path = dir.path().to_path_buf();
        let with_bitcoind = config.validators + config.spare_validators;
        let total = with_bitcoind + config.full_nodes;
        struct Prepared {
            name: String,
            datadir: PathBuf,
            p2p: u16,
            rpc: u16,
            metrics: u16,
            info: serde_json::Value,
        }
        let mut prepared = Vec::new();
        for i in 0..total {
            let name = if i < config.validators {
                format!("validator{i}")
            } else if i < with_bitcoind {
                format!("spare{}", i - config.validators)
            } else {
                format!("full{}", i - with_bitcoind)
            };
            let datadir = path.join(&name);
            let out = run_cmd(
                &binary,
                &[
                    "init".into(),
                    "--datadir".into(),
                    datadir.display().to_string(),
                    "--insecure-seed".into(),
                    name.clone(),
                ],
            )?;
            let info: serde_json::Value = serde_json::from_str(&out)
                .map_err(|e| FederationError::Command { cmd: "init".into(), output: format!("{e}: {out}") })?;
            let port = || {
                free_port()
                    .map_err(|e| FederationError::Io { context: e.to_string(), source: std::io::Error::other("port") })
            };
            prepared.push(Prepared { name, datadir, p2p: port()?, rpc: port()?, metrics: port()?, info });
        }
        let mut bitcoinds = Vec::new();
        if config.bitcoind {
            for _ in 0..with_bitcoind {
                let b = crate::Bitcoind::start()
                    .map_err(|e| FederationError::Command { cmd: "start bitcoind".into(), output: e.to_string() })?;
                for other in &bitcoinds {
                    b.connect(other).map_err(|e| FederationError::Command {
                        cmd: "connect bitcoinds".into(),
                        output: e.to_string(),
                    })?;
                }
                bitcoinds.push(b);
            }
        }
        let genesis_path = path.join("genesis.json");
        let mut args: Vec<String> = vec![
            "genesis".into(),
            "--chain-id".into(),
            "sidechain-local".into(),
            "--out".into(),
            genesis_path.display().to_string(),
        ];
        for p in prepared.iter().take(config.validators) {
            let s = |k: &str| p.info[k].as_str().unwrap_or_default().to_string();
            args.push("--validator".into());
            args.push(format!("{}:{}:/ip4/127.0.0.1/tcp/{}", s("consensus_key"), s("peg_key"), p.p2p));
        }
        if let Some(b) = bitcoinds.first() {
            let hash: String = b
                .call("getblockhash", &[serde_json::json!(0)])
                .map_err(|e| FederationError::Command { cmd: "getblockhash 0".into(), output: e.to_string() })?;
            args.push("--btc-anchor".into());
            args.push(format!("0:{hash}"));
        }
        for (id, sats) in &config.initial_accounts {
            args.push("--initial-account".into());
            args.push(format!("{id}:{sats}"));
        }
        if let Some((threshold, delay, secrets)) = &config.emergency {
            let secp = bitcoin::secp256k1::Secp256k1::signing_only();
            let keys: Vec<String> =
                secrets.iter().map(|k| bitcoin::PublicKey::new(k.public_key(&secp)).to_string()).collect();
            args.push("--emergency".into());
            args.push(format!("{threshold}:{delay}:{}", keys.join(",")));
            // Checked against the delay when the genesis is made, before the params patch below.
            if let Some(m) = config.genesis_params.as_ref().and_then(|p| p.get("refresh_margin")) {
                args.push("--refresh-margin".into());
                args.push(m.to_string());
            }
        }
        if config.taproot {
            let datadirs: Vec<(PathBuf, String)> = prepared
                .iter()
                .take(config.validators)
                .map(|p| (p.datadir.clone(), p.info["peg_key"].as_str().unwrap_or_default().to_string()))
                .collect();
            let transcript = run_ceremony(&binary, &path.join("ceremony"), &datadirs)?;
            args.push("--taproot-transcript".into());
            args.push(transcript.display().to_string());
        }
        run_cmd(&binary, &args)?;
        if let Some(serde_json::Value::Object(patch)) = &config.genesis_params {
            let bad = |e: String| FederationError::Command { cmd: "patch genesis params".into(), output: e };
            let text = std::fs::read_to_string(&genesis_path).map_err(|e| bad(e.to_string()))?;
            let mut genesis: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            let params = genesis["params"].as_object_mut().ok_or_else(|| bad("genesis has no params".into()))?;
            for (k, v) in patch {
                params.insert(k.clone(), v.clone());
            }
            let text = serde_json::to_string_pretty(&genesis).map_err(|e| bad(e.to_string()))?;
            std::fs::write(&genesis_path, text).map_err(|e| bad(e.to_string()))?;
        }
        let mut fed = Federation { bitcoinds, dir: Some(dir), path, nodes: Vec::new(), genesis_path, binary, config };
        let addrs: Vec<String> = prepared
            .iter()
            .map(|p| format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", p.p2p, p.info["peer_id"].as_str().unwrap_or_default()))
            .collect();
        for (i, p) in prepared.into_iter().enumerate() {
            let extra: String =
                fed.config.node_toml.iter().filter(|(j, _)| *j == i).map(|(_, t)| format!("{t}\n")).collect();
            fed.write_config(&p.datadir, &extra)?;
            let bootstrap: Vec<String> =
                addrs.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, a)| a.clone()).collect();
            let mut run_args: Vec<String> = vec![
                "run".into(),
                "--datadir".into(),
                p.datadir.display().to_string(),
                "--genesis".into(),
                fed.genesis_path.display().to_string(),
                "--p2p-listen".into(),
                format!("/ip4/127.0.0.1/tcp/{}", p.p2p),
                "--bootstrap".into(),
                bootstrap.join(","),
                "--rpc-bind".into(),
                format!("127.0.0.1:{}", p.rpc),
                "--metrics-bind".into(),
                format!("127.0.0.1:{}", p.metrics),
            ];
            if let Some(b) = fed.bitcoinds.get(i) {
                let (url, user, password) = b.rpc_credentials();
                run_args.extend([
                    "--bitcoind-rpc-url".into(),
                    url,
                    "--bitcoind-rpc-user".into(),
                    user,
                    "--bitcoind-rpc-password".into(),
                    password,
                ]);
            }
            let log = p.datadir.join("sidechaind.log");
            let process = if fed.config.deferred.contains(&i) {
                ManagedProcess::prepare(&p.name, &fed.binary, run_args, fed.config.env.clone(), log)
            } else {
                ManagedProcess::spawn(&p.name, &fed.binary, run_args, fed.config.env.clone(), log)
                    .map_err(io(format!("starting {}", p.name)))?
            };
            fed.nodes.push(SidechainNode {
                name: p.name,
                datadir: p.datadir,
                rpc_addr: ([127, 0, 0, 1], p.rpc).into(),
                metrics_addr: ([127, 0, 0, 1], p.metrics).into(),
                p2p_port: p.p2p,
                peer_id: p.info["peer_id"].as_str().unwrap_or_default().to_string(),
                consensus_key: p.info["consensus_key"].as_str().unwrap_or_default().to_string(),
                peg_key: p.info["peg_key"].as_str().unwrap_or_default().to_string(),
                process,
            });
        }
        Ok(fed)
    }

    /// Writes a node's `sidechaind.toml`: the federation's consensus timeouts plus `extra` (read at the
    /// node's next start, so a restart changes e.g. its fault switches).
    pub fn write_config(&self, datadir: &Path, extra: &str) -> Result<(), FederationError> {
        let mut extra = extra.to_string();
        if self.config.partition_switch {
            let line = format!("partition_file = {:?}\n", partition_path(datadir).display().to_string());
            extra = match extra.find("[fault]\n") {
                Some(at) => format!("{}[fault]\n{line}{}", &extra[..at], &extra[at + "[fault]\n".len()..]),
                None => format!("{extra}\n[fault]\n{line}"),
            };
        }
        let toml = format!("[consensus]\n{}\n{extra}", self.config.consensus_toml);
        std::fs::write(datadir.join("sidechaind.toml"), toml).map_err(io("writing sidechaind.toml"))
    }

    /// Cuts the p2p links between the groups (needs `partition_switch`): every node of a group drops and
    /// refuses every node of the other groups; links inside a group, and nodes in no group, are untouched.
    /// The nodes apply it within a poll interval ([`PARTITION_POLL`]).
    pub fn partition(&self, groups: &[&[usize]]) -> Result<(), FederationError> {
        for (g, group) in groups.iter().enumerate() {
            let others: Vec<&str> = groups
                .iter()
                .enumerate()
                .filter(|(h, _)| *h != g)
                .flat_map(|(_, other)| other.iter().map(|&j| self.nodes[j].peer_id.as_str()))
                .collect();
            for &i in *group {
                let path = partition_path(&self.nodes[i].datadir);
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, others.join("\n")).map_err(io("writing a partition file"))?;
                std::fs::rename(&tmp, &path).map_err(io("writing a partition file"))?;
            }
        }
        Ok(())
    }

    /// Restores every link cut by [`Federation::partition`].
    pub fn heal(&self) -> Result<(), FederationError> {
        for n in &self.nodes {
            match std::fs::remove_file(partition_path(&n.datadir)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("removing a partition file")(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// How it was set up.
    pub fn config(&self) -> &FederationConfig {
        &self.config
    }

    /// The federation's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until every node in `which` that is running has committed at least `height`.
    pub async fn wait_height(&self, which: &[usize], height: u64, bound: Duration) -> Result<(), FederationError> {
        let deadline = Instant::now() + bound;
        let mut last = String::new();
        loop {
            let mut all = true;
            for &i in which {
                match self.nodes[i].height().await {
                    Ok(h) if h >= height => {}
                    Ok(h) => {
                        all = false;
                        last = format!("{} at {h}", self.nodes[i].name);
                    }
                    Err(e) => {
                        all = false;
                        last = e.to_string();
                    }
                }
            }
            if all {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(WaitError {
                    what: format!("height {height} on nodes {which:?}"),
                    after: bound,
                    last_error: Some(last),
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Keeps the directory after drop and returns it.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(d) = self.dir.take() {
            let _ = d.keep();
        }
        self.path.clone()
    }
}

impl Drop for Federation {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.process.terminate(Duration::from_secs(10));
        }
        if std::thread::panicking() {
            let p = self.keep();
            eprintln!("federation directory kept for inspection: {} (logs: */sidechaind.log)", p.display());
        }
    }
}
