//! The federation-change commands of `sidechain-cli`, for operators: `approvefederationchange` (this
//! validator signs a proposal with its consensus key, through its own node) and `submitfederationchange`
//! (a proposal with 2f+1 approvals goes to the chain). Proposals and approvals are JSON files, so operators
//! can pass them around and read them before signing.

use super::{rpc_err, Cli};
use anyhow::{Context, Result};
use rpc::SidechainApiClient;
use std::path::{Path, PathBuf};

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid {what}", path.display()))
}

/// `approvefederationchange <proposal.json>`: prints this node's approval as JSON.
pub async fn approve(cli: &Cli, proposal: &Path) -> Result<()> {
    let p: ledger::FederationProposal = read_json(proposal, "federation proposal")?;
    let approval = cli.client()?.approve_federation_change(p).await.map_err(rpc_err)?;
    println!("{}", serde_json::to_string_pretty(&approval)?);
    Ok(())
}

/// `submitfederationchange <proposal.json> <approval.json>...`: prints the change's txid.
pub async fn submit(cli: &Cli, proposal: &Path, approvals: &[PathBuf]) -> Result<()> {
    let p: ledger::FederationProposal = read_json(proposal, "federation proposal")?;
    let approvals = approvals.iter().map(|a| read_json(a, "approval")).collect::<Result<Vec<ledger::Approval>>>()?;
    let at = p.activation_height;
    let txid = cli
        .client()?
        .submit_federation_change(ledger::ReconfigureTx { proposal: p, approvals })
        .await
        .map_err(rpc_err)?;
    cli.print(&serde_json::json!({ "txid": txid, "activation_height": at }), || {
        format!("federation change {txid} submitted; the new set takes over at height {at}")
    })
}
