//! A validator's view of its own bitcoind, for the anchor rule, without ever blocking consensus.
//!
//! Why a follower task and a snapshot: the anchor checks run inside the consensus event loop (proposing,
//! and judging a proposal before prevoting). A bitcoind call there could take seconds (bitcoind busy,
//! down, or on another host), stalling every round. Instead a background task polls bitcoind (blocking
//! RPC on a blocking thread, each call bounded by the client's timeout) and publishes a [`BtcSnapshot`]:
//! the best height and the hashes of the heights the anchor rule can ask about (the current anchor up to
//! `max_anchor_step` above it). The event loop reads the latest snapshot; a stale or failed poll shows as
//! "bitcoind unavailable", so the validator votes nil on anchor moves and says why, and never crashes.

use crate::bitcoin::{BitcoindClient, DepositIndex, IndexedBlock};
use crate::pegin::{PegClaim, Registry};
use bitcoin::BlockHash;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

/// What the validator's bitcoind showed at its last successful poll.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BtcSnapshot {
    /// Its best height; `None` while bitcoind does not answer.
    pub best: Option<u32>,
    /// Hashes in its best chain at the heights the anchor rule needs.
    pub hashes: BTreeMap<u32, BlockHash>,
    /// Scanned blocks above the anchor (contiguous from anchor + 1, at most `max_anchor_step` of them), with
    /// the deposits to registered scripts each holds.
    pub deposits: BTreeMap<u32, IndexedBlock>,
    /// The [`Registry::version`] the scans were made with.
    pub registry_version: u64,
    /// Claimed deposits (`claimpegin`) this bitcoind confirmed: in its best chain at or below its tip.
    pub claims: Vec<peg::Deposit>,
    /// Claims this bitcoind contradicts, with the reason: pending ones, and the last
    /// [`RECENT_REJECTIONS`] that are no longer pending (the node drops a rejected claim at once; RPC still
    /// says why, and gossip cannot bring the same claim back while it is listed).
    pub rejected_claims: Vec<(PegClaim, ClaimRejection)>,
    /// Bitcoin's fee rate as this bitcoind sees it (see `BitcoindClient::fee_rate_sat_vb`), in sat/vB.
    pub fee_rate_sat_vb: Option<u64>,
    /// Where this bitcoind's best chain holds the signed peg-out batch versions it was asked about
    /// ([`FollowConfig::batch_versions`]), by txid: what late settlements (`ledger::plan_late_settles`) are
    /// checked against.
    pub batch_confirmations: BTreeMap<bitcoin::Txid, ledger::BtcAnchor>,
}

impl peg::BitcoinView for BtcSnapshot {
    fn best_height(&self) -> Option<u32> {
        self.best
    }

    fn hash_at(&self, height: u32) -> Option<BlockHash> {
        self.best?;
        self.hashes.get(&height).copied()
    }
}

/// Rejected claims remembered after they left the pending list.
pub const RECENT_REJECTIONS: usize = 256;

/// What the follower needs besides the client.
pub struct FollowConfig {
    /// The tip's anchor height: which heights matter.
    pub anchor: watch::Receiver<u32>,
    /// Registered deposit scripts (from the chain).
    pub registry: watch::Receiver<Arc<Registry>>,
    /// Pending peg-in claims to verify.
    pub claims: watch::Receiver<Vec<PegClaim>>,
    /// Signed versions of the batches in flight, (txid, number of outputs): where each confirmed is looked up.
    pub batch_versions: watch::Receiver<Vec<(bitcoin::Txid, u32)>>,
    /// `Params::max_anchor_step`.
    pub max_step: u32,
    /// The chain (federation wallet, deposit scripts).
    pub chain: ledger::Chain,
    /// Time between polls.
    pub interval: Duration,
}

