//! The signing switch of `sidechain-cli`, for operators: `pausesigning` stops this validator's peg
//! signature shares (kept across restarts) and `resumesigning` lets them go again; both print the signing
//! status that `getblockchaininfo` shows too.

use super::{rpc_err, Cli};
use anyhow::Result;
use rpc::types::SigningInfo;
use rpc::SidechainApiClient;

/// One line per fact: paused or not, and what the share-time check refuses.
pub fn human(s: &SigningInfo) -> String {
    let mut out = match s.paused_since_ms {
        Some(ms) => format!("PAUSED by the operator since {ms} ms (no signature share leaves this node)"),
        None => "active".to_string(),
    };
    if s.refusals > 0 {
        out.push_str(&format!(", {} batch version(s) refused since start", s.refusals));
    }
    for r in &s.refused {
        out.push_str(&format!("\n            REFUSING batch {} ({}): {}", r.batch, r.btc_txid, r.reason));
    }
    out
}

/// `pausesigning` (`pause`) or `resumesigning`.
pub async fn set_paused(cli: &Cli, pause: bool) -> Result<()> {
    let client = cli.client()?;
    let s = if pause { client.pause_signing().await } else { client.resume_signing().await }.map_err(rpc_err)?;
    cli.print(&s, || format!("signing     {}", human(&s)))
}
