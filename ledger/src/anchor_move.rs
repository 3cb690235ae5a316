//! What a block must carry on the peg, decided by execution itself.
//!
//! Why here, as one pure function: a block that moves the BTC anchor must carry every settlement and every
//! mint the BTC blocks it covers call for, or a proposer could censor deposits. If the list of what is
//! *required* were computed apart from what execution *accepts*, one hostile user could make them differ
//! (a peg-out to their own deposit address, a zero-value output, a coinbase, a claim for the fee pool) and
//! from then on no honest proposer could build an anchor-advancing block: the peg would freeze for good.
//! [`plan_peg_txs`] removes that gap by construction: it applies each candidate with the very code that
//! executes blocks, on an overlay of the previous state, in the order the proposer puts them in the block
//! (settlements, then mints in BTC block order, then claims), and keeps exactly those that apply. A
//! candidate execution refuses is, for the same reason, never required: it is not a deposit the
//! federation can mint (zero value, the federation's own change, already recorded). Proposers and
//! validators both call it, each with the facts of its own bitcoind, so "must be included" and "is
//! accepted" can never drift apart.
//!
//! Two companions use the same candidate loop: [`plan_early_peg_txs`] (the items of the BTC block right
//! above the anchor that may go in before the move, when the move does not fit one block; see
//! [`mod@crate::peg_cursor`]) and [`plan_late_settles`] (settlements of batches confirmed at or below the
//! anchor, which a resume skips over).
//!
//! The facts (which outputs pay a watched federation script, which txids a BTC block holds) come from the
//! node's bitcoind; only validators check them (external validity). Everything else is decided here.
//!
//! Planning is bounded by a [`Room`]: nothing past what one block holds can ever be carried, and a move
//! whose items do not fit one block is never valid, so planning stops at the first accepted item past the
//! room and marks the plan [`PegPlan::more`]. A BTC block flooded with outputs (a 4 MB block holds about
//! 90,000 dust outputs to one's own deposit address) then costs one block's worth of applied items per
//! plan, not one per output. The plan within a room is exactly the prefix of the whole plan that fits it
//! (items are judged in block order, each after those before it), so proposers (the room their block leaves)
//! and validators (a whole block's room, [`Room::block`]) still use one judge: a plan that stopped never
//! fits, which is also what the whole plan would have said.

use crate::btc_anchor::BtcAnchor;
use crate::error::TxError;
use crate::execute::txs_encoded_len;
use crate::genesis::Chain;
use crate::overlay::Overlay;
use crate::state::{ChainMeta, StateError, StateReader};
use crate::tx::{MintKind, MintTx, SettleTx, Tx};
use primitives::Height;

/// One BTC block above the anchor as a bitcoind shows it: what it pays the federation and what it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BtcBlockFacts {
    /// The block (height and hash).
    pub block: BtcAnchor,
    /// Its outputs paying a watched federation script, in block order, as the mints they would be:
    /// [`MintKind::Deposit`] for a registered deposit script (bound to its recipient),
    /// [`MintKind::Federation`] for a plain federation script (credited to the fee pool).
    pub outputs: Vec<MintTx>,
    /// The txids of its transactions (a peg-out batch version among them confirms that batch).
    pub txids: Vec<bitcoin::Txid>,
}

/// The peg transactions a block carries, in the order it carries them, with what was left out and why.
#[derive(Clone, Debug, Default)]
pub struct PegPlan {
    /// Settlements of batches confirmed in the covered BTC blocks: required.
    pub settles: Vec<SettleTx>,
    /// Mints of outputs in the covered BTC blocks: required.
    pub mints: Vec<MintTx>,
    /// Claims (verified by this node, optional for a block) that execution accepts after the above.
    pub claims: Vec<MintTx>,
    /// Candidates execution refuses (never required, never proposed), with the reason; only those met
    /// before planning stopped (see `more`).
    pub refused: Vec<(MintTx, TxError)>,
    /// Whether planning stopped at its [`Room`]: at least one more item execution accepts follows those
    /// listed (which are then exactly the ones that fit the room). A plan with `more` never fits.
    pub more: bool,
}

/// What is left of a block for the peg's transactions, a count and encoded bytes; also the budget of
/// planning (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    /// Transactions.
    pub txs: usize,
    /// Encoded bytes.
    pub bytes: usize,
}

