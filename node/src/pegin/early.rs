//! Early peg items on the node: what fits in a block, the proposer's early items when no move of the
//! anchor fits, and a validator's check of early items against its own bitcoind.
//!
//! Why: one BTC block can pay the federation more outputs than one sidechain block holds, and then no
//! move of the anchor to it fits (the anchor would freeze: a cheap attack with dust to one's own deposit
//! address). The ledger lets the items of the BTC block right above the anchor go in early, pinned to one
//! block by the peg cursor (`ledger::peg_cursor`); here the proposer carries them and validators check
//! them.
//!
//! Early items are **optional** in a block that keeps the anchor, never required:
//! - a block keeping the anchor must never need Bitcoin (from round 1 on, and for a validator whose
//!   bitcoind lags, transfers go on without it); requiring early items would make a lagging validator vote
//!   nil on every block;
//! - liveness comes from the proposer rule instead: an honest round-0 proposer that cannot fit the move
//!   carries as many early items as fit (at least one whenever its own transactions leave room), so after
//!   at most `ceil(items / room)` honest round-0 blocks the move fits; with f of n proposers Byzantine,
//!   within about `n / (n - f)` times that many heights.
//!
//! A validator accepts an early item only if its bitcoind shows the item's block at least N deep on top
//! of the block's anchor (the same test as a move of the anchor there) and its index holds the output
//! (or, for a settlement, the batch version's txid) in that block.

use super::{block_facts, first_unconfirmed, PegObjection};
use crate::btc_follow::{from_peg, to_peg, BtcSnapshot};
use ledger::{BtcAnchor, Chain, MintTx, PegPlan, Room, SettleTx, StateReader};
use primitives::Height;

/// The proposer's early items for a block at `height` on `state` (anchor `prev`) that keeps the anchor
/// because no move to `wanted` (the N-deep block it would move to) fits: the first items of the BTC block
/// at `prev + 1` that fit in `room`, by [`ledger::plan_early_peg_txs`] from our index (which stops planning
/// past `room`). `None` when there is nothing early to carry (our index cannot tell, the block is not
/// N-deep, nothing left, no room).
#[allow(clippy::too_many_arguments)]
pub fn early_plan<S: StateReader>(
    chain: &Chain,
    state: &S,
    snap: &BtcSnapshot,
    registry_version: u64,
    prev: &BtcAnchor,
    wanted: &BtcAnchor,
    height: Height,
    room: Room,
) -> Option<PegPlan> {
    let next_height = prev.height.get().checked_add(1)?;
    if wanted.height.get() < next_height {
        return None;
    }
    let next = from_peg((next_height, *snap.hashes.get(&next_height)?));
    let facts = match block_facts(snap, registry_version, prev, &next) {
        Ok(f) => f,
        Err(why) => {
            tracing::debug!(btc_height = next_height, reason = %why, "no early peg items");
            return None;
        }
    };
    let next_facts = facts.into_iter().find(|f| f.block == next)?;
    let plan = match ledger::plan_early_peg_txs(chain, state, height, &next_facts, room) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "cannot plan early peg items");
            return None;
        }
    };
    tracing::debug!(btc_height = next_height, carried = plan.len(), more = plan.more, "early peg items");
    (!plan.is_empty()).then_some(plan)
}

/// Whether our index holds `s`'s batch version in the block it names.
pub fn settle_is_confirmed(snap: &BtcSnapshot, s: &SettleTx) -> bool {
    snap.deposits.get(&s.btc_block.height.get()).is_some_and(|b| {
        from_peg((s.btc_block.height.get(), b.hash)).hash == s.btc_block.hash && b.txids.contains(&s.txid)
    })
}

/// A validator's check of a block's early items (those of the BTC block right above its anchor `anchor`):
/// each names a block our bitcoind shows at least N deep on top of `anchor`, and our index holds it there.
pub fn check_early_items(
    chain: &Chain,
    snap: &BtcSnapshot,
    anchor: &BtcAnchor,
    mints: &[&MintTx],
    settles: &[&SettleTx],
) -> Result<(), PegObjection> {
    let p = chain.params();
    let blocks = mints.iter().map(|m| m.btc_block).chain(settles.iter().map(|s| s.btc_block));
    for b in blocks {
        peg::check_anchor_move(snap, to_peg(anchor), to_peg(&b), p.pegin_confirmations, p.max_anchor_step)
            .map_err(|reason| PegObjection::EarlyNotDeep { btc_height: b.height.get(), reason })?;
    }
    if let Some(bad) = first_unconfirmed(snap, mints) {
        return Err(super::facts::unconfirmed(bad));
    }
    if let Some(bad) = settles.iter().find(|s| !settle_is_confirmed(snap, s)) {
        return Err(PegObjection::UnknownSettle { batch: bad.batch, btc_height: bad.btc_block.height.get() });
    }
    Ok(())
}
