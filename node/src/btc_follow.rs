//! A validator's view of its own bitcoind, for the anchor rule, without ever blocking consensus.
//!
//! Why a follower task and a snapshot: the anchor checks run inside the consensus event loop (proposing,
//! and judging a proposal before prevoting). A bitcoind call there could take seconds (bitcoind busy,
//! down, or on another host), stalling every round. Instead a background task polls bitcoind (blocking
//! RPC on a blocking thread, each call bounded by the client's timeout) and publishes a [`BtcSnapshot`]:
//! the best height and the hashes of the heights the anchor rule can ask about (the current anchor up to
//! `max_anchor_step` above it). The event loop reads the latest snapshot; a stale or failed poll shows as
//! "bitcoind unavailable", so the validator votes nil on anchor moves and says why, and never crashes.

use crate::bitcoin::BitcoindClient;
use bitcoin::BlockHash;
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

/// Polls `client` every `interval`; `anchor` says which heights matter (the current anchor's height).
pub fn follow(
    client: Arc<BitcoindClient>,
    anchor: watch::Receiver<u32>,
    max_step: u32,
    interval: Duration,
) -> watch::Receiver<BtcSnapshot> {
    let (tx, rx) = watch::channel(BtcSnapshot::default());
    tokio::spawn(async move {
        let mut was_up = None;
        loop {
            let from = *anchor.borrow();
            let c = client.clone();
            let polled = tokio::task::spawn_blocking(move || poll(&c, from, max_step)).await;
            let snap = match polled {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    if was_up != Some(false) {
                        warn!(url = client.url(), error = %e, "bitcoind unavailable: voting nil on anchor moves");
                    }
                    BtcSnapshot::default()
                }
                Err(e) => {
                    debug!(error = %e, "bitcoind poll task failed");
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
            tokio::time::sleep(interval).await;
        }
    });
    rx
}

fn poll(client: &BitcoindClient, from: u32, max_step: u32) -> Result<BtcSnapshot, crate::bitcoin::BitcoinError> {
    let best = client.best_height()?;
    let mut hashes = BTreeMap::new();
    let to = best.min(from.saturating_add(max_step));
    let mut h = from;
    while h <= to {
        hashes.insert(h, client.block_hash(h)?);
        h += 1;
    }
    // The best height itself can be far above the window; the rule only needs its number.
    Ok(BtcSnapshot { best: Some(best), hashes })
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
