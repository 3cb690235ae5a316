//! The closing checks that hold the sidechain against its bitcoinds, for every scenario that has them.
//!
//! Why: the chain-only checks cannot see a frozen peg or a batch Bitcoin refuses. A peg whose anchor stops
//! following Bitcoin (finding 1 of the adversarial review: an output execution refuses was required, and no
//! honest proposer could move the anchor again) still gives one chain, valid certificates and covered
//! reserves; so does a federation that threshold-signs a batch every bitcoind rejects (finding 2: a coin
//! recorded with the wrong tweak). So at the end of every scenario:
//! - **the anchor follows bitcoind**: each node's BTC anchor is a block of its bitcoind's best chain, at
//!   most `N - 1 + slack` below its tip (`N` = the genesis `pegin_confirmations`: the anchored block has N
//!   confirmations), within a bounded wait;
//! - **every batch the federation broadcast was accepted**: each batch the chain settled is confirmed on
//!   every checked bitcoind, in the block the settlement names; each batch in flight with a fully signed
//!   version (the validators broadcast those) is confirmed by some version, or bitcoind's mempool holds that
//!   version or a later one (a bump replaces it). The batches in flight are read from `getreserveproof`,
//!   whose entries are proved against the tip's state root;
//! - **no honest node refuses to sign**: a batch with no fully signed version passes the check above, so
//!   one left unsigned because the share-time check refuses it on an honest node (`signing.refused`) fails
//!   here instead.
//!
//! A transient RPC failure (a node or bitcoind busy, a transaction index still catching up) is asked again
//! within the bound, never taken as the answer.
//!
//! A node's bitcoind is its own (validator `i` runs `fed.bitcoinds[i]`); a node without one (a full node,
//! or one whose bitcoind the scenario stopped) is held against the first running bitcoind.

use super::{rpc_err, ScenarioError};
use crate::bitcoind::{Bitcoind, BitcoindError};
use crate::federation::Federation;
use bitcoin::{BlockHash, Txid};
use ledger::batching::BatchRecord;
use ledger::{SettleTx, StateKey};
use rpc::client::SidechainApiClient;
use std::time::{Duration, Instant};

/// How often the bounded waits below poll.
const POLL: Duration = Duration::from_millis(200);

/// The bitcoind node `i` is held against: its own if it runs, else the first running one.
fn bitcoind_of(fed: &Federation, i: usize) -> Option<(usize, &Bitcoind)> {
    match fed.bitcoinds.get(i) {
        Some(b) if b.is_running() => Some((i, b)),
        _ => fed.bitcoinds.iter().enumerate().find(|(_, b)| b.is_running()),
    }
}

fn btc_err(index: usize) -> impl Fn(BitcoindError) -> ScenarioError {
    move |source| ScenarioError::Bitcoind { index, source }
}

/// Waits (up to `bound`) until every node in `nodes` has an anchor on its bitcoind's best chain at most
/// `confirmations - 1 + slack` blocks below that bitcoind's tip; on timeout, the last failure. Nothing to
/// check when the federation has no running bitcoind.
pub async fn check_anchor_follows(
    fed: &Federation,
    nodes: &[usize],
    confirmations: u64,
    slack: u64,
    bound: Duration,
) -> Result<(), ScenarioError> {
    let deadline = Instant::now() + bound;
    loop {
        let mut failure = None;
        for &i in nodes {
            if let Err(e) = anchor_follows(fed, i, confirmations, slack, bound).await {
                failure = Some(e);
                break;
            }
        }
        match failure {
            None => return Ok(()),
            Some(e) if Instant::now() >= deadline => return Err(e),
            Some(_) => tokio::time::sleep(POLL).await,
        }
    }
}

async fn anchor_follows(
    fed: &Federation,
    i: usize,
    confirmations: u64,
    slack: u64,
    bound: Duration,
) -> Result<(), ScenarioError> {
    let Some((b, btc)) = bitcoind_of(fed, i) else { return Ok(()) };
    let node = &fed.nodes[i];
    let anchor = node.client()?.get_blockchain_info().await.map_err(rpc_err(&node.name))?.btc_anchor;
    let height = u64::from(anchor.height.get());
    let best = btc.height().map_err(btc_err(b))?;
    let allowed = confirmations.saturating_sub(1) + slack;
    if height > best {
        return Err(ScenarioError::AnchorOffChain {
            node: node.name.clone(),
            height,
            anchor: anchor.hash,
            bitcoind: b,
            shown: None,
        });
    }
    let shown: BlockHash = btc.call("getblockhash", &[serde_json::json!(height)]).map_err(btc_err(b))?;
    if shown != anchor.hash {
        return Err(ScenarioError::AnchorOffChain {
            node: node.name.clone(),
            height,
            anchor: anchor.hash,
            bitcoind: b,
            shown: Some(shown),
        });
    }
    if best - height > allowed {
        return Err(ScenarioError::AnchorBehind {
            node: node.name.clone(),
            anchor: height,
            bitcoind: b,
            best,
            allowed,
            after: bound,
        });
    }
    Ok(())
}

