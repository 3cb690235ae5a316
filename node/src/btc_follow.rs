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
use crate::pegin::Registry;
use bitcoin::{BlockHash, ScriptBuf};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, info, warn};

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

/// What the follower needs besides the client.
pub struct FollowConfig {
    /// The tip's anchor height: which heights matter.
    pub anchor: watch::Receiver<u32>,
    /// Registered deposit scripts (from the chain).
    pub registry: watch::Receiver<Arc<Registry>>,
    /// `Params::max_anchor_step`.
    pub max_step: u32,
    /// The plain federation script (its outputs are held, not minted).
    pub federation_script: ScriptBuf,
    /// Time between polls.
    pub interval: Duration,
}

/// Polls `client` every `cfg.interval` (or at once when the anchor or the registry changes) and publishes
/// a snapshot: best height, the hashes the anchor rule needs, and the deposit index above the anchor.
pub fn follow(client: Arc<BitcoindClient>, cfg: FollowConfig) -> watch::Receiver<BtcSnapshot> {
    let (tx, rx) = watch::channel(BtcSnapshot::default());
    let FollowConfig { mut anchor, mut registry, max_step, federation_script, interval } = cfg;
    tokio::spawn(async move {
        let mut was_up = None;
        let start = *anchor.borrow() + 1;
        let mut index = Some(DepositIndex::new(start));
        let mut indexed_version = 0;
        loop {
            let from = *anchor.borrow();
            let reg = registry.borrow().clone();
            let c = client.clone();
            let Some(mut idx) = index.take() else { return };
            if reg.version != indexed_version {
                // New scripts: blocks above the anchor were scanned without them.
                let forgotten = idx.rescan_from(from + 1);
                debug!(forgotten, version = reg.version, "registrations changed: rescanning above the anchor");
                indexed_version = reg.version;
            }
            let script = federation_script.clone();
            let polled = tokio::task::spawn_blocking(move || {
                let r = poll(&c, &mut idx, &reg, &script, from, max_step);
                (idx, r)
            })
            .await;
            let snap = match polled {
                Ok((idx, Ok(s))) => {
                    index = Some(idx);
                    s
                }
                Ok((idx, Err(e))) => {
                    index = Some(idx);
                    if was_up != Some(false) {
                        warn!(url = client.url(), error = %e, "bitcoind unavailable: voting nil on anchor moves");
                    }
                    BtcSnapshot::default()
                }
                Err(e) => {
                    // The blocking task panicked (it should not): start the index afresh.
                    warn!(error = %e, "bitcoind poll task failed; rebuilding the deposit index");
                    index = Some(DepositIndex::new(from + 1));
                    BtcSnapshot::default()
                }
            };
            let up = snap.best.is_some();
            if up && was_up == Some(false) {
                info!(url = client.url(), best = ?snap.best, "bitcoind reachable again");
            }
            was_up = Some(up);
            tx.send_if_modified(|old| {
                let changed = *old != snap;
                *old = snap;
                changed
            });
            if tx.is_closed() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = anchor.changed() => {}
                _ = registry.changed() => {}
            }
        }
    });
    rx
}

fn poll(
    client: &BitcoindClient,
    index: &mut DepositIndex,
    registry: &Registry,
    federation_script: &ScriptBuf,
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
        let report = index.sync(client, registry, federation_script, to)?;
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
    Ok(BtcSnapshot { best: Some(best), hashes, deposits, registry_version: registry.version, claims: Vec::new() })
}

/// A txid in internal byte order as Bitcoin Core displays it.
pub fn display_txid(h: &primitives::Hash32) -> bitcoin::Txid {
    use bitcoin::hashes::Hash;
    bitcoin::Txid::from_byte_array(h.0)
}

/// A block hash in internal byte order as Bitcoin Core displays it.
pub fn display_block_hash(h: &primitives::Hash32) -> BlockHash {
    use bitcoin::hashes::Hash;
    BlockHash::from_byte_array(h.0)
}

/// A ledger anchor as the peg crate's `(height, hash)`, and back.
pub fn to_peg(a: &ledger::BtcAnchor) -> (u32, BlockHash) {
    use bitcoin::hashes::Hash;
    (a.height.get(), BlockHash::from_byte_array(a.hash.0))
}

/// A `(height, hash)` as a ledger anchor (hash in internal byte order, as in block headers).
pub fn from_peg((height, hash): (u32, BlockHash)) -> ledger::BtcAnchor {
    use bitcoin::hashes::Hash;
    ledger::BtcAnchor { height: primitives::BtcHeight(height), hash: primitives::Hash32(hash.to_byte_array()) }
}
