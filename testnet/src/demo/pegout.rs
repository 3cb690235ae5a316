//! The demo's peg-out: Bob, who holds sidechain coins from Alice's transfer, burns some to a BTC address
//! with `sidechain-cli pegout`, follows `pegoutstatus` from `burned` through the batch, its signatures and
//! its broadcast, and the demo (the regtest miner) mines the batch and its N confirmations until the burn
//! is `final`. Bitcoind's own UTXO set then shows Bob's address holding exactly the amount.
//!
//! Why through the CLI: as for the peg-in, this is what a user types, and its `--json` output is parsed.

use super::{mine, sat, step, NodeCli};
use crate::federation::Federation;
use anyhow::{bail, ensure, Context, Result};
use bitcoin::{Address, Amount};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a burn may take to be batched, signed and broadcast.
const BROADCAST_BOUND: Duration = Duration::from_secs(120);
/// How long a mined batch may take to show confirmed, and then final.
const FINAL_BOUND: Duration = Duration::from_secs(90);

/// What the peg-out looked like.
#[derive(Clone, Debug)]
pub struct PegOutReport {
    /// The sidechain burn transaction.
    pub burn_txid: String,
    /// Where the BTC went.
    pub btc_address: String,
    /// What it paid.
    pub amount: Amount,
    /// The burn's sidechain fee.
    pub fee: Amount,
    /// Sidechain height of the burn.
    pub burned_at: u64,
    /// Sidechain height when the batch had its threshold of signatures (broadcast).
    pub broadcast_at: u64,
    /// The Bitcoin transaction of the batch.
    pub btc_txid: String,
    /// Its Bitcoin fee (paid by the fee pool).
    pub btc_fee: Amount,
    /// The BTC block it confirmed in.
    pub btc_height: u64,
    /// Stages `pegoutstatus` showed, in order.
    pub stages: Vec<String>,
    /// What Bob's BTC address holds on Bitcoin afterwards (bitcoind's UTXO set).
    pub received: Amount,
}

impl PegOutReport {
    /// Sidechain blocks from the burn to the broadcast.
    pub fn blocks_to_broadcast(&self) -> u64 {
        self.broadcast_at.saturating_sub(self.burned_at)
    }
}

