//! `sidechaind`: the daemon that validators and full nodes run.
//!
//! `init` makes keys, `genesis` makes a genesis for a set of validators, `run` runs the node. A node whose
//! consensus key is in the genesis validator set is a validator; any other node is a full node that
//! verifies every certificate and re-executes every block.

use anyhow::Context;
use clap::{Parser, Subcommand};
use node::config::{load_genesis, parse_multiaddr, FileConfig};
use node::keys::NodeKeys;
use node::service::{self, ServiceConfig};
use std::path::PathBuf;
use std::time::Duration;

/// A full node (and, with a validator key in the genesis, a validator) of the federated two-way-peg sidechain.
#[derive(Parser, Debug)]
#[command(name = "sidechaind", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a datadir with a new key file (mode 0600) and print the public keys.
    Init {
        /// Where the node keeps its keys, config and database.
        #[arg(long, env = "SIDECHAIND_DATADIR")]
        datadir: PathBuf,
        /// Derive the keys from this seed instead of randomness (local test networks only).
        #[arg(long)]
        insecure_seed: Option<String>,
    },
    /// Write a genesis file for a set of validators.
    Genesis {
        /// Chain id (at most 64 characters).
        #[arg(long)]
        chain_id: String,
        /// A validator as `<consensus key hex>:<peg key hex>:<p2p multiaddr>`; repeat for each validator.
        #[arg(long = "validator", required = true)]
        validators: Vec<String>,
        /// A test-network balance as `<account id hex>:<sats>`; repeat as needed.
        #[arg(long = "initial-account")]
        initial_accounts: Vec<String>,
        /// The Bitcoin block the chain starts anchored to, as `<height>:<block hash as bitcoind shows it>`
        /// (without it the anchor is unset and never moves: no peg).
        #[arg(long)]
        btc_anchor: Option<String>,
        /// Genesis time in milliseconds since the epoch (default: now).
        #[arg(long)]
        time_ms: Option<u64>,
        /// Emergency keys of the federation wallet as `<threshold>:<delay in BTC blocks>:<key hex>,<key hex>,..`:
        /// that many of them may spend a federation output once it is that deep (see README, "Emergency
        /// recovery"). Without it the wallet is a plain k-of-n.
        #[arg(long)]
        emergency: Option<String>,
        /// Outputs are refreshed this many BTC blocks before they reach the emergency delay.
        #[arg(long)]
        refresh_margin: Option<u32>,
        /// Taproot custody: the transcript `sidechaind ceremony finish` wrote for these validators (checked
        /// against their peg keys, in this order, at the federation threshold). Without it the wallet is wsh.
        #[arg(long)]
        taproot_transcript: Option<PathBuf>,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the node until SIGTERM or Ctrl-C.
    Run(RunOpts),
    /// The genesis federation's FROST key generation over files (taproot custody): `round1`, `round2`,
    /// `finish` by each validator, `verify` by anyone.
    Ceremony {
        #[command(subcommand)]
        step: CeremonyStep,
    },
}

/// The ceremony's validators and threshold, the same for every step and every validator.
#[derive(clap::Args, Debug)]
struct CeremonySetupArgs {
    /// Signatures a federation spend needs (k).
    #[arg(long)]
    threshold: usize,
    /// A validator's peg key (hex); repeat for each validator, in genesis order.
    #[arg(long = "peg-key", required = true)]
    peg_keys: Vec<bitcoin::PublicKey>,
}

impl CeremonySetupArgs {
    fn setup(&self) -> node::ceremony::Setup {
        node::ceremony::Setup { threshold: self.threshold, peg_keys: self.peg_keys.clone() }
    }
}