impl Room {
    /// What a block leaves next to `reserved` transactions (`Params::block_max_txs` and
    /// `Params::block_max_bytes`).
    pub fn after(chain: &Chain, reserved: &[Tx]) -> Room {
        let p = chain.params();
        Room {
            txs: (p.block_max_txs as usize).saturating_sub(reserved.len()),
            bytes: (p.block_max_bytes as usize).saturating_sub(txs_encoded_len(reserved)),
        }
    }

    /// A whole block: the most a valid block can carry, so a plan that does not fit it is required of no
    /// block (what validators plan with).
    pub fn block(chain: &Chain) -> Room {
        Room::after(chain, &[])
    }

    /// Whether all of `plan` fits (a plan that stopped at its room never does).
    pub fn fits(&self, plan: &PegPlan) -> bool {
        !plan.more && plan.len() <= self.txs && plan.encoded_len() <= self.bytes
    }
}

/// What planning has taken of its room so far.
struct Budget {
    room: Room,
    txs: usize,
    bytes: usize,
}

impl Budget {
    fn new(room: Room) -> Budget {
        Budget { room, txs: 0, bytes: 0 }
    }

    /// Takes `tx` (which execution accepted) if it still fits; `false` means planning stops there.
    fn take(&mut self, tx: Tx) -> bool {
        self.txs += 1;
        self.bytes = self.bytes.saturating_add(tx.encoded_len());
        self.txs <= self.room.txs && self.bytes <= self.room.bytes
    }
}

impl PegPlan {
    /// Every transaction of the plan in block order: settlements, required mints, claims.
    pub fn txs(&self) -> Vec<Tx> {
        let settles = self.settles.iter().cloned().map(Tx::Settle);
        let mints = self.mints.iter().chain(&self.claims).cloned().map(Tx::Mint);
        settles.chain(mints).collect()
    }

    /// Whether `tx`, placed after this plan in a block, would no longer apply because of it: a signature
    /// share or FROST message for a batch the plan settles (the batch is no longer in flight). Proposers
    /// drop those.
    pub fn supersedes(&self, tx: &Tx) -> bool {
        let batch = match tx {
            Tx::PegShare(p) => p.batch,
            Tx::Frost(f) => f.batch,
            _ => return false,
        };
        self.settles.iter().any(|s| s.batch == batch)
    }

    /// How many transactions the plan has (settlements, mints, claims).
    pub fn len(&self) -> usize {
        self.settles.len() + self.mints.len() + self.claims.len()
    }

    /// Whether the plan carries nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoded size of the plan's transactions in a block (without the list's 4-byte count).
    pub fn encoded_len(&self) -> usize {
        self.txs().iter().map(Tx::encoded_len).sum()
    }

    /// The longest prefix of the plan, in block order (settlements, mints, claims), of at most `max_txs`
    /// transactions taking at most `max_bytes` encoded bytes. A prefix applies as the whole plan does:
    /// each item was judged after the ones before it. `refused` is kept; `more` is set when it leaves
    /// anything out.
    pub fn prefix(&self, max_txs: usize, max_bytes: usize) -> PegPlan {
        let mut out = PegPlan { refused: self.refused.clone(), more: true, ..PegPlan::default() };
        let mut budget = Budget::new(Room { txs: max_txs, bytes: max_bytes });
        for s in &self.settles {
            if !budget.take(Tx::Settle(s.clone())) {
                return out;
            }
            out.settles.push(s.clone());
        }
        for m in &self.mints {
            if !budget.take(Tx::Mint(m.clone())) {
                return out;
            }
            out.mints.push(m.clone());
        }
        for m in &self.claims {
            if !budget.take(Tx::Mint(m.clone())) {
                return out;
            }
            out.claims.push(m.clone());
        }
        out.more = self.more;
        out
    }

    /// Whether `tx` is one of the required transactions (settlements and mints, claims excluded).
    pub fn requires(&self, tx: &Tx) -> bool {
        match tx {
            Tx::Settle(s) => self.settles.contains(s),
            Tx::Mint(m) => self.mints.contains(m),
            _ => false,
        }
    }
}

