//! `sidechaind`: the daemon that validators and full nodes run. It drives the consensus core from an event
//! loop, executes blocks, owns storage, mempool and p2p, and (validators only) talks to its own bitcoind.

use clap::Parser;

/// A full node (and, with a validator key, a validator) of the federated two-way-peg sidechain.
#[derive(Parser, Debug)]
#[command(name = "sidechaind", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    tracing::info!("sidechaind: nothing to run yet");
    Ok(())
}