#[derive(Subcommand, Debug)]
enum CeremonyStep {
    /// Write this validator's signed round-1 package (public) and keep its secret in the datadir.
    Round1 {
        #[arg(long, env = "SIDECHAIND_DATADIR")]
        datadir: PathBuf,
        #[command(flatten)]
        setup: CeremonySetupArgs,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check every round-1 file and write an encrypted round-2 file for each other validator.
    Round2 {
        #[arg(long, env = "SIDECHAIND_DATADIR")]
        datadir: PathBuf,
        #[command(flatten)]
        setup: CeremonySetupArgs,
        /// Every validator's round-1 file; repeat.
        #[arg(long = "round1", required = true)]
        round1: Vec<PathBuf>,
        /// Directory for the round-2 files.
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Decrypt the round-2 files addressed to this validator, write its key share and the transcript.
    Finish {
        #[arg(long, env = "SIDECHAIND_DATADIR")]
        datadir: PathBuf,
        #[command(flatten)]
        setup: CeremonySetupArgs,
        /// Every validator's round-1 file; repeat.
        #[arg(long = "round1", required = true)]
        round1: Vec<PathBuf>,
        /// Round-2 files (those for other validators are skipped); repeat.
        #[arg(long = "round2", required = true)]
        round2: Vec<PathBuf>,
        /// Where to write the transcript.
        #[arg(long)]
        transcript: PathBuf,
    },
    /// Check a transcript against the expected validators and threshold, and print its group key (anyone).
    Verify {
        #[command(flatten)]
        setup: CeremonySetupArgs,
        /// The transcript file.
        #[arg(long)]
        transcript: PathBuf,
    },
}

/// `sidechaind run` flags.
#[derive(clap::Args, Debug)]
struct RunOpts {
    /// Where the node keeps its keys, config and database.
    #[arg(long, env = "SIDECHAIND_DATADIR")]
    datadir: PathBuf,
    /// Config file (default `<datadir>/sidechaind.toml`, optional).
    #[arg(long, env = "SIDECHAIND_CONFIG")]
    config: Option<PathBuf>,
    /// Genesis file (default from the config, else `<datadir>/genesis.json`).
    #[arg(long, env = "SIDECHAIND_GENESIS")]
    genesis: Option<PathBuf>,
    /// P2P listen multiaddr.
    #[arg(long, env = "SIDECHAIND_P2P_LISTEN")]
    p2p_listen: Option<String>,
    /// A peer to stay connected to (multiaddr); repeat as needed.
    #[arg(long = "bootstrap", env = "SIDECHAIND_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<String>,
    /// JSON-RPC listen address (loopback by default).
    #[arg(long, env = "SIDECHAIND_RPC_BIND")]
    rpc_bind: Option<String>,
    /// Prometheus metrics listen address (`GET /metrics`); off unless set here or in the config.
    #[arg(long, env = "SIDECHAIND_METRICS_BIND")]
    metrics_bind: Option<String>,
    /// This validator's own bitcoind JSON-RPC URL (the anchor rule; full nodes need none).
    #[arg(long, env = "SIDECHAIND_BITCOIND_RPC_URL")]
    bitcoind_rpc_url: Option<String>,
    /// bitcoind RPC user (with --bitcoind-rpc-password; or use --bitcoind-rpc-cookie).
    #[arg(long, env = "SIDECHAIND_BITCOIND_RPC_USER", requires = "bitcoind_rpc_password")]
    bitcoind_rpc_user: Option<String>,
    /// bitcoind RPC password (prefer the environment variable: the command line is visible to others).
    #[arg(long, env = "SIDECHAIND_BITCOIND_RPC_PASSWORD", hide_env_values = true)]
    bitcoind_rpc_password: Option<String>,
    /// bitcoind's `.cookie` file.
    #[arg(long, env = "SIDECHAIND_BITCOIND_RPC_COOKIE", conflicts_with = "bitcoind_rpc_user")]
    bitcoind_rpc_cookie: Option<PathBuf>,
    /// Bitcoin network for the addresses the node shows: bitcoin, testnet, signet or regtest.
    #[arg(long, env = "SIDECHAIND_BTC_NETWORK", default_value = "regtest", value_parser = parse_network)]
    btc_network: bitcoin::Network,
}

fn ceremony(step: CeremonyStep) -> anyhow::Result<()> {
    use node::ceremony;
    let keys = |datadir: &std::path::Path| NodeKeys::load(&datadir.join("node_key.json"));
    let outcome = match step {
        CeremonyStep::Round1 { datadir, setup, out } => {
            ceremony::round1(&keys(&datadir)?, &setup.setup(), &datadir, &out)?;
            println!("{}", serde_json::json!({ "round1": out }));
            return Ok(());
        }
        CeremonyStep::Round2 { datadir, setup, round1, out_dir } => {
            let id = ceremony::round2(&keys(&datadir)?, &setup.setup(), &datadir, &round1, &out_dir)?;
            println!("{}", serde_json::json!({ "round2_dir": out_dir, "ceremony": id }));
            return Ok(());
        }
        CeremonyStep::Finish { datadir, setup, round1, round2, transcript } => {
            ceremony::finish(&keys(&datadir)?, &setup.setup(), &datadir, &round1, &round2, &transcript)?
        }
        CeremonyStep::Verify { setup, transcript } => ceremony::verify(&setup.setup(), &transcript)?,
    };
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn")),
        )
        // Colours only on a terminal: log files stay greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match cli.command {
        Cmd::Init { datadir, insecure_seed } => init(datadir, insecure_seed),
        Cmd::Genesis {
            chain_id,
            validators,
            initial_accounts,
            btc_anchor,
            time_ms,
            emergency,
            refresh_margin,
            taproot_transcript,
            out,
        } => {
            let emergency = emergency.as_deref().map(parse_emergency).transpose()?;
            let mut params = ledger::Params::default();
            if let Some(m) = refresh_margin {
                params.refresh_margin = m;
            }
            let wallet = (emergency, params, taproot_transcript);
            genesis(chain_id, validators, initial_accounts, btc_anchor, time_ms, wallet, out)
        }
        Cmd::Ceremony { step } => ceremony(step),
        Cmd::Run(opts) => {
            let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            rt.block_on(run(opts))
        }
    }
}