/// The peg transactions a block at `height` built on `state` with anchor `new_anchor` must carry, and the
/// `claims` it may add. `blocks` are the facts of the BTC blocks the move covers (above the state's anchor,
/// up to `new_anchor`; empty when the anchor stays). A deposit to a registered script counts only while its
/// registration is live at `height` and its epoch's deposits are watched; a plain federation output always
/// counts. Items that went in early (see [`mod@crate::peg_cursor`]) are no longer required: execution refuses
/// them again. Planning stops at the first accepted item past `room` (settlements, mints, then claims,
/// counted together), with [`PegPlan::more`] set: what it lists is then the part of the whole plan that
/// fits `room`, and the whole plan does not. `Err` only when the state cannot be read.
pub fn plan_peg_txs<S: StateReader>(
    chain: &Chain,
    state: &S,
    height: Height,
    new_anchor: BtcAnchor,
    blocks: &[BtcBlockFacts],
    claims: &[MintTx],
    room: Room,
) -> Result<PegPlan, StateError> {
    let mut plan = PegPlan::default();
    let Some(prev) = state.chain_meta()? else { return Ok(plan) };
    let halt = crate::halt::peg_halt(state)?;
    if halt.is_halted() || halt.resume_to.is_some() {
        return Ok(plan);
    }
    let meta = ChainMeta { height, time_ms: prev.time_ms.saturating_add(1), btc_anchor: new_anchor };
    let mut overlay = Overlay::new(state);
    let mut budget = Budget::new(room);
    if new_anchor.height > prev.btc_anchor.height {
        let covered: Vec<&BtcBlockFacts> = blocks
            .iter()
            .filter(|b| b.block.height > prev.btc_anchor.height && b.block.height <= new_anchor.height)
            .collect();
        plan_blocks(chain, &mut overlay, &meta, &covered, &mut budget, &mut plan)?;
    }
    for m in claims {
        if plan.more {
            break;
        }
        if plan.mints.iter().chain(&plan.claims).any(|x| x.outpoint == m.outpoint) {
            continue;
        }
        match overlay.apply_mint(chain, m, &meta) {
            Ok(_) if budget.take(Tx::Mint(m.clone())) => plan.claims.push(m.clone()),
            Ok(_) => plan.more = true,
            Err(TxError::State(e)) => return Err(e),
            Err(why) => plan.refused.push((m.clone(), why)),
        }
    }
    Ok(plan)
}

/// The early items (see [`mod@crate::peg_cursor`]) of `next`, the BTC block right above the state's anchor,
/// that a block at `height` keeping the anchor may carry: settlements of batches it confirms, then mints
/// of its outputs, each kept only if execution accepts it, in block order; the same candidates the move to
/// `next` would require, less those already in. Empty when the peg is halted or resuming, when `next` is
/// not right above the anchor, or when earlier early items named another block. Only those that fit
/// `room` (planning stops past it, as in [`plan_peg_txs`]): a proposer carries exactly these, and a prefix
/// applies as the whole does. `Err` only when the state cannot be read.
pub fn plan_early_peg_txs<S: StateReader>(
    chain: &Chain,
    state: &S,
    height: Height,
    next: &BtcBlockFacts,
    room: Room,
) -> Result<PegPlan, StateError> {
    let mut plan = PegPlan::default();
    let Some(prev) = state.chain_meta()? else { return Ok(plan) };
    let halt = crate::halt::peg_halt(state)?;
    let off_cursor = crate::peg_cursor::peg_cursor(state)?.is_some_and(|c| c.btc_block != next.block);
    if halt.is_halted()
        || halt.resume_to.is_some()
        || off_cursor
        || !crate::peg_cursor::is_early(&next.block, &prev.btc_anchor)
    {
        return Ok(plan);
    }
    let meta = ChainMeta { height, time_ms: prev.time_ms.saturating_add(1), btc_anchor: prev.btc_anchor };
    let mut overlay = Overlay::new(state);
    plan_blocks(chain, &mut overlay, &meta, &[next], &mut Budget::new(room), &mut plan)?;
    Ok(plan)
}

