//! Peg-in on the node: which deposits a block must mint, and a validator's check that a proposal mints
//! exactly those (plus verified claims) before it prevotes. Outputs to the plain federation address (bound to
//! nobody) are minted to the fee pool, so every BTC the federation receives counts in reserves.
//!
//! Why here: execution (ledger) decides *how* a mint changes state and that it happens once; whether the
//! BTC facts a mint asserts are true needs a bitcoind, so it is external validity, checked by validators
//! only (DESIGN.md, "Two kinds of checks"). The facts come from the follower's [`BtcSnapshot`]: a deposit
//! index built by scanning every BTC block above the anchor for outputs to registered deposit scripts.
//!
//! The rule that stops a proposer from censoring a deposit: a block that moves the anchor from `a` to `b`
//! must carry a `Settle` for every batch confirmed in BTC blocks `(a, b]` and a `Mint` for every output there
//! to a live registration's deposit script or to the plain federation script, *among those execution
//! accepts*. One pure function of the ledger, [`ledger::plan_peg_txs`], decides that list by applying each
//! candidate with the code that executes blocks; proposer and validators both call it, each with the facts
//! of its own bitcoind (this module turns a [`BtcSnapshot`] into those facts), so nothing a user can pay to
//! (a peg-out to their own deposit address, a zero-value output, a coinbase) makes "required" and
//! "accepted" differ and freezes the anchor. A validator whose index disagrees or is not ready votes nil on
//! the move, and from round 1 on the proposer keeps the anchor, so transfers never wait on Bitcoin.
//!
//! One BTC block can pay the federation more outputs than one block holds; then no move to it fits, and
//! its items go in early, in blocks that keep the anchor (module `early`: the proposer's share of them, and a
//! validator's check). After `ResumePeg`, batches confirmed at or below the anchor are settled late
//! ([`late_settles`]), from where this node's bitcoind shows their versions.
//!
//! The index's scans depend on which scripts were registered when it scanned. [`Registry::version`] counts
//! changes to the watched scripts; a snapshot built with an older version may miss a deposit to a newer
//! script, so it is not used to move the anchor (the follower rescans as soon as it sees the new version).
//!
//! Federation changes: the scripts watched are those of every epoch whose deposits a block must mint at
//! that height (the one in force, and earlier ones within `Params::deposit_window` of their replacement);
//! every mint names the epoch whose wallet it pays. Claims may name a deposit to any epoch's address.

use crate::btc_follow::{from_peg, BtcSnapshot};
use ledger::{Block, BtcAnchor, BtcOutPoint, Chain, MintTx, PegPlan, StateReader, Tx};
use primitives::Height;
use std::collections::HashMap;

/// Whether signing a batch version spending `inputs` is safe given the versions already signed: every
/// earlier version's inputs must be among the new one's, so all versions conflict on Bitcoin and at most one
/// of them can ever confirm (no burn paid twice). Re-signing the same version is fine.
pub fn safe_to_sign(signed: &[crate::storage::SignedVersion], txid: &bitcoin::Txid, inputs: &[BtcOutPoint]) -> bool {
    signed.iter().all(|v| v.txid == *txid || v.inputs.iter().all(|o| inputs.contains(o)))
}

/// A validator's external check of the peg transactions in `block` (built on `state`, whose anchor is
/// `prev`): it carries every settlement and mint the move requires (by [`ledger::plan_peg_txs`], so never
/// one execution refuses, planned as far as a whole block holds: a move requiring more fits no block and is
/// refused as such), settles only what that requires, and mints only what our bitcoind shows; early
/// items (of the BTC block right above the block's anchor, optional) are checked by
/// `early::check_early_items`. `Ok` when the block neither moves the anchor nor carries peg transactions
/// (no bitcoind needed).
pub fn check_block_peg<S: StateReader>(
    chain: &Chain,
    state: &S,
    snap: Option<&BtcSnapshot>,
    registry_version: u64,
    prev: &BtcAnchor,
    block: &Block,
) -> Result<(), PegObjection> {
    let new = &block.header.btc_anchor;
    let early = |b: &BtcAnchor| ledger::peg_cursor::is_early(b, new);
    let (mut mints, mut early_mints) = (Vec::new(), Vec::new());
    let (mut settles, mut early_settles) = (Vec::new(), Vec::new());
    for t in &block.txs {
        match t {
            Tx::Mint(m) if early(&m.btc_block) => early_mints.push(m),
            Tx::Mint(m) => mints.push(m),
            Tx::Settle(s) if early(&s.btc_block) => early_settles.push(s),
            Tx::Settle(s) => settles.push(s),
            _ => {}
        }
    }
    let peg_items = mints.len() + early_mints.len() + settles.len() + early_settles.len();
    if peg_items == 0 && new == prev {
        return Ok(());
    }
    let Some(snap) = snap else { return Err(PegObjection::NoBitcoind) };
    early::check_early_items(chain, snap, new, &early_mints, &early_settles)?;
    let resuming = ledger::peg_halt(state).map_err(CannotTell::from)?.resume_to.is_some();
    // The agreed resume anchor: 2f+1 chose it; what it covers is claimed, not required here.
    let required = if resuming {
        PegPlan::default()
    } else {
        peg_plan(chain, state, snap, registry_version, prev, new, block.header.height, false, Room::block(chain))?
    };
    if required.more {
        return Err(PegObjection::MoveTooLarge { btc_height: new.height.get(), at_least: required.len() + 1 });
    }
    if let Some(missing) = required.settles.iter().find(|s| !settles.contains(s)) {
        return Err(PegObjection::MissingSettle { batch: missing.batch, btc_height: missing.btc_block.height.get() });
    }
    // Settlements not required are late ones (batches confirmed at or below the anchor, e.g. after a
    // resume): accepted when our bitcoind shows that version in that block.
    let late = |s: &&&ledger::SettleTx| snap.batch_confirmations.get(&s.txid) == Some(&s.btc_block);
    if let Some(extra) = settles.iter().find(|s| !required.settles.contains(s) && !late(s)) {
        return Err(PegObjection::UnknownSettle { batch: extra.batch, btc_height: extra.btc_block.height.get() });
    }
    let carried: HashMap<&BtcOutPoint, &MintTx> = mints.iter().map(|m| (&m.outpoint, *m)).collect();
    if let Some(missing) = required.mints.iter().find(|m| carried.get(&m.outpoint) != Some(m)) {
        return Err(PegObjection::MissingMint {
            outpoint: btc_outpoint(&missing.outpoint),
            amount: missing.amount,
            recipient: missing.recipient,
            btc_height: missing.btc_block.height.get(),
        });
    }
    if let Some(bad) = first_unconfirmed(snap, &mints) {
        return Err(unconfirmed(bad));
    }
    Ok(())
}