fn init(datadir: PathBuf, seed: Option<String>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&datadir).with_context(|| format!("creating {}", datadir.display()))?;
    let keys = match seed {
        Some(s) => NodeKeys::from_seed(s.as_bytes()),
        None => NodeKeys::generate(),
    };
    let key_file = datadir.join("node_key.json");
    keys.save_new(&key_file)?;
    let peer_id = net::Keypair::ed25519_from_bytes(keys.consensus.secret_bytes())
        .map(|k| k.public().to_peer_id().to_string())
        .context("deriving the peer id")?;
    let out = serde_json::json!({
        "key_file": key_file,
        "consensus_key": keys.consensus_public().to_string(),
        "peg_key": keys.peg_public().to_string(),
        "peer_id": peer_id,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// `<threshold>:<delay>:<key>,<key>,..` as emergency keys.
fn parse_emergency(s: &str) -> anyhow::Result<ledger::EmergencyKeys> {
    let mut parts = s.splitn(3, ':');
    let (Some(t), Some(d), Some(keys)) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("--emergency {s:?}: expected <threshold>:<delay>:<key hex>,<key hex>,..");
    };
    let threshold: u32 = t.parse().with_context(|| format!("--emergency {s:?}: bad threshold"))?;
    let delay: u32 = d.parse().with_context(|| format!("--emergency {s:?}: bad delay"))?;
    let keys = keys
        .split(',')
        .map(|k| k.parse::<bitcoin::PublicKey>().with_context(|| format!("--emergency: {k:?} is not a compressed key")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(ledger::EmergencyKeys { threshold, keys, delay })
}

fn genesis(
    chain_id: String,
    validators: Vec<String>,
    initial_accounts: Vec<String>,
    btc_anchor: Option<String>,
    time_ms: Option<u64>,
    (emergency, params, taproot_transcript): (Option<ledger::EmergencyKeys>, ledger::Params, Option<PathBuf>),
    out: PathBuf,
) -> anyhow::Result<()> {
    let btc_anchor = match btc_anchor {
        None => ledger::BtcAnchor::default(),
        Some(a) => {
            let (h, hash) =
                a.split_once(':').with_context(|| format!("--btc-anchor {a:?}: expected <height>:<hash>"))?;
            let height: u32 = h.parse().with_context(|| format!("--btc-anchor {a:?}: bad height"))?;
            let hash: bitcoin::BlockHash =
                hash.parse().with_context(|| format!("--btc-anchor {a:?}: bad block hash"))?;
            node::btc_follow::from_peg((height, hash))
        }
    };
    let mut vs = Vec::new();
    for v in &validators {
        let mut parts = v.splitn(3, ':');
        let (Some(c), Some(p), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("--validator {v:?}: expected <consensus key hex>:<peg key hex>:<p2p multiaddr>");
        };
        let consensus_key: primitives::PublicKey = serde_json::from_value(serde_json::Value::String(c.into()))
            .with_context(|| format!("--validator {v:?}: consensus key is not 64 hex digits"))?;
        let peg_key: bitcoin::PublicKey =
            p.parse().with_context(|| format!("--validator {v:?}: peg key is not a compressed secp256k1 key"))?;
        vs.push(ledger::GenesisValidator { consensus_key, peg_key, p2p_addr: addr.to_string(), power: 1 });
    }
    let mut accounts = Vec::new();
    for a in &initial_accounts {
        let (id, sats) = a.split_once(':').with_context(|| format!("--initial-account {a:?}: expected <id>:<sats>"))?;
        let account = primitives::AccountId(id.parse().with_context(|| format!("--initial-account {a:?}: bad id"))?);
        let sats: u64 = sats.parse().with_context(|| format!("--initial-account {a:?}: bad amount"))?;
        accounts.push(ledger::InitialAccount { account, balance: bitcoin::Amount::from_sat(sats) });
    }
    let custody = match taproot_transcript {
        None => ledger::GenesisCustody::Wsh,
        Some(path) => {
            let setup = node::ceremony::Setup {
                threshold: ledger::federation_threshold(vs.len()),
                peg_keys: vs.iter().map(|v| v.peg_key).collect(),
            };
            let (outcome, custody) = node::ceremony::genesis_custody(&setup, &path)
                .with_context(|| format!("--taproot-transcript {}", path.display()))?;
            eprintln!("taproot custody: group key {} (ceremony {})", outcome.group_key, outcome.ceremony);
            custody
        }
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let g = ledger::Genesis {
        chain_id,
        genesis_time_ms: time_ms.unwrap_or(now),
        btc_anchor,
        validators: vs,
        params,
        emergency,
        initial_accounts: accounts,
        custody,
    };
    ledger::Chain::new(g.clone()).context("the genesis is invalid")?;
    std::fs::write(&out, serde_json::to_string_pretty(&g)?).with_context(|| format!("writing {}", out.display()))?;
    println!("{}", g.hash());
    Ok(())
}

fn bitcoind_client(
    url: Option<String>,
    user: Option<String>,
    password: Option<String>,
    cookie: Option<PathBuf>,
) -> anyhow::Result<Option<std::sync::Arc<node::bitcoin::BitcoindClient>>> {
    use node::bitcoin::{BitcoindAuth, BitcoindClient};
    let Some(url) = url else {
        anyhow::ensure!(user.is_none() && cookie.is_none(), "bitcoind credentials given without --bitcoind-rpc-url");
        return Ok(None);
    };
    let auth = match (user, password, cookie) {
        (Some(user), Some(password), None) => BitcoindAuth::UserPass { user, password },
        (None, _, Some(path)) => BitcoindAuth::CookieFile(path),
        _ => anyhow::bail!(
            "--bitcoind-rpc-url needs --bitcoind-rpc-user and --bitcoind-rpc-password, or --bitcoind-rpc-cookie"
        ),
    };
    Ok(Some(std::sync::Arc::new(BitcoindClient::new(url, auth).context("bitcoind RPC settings")?)))
}

/// A `--btc-network` that names no network.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not one of bitcoin, testnet, signet, regtest")]
struct UnknownNetwork(String);

fn parse_network(s: &str) -> Result<bitcoin::Network, UnknownNetwork> {
    s.parse::<bitcoin::Network>().map_err(|_| UnknownNetwork(s.to_string()))
}

async fn run(opts: RunOpts) -> anyhow::Result<()> {
    let RunOpts {
        datadir,
        config,
        genesis,
        p2p_listen,
        bootstrap,
        rpc_bind,
        metrics_bind,
        bitcoind_rpc_url,
        bitcoind_rpc_user,
        bitcoind_rpc_password,
        bitcoind_rpc_cookie,
        btc_network,
    } = opts;
    let bitcoind = bitcoind_client(bitcoind_rpc_url, bitcoind_rpc_user, bitcoind_rpc_password, bitcoind_rpc_cookie)?;
    let shutdown = shutdown_signal();
    let config_path = config.clone().unwrap_or_else(|| datadir.join("sidechaind.toml"));
    let file = FileConfig::load(&config_path, config.is_some())?;
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { datadir.join(p) };
    let genesis_path = genesis.or(file.genesis.clone().map(resolve)).unwrap_or_else(|| datadir.join("genesis.json"));
    let genesis = load_genesis(&genesis_path)?;
    let key_file = file.key_file.clone().map(resolve).unwrap_or_else(|| datadir.join("node_key.json"));
    let keys = NodeKeys::load(&key_file)?;
    match node::ceremony::genesis_key_share(&genesis, &keys.peg_public(), &datadir) {
        Ok(Some(share)) => tracing::info!(index = share.index(), "FROST key share of the genesis group loaded"),
        Ok(None)
            if genesis.custody != ledger::GenesisCustody::Wsh
                && genesis.validators.iter().any(|v| v.peg_key == keys.peg_public()) =>
        {
            tracing::warn!(
                "taproot chain and no FROST key share in {}: this node cannot take part in key-path signing",
                datadir.join(node::ceremony::KEY_SHARE_FILE).display()
            )
        }
        Ok(None) => {}
        Err(e) => anyhow::bail!("FROST key share: {e}"),
    }
    let listen = p2p_listen.or(file.p2p.listen.clone()).unwrap_or_else(|| "/ip4/127.0.0.1/tcp/0".into());
    let listen = parse_multiaddr("p2p listen", &listen)?;
    let bootstrap = if bootstrap.is_empty() { file.p2p.bootstrap.clone() } else { bootstrap };
    let bootstrap = bootstrap
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| parse_multiaddr("bootstrap", s))
        .collect::<Result<_, _>>()?;
    if file.fault != Default::default() {
        anyhow::ensure!(
            node::fault::ENABLED,
            "config {} asks for deliberate faults ({:?}), but this sidechaind was built without them (they exist \
             for test networks only: build with `--features sidechain-node/faults`)",
            config_path.display(),
            file.fault
        );
        anyhow::ensure!(
            std::env::var("SIDECHAIND_ALLOW_FAULTS").as_deref() == Ok("1"),
            "config {} asks for deliberate faults ({:?}); they exist for test networks only and need \
             SIDECHAIND_ALLOW_FAULTS=1 in the environment",
            config_path.display(),
            file.fault
        );
        tracing::warn!(faults = ?file.fault, "THIS NODE MISBEHAVES ON PURPOSE (test fault switches on)");
    }
    let cfg = ServiceConfig {
        datadir: datadir.clone(),
        genesis,
        keys,
        p2p_listen: listen,
        bootstrap,
        consensus: file.consensus.clone().unwrap_or_default(),
        mempool: Default::default(),
        status_interval: Duration::from_secs(2),
        max_future_block_ms: 30_000,
        faults: file.fault.clone(),
        bitcoind,
        btc_poll_interval: Duration::from_millis(100),
        fee_rate_floor_sat_vb: file.peg.fee_rate_floor_sat_vb.unwrap_or(0),
        history: file.index.history(),
    };
    let metrics_bind = metrics_bind.or(file.metrics.bind.clone());
    let metrics_listener = match &metrics_bind {
        Some(a) => {
            let addr: std::net::SocketAddr =
                a.parse().with_context(|| format!("--metrics-bind {a:?} is not an ip:port address"))?;
            Some(node::metrics::bind(addr).await.with_context(|| format!("cannot listen for metrics on {addr}"))?)
        }
        None => None,
    };
    let mempool_max_bytes = cfg.mempool.max_bytes as u64;
    let mut rpc_cfg = rpc::RpcServerConfig::new(&datadir);
    rpc_cfg.dashboard = file.rpc.dashboard.unwrap_or(true);
    if let Some(b) = rpc_bind.or(file.rpc.bind.clone()) {
        rpc_cfg.bind = b.parse().with_context(|| format!("--rpc-bind {b:?} is not an ip:port address"))?;
    }
    let (service, handle) = service::start(cfg).await?;
    let backend = std::sync::Arc::new(node::rpc_backend::NodeRpc::new(
        handle.clone(),
        mempool_max_bytes,
        btc_network,
        file.index.history(),
    ));
    let rpc_server = rpc::start_server(rpc_cfg, backend).await.context("starting the JSON-RPC server")?;
    tracing::info!(addr = %rpc_server.local_addr(), cookie = %rpc_server.cookie_path().display(), "JSON-RPC listening");
    if let Some(listener) = metrics_listener {
        let m = std::sync::Arc::new(node::metrics::Metrics::new());
        tracing::info!(addr = ?listener.local_addr().ok(), "serving metrics");
        tokio::spawn(node::metrics::follow(m.clone(), handle.watch()));
        tokio::spawn(node::metrics::serve(listener, m));
    }
    let status = handle.status();
    tracing::info!(height = %status.height, peer_id = %status.peer_id, addrs = ?status.listen_addrs,
        validator = ?status.validator_index, "sidechaind started");
    let result = service.run(shutdown).await;
    rpc_server.stop().await;
    result?;
    tracing::info!("sidechaind stopped");
    Ok(())
}

/// Registers the SIGTERM handler now (so a SIGTERM during start-up is a clean shutdown, not a kill) and
/// returns the future that resolves on SIGTERM or Ctrl-C.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        match term {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the node");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