/// Settlements a block at `height` with anchor `anchor` may carry for batches in flight that confirmed at
/// or below it ("late settles"), each kept only if execution accepts it. `confirmed` maps batch version
/// txids to the BTC block a bitcoind shows each in (its best chain). Why: a move requires the settlements
/// of the BTC blocks it covers, but after `ResumePeg` the anchor jumps to an agreed block (perhaps on a new
/// branch) without covering anything, so a batch in flight during the deep reorg that confirmed on the new
/// branch at or below the resume anchor would never be settled: bumped forever, its inputs still counted
/// as held. Optional, like claims: a validator accepts one only if its own bitcoind shows it. A batch none
/// of whose versions is confirmed stays in flight (bumped and re-broadcast as usual). Empty while halted.
/// `Err` only when the state cannot be read.
pub fn plan_late_settles<S: StateReader>(
    state: &S,
    height: Height,
    anchor: BtcAnchor,
    confirmed: &std::collections::BTreeMap<bitcoin::Txid, BtcAnchor>,
) -> Result<Vec<SettleTx>, StateError> {
    let mut out = Vec::new();
    let Some(prev) = state.chain_meta()? else { return Ok(out) };
    if crate::halt::peg_halt(state)?.is_halted() {
        return Ok(out);
    }
    let meta = ChainMeta { height, time_ms: prev.time_ms.saturating_add(1), btc_anchor: anchor };
    let covered = |b: &BtcAnchor| b.height < anchor.height || *b == anchor;
    let mut overlay = Overlay::new(state);
    for id in crate::batching::batch_index(state)?.in_flight {
        let Some(batch) = crate::batching::batch(state, id)? else { continue };
        let found = batch.version_txids().find_map(|txid| {
            confirmed.get(&txid).filter(|b| covered(b)).map(|b| SettleTx { batch: id, txid, btc_block: *b })
        });
        let Some(settle) = found else { continue };
        match overlay.apply_settle(&settle, &meta) {
            Ok(_) => out.push(settle),
            Err(TxError::State(e)) => return Err(e),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Applies, on `overlay`, a settlement for every batch in flight one of whose versions is in `blocks`,
/// then each candidate mint of `blocks` in order, and records in `plan` what applied and what was refused;
/// stops at the first applied item `budget` cannot take (`plan.more`).
fn plan_blocks<S: StateReader>(
    chain: &Chain,
    overlay: &mut Overlay<'_, S>,
    meta: &ChainMeta,
    blocks: &[&BtcBlockFacts],
    budget: &mut Budget,
    plan: &mut PegPlan,
) -> Result<(), StateError> {
    let height = meta.height;
    let fs = crate::federation::federation_state(chain, &*overlay)?;
    let watched: Vec<u32> = fs.watched_at(height, chain.params().deposit_window).map(|e| e.epoch).collect();
    let index = crate::batching::batch_index(&*overlay)?;
    for id in index.in_flight {
        let Some(batch) = crate::batching::batch(&*overlay, id)? else { continue };
        let confirmed = batch.version_txids().find_map(|txid| {
            blocks.iter().find(|b| b.txids.contains(&txid)).map(|b| SettleTx { batch: id, txid, btc_block: b.block })
        });
        if let Some(settle) = confirmed {
            match overlay.apply_settle(&settle, meta) {
                Ok(_) if budget.take(Tx::Settle(settle.clone())) => plan.settles.push(settle),
                Ok(_) => {
                    plan.more = true;
                    return Ok(());
                }
                Err(TxError::State(e)) => return Err(e),
                // Not settleable (e.g. already settled by an earlier version): nothing to require.
                Err(_) => {}
            }
        }
    }
    for b in blocks {
        for m in &b.outputs {
            if !watched.contains(&m.epoch) {
                continue;
            }
            if m.kind == MintKind::Deposit && !crate::pegin::registration_is_live(&*overlay, &m.recipient, height)? {
                continue;
            }
            // Already recorded (early, above all): execution refuses it whatever else holds, and one read
            // says so. Once early items went in, most of a flooded block is such outputs, each tried again.
            if let Some(done) = overlay.get_pegin(&m.outpoint)? {
                plan.refused.push((m.clone(), TxError::AlreadyMinted { outpoint: m.outpoint, at: done.minted_at }));
                continue;
            }
            match overlay.apply_mint(chain, m, meta) {
                Ok(_) if budget.take(Tx::Mint(m.clone())) => plan.mints.push(m.clone()),
                Ok(_) => {
                    plan.more = true;
                    return Ok(());
                }
                Err(TxError::State(e)) => return Err(e),
                Err(why) => plan.refused.push((m.clone(), why)),
            }
        }
    }
    Ok(())
}