/// Polls `client` every `cfg.interval` (or at once when the anchor or the registry changes) and publishes
/// a snapshot: best height, the hashes the anchor rule needs, and the deposit index above the anchor.
///
/// Bounded work before each publish, so registrations and claims (which anyone can send) cannot keep the
/// snapshot stale and make the validator vote nil on anchor moves for lack of facts: a registry change
/// rescans the window in place (no bitcoind call, see [`DepositIndex::rescan_from`]); the snapshot is
/// published as soon as the chain is read, with the claim verdicts known so far; only then are claims
/// checked, at most [`NEW_CLAIMS_PER_POLL`] new ones within [`CLAIMS_TIME_BUDGET`], and the snapshot
/// published again with their verdicts.
pub fn follow(client: Arc<BitcoindClient>, cfg: FollowConfig) -> watch::Receiver<BtcSnapshot> {
    let (tx, rx) = watch::channel(BtcSnapshot::default());
    let FollowConfig { mut anchor, mut registry, mut claims, mut batch_versions, max_step, chain, interval } = cfg;
    let publish = move |snap: BtcSnapshot| {
        tx.send_if_modified(|old| {
            let changed = *old != snap;
            *old = snap;
            changed
        });
        !tx.is_closed()
    };
    tokio::spawn(async move {
        let mut was_up = None;
        let start = *anchor.borrow() + 1;
        let mut index = Some(DepositIndex::new(start));
        let mut indexed_version = 0;
        let mut claim_state = ClaimState::default();
        let mut located = BatchLocator::default();
        loop {
            let from = *anchor.borrow();
            let reg = registry.borrow().clone();
            let versions = batch_versions.borrow().clone();
            let mut loc = std::mem::take(&mut located);
            let c = client.clone();
            let Some(mut idx) = index.take() else { return };
            let rescan = reg.version != indexed_version;
            indexed_version = reg.version;
            let polled = tokio::task::spawn_blocking(move || {
                if rescan {
                    // New scripts: blocks above the anchor were scanned without them. In place, no fetch.
                    let rescanned = idx.rescan_from(from + 1, &*reg);
                    debug!(rescanned, version = reg.version, "registrations changed: rescanned above the anchor");
                }
                // Where the signed versions of batches in flight confirmed (few: batches in flight are
                // bounded), for late settlements.
                let r = poll(&c, &mut idx, &reg, from, max_step).and_then(|mut snap| {
                    locate_batches(&c, &versions, &mut loc)?;
                    snap.batch_confirmations = loc.located.clone();
                    Ok(snap)
                });
                (idx, reg, loc, r)
            })
            .await;
            let (snap, reg) = match polled {
                Ok((idx, reg, loc, Ok(s))) => {
                    index = Some(idx);
                    located = loc;
                    (claim_state.add_to(s), Some(reg))
                }
                Ok((idx, _, loc, Err(e))) => {
                    index = Some(idx);
                    located = loc;
                    if was_up != Some(false) {
                        warn!(url = client.url(), error = %e, "bitcoind unavailable: voting nil on anchor moves");
                    }
                    (BtcSnapshot::default(), None)
                }
                Err(e) => {
                    // The blocking task panicked (it should not): start the index afresh.
                    warn!(error = %e, "bitcoind poll task failed; rebuilding the deposit index");
                    index = Some(DepositIndex::new(from + 1));
                    (BtcSnapshot::default(), None)
                }
            };
            let up = snap.best.is_some();
            if up && was_up == Some(false) {
                info!(url = client.url(), best = ?snap.best, "bitcoind reachable again");
            }
            was_up = Some(up);
            // The chain facts go out first; claims (slow, and anyone can send many) come after.
            if !publish(snap.clone()) {
                return;
            }
            if let Some(reg) = reg {
                let pending = claims.borrow().clone();
                let (c, ch) = (client.clone(), chain.clone());
                let mut st = std::mem::take(&mut claim_state);
                let best = snap.best.and_then(|b| snap.hashes.get(&b).map(|h| (b, *h)));
                let checked = tokio::task::spawn_blocking(move || {
                    let r = st.check(&c, &ch, &reg, &pending, best);
                    (st, r)
                })
                .await;
                match checked {
                    Ok((st, r)) => {
                        claim_state = st;
                        match r {
                            Ok(()) => {
                                let mut snap = snap;
                                snap.claims.clear();
                                snap.rejected_claims.clear();
                                if !publish(claim_state.add_to(snap)) {
                                    return;
                                }
                            }
                            // Retried at the next poll; the chain facts published above stand.
                            Err(e) => debug!(error = %e, "cannot check peg-in claims now"),
                        }
                    }
                    Err(e) => warn!(error = %e, "claim check task failed"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = anchor.changed() => {}
                _ = registry.changed() => {}
                _ = claims.changed() => {}
                _ = batch_versions.changed() => {}
            }
        }
    });
    rx
}

fn poll(
    client: &BitcoindClient,
    index: &mut DepositIndex,
    registry: &Registry,
    from: u32,
    max_step: u32,
) -> Result<BtcSnapshot, crate::bitcoin::BitcoinError> {
    let best = client.best_height()?;
    let mut hashes = BTreeMap::new();
    let to = best.min(from.saturating_add(max_step));
    let mut h = from;
    while h <= to {
        hashes.insert(h, client.block_hash(h)?);
        h += 1;
    }
    // Blocks at or below the anchor are settled: only claims look there, and they fetch blocks themselves.
    index.prune_below(from + 1);
    loop {
        let report = index.sync(client, registry, to)?;
        if report.scanned == 0 || report.tip.is_some_and(|(t, _)| t >= to) {
            break;
        }
    }
    // Only blocks that are where bitcoind's best chain (read above) has them: a reorg between the two reads
    // shows as a gap, and a gap means "cannot tell yet", never a shorter list.
    let mut deposits = BTreeMap::new();
    for h in from + 1..=to {
        match (index.get(h), hashes.get(&h)) {
            (Some(b), Some(hash)) if b.hash == *hash => {
                deposits.insert(h, b.clone());
            }
            _ => break,
        }
    }
    // The best height itself can be far above the window; the rule only needs its number.
    Ok(BtcSnapshot {
        best: Some(best),
        hashes,
        deposits,
        registry_version: registry.version,
        claims: Vec::new(),
        rejected_claims: Vec::new(),
        batch_confirmations: BTreeMap::new(),
        // A bitcoind that cannot estimate fees still serves the anchor: no vote, not an outage.
        fee_rate_sat_vb: client.fee_rate_sat_vb().unwrap_or_else(|e| {
            debug!(error = %e, "no fee estimate from bitcoind");
            None
        }),
    })
}

/// Batch versions looked for per poll, at most (each costs up to two `gettxout`s and a whole block).
const NEW_PER_POLL: usize = 16;

/// Where signed batch versions confirmed, between polls.
#[derive(Default)]
struct BatchLocator {
    /// Versions found, and where.
    located: BTreeMap<bitcoin::Txid, ledger::BtcAnchor>,
    /// Versions looked for and not found, with bitcoind's best height then: looked for again only once the
    /// best height changed (nothing new can have confirmed before), and after every version never looked
    /// for, so versions that never confirm cannot keep later ones from ever being looked at.
    missed: BTreeMap<bitcoin::Txid, u32>,
}

/// Which of `versions` (txid, outputs) to look for at best height `best`, at most `max`: those neither
/// located nor missed, in order, then those missed at another best height, the longest-missed first.
fn to_look_for(
    versions: &[(bitcoin::Txid, u32)],
    located: &BTreeMap<bitcoin::Txid, ledger::BtcAnchor>,
    missed: &BTreeMap<bitcoin::Txid, u32>,
    best: u32,
    max: usize,
) -> Vec<(bitcoin::Txid, u32)> {
    let unlocated = || versions.iter().filter(|(t, _)| !located.contains_key(t));
    let mut out: Vec<_> = unlocated().filter(|(t, _)| !missed.contains_key(t)).take(max).copied().collect();
    let mut again: Vec<(u32, usize, (bitcoin::Txid, u32))> = unlocated()
        .enumerate()
        .filter_map(|(i, v)| missed.get(&v.0).filter(|at| **at != best).map(|at| (*at, i, *v)))
        .collect();
    again.sort_by_key(|(at, i, _)| (*at, *i));
    out.extend(again.into_iter().map(|(_, _, v)| v).take(max.saturating_sub(out.len())));
    out
}

/// Finds where our bitcoind's best chain holds each batch version of `versions` (txid, outputs) and
/// re-checks those found (a reorg moves or removes them); forgets versions no longer asked about. A version
/// is found through an unspent output: its last (the change, which stays unspent until the federation
/// settles the batch) or its first; `gettxout` gives its depth, and the block at that height must list the
/// txid. A version all of whose looked-at outputs are spent is not found (its batch then waits, in flight,
/// as before). At most [`NEW_PER_POLL`] are looked for per poll, in turn (see [`to_look_for`]). A transport
/// failure is returned (retried next poll).
fn locate_batches(
    client: &BitcoindClient,
    versions: &[(bitcoin::Txid, u32)],
    loc: &mut BatchLocator,
) -> Result<(), crate::bitcoin::BitcoinError> {
    use crate::bitcoin::BitcoinError;
    let BatchLocator { located, missed } = loc;
    located.retain(|t, _| versions.iter().any(|(v, _)| v == t));
    missed.retain(|t, _| versions.iter().any(|(v, _)| v == t));
    let mut stale = Vec::new();
    for (txid, at) in located.iter() {
        match client.block_hash(at.height.get()) {
            Ok(h) if from_peg((at.height.get(), h)) == *at => {}
            Ok(_) | Err(BitcoinError::NoBlockAtHeight { .. }) => stale.push(*txid),
            Err(e) => return Err(e),
        }
    }
    for t in stale {
        located.remove(&t);
    }
    let best = client.best_height()?;
    for (txid, outputs) in to_look_for(versions, located, missed, best, NEW_PER_POLL) {
        let btc_txid = txid;
        let mut vouts = vec![outputs.saturating_sub(1)];
        if outputs > 1 {
            vouts.push(0);
        }
        for vout in vouts {
            let args = [serde_json::json!(btc_txid.to_string()), serde_json::json!(vout), serde_json::json!(false)];
            let answer = client.call("gettxout", &args)?;
            let Some(confirmations) = answer["confirmations"].as_u64().and_then(|c| u32::try_from(c).ok()) else {
                continue;
            };
            let best = client.best_height()?;
            let Some(height) = (best + 1).checked_sub(confirmations) else { continue };
            let hash = match client.block_hash(height) {
                Ok(h) => h,
                Err(BitcoinError::NoBlockAtHeight { .. }) => continue,
                Err(e) => return Err(e),
            };
            if client.block(&hash)?.txdata.iter().any(|t| t.compute_txid() == btc_txid) {
                located.insert(txid, from_peg((height, hash)));
                break;
            }
        }
        // Only once fully looked at: after a transport failure it is looked for again next poll.
        if located.contains_key(&txid) {
            missed.remove(&txid);
        } else {
            missed.insert(txid, best);
        }
    }
    Ok(())
}

/// What our bitcoind says about one claim.
#[derive(Clone, Debug)]
enum ClaimCheck {
    /// The deposit is as claimed, in a best-chain block.
    Confirmed(peg::Deposit),
    /// Our bitcoind contradicts it, for this reason.
    Rejected(ClaimRejection),
}

/// Why our bitcoind contradicts a claim (a verdict on the claim, shown by `getpegstatus`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
pub enum ClaimRejection {
    /// The claimed block is not known to our bitcoind.
    #[error("BTC block {0} is unknown to our bitcoind")]
    UnknownBlock(BlockHash),
    /// The claimed block is known but not in our bitcoind's best chain.
    #[error("BTC block {0} is not in our bitcoind's best chain")]
    NotInBestChain(BlockHash),
    /// The claimed block does not hold the deposit's transaction.
    #[error("BTC block {block} has no transaction {txid}")]
    NoSuchTx {
        /// The claimed block.
        block: BlockHash,
        /// The deposit's transaction.
        txid: bitcoin::Txid,
    },
    /// The transaction has fewer outputs.
    #[error("transaction {txid} has no output {vout}")]
    NoSuchOutput {
        /// The deposit's transaction.
        txid: bitcoin::Txid,
        /// The claimed output.
        vout: u32,
    },
    /// The output pays no deposit address of the recipient.
    #[error("output {txid}:{vout} does not pay the deposit address of {recipient} (in any federation epoch)")]
    NotTheRecipientsAddress {
        /// The deposit's transaction.
        txid: bitcoin::Txid,
        /// The claimed output.
        vout: u32,
        /// The claimed recipient.
        recipient: primitives::AccountId,
    },
}

/// New claims checked per poll, at most (each costs a header and a whole block from bitcoind).
pub const NEW_CLAIMS_PER_POLL: usize = 8;

/// Time after which a poll's claim checks stop (the rest wait for the next poll), so the next poll of the
/// chain is never far behind a change of the anchor or the registrations.
pub const CLAIMS_TIME_BUDGET: Duration = Duration::from_secs(1);

/// What the follower knows about claims between polls.
#[derive(Default)]
struct ClaimState {
    /// Verdicts on pending claims.
    checked: HashMap<PegClaim, ClaimCheck>,
    /// Rejections no longer pending, the last [`RECENT_REJECTIONS`].
    recent: VecDeque<(PegClaim, ClaimRejection)>,
    /// bitcoind's best block when confirmed claims were last re-checked: unchanged, nothing can have left
    /// the best chain.
    rechecked_at: Option<(u32, BlockHash)>,
}

impl ClaimState {
    /// `snap` with the verdicts known (confirmed and rejected claims, sorted).
    fn add_to(&self, mut snap: BtcSnapshot) -> BtcSnapshot {
        for (claim, check) in &self.checked {
            match check {
                ClaimCheck::Confirmed(d) => snap.claims.push(d.clone()),
                ClaimCheck::Rejected(why) => snap.rejected_claims.push((claim.clone(), why.clone())),
            }
        }
        snap.rejected_claims.extend(self.recent.iter().cloned());
        snap.claims.sort_by_key(|d| d.outpoint);
        snap.rejected_claims.sort_by(|a, b| (a.0.outpoint, &a.1).cmp(&(b.0.outpoint, &b.1)));
        snap
    }

    /// Checks up to [`NEW_CLAIMS_PER_POLL`] new claims (within [`CLAIMS_TIME_BUDGET`]), re-checks confirmed ones when bitcoind's best block
    /// (`best`) changed (one call per block height, however many claims it holds), and forgets claims no
    /// longer pending (a rejection is kept in `recent`). A transport failure is returned (retried next
    /// poll), never a verdict.
    fn check(
        &mut self,
        client: &BitcoindClient,
        chain: &ledger::Chain,
        registry: &Registry,
        pending: &[PegClaim],
        best: Option<(u32, BlockHash)>,
    ) -> Result<(), crate::bitcoin::BitcoinError> {
        let (checked, recent) = (&mut self.checked, &mut self.recent);
        let pending_set: std::collections::HashSet<&PegClaim> = pending.iter().collect();
        checked.retain(|c, check| {
            let keep = pending_set.contains(c);
            if let (false, ClaimCheck::Rejected(why)) = (keep, &*check) {
                recent.retain(|(r, _)| r != c);
                recent.push_back((c.clone(), why.clone()));
                if recent.len() > RECENT_REJECTIONS {
                    recent.pop_front();
                }
            }
            keep
        });
        // Asked again (our own RPC may resubmit): checked afresh, the old verdict is not the answer.
        recent.retain(|(r, _)| !pending_set.contains(r));
        // A reorg can take a confirmed claim's block out of the best chain: check again, once per height.
        if best.is_none() || best != self.rechecked_at {
            let mut at: BTreeMap<u32, Option<BlockHash>> = BTreeMap::new();
            for check in checked.values() {
                if let ClaimCheck::Confirmed(d) = check {
                    at.insert(d.btc_height, None);
                }
            }
            for (height, hash) in at.iter_mut() {
                *hash = match client.block_hash(*height) {
                    Ok(h) => Some(h),
                    Err(crate::bitcoin::BitcoinError::NoBlockAtHeight { .. }) => None,
                    Err(e) => return Err(e),
                };
            }
            checked.retain(|_, check| match check {
                ClaimCheck::Confirmed(d) => at.get(&d.btc_height).copied().flatten() == Some(d.btc_block_hash),
                ClaimCheck::Rejected(_) => true,
            });
            self.rechecked_at = best;
        }
        let new: Vec<&PegClaim> =
            pending.iter().filter(|c| !checked.contains_key(*c)).take(NEW_CLAIMS_PER_POLL).collect();
        let started = std::time::Instant::now();
        for claim in new {
            if started.elapsed() >= CLAIMS_TIME_BUDGET {
                break;
            }
            let verdict = match check_claim(client, chain, registry, claim)? {
                Ok(d) => ClaimCheck::Confirmed(d),
                Err(why) => {
                    info!(outpoint = %format!("{}:{}", claim.outpoint.txid, claim.outpoint.vout),
                        reason = %why, "peg-in claim rejected by our bitcoind");
                    ClaimCheck::Rejected(why)
                }
            };
            checked.insert(claim.clone(), verdict);
        }
        Ok(())
    }
}

/// One claim against our bitcoind: `Ok(Err(why))` is a verdict, `Err` a failure to ask.
fn check_claim(
    client: &BitcoindClient,
    chain: &ledger::Chain,
    registry: &Registry,
    claim: &PegClaim,
) -> Result<Result<peg::Deposit, ClaimRejection>, crate::bitcoin::BitcoinError> {
    let hash = claim.btc_block;
    let header = match client.call("getblockheader", &[serde_json::json!(hash.to_string()), serde_json::json!(true)]) {
        Ok(v) => v,
        Err(e) if e.rpc_code() == Some(btc_rpc::codes::INVALID_ADDRESS_OR_KEY) => {
            return Ok(Err(ClaimRejection::UnknownBlock(hash)))
        }
        Err(e) => return Err(e),
    };
    let (confirmations, height) = crate::bitcoin::answer::header_position(&header)?;
    if confirmations < 1 {
        return Ok(Err(ClaimRejection::NotInBestChain(hash)));
    }
    let block = client.block(&hash)?;
    let txid = claim.outpoint.txid;
    let Some((index, tx)) = block.txdata.iter().enumerate().find(|(_, t)| t.compute_txid() == txid) else {
        return Ok(Err(ClaimRejection::NoSuchTx { block: hash, txid }));
    };
    let Some(out) = tx.output.get(claim.outpoint.vout as usize) else {
        return Ok(Err(ClaimRejection::NoSuchOutput { txid, vout: claim.outpoint.vout }));
    };
    // A deposit to the recipient's address in any epoch's wallet, however old.
    let Some(epoch) = registry.claim_epoch(chain, &claim.recipient, &out.script_pubkey) else {
        return Ok(Err(ClaimRejection::NotTheRecipientsAddress {
            txid,
            vout: claim.outpoint.vout,
            recipient: claim.recipient,
        }));
    };
    Ok(Ok(peg::Deposit {
        outpoint: bitcoin::OutPoint { txid, vout: claim.outpoint.vout },
        amount: out.value,
        script_pubkey: out.script_pubkey.clone(),
        recipient: claim.recipient.0 .0,
        epoch,
        btc_block_hash: hash,
        btc_height: height,
        coinbase: index == 0,
    }))
}

/// Sends every transaction of `txs` to bitcoind at once when the list changes and again every `every`
/// until it leaves the list: a signed peg-out batch must reach the Bitcoin network even if this bitcoind
/// restarts or drops it from its mempool. Errors are logged, never fatal (an already-confirmed batch is
/// refused by bitcoind, which is fine).
pub fn rebroadcast(client: Arc<BitcoindClient>, mut txs: watch::Receiver<Vec<bitcoin::Transaction>>, every: Duration) {
    tokio::spawn(async move {
        let mut refused = std::collections::HashSet::new();
        loop {
            let list = txs.borrow_and_update().clone();
            for tx in list {
                let txid = tx.compute_txid();
                // Bitcoin's interpreter, against the prevouts our bitcoind shows, before anything goes out:
                // every share checked out against our records, which is exactly what could be wrong.
                let c = client.clone();
                let checked = tx.clone();
                match tokio::task::spawn_blocking(move || script_check(&c, &checked)).await {
                    Ok(Ok(Some(why))) => {
                        if refused.insert(txid) {
                            error!(%txid, reason = %why, "the federation signed a peg-out transaction that Bitcoin's \
                                interpreter refuses; not broadcasting it (a bug in the peg: report it)");
                        }
                        continue;
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => debug!(%txid, error = %e, "cannot read the batch's prevouts; sending anyway"),
                    Err(e) => debug!(error = %e, "script check task failed"),
                }
                let c = client.clone();
                let hex = bitcoin::consensus::encode::serialize_hex(&tx);
                let sent =
                    tokio::task::spawn_blocking(move || c.call("sendrawtransaction", &[serde_json::json!(hex)])).await;
                match sent {
                    Ok(Ok(_)) => info!(%txid, "peg-out batch sent to bitcoind"),
                    Ok(Err(e)) => {
                        debug!(%txid, error = %e, "bitcoind did not take the peg-out batch (may be known or confirmed)")
                    }
                    Err(e) => debug!(error = %e, "rebroadcast task failed"),
                }
            }
            tokio::select! {
                changed = txs.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

/// Checks `tx` with Bitcoin's interpreter against the outputs it spends as bitcoind shows them
/// (`gettxout`, mempool included). `Ok(None)`: valid, or some prevout is already spent (the batch or a
/// conflicting version confirmed: bitcoind refuses it anyway); `Ok(Some(why))`: Bitcoin would refuse it.
fn script_check(
    client: &BitcoindClient,
    tx: &bitcoin::Transaction,
) -> Result<Option<peg::ScriptCheckError>, crate::bitcoin::BitcoinError> {
    let mut prevouts = Vec::with_capacity(tx.input.len());
    for input in &tx.input {
        let o = input.previous_output;
        let answer = client.call("gettxout", &[serde_json::json!(o.txid.to_string()), serde_json::json!(o.vout)])?;
        match crate::bitcoin::txout_from_gettxout(&answer)? {
            Some(out) => prevouts.push(out),
            None => return Ok(None),
        }
    }
    Ok(peg::verify_spends(tx, &prevouts).err())
}

/// A ledger anchor as the peg crate's `(height, hash)`, and back.
pub fn to_peg(a: &ledger::BtcAnchor) -> (u32, BlockHash) {
    (a.height.get(), a.hash)
}

/// A `(height, hash)` as a ledger anchor.
pub fn from_peg((height, hash): (u32, BlockHash)) -> ledger::BtcAnchor {
    ledger::BtcAnchor { height: primitives::BtcHeight(height), hash }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash as _;

    fn version(i: u8) -> (bitcoin::Txid, u32) {
        (bitcoin::Txid::from_byte_array([i; 32]), 2)
    }

    /// One poll of the selection at `best`: what it looks for is then missed at `best`.
    fn poll_once(
        versions: &[(bitcoin::Txid, u32)],
        located: &BTreeMap<bitcoin::Txid, ledger::BtcAnchor>,
        missed: &mut BTreeMap<bitcoin::Txid, u32>,
        best: u32,
    ) -> Vec<u8> {
        let picked = to_look_for(versions, located, missed, best, NEW_PER_POLL);
        for (t, _) in &picked {
            missed.insert(*t, best);
        }
        picked.iter().map(|(t, _)| t.to_byte_array()[0]).collect()
    }

    /// Versions that never confirm do not keep later ones from being looked at: each is looked for once,
    /// then again only after bitcoind's best height moved, after every version never looked for.
    #[test]
    fn versions_never_found_rotate_instead_of_blocking_later_ones() {
        let mut versions: Vec<_> = (0..20).map(version).collect();
        let mut located = BTreeMap::new();
        located.insert(
            bitcoin::Txid::from_byte_array([3; 32]),
            ledger::BtcAnchor { height: primitives::BtcHeight(7), hash: bitcoin::BlockHash::from_byte_array([0; 32]) },
        );
        let mut missed = BTreeMap::new();
        let first: Vec<u8> = (0..17).filter(|i| *i != 3).collect();
        assert_eq!(poll_once(&versions, &located, &mut missed, 100), first);
        // Same best height: only the rest, never looked for; then nothing at all.
        assert_eq!(poll_once(&versions, &located, &mut missed, 100), vec![17, 18, 19]);
        assert!(poll_once(&versions, &located, &mut missed, 100).is_empty());
        // A new block: the missed ones again, in turn; a new version goes first.
        versions.push(version(20));
        let mut again = vec![20];
        again.extend((0..16).filter(|i| *i != 3));
        assert_eq!(poll_once(&versions, &located, &mut missed, 101), again);
        // Those missed at the older height come next, before the ones just looked at.
        assert_eq!(poll_once(&versions, &located, &mut missed, 101), vec![16, 17, 18, 19]);
        assert!(poll_once(&versions, &located, &mut missed, 101).is_empty());
    }
}
