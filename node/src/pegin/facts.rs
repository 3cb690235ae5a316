//! The facts layer of peg-in: what our bitcoind's snapshot says a block must mint and settle, and which
//! mints it confirms. Both the required-items rule (`super`) and the early items (`super::early`) read it,
//! so it sits below them.

use crate::btc_follow::{from_peg, BtcSnapshot};
use ledger::Room;
use ledger::{BtcAnchor, BtcBlockFacts, BtcOutPoint, Chain, MintKind, MintTx, PegPlan, StateReader};
use primitives::{AccountId, Hash32, Height};
use std::collections::{BTreeSet, HashMap};

/// The mint a block carries for deposit `d` (an output to the deposit script bound to its recipient).
pub fn mint_for(d: &peg::Deposit) -> MintTx {
    MintTx {
        outpoint: BtcOutPoint::from_bitcoin(&d.outpoint),
        recipient: AccountId(Hash32(d.recipient)),
        amount: d.amount,
        btc_block: from_peg((d.btc_height, d.btc_block_hash)),
        epoch: d.epoch,
        kind: MintKind::Deposit,
        coinbase: d.coinbase,
    }
}

/// The mint a block carries for an output paying the plain (untweaked) federation script: nobody can be
/// credited, so it goes to the fee pool (which pays the federation's Bitcoin fees) and the BTC counts in
/// reserves like any deposit. [`MintKind::Federation`] records it as untweaked.
pub fn mint_for_plain(o: &peg::FederationOutput) -> MintTx {
    MintTx {
        outpoint: BtcOutPoint::from_bitcoin(&o.outpoint),
        recipient: ledger::fee_pool_id(),
        amount: o.amount,
        btc_block: from_peg((o.btc_height, o.btc_block_hash)),
        epoch: o.epoch,
        kind: MintKind::Federation,
        coinbase: o.coinbase,
    }
}

/// Why this node's snapshot of Bitcoin cannot say what a move of the anchor requires (then the anchor
/// must not move on its word: the proposer proposes a shorter move, a validator votes nil).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CannotTell {
    /// A deposit script was registered after the index scanned: it may have missed a deposit to it.
    #[error("the deposit index was built with {built} registered scripts, {now} are registered now")]
    StaleRegistry {
        /// The registry version the scans used.
        built: u64,
        /// The registry version now.
        now: u64,
    },
    /// The index does not reach that BTC height yet.
    #[error("the deposit index does not cover BTC height {0} yet")]
    NotCovered(u32),
    /// Our bitcoind's block at the proposed anchor's height is another one.
    #[error("the deposit index has another block at BTC height {0} than the proposed anchor")]
    OtherBlock(u32),
    /// The previous state could not be read.
    #[error("cannot read state: {0}")]
    State(#[from] ledger::StateError),
}

/// A validator's objection to a block's peg transactions (it votes nil on the block).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PegObjection {
    /// This node has no bitcoind, so it cannot check BTC facts.
    #[error("no bitcoind configured, so this validator cannot check peg-in facts")]
    NoBitcoind,
    /// Our index cannot list what the move requires.
    #[error(transparent)]
    CannotTell(#[from] CannotTell),
    /// A required settlement is missing.
    #[error("leaves out the confirmation of peg-out batch {batch} in BTC block {btc_height}")]
    MissingSettle {
        /// The batch.
        batch: u64,
        /// The BTC block confirming it.
        btc_height: u32,
    },
    /// A settlement our bitcoind does not show (or not required by the move).
    #[error("settles peg-out batch {batch} in BTC block {btc_height}, which our bitcoind does not show")]
    UnknownSettle {
        /// The batch.
        batch: u64,
        /// The BTC block it names.
        btc_height: u32,
    },
    /// The move requires more peg transactions than any block holds (planning stopped there), so no
    /// block carries them all (the items go in early first; see module `early`).
    #[error("moves the anchor to BTC block {btc_height}, whose at least {at_least} peg transactions no block holds (count or bytes)")]
    MoveTooLarge {
        /// The BTC block moved to.
        btc_height: u32,
        /// A lower bound on the items the move requires: those planning listed and the one it stopped at.
        at_least: usize,
    },
    /// A required mint is missing.
    #[error("leaves out the deposit {outpoint} of {amount} to {recipient} in BTC block {btc_height}")]
    MissingMint {
        /// The output.
        outpoint: bitcoin::OutPoint,
        /// Its value.
        amount: bitcoin::Amount,
        /// The account credited.
        recipient: AccountId,
        /// The BTC block holding it.
        btc_height: u32,
    },
    /// An early item (of the BTC block right above the anchor) whose block our bitcoind does not show N
    /// deep on top of the anchor.
    #[error("carries early peg items of BTC block {btc_height}, which our bitcoind does not accept yet: {reason}")]
    EarlyNotDeep {
        /// The height the items name.
        btc_height: u32,
        /// Why our bitcoind does not accept that block yet.
        reason: peg::AnchorRejection,
    },
    /// A mint whose facts our bitcoind does not show.
    #[error("mints {outpoint} ({amount} to {recipient} in BTC block {btc_height} {btc_block}), which our bitcoind does not show")]
    UnconfirmedMint {
        /// The output.
        outpoint: bitcoin::OutPoint,
        /// Its value.
        amount: bitcoin::Amount,
        /// The account credited.
        recipient: AccountId,
        /// The BTC block it names.
        btc_height: u32,
        /// That block's hash.
        btc_block: bitcoin::BlockHash,
    },
}