/// Where one bitcoind has a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// Neither in its mempool nor in its best chain.
    Unknown,
    /// In its mempool.
    Mempool,
    /// In its best chain, in this block.
    Confirmed(BlockHash),
    /// Not known yet, but its transaction index is still catching up: ask again.
    Indexing,
}

/// `getrawtransaction` (bitcoind runs with `txindex`, so confirmed transactions are found too): -5 is
/// "not known" (matched by code, never by message).
fn seen(btc: &Bitcoind, index: usize, txid: &Txid) -> Result<Seen, ScenarioError> {
    let answer =
        btc.call::<serde_json::Value>("getrawtransaction", &[serde_json::json!(txid), serde_json::json!(true)]);
    match answer {
        Ok(v) if v["confirmations"].as_u64().unwrap_or(0) > 0 => {
            let hash =
                v["blockhash"].as_str().and_then(|h| h.parse().ok()).ok_or_else(|| ScenarioError::BadRecord {
                    node: format!("bitcoind{index}"),
                    reason: format!("{txid} confirmed without a block hash: {v}"),
                })?;
            Ok(Seen::Confirmed(hash))
        }
        Ok(_) => Ok(Seen::Mempool),
        Err(BitcoindError::Rpc { source, .. }) if source.rpc_code() == Some(btc_rpc::codes::INVALID_ADDRESS_OR_KEY) => {
            Ok(if txindex_synced(btc) { Seen::Unknown } else { Seen::Indexing })
        }
        Err(e) => Err(btc_err(index)(e)),
    }
}

/// Whether bitcoind's transaction index has caught up with its chain (`getindexinfo`; -5 from
/// `getrawtransaction` means "not known" only then). An index it does not report counts as synced.
fn txindex_synced(btc: &Bitcoind) -> bool {
    match btc.call::<serde_json::Value>("getindexinfo", &[serde_json::json!("txindex")]) {
        Ok(v) => v["txindex"]["synced"].as_bool().unwrap_or(true),
        // Cannot tell: not synced, so the caller asks again within its bound rather than concluding.
        Err(_) => false,
    }
}

/// The batches in flight at node `i`'s tip, from its reserve proof (every entry proved against the state
/// root, which `check_reserves` verifies), and the height of that tip.
async fn batches_in_flight(fed: &Federation, i: usize) -> Result<(u64, Vec<BatchRecord>), ScenarioError> {
    let node = &fed.nodes[i];
    let proof = node.client()?.get_reserve_proof().await.map_err(rpc_err(&node.name))?;
    let bad = |reason: String| ScenarioError::BadRecord { node: node.name.clone(), reason };
    let mut batches = Vec::new();
    for e in &proof.entries {
        let key_bytes = hex::decode(&e.key).map_err(|err| bad(format!("reserve proof key hex: {err}")))?;
        let key: StateKey = borsh::from_slice(&key_bytes).map_err(|err| bad(format!("reserve proof key: {err}")))?;
        let (StateKey::Batch(id), Some(value)) = (key, &e.value) else { continue };
        let bytes = hex::decode(value).map_err(|err| bad(format!("batch {id} hex: {err}")))?;
        batches.push(borsh::from_slice(&bytes).map_err(|err| bad(format!("batch {id}: {err}")))?);
    }
    Ok((proof.height.get(), batches))
}

/// Whether bitcoind `btc` accepted in-flight batch `b`: `Ok` when no version is fully signed yet (nothing
/// was broadcast), when some version is confirmed, or when its mempool holds the last signed version or a
/// later one.
fn in_flight_accepted(btc: &Bitcoind, index: usize, b: &BatchRecord) -> Result<(), ScenarioError> {
    let versions: Vec<_> = b.earlier.iter().cloned().chain(std::iter::once(b.current_version())).collect();
    let needed = b.signers_needed as usize;
    let Some(last_signed) = versions.iter().rposition(|v| v.shares.len() >= needed) else { return Ok(()) };
    let mut mempool = false;
    for (n, v) in versions.iter().enumerate() {
        match seen(btc, index, &v.txid)? {
            Seen::Confirmed(_) => return Ok(()),
            Seen::Indexing => return Err(ScenarioError::BtcIndexing { bitcoind: index }),
            Seen::Mempool if n >= last_signed => mempool = true,
            _ => {}
        }
    }
    if mempool {
        return Ok(());
    }
    Err(ScenarioError::BatchNotAccepted {
        batch: b.id,
        version: last_signed + 1,
        txid: versions[last_signed].txid,
        bitcoind: index,
    })
}

