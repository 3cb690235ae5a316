//! `sidechain-testnet`: what `scripts/testnet` runs. Brings up a local federation (validators, each with
//! its own regtest bitcoind, and a full node, as real processes on loopback), runs the demo (a peg-in, then
//! a transfer), prints a summary, then keeps the federation running until Ctrl-C (or, with `--exit`, stops
//! it and prints `demo ok: ...`).

use anyhow::{Context, Result};
use clap::Parser;
use std::path::PathBuf;
use testnet::demo::{self, DemoOptions};

/// The local federation and its demo.
#[derive(Parser, Debug)]
#[command(name = "sidechain-testnet", version, about)]
struct Args {
    /// Stop after the demo: exit 0 with a last line `demo ok: ...`, or non-zero naming the failed step.
    #[arg(long)]
    exit: bool,
    /// Number of validators (3f+1: 4, 7, 10, ...).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// The `wsh` wallet of chains before taproot custody, instead of taproot custody (where the validators
    /// run `sidechaind ceremony`, the FROST key generation, and sign by key path).
    #[arg(long)]
    wsh: bool,
    /// The sidechaind binary (default: next to this one).
    #[arg(long, env = "SIDECHAIND")]
    sidechaind: Option<PathBuf>,
    /// The sidechain-cli binary (default: next to this one).
    #[arg(long, env = "SIDECHAIN_CLI")]
    cli: Option<PathBuf>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("demo failed: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    anyhow::ensure!(
        args.validators >= 4 && (args.validators - 1).is_multiple_of(3),
        "--validators {} is not 3f+1 with f >= 1 (4, 7, 10, ...)",
        args.validators
    );
    let mut opts = DemoOptions { validators: args.validators, taproot: !args.wsh, ..Default::default() };
    let here = std::env::current_exe().context("locating this binary")?;
    let dir = here.parent().context("this binary has no directory")?;
    opts.sidechaind = args.sidechaind.unwrap_or_else(|| dir.join("sidechaind"));
    opts.cli = args.cli.unwrap_or_else(|| dir.join("sidechain-cli"));
    let work = tempfile::Builder::new().prefix("sidechain-testnet-").tempdir().context("temp dir")?;
    let (mut fed, report) = demo::run(&opts, work.path()).await?;
    demo::print_summary(&report);
    if args.exit {
        println!("{}", report.ok_line());
        return Ok(());
    }
    let logs = fed.keep();
    let wallets = work.keep();
    println!();
    println!("The federation keeps running. Ctrl-C stops every process.");
    for n in &fed.nodes {
        println!(
            "  {:<11} rpc {}  metrics http://{}/metrics  log {}",
            n.name,
            n.rpc_url(),
            n.metrics_addr,
            n.datadir.join("sidechaind.log").display()
        );
    }
    println!("Dashboards (open in a browser on this machine; read-only, no credentials):");
    for n in &fed.nodes {
        println!("  {:<11} {}", n.name, n.dashboard_url());
    }
    let n = &fed.nodes[0];
    println!("Try:");
    println!(
        "  {} --rpc-url {} --rpc-cookie {} --wallet {} getbalance",
        opts.cli.display(),
        n.rpc_url(),
        n.datadir.join(".cookie").display(),
        wallets.join("alice.key").display()
    );
    println!(
        "  {} --rpc-url {} --rpc-cookie {} pegstatus {}",
        opts.cli.display(),
        n.rpc_url(),
        n.datadir.join(".cookie").display(),
        report.pegin.outpoint
    );
    for (i, b) in fed.bitcoinds.iter().enumerate() {
        let (url, user, password) = b.rpc_credentials();
        println!(
            "  bitcoind{i}   rpc {url} (regtest; user {user}, password {password})  datadir {}",
            b.datadir().display()
        );
    }
    println!("Logs and datadirs: {} (kept after exit)", logs.display());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    println!("stopping...");
    drop(fed);
    println!("stopped");
    Ok(())
}