/// The objection to a mint whose facts our bitcoind does not show.
pub(super) fn unconfirmed(m: &MintTx) -> PegObjection {
    PegObjection::UnconfirmedMint {
        outpoint: btc_outpoint(&m.outpoint),
        amount: m.amount,
        recipient: m.recipient,
        btc_height: m.btc_block.height.get(),
        btc_block: m.btc_block.hash,
    }
}

pub(super) fn btc_outpoint(o: &BtcOutPoint) -> bitcoin::OutPoint {
    bitcoin::OutPoint { txid: o.txid, vout: o.vout }
}

/// The facts of the BTC blocks `(prev, new]` as our index shows them, for [`ledger::plan_peg_txs`]; `Err`
/// when the index cannot tell (not scanned that far, scanned with an older registry, another block at
/// `new`'s height).
pub fn block_facts(
    snap: &BtcSnapshot,
    registry_version: u64,
    prev: &BtcAnchor,
    new: &BtcAnchor,
) -> Result<Vec<BtcBlockFacts>, CannotTell> {
    if new.height <= prev.height {
        return Ok(Vec::new());
    }
    if snap.registry_version < registry_version {
        return Err(CannotTell::StaleRegistry { built: snap.registry_version, now: registry_version });
    }
    let mut out = Vec::new();
    for h in prev.height.get() + 1..=new.height.get() {
        let block = snap.deposits.get(&h).ok_or(CannotTell::NotCovered(h))?;
        let anchor = from_peg((h, block.hash));
        if h == new.height.get() && anchor.hash != new.hash {
            return Err(CannotTell::OtherBlock(h));
        }
        let outputs = block.scan.deposits.iter().map(mint_for).chain(block.scan.plain.iter().map(mint_for_plain));
        out.push(BtcBlockFacts { block: anchor, outputs: outputs.collect(), txids: block.txids.clone() });
    }
    Ok(out)
}

/// Verified claims (`claimpegin`) whose deposit a block with anchor `anchor` covers.
pub fn covered_claims(snap: &BtcSnapshot, anchor: &BtcAnchor) -> Vec<MintTx> {
    snap.claims
        .iter()
        .map(mint_for)
        .filter(|m| {
            m.btc_block.height < anchor.height
                || (m.btc_block.height == anchor.height && m.btc_block.hash == anchor.hash)
        })
        .collect()
}

/// What a block at `height` on `state` (anchor `prev`) moving the anchor to `new` carries on the peg, as
/// [`ledger::plan_peg_txs`] decides from our snapshot's facts, with our verified claims offered too;
/// planned only as far as `room` (past it the plan says [`PegPlan::more`] and never fits).
#[allow(clippy::too_many_arguments)]
pub fn peg_plan<S: StateReader>(
    chain: &Chain,
    state: &S,
    snap: &BtcSnapshot,
    registry_version: u64,
    prev: &BtcAnchor,
    new: &BtcAnchor,
    height: Height,
    with_claims: bool,
    room: Room,
) -> Result<PegPlan, CannotTell> {
    let facts = block_facts(snap, registry_version, prev, new)?;
    let claims = if with_claims { covered_claims(snap, new) } else { Vec::new() };
    Ok(ledger::plan_peg_txs(chain, state, height, *new, &facts, &claims, room)?)
}

/// Whether the BTC facts `m` asserts are what our bitcoind shows: the output is in our index (or a claim
/// we verified) with that block, amount, kind and recipient. For many mints, [`first_unconfirmed`].
pub fn mint_is_confirmed(snap: &BtcSnapshot, m: &MintTx) -> bool {
    first_unconfirmed(snap, &[m]).is_none()
}

/// The first of `mints` whose BTC facts our bitcoind does not show (see [`mint_is_confirmed`]). One pass
/// over each BTC block they name, then one lookup per mint: a block's mints (up to `block_max_txs`) of a
/// flooded BTC block (some 90,000 outputs) cost their sum, not their product.
pub fn first_unconfirmed<'a>(snap: &BtcSnapshot, mints: &[&'a MintTx]) -> Option<&'a MintTx> {
    if mints.is_empty() {
        return None;
    }
    let heights: BTreeSet<u32> = mints.iter().map(|m| m.btc_block.height.get()).collect();
    let mut shown: HashMap<BtcOutPoint, MintTx> = HashMap::new();
    for h in heights {
        let Some(b) = snap.deposits.get(&h) else { continue };
        let block = from_peg((h, b.hash));
        let outputs = b.scan.deposits.iter().map(mint_for).chain(b.scan.plain.iter().map(mint_for_plain));
        shown.extend(outputs.filter(|m| m.btc_block == block).map(|m| (m.outpoint, m)));
    }
    let claims: HashMap<BtcOutPoint, MintTx> = snap.claims.iter().map(mint_for).map(|m| (m.outpoint, m)).collect();
    mints.iter().copied().find(|m| shown.get(&m.outpoint) != Some(*m) && claims.get(&m.outpoint) != Some(*m))
}