/// Bob pegs out `amount` to `address`; the demo mines until the burn is final.
pub async fn run(
    fed: &Federation,
    user: &NodeCli<'_>,
    wallet: &Path,
    address: &Address,
    amount: Amount,
    start: Instant,
) -> Result<PegOutReport> {
    let amt = format!("{}sat", amount.to_sat());
    let p = user
        .json(&["--wallet", &wallet.display().to_string(), "pegout", &address.to_string(), &amt])
        .await
        .context("sidechain-cli pegout")?;
    let burn_txid = p["burn_txid"].as_str().context("pegout printed no burn_txid")?.to_string();
    let fee = sat(&p["fee_sat"], "fee_sat in pegout")?;
    step(start, format!("bob: pegout {amt} to {address} (fee {} sat): burn txid {burn_txid}", fee.to_sat()));
    let mut follow = Follower { user, txid: burn_txid.clone(), start, last: String::new(), stages: Vec::new() };
    let s = follow.until(BROADCAST_BOUND, |s| Ok(s["stage"] == "broadcast")).await?;
    let burned_at = s["burned_at"].as_u64().context("pegoutstatus shows no burned_at")?;
    let broadcast_at =
        user.json(&["getblockchaininfo"]).await?["height"].as_u64().context("no height in getblockchaininfo")?;
    let btc_txid = s["batch"]["btc_txid"].as_str().context("no batch.btc_txid")?.to_string();
    let btc_fee = sat(&s["batch"]["fee_sat"], "batch.fee_sat in pegoutstatus")?;

    // The miner: wait until bitcoind 0 has the batch in its mempool, then one block, then N.
    let miner = fed.bitcoinds.first().context("the federation has no bitcoind")?;
    let deadline = Instant::now() + BROADCAST_BOUND;
    while !miner.call::<Vec<String>>("getrawmempool", &[])?.contains(&btc_txid) {
        if Instant::now() >= deadline {
            bail!("batch {btc_txid} never reached bitcoind0's mempool");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let btc_height = mine(fed, 1)?;
    step(start, format!("miner: mined the batch {btc_txid} in BTC block {btc_height}"));
    follow.until(FINAL_BOUND, |s| Ok(s["stage"] == "confirmed")).await?;
    let n = user.json(&["getfederationinfo"]).await?["pegin_confirmations"]
        .as_u64()
        .context("no pegin_confirmations in getfederationinfo")?;
    let tip = mine(fed, n)?;
    step(start, format!("miner: mined {n} more blocks (BTC height {tip})"));
    let done = follow.until(FINAL_BOUND, |s| Ok(s["stage"] == "final")).await?;
    ensure!(
        done["paid_in"]["btc_height"].as_u64() == Some(btc_height),
        "paid in another block than the batch's: {done}"
    );
    let desc = format!("addr({address})");
    let scan: Value = miner.call("scantxoutset", &[serde_json::json!("start"), serde_json::json!([desc])])?;
    let received = Amount::from_btc(scan["total_amount"].as_f64().unwrap_or(0.0)).context("scantxoutset amount")?;
    ensure!(received == amount, "bob's BTC address holds {received}, expected exactly {amount}");
    step(
        start,
        format!("bob's BTC address {address} holds {} BTC on Bitcoin (bitcoind's UTXO set)", received.to_btc()),
    );
    Ok(PegOutReport {
        burn_txid,
        btc_address: address.to_string(),
        amount,
        fee,
        burned_at,
        broadcast_at,
        btc_txid,
        btc_fee,
        btc_height,
        stages: follow.stages,
        received,
    })
}

/// Follows one burn with `sidechain-cli pegoutstatus`, printing each new stage.
struct Follower<'a, 'b> {
    user: &'a NodeCli<'b>,
    txid: String,
    start: Instant,
    last: String,
    stages: Vec<String>,
}

impl Follower<'_, '_> {
    async fn poll(&mut self) -> Result<Value> {
        let s = match self.user.json(&["pegoutstatus", &self.txid]).await {
            Ok(s) => s,
            // Accepted by the node, not in a block yet.
            Err(e) if format!("{e:#}").contains("no committed burn") => serde_json::json!({ "stage": "mempool" }),
            Err(e) => return Err(e),
        };
        let stage = s["stage"].as_str().unwrap_or("?");
        let line = match stage {
            "signed" | "broadcast" | "bumped" => format!(
                "{stage}: batch {} signatures {}, btc txid {}",
                s["batch"]["id"],
                s["batch"]["signatures"].as_str().unwrap_or("?"),
                s["batch"]["btc_txid"].as_str().unwrap_or("?")
            ),
            "batched" => format!("batched in batch {}", s["batch"]["id"]),
            "confirmed" => format!("confirmed in BTC block {}", s["confirmed_btc_height"]),
            "final" => format!("final: paid in BTC block {}", s["paid_in"]["btc_height"]),
            "mempool" => "in the mempool (not in a block yet)".to_string(),
            other => other.to_string(),
        };
        if line != self.last {
            step(self.start, format!("pegoutstatus {}: {line}", super::short(&self.txid)));
            self.stages.push(line.clone());
            self.last = line;
        }
        Ok(s)
    }

    /// Polls (bounded) until `done`; returns that status. Stages only move forward, so "at or past" is
    /// checked by the caller's predicate on the stage it waits for.
    async fn until(&mut self, bound: Duration, done: impl Fn(&Value) -> Result<bool>) -> Result<Value> {
        let deadline = Instant::now() + bound;
        let order = ["burned", "batched", "signed", "broadcast", "bumped", "confirmed", "final"];
        let rank = |s: &Value| order.iter().position(|o| s["stage"] == *o);
        loop {
            let s = self.poll().await?;
            if done(&s)? {
                return Ok(s);
            }
            // A later stage than the one awaited also satisfies the wait (polling may skip stages).
            let target = order.iter().position(|o| done(&serde_json::json!({ "stage": o })).unwrap_or(false));
            if let (Some(now), Some(want)) = (rank(&s), target) {
                if now > want {
                    return Ok(s);
                }
            }
            if Instant::now() >= deadline {
                bail!("burn {}: still {} after {bound:?}", self.txid, self.last);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
