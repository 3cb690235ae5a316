//! The peg cursor: how the peg items of one BTC block span several sidechain blocks.
//!
//! Why it exists: a block that moves the anchor to `b` must carry every settlement and mint of the BTC
//! blocks it covers ([`crate::plan_peg_txs`]). One BTC block can pay the federation more outputs than one
//! sidechain block holds (`Params::block_max_txs`, `Params::block_max_bytes`): ten thousand dust outputs to
//! one's own deposit address cost little, and each is recorded (below the minimum) so each is required.
//! Then no move fits in a block and the anchor freezes for good. So the items of the BTC block right above
//! the anchor (height `anchor + 1`) may go in *early*, in blocks that do not move the anchor yet; each one
//! applied is recorded, so the move's plan shrinks (execution refuses them again: already minted, not in
//! flight) until it fits.
//!
//! An early item names a block execution cannot check (only validators, with their bitcoind, can). The
//! cursor pins which one: the first early item of a height records its block, and from then on
//!
//! - every early item must name that same block (two branches never both get early items),
//! - the anchor either stays or moves to exactly that block (a move to another block at that height, or
//!   past it, is invalid: it would skip the check that the early items' block is the anchored one),
//! - it is cleared when the anchor reaches it, and when the peg halts (a reorg of the cursor's block is a
//!   reorg deeper than N: validators report it as a reorg of the anchored chain) or resumes.

use crate::btc_anchor::BtcAnchor;
use crate::error::TxError;
use crate::overlay::Overlay;
use crate::state::{StateError, StateKey, StateReader};
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::canonical_bytes;
use serde::{Deserialize, Serialize};

/// The BTC block right above the anchor whose items went in early (stored as an option: `None` once
/// cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PegCursor {
    /// The block every early item named.
    pub btc_block: BtcAnchor,
}

/// Reads the cursor (`None` when never written or cleared).
pub fn peg_cursor<S: StateReader>(state: &S) -> Result<Option<PegCursor>, StateError> {
    let Some(raw) = state.get_raw(&StateKey::PegCursor)? else { return Ok(None) };
    borsh::from_slice::<Option<PegCursor>>(&raw)
        .map_err(|e| StateError::Corrupt { key: StateKey::PegCursor, reason: e.to_string() })
}

/// Whether an item naming `btc_block` in a block whose anchor is `anchor` is an early one.
pub fn is_early(btc_block: &BtcAnchor, anchor: &BtcAnchor) -> bool {
    btc_block.height.get() == anchor.height.get().saturating_add(1)
}

/// The header rule: with `cursor` set, a block's anchor (`anchor`) stays below the cursor's height or is
/// exactly the cursor's block. `Err` carries the cursor.
pub fn check_anchor(cursor: Option<&PegCursor>, anchor: &BtcAnchor) -> Result<(), BtcAnchor> {
    match cursor {
        Some(c) if anchor.height >= c.btc_block.height && *anchor != c.btc_block => Err(c.btc_block),
        _ => Ok(()),
    }
}

impl<S: StateReader> Overlay<'_, S> {
    /// Checks an early item naming `btc_block` (see [`is_early`]) against the cursor, writing nothing:
    /// refused when the peg is halted or the cursor names another block.
    pub(crate) fn check_early(&self, btc_block: &BtcAnchor) -> Result<(), TxError> {
        if crate::halt::peg_halt(self)?.is_halted() {
            return Err(TxError::PegHalted);
        }
        match peg_cursor(self)? {
            Some(c) if c.btc_block != *btc_block => {
                Err(TxError::EarlyItemOffCursor { btc_block: *btc_block, cursor: c.btc_block })
            }
            _ => Ok(()),
        }
    }

    /// Records that an early item of `btc_block` applied.
    pub(crate) fn set_peg_cursor(&mut self, btc_block: BtcAnchor) {
        self.writes.insert(StateKey::PegCursor, canonical_bytes(&Some(PegCursor { btc_block })));
    }

    /// Clears the cursor if one is set.
    pub(crate) fn clear_peg_cursor(&mut self) -> Result<(), StateError> {
        if peg_cursor(self)?.is_some() {
            self.writes.insert(StateKey::PegCursor, canonical_bytes(&None::<PegCursor>));
        }
        Ok(())
    }
}
