//! The demo `scripts/testnet` runs: a local federation (validators + a full node, real processes), and
//! the user's path through it with the real `sidechain-cli`: two wallets, a transfer, balances read back
//! from every node, and a summary table.
//!
//! Why the CLI and not the typed client: the demo is also the end-to-end check of what a user types, and
//! its `--json` output is parsed here, so a CLI that prints something else fails the demo.
//!
//! Peg-in and peg-out join the demo when they land (issues 7 and 8); until then Alice's coins come from a
//! test-network genesis allocation, and the summary says so.

use crate::federation::{sidechaind_path, Federation, FederationConfig};
use anyhow::{bail, Context, Result};
use rpc::client::SidechainApiClient;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Number of validators (3f+1).
    pub validators: usize,
    /// The `sidechaind` binary.
    pub sidechaind: PathBuf,
    /// The `sidechain-cli` binary.
    pub cli: PathBuf,
    /// Satoshis Alice starts with (test-network genesis allocation).
    pub alice_sats: u64,
    /// Satoshis Alice sends Bob.
    pub transfer_sats: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        let daemon = sidechaind_path();
        let cli = daemon.with_file_name("sidechain-cli");
        DemoOptions { validators: 4, sidechaind: daemon, cli, alice_sats: 50_000_000, transfer_sats: 12_345_678 }
    }
}

/// What the demo saw, for the summary and for tests.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// The transfer's txid.
    pub txid: String,
    /// The height its block was committed at.
    pub tx_height: u64,
    /// Blocks from submission to the block that holds it (inclusive of that block).
    pub blocks_to_commit: u64,
    /// Wall time from submission to every node showing Bob's balance.
    pub commit_wall: Duration,
    /// Per node: (name, height, state root at the common height, Alice's balance, Bob's balance).
    pub nodes: Vec<(String, u64, String, u64, u64)>,
    /// The common height the state roots were compared at.
    pub compared_at: u64,
    /// Wall time of the whole demo.
    pub wall: Duration,
}

impl DemoReport {
    /// The last line of `scripts/testnet --exit`.
    pub fn ok_line(&self) -> String {
        format!(
            "demo ok: {} nodes agree at height {}, transfer {} committed at height {} ({} blocks, {:.2}s), demo {:.1}s",
            self.nodes.len(),
            self.compared_at,
            &self.txid[..16.min(self.txid.len())],
            self.tx_height,
            self.blocks_to_commit,
            self.commit_wall.as_secs_f64(),
            self.wall.as_secs_f64()
        )
    }
}

/// Runs `sidechain-cli <args> --json` and parses its output.
pub fn cli_json(cli: &Path, args: &[&str]) -> Result<serde_json::Value> {
    let out =
        Command::new(cli).args(args).arg("--json").output().with_context(|| format!("running {}", cli.display()))?;
    if !out.status.success() {
        bail!("sidechain-cli {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!("sidechain-cli {} printed no JSON: {}", args.join(" "), String::from_utf8_lossy(&out.stdout))
    })
}

fn sats(v: &serde_json::Value, what: &str) -> Result<u64> {
    v["balance_sat"].as_u64().with_context(|| format!("{what}: no balance_sat in {v}"))
}

/// Prints a step the way the demo shows progress.
pub fn step(start: Instant, msg: impl AsRef<str>) {
    println!("[{:6.1}s] {}", start.elapsed().as_secs_f64(), msg.as_ref());
}