/// Whether bitcoind `btc` has the settled version `s` confirmed in the block the settlement names.
fn settled_confirmed(btc: &Bitcoind, index: usize, s: &SettleTx) -> Result<(), ScenarioError> {
    let named = s.btc_block.hash;
    let txid = s.txid;
    match seen(btc, index, &txid)? {
        Seen::Confirmed(hash) if hash == named => Ok(()),
        other => Err(ScenarioError::SettledNotConfirmed {
            batch: s.batch,
            txid,
            block: named,
            bitcoind: index,
            seen: match other {
                Seen::Confirmed(hash) => format!("confirmed in another block, {hash}"),
                Seen::Mempool => "only in its mempool".into(),
                Seen::Unknown => "unknown to it".into(),
                Seen::Indexing => "not found yet: its transaction index is still catching up".into(),
            },
        }),
    }
}

/// Waits (up to `bound`) until every checked bitcoind (those of `nodes`, or every running one if none of
/// them has one) accepted every batch: `settled` (the chain's settlements up to some height) confirmed as
/// settled, and every batch in flight at the reference node's tip per `in_flight_accepted`. Settlements
/// committed after the scanned height are read here from the reference node's blocks. Returns how many
/// batches were checked.
pub async fn check_batches_accepted(
    fed: &Federation,
    nodes: &[usize],
    mut settled: Vec<SettleTx>,
    scanned_to: u64,
    bound: Duration,
) -> Result<usize, ScenarioError> {
    let running: Vec<usize> = (0..fed.bitcoinds.len()).filter(|&b| fed.bitcoinds[b].is_running()).collect();
    let mut checked: Vec<usize> = running.iter().copied().filter(|b| nodes.contains(b)).collect();
    if checked.is_empty() {
        checked = running;
    }
    let Some(&reference) = nodes.first() else { return Ok(0) };
    if checked.is_empty() {
        return Ok(0);
    }
    let deadline = Instant::now() + bound;
    let mut scanned_to = scanned_to;
    loop {
        // Every step may fail transiently (a node or bitcoind busy): the failure is kept and the whole
        // check asked again until the bound, like a batch not accepted yet.
        let mut failure = None;
        let in_flight = match batches_in_flight(fed, reference).await {
            Ok((tip, in_flight)) => {
                if tip > scanned_to {
                    match super::settles_between(fed, reference, scanned_to + 1, tip).await {
                        Ok(more) => {
                            settled.extend(more);
                            scanned_to = tip;
                        }
                        Err(e) => failure = Some(e),
                    }
                }
                in_flight
            }
            Err(e) => {
                failure = Some(e);
                Vec::new()
            }
        };
        'all: for &b in checked.iter().filter(|_| failure.is_none()) {
            let btc = &fed.bitcoinds[b];
            for s in &settled {
                if let Err(e) = settled_confirmed(btc, b, s) {
                    failure = Some(e);
                    break 'all;
                }
            }
            for batch in &in_flight {
                if let Err(e) = in_flight_accepted(btc, b, batch) {
                    failure = Some(e);
                    break 'all;
                }
            }
        }
        if failure.is_none() {
            failure = no_refusals(fed, nodes).await.err();
        }
        match failure {
            None => return Ok(settled.len() + in_flight.len()),
            Some(e) if Instant::now() >= deadline => return Err(e),
            Some(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// `Err` when one of `nodes` (the honest ones) refuses to sign a batch version now
/// (`getblockchaininfo.signing.refused`): a batch with no fully signed version passes
/// [`in_flight_accepted`], so a refusal that keeps it unsigned must fail here.
async fn no_refusals(fed: &Federation, nodes: &[usize]) -> Result<(), ScenarioError> {
    for &i in nodes {
        let node = &fed.nodes[i];
        let info = node.client()?.get_blockchain_info().await.map_err(rpc_err(&node.name))?;
        if let Some(r) = info.signing.refused.first() {
            return Err(ScenarioError::SigningRefused {
                node: node.name.clone(),
                batch: r.batch,
                btc_txid: r.btc_txid.clone(),
                kind: r.kind.clone(),
                refused: info.signing.refused.len(),
            });
        }
    }
    Ok(())
}