/// The highest anchor at or below `wanted` (and above `prev`) whose peg transactions, and those of every
/// anchor below it, this snapshot can list and fit in `room` (count and bytes), with its plan (settlements and mints, no claims: those ride only on
/// blocks that keep the anchor); `None` when no move is possible. While early items pin a block above the
/// anchor (the peg cursor), the only move is to that very block, and only if our bitcoind shows it there.
#[allow(clippy::too_many_arguments)]
pub fn anchor_with_plan<S: StateReader>(
    chain: &Chain,
    state: &S,
    snap: &BtcSnapshot,
    registry_version: u64,
    prev: &BtcAnchor,
    wanted: &BtcAnchor,
    height: Height,
    room: Room,
) -> Option<(BtcAnchor, PegPlan)> {
    let cursor = match ledger::peg_cursor(state) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the peg cursor: not moving the anchor");
            return None;
        }
    };
    let candidate_at = |h: u32| {
        if h == wanted.height.get() {
            Some(*wanted)
        } else {
            snap.hashes.get(&h).map(|hash| from_peg((h, *hash)))
        }
    };
    let plan_at = |candidate: &BtcAnchor| {
        // No claims in a block that moves the anchor: a validator that has not verified a claim yet would
        // vote nil on the move with it, and whoever feeds claims to proposers only would stall the peg.
        match peg_plan(chain, state, snap, registry_version, prev, candidate, height, false, room) {
            Ok(plan) if room.fits(&plan) => Some(plan),
            Ok(plan) => {
                tracing::debug!(
                    btc_height = candidate.height.get(),
                    required = plan.len(),
                    more = plan.more,
                    bytes = plan.encoded_len(),
                    room_txs = room.txs,
                    room_bytes = room.bytes,
                    "not moving the anchor this far: its peg transactions do not fit one block"
                );
                None
            }
            Err(why) => {
                tracing::debug!(btc_height = candidate.height.get(), reason = %why, "not moving the anchor this far");
                None
            }
        }
    };
    if let Some(c) = cursor {
        let h = c.btc_block.height.get().min(wanted.height.get());
        let candidate = candidate_at(h)?;
        if h <= prev.height.get() || c.btc_block != candidate {
            tracing::debug!(btc_height = h, "not moving the anchor: early peg items named another block here");
            return None;
        }
        return plan_at(&candidate).map(|plan| (candidate, plan));
    }
    // Upward, stopping at the first height whose plan does not fit or cannot be told (a move's items only
    // grow with its height): a BTC block flooded with outputs is planned once, not once per lower candidate.
    let mut best = None;
    for h in prev.height.get() + 1..=wanted.height.get() {
        let Some(candidate) = candidate_at(h) else { break };
        match plan_at(&candidate) {
            Some(plan) => best = Some((candidate, plan)),
            None => break,
        }
    }
    best
}

/// The late settlements (`ledger::plan_late_settles`) a block at `height` with anchor `anchor` can add to
/// `plan` from what our bitcoind shows (batches it does not settle already), as many as fit in `room` next
/// to it.
pub fn late_settles<S: StateReader>(
    state: &S,
    snap: &BtcSnapshot,
    height: Height,
    anchor: &BtcAnchor,
    plan: &PegPlan,
    room: Room,
) -> Vec<ledger::SettleTx> {
    if snap.batch_confirmations.is_empty() {
        return Vec::new();
    }
    let mut late = ledger::plan_late_settles(state, height, *anchor, &snap.batch_confirmations).unwrap_or_else(|e| {
        tracing::debug!(error = %e, "cannot plan late settlements");
        Vec::new()
    });
    late.retain(|s| !plan.settles.iter().any(|p| p.batch == s.batch));
    let (mut txs, mut bytes) = (plan.len(), plan.encoded_len());
    late.retain(|s| {
        txs += 1;
        bytes += Tx::Settle(s.clone()).encoded_len();
        txs <= room.txs && bytes <= room.bytes
    });
    late
}

mod early;
mod facts;
pub use crate::registry::{
    deposit_descriptor, epoch_wallets, registrations_in, PegClaim, Registry, CLAIM_TTL_BLOCKS, MAX_PENDING_CLAIMS,
};
pub use early::early_plan;
pub use facts::{
    block_facts, covered_claims, first_unconfirmed, mint_for, mint_for_plain, mint_is_confirmed, peg_plan, CannotTell,
    PegObjection,
};
use facts::{btc_outpoint, unconfirmed};
pub use ledger::Room;

#[cfg(test)]
mod tests;