/// Brings the federation up and runs the user's path. The federation is returned so the caller can keep
/// it running (interactive mode) or drop it (which stops every process).
pub async fn run(opts: &DemoOptions, workdir: &Path) -> Result<(Federation, DemoReport)> {
    let start = Instant::now();
    for (what, p) in [("sidechaind", &opts.sidechaind), ("sidechain-cli", &opts.cli)] {
        if !p.is_file() {
            bail!("{what} not found at {} (build with `cargo build --workspace`)", p.display());
        }
    }
    let alice_wallet = workdir.join("alice.key");
    let bob_wallet = workdir.join("bob.key");
    let w = |p: &Path| p.display().to_string();
    let alice = cli_json(&opts.cli, &["--wallet", &w(&alice_wallet), "createwallet"])?;
    let bob = cli_json(&opts.cli, &["--wallet", &w(&bob_wallet), "createwallet"])?;
    let alice_id = alice["account"].as_str().context("createwallet printed no account")?.to_string();
    let bob_id = bob["account"].as_str().context("createwallet printed no account")?.to_string();
    step(start, format!("wallets: alice {alice_id}, bob {bob_id}"));

    let fed = Federation::start(FederationConfig {
        validators: opts.validators,
        full_nodes: 1,
        initial_accounts: vec![(alice_id.clone(), opts.alice_sats)],
        binary: Some(opts.sidechaind.clone()),
        ..Default::default()
    })
    .context("starting the federation")?;
    step(start, format!("federation: {} validators + 1 full node in {}", opts.validators, fed.path().display()));
    let all: Vec<usize> = (0..fed.nodes.len()).collect();
    fed.wait_height(&all, 2, Duration::from_secs(120)).await.context("waiting for the first blocks")?;
    step(start, format!("blocks are being committed (height {})", fed.nodes[0].height().await?));

    // Alice pays Bob through validator 1's RPC with the CLI.
    let node = &fed.nodes[1.min(fed.nodes.len() - 1)];
    let rpc = ["--rpc-url", &node.rpc_url(), "--rpc-cookie", &w(&node.datadir.join(".cookie"))].map(String::from);
    let with = |extra: &[&str]| -> Vec<String> {
        rpc.iter().cloned().chain(extra.iter().map(|s| s.to_string())).collect::<Vec<String>>()
    };
    let args = with(&["--wallet", &w(&alice_wallet), "send", &bob_id, &format!("{}sat", opts.transfer_sats)]);
    let h0 = fed.nodes[0].height().await?;
    let sent_at = Instant::now();
    let sent = cli_json(&opts.cli, &args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let txid = sent["txid"].as_str().context("send printed no txid")?.to_string();
    let fee = sent["fee_sat"].as_u64().context("send printed no fee")?;
    step(start, format!("alice sent {} sat to bob (fee {fee} sat): txid {txid}", opts.transfer_sats));

    // Every node, the full node included, shows Bob's balance.
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in &fed.nodes {
        loop {
            let client = n.client()?;
            let id: primitives::AccountId = serde_json::from_value(serde_json::json!(bob_id))?;
            if client.get_account(id).await.map(|a| a.balance.to_sat()).unwrap_or(0) == opts.transfer_sats {
                break;
            }
            if Instant::now() > deadline {
                bail!("{} does not show bob's {} sat after 60 s", n.name, opts.transfer_sats);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let commit_wall = sent_at.elapsed();
    let tx = cli_json(&opts.cli, &with(&["gettransaction", &txid]).iter().map(String::as_str).collect::<Vec<_>>())?;
    let tx_height = tx["height"].as_u64().context("gettransaction shows no height")?;
    step(start, format!("committed at height {tx_height}; every node shows bob's balance ({commit_wall:.2?})"));

    // Balances read back with the CLI, and state roots compared at one height.
    let compared_at = {
        let mut m = u64::MAX;
        for n in &fed.nodes {
            m = m.min(n.height().await?);
        }
        m
    };
    let mut nodes = Vec::new();
    for n in &fed.nodes {
        let rpc = ["--rpc-url".to_string(), n.rpc_url(), "--rpc-cookie".into(), w(&n.datadir.join(".cookie"))];
        let get = |wallet: &Path| -> Result<u64> {
            let mut a: Vec<String> = rpc.to_vec();
            a.extend(["--wallet".into(), w(wallet), "getbalance".into()]);
            sats(&cli_json(&opts.cli, &a.iter().map(String::as_str).collect::<Vec<_>>())?, &n.name)
        };
        let block = n.client()?.get_block(rpc::api::BlockRef::Height(primitives::Height(compared_at)), Some(1)).await;
        let root = match block {
            Ok(rpc::types::GetBlockResult::Json(b)) => b.state_root.to_string(),
            other => bail!("{}: getblock {compared_at}: {other:?}", n.name),
        };
        nodes.push((n.name.clone(), n.height().await?, root, get(&alice_wallet)?, get(&bob_wallet)?));
    }
    let first = &nodes[0];
    for n in &nodes[1..] {
        if n.2 != first.2 || n.3 != first.3 || n.4 != first.4 {
            bail!("{} disagrees with {}: {n:?} vs {first:?}", n.0, first.0);
        }
    }
    if first.3 != opts.alice_sats - opts.transfer_sats - fee || first.4 != opts.transfer_sats {
        bail!(
            "balances are wrong: alice {} bob {} (expected {} and {})",
            first.3,
            first.4,
            opts.alice_sats - opts.transfer_sats - fee,
            opts.transfer_sats
        );
    }
    let report = DemoReport {
        txid,
        tx_height,
        blocks_to_commit: tx_height.saturating_sub(h0),
        commit_wall,
        nodes,
        compared_at,
        wall: start.elapsed(),
    };
    Ok((fed, report))
}

/// The summary table.
pub fn print_summary(r: &DemoReport) {
    println!();
    println!("{:<12} {:>8}  {:<18} {:>14} {:>14}", "node", "height", "state root @ h", "alice (sat)", "bob (sat)");
    for (name, h, root, a, b) in &r.nodes {
        println!("{name:<12} {h:>8}  {:<18} {a:>14} {b:>14}", &root[..16.min(root.len())]);
    }
    println!("state roots compared at height {}; transfer {} in block {}", r.compared_at, r.txid, r.tx_height);
    println!(
        "peg-in and peg-out are not in this demo yet (issues 7 and 8): alice's coins are a test genesis allocation"
    );
}
