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
use bitcoin::hashes::Hash;
use ledger::{
    Block, BtcAnchor, BtcBlockFacts, BtcOutPoint, Chain, MintKind, MintTx, PegPlan, StateReader, Tx, UserTxKind,
};
use primitives::{AccountId, Hash32, Height};
use std::collections::{BTreeSet, HashMap};

/// The deposit descriptor bound to `recipient` in `wallet` on this chain (its script, address and text follow).
pub fn deposit_descriptor(
    chain: &Chain,
    wallet: &peg::Federation,
    recipient: &AccountId,
) -> Result<peg::Descriptor, peg::PegError> {
    wallet.deposit_descriptor(chain.genesis_hash().0, recipient.0 .0)
}

/// The wallet of every epoch, and of those whose deposits are watched at `height`.
pub fn epoch_wallets(
    chain: &Chain,
    fs: &ledger::FederationState,
    height: Height,
) -> (Vec<(u32, peg::Federation)>, Vec<u32>) {
    let all = fs
        .epochs
        .iter()
        .filter_map(|e| match chain.wallet(e) {
            Ok(w) => Some((e.epoch, w)),
            Err(err) => {
                // Cannot happen: a proposal's wallet is built before it is accepted.
                tracing::error!(epoch = e.epoch, error = %err, "cannot build an epoch's wallet");
                None
            }
        })
        .collect();
    let watched = fs.watched_at(height, chain.params().deposit_window).map(|e| e.epoch).collect();
    (all, watched)
}

/// Accounts whose deposit address `block` registers, in block order.
pub fn registrations_in(block: &Block) -> Vec<AccountId> {
    block
        .txs
        .iter()
        .filter_map(|t| match t {
            Tx::User(s) if s.tx.kind == UserTxKind::RegisterDeposit => Some(s.tx.sender()),
            _ => None,
        })
        .collect()
}

/// Most claims a node keeps pending at once.
pub const MAX_PENDING_CLAIMS: usize = 1024;

/// Blocks a claim stays pending without being minted before it is dropped.
pub const CLAIM_TTL_BLOCKS: u64 = 2000;

/// `claimpegin`: mint the deposit at `outpoint` in BTC block `btc_block` to `recipient`, for deposits whose
/// registration was missed or had expired. Anyone may claim (the mint can only go to the recipient the
/// script is bound to); validators check it against their own bitcoind exactly as a registered deposit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct PegClaim {
    /// The deposit output.
    pub outpoint: BtcOutPoint,
    /// The account the deposit address was derived for.
    pub recipient: AccountId,
    /// The BTC block holding the deposit (internal byte order).
    pub btc_block: Hash32,
}

/// Which scripts the follower watches: each registered account's deposit script in every watched epoch's
/// wallet, and those wallets' plain scripts. Keeps every epoch's wallet too, for claims.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    /// Bumped by every change to the watched scripts: a scan made with an older version may have missed
    /// deposits.
    pub version: u64,
    /// The watched scripts.
    pub maps: peg::ScriptMaps,
    /// Every epoch's wallet (a claim may name a deposit to any of them).
    pub wallets: Vec<(u32, peg::Federation)>,
    /// The epochs watched.
    watched: Vec<u32>,
    /// Every registered account.
    accounts: std::collections::BTreeSet<AccountId>,
}

impl Registry {
    /// The registry for the state `fs` at `height`, watching `accounts`.
    pub fn new(chain: &Chain, fs: &ledger::FederationState, height: Height, accounts: &[AccountId]) -> Self {
        let mut r = Registry::default();
        r.set_epochs(chain, fs, height);
        r.add(chain, accounts);
        r
    }

    /// Whether [`Registry::set_epochs`] would change anything (cheap: builds no wallet).
    pub fn epochs_changed(&self, chain: &Chain, fs: &ledger::FederationState, height: Height) -> bool {
        let watched: Vec<u32> = fs.watched_at(height, chain.params().deposit_window).map(|e| e.epoch).collect();
        watched != self.watched || fs.epochs.len() != self.wallets.len()
    }

    /// Follows a federation change or the end of a deposit window: `true` when the watched scripts changed.
    pub fn set_epochs(&mut self, chain: &Chain, fs: &ledger::FederationState, height: Height) -> bool {
        if !self.epochs_changed(chain, fs, height) {
            return false;
        }
        let (wallets, watched) = epoch_wallets(chain, fs, height);
        self.wallets = wallets;
        self.watched = watched;
        self.maps = peg::ScriptMaps::default();
        for (epoch, w) in self.watched_wallets() {
            self.maps.plain.insert(w.script_pubkey(), epoch);
        }
        let accounts: Vec<AccountId> = std::mem::take(&mut self.accounts).into_iter().collect();
        self.add(chain, &accounts);
        self.version += 1;
        true
    }

    fn watched_wallets(&self) -> Vec<(u32, peg::Federation)> {
        self.wallets.iter().filter(|(e, _)| self.watched.contains(e)).cloned().collect()
    }

    /// Adds the deposit scripts of each account not yet known; returns how many scripts were new.
    pub fn add(&mut self, chain: &Chain, accounts: &[AccountId]) -> usize {
        let mut added = 0;
        let wallets = self.watched_wallets();
        for account in accounts {
            self.accounts.insert(*account);
            for (epoch, w) in &wallets {
                match deposit_descriptor(chain, w, account) {
                    Ok(d) => {
                        if self.maps.deposits.insert(d.script_pubkey(), (account.0 .0, *epoch)).is_none() {
                            added += 1;
                        }
                    }
                    // Cannot happen for a genesis that passed validation; never worth stopping the node.
                    Err(e) => tracing::error!(%account, error = %e, "cannot derive a deposit script"),
                }
            }
        }
        self.version += added as u64;
        added
    }

    /// The epoch whose deposit script for `recipient` is `script`, among every epoch's wallet.
    pub fn claim_epoch(&self, chain: &Chain, recipient: &AccountId, script: &bitcoin::Script) -> Option<u32> {
        self.wallets.iter().find_map(|(epoch, w)| {
            deposit_descriptor(chain, w, recipient).ok().filter(|d| d.script_pubkey() == *script).map(|_| *epoch)
        })
    }
}

impl peg::DepositLookup for Registry {
    fn deposit_target(&self, script_pubkey: &bitcoin::Script) -> Option<([u8; 32], u32)> {
        self.maps.deposit_target(script_pubkey)
    }

    fn federation_epoch(&self, script_pubkey: &bitcoin::Script) -> Option<u32> {
        self.maps.federation_epoch(script_pubkey)
    }
}

/// Whether signing a batch version spending `inputs` is safe given the versions already signed: every
/// earlier version's inputs must be among the new one's, so all versions conflict on Bitcoin and at most one
/// of them can ever confirm (no burn paid twice). Re-signing the same version is fine.
pub fn safe_to_sign(signed: &[crate::storage::SignedVersion], txid: &Hash32, inputs: &[BtcOutPoint]) -> bool {
    signed.iter().all(|(t, prev)| t == txid || prev.iter().all(|o| inputs.contains(o)))
}

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
fn unconfirmed(m: &MintTx) -> PegObjection {
    PegObjection::UnconfirmedMint {
        outpoint: btc_outpoint(&m.outpoint),
        amount: m.amount,
        recipient: m.recipient,
        btc_height: m.btc_block.height.get(),
        btc_block: rpc::types::btc_block_hash(&m.btc_block.hash),
    }
}

fn btc_outpoint(o: &BtcOutPoint) -> bitcoin::OutPoint {
    bitcoin::OutPoint { txid: rpc::types::btc_txid(&o.txid), vout: o.vout }
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
        out.push(BtcBlockFacts {
            block: anchor,
            outputs: outputs.collect(),
            txids: block.txids.iter().map(|t| Hash32(t.to_byte_array())).collect(),
        });
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

/// A validator's external check of the peg transactions in `block` (built on `state`, whose anchor is
/// `prev`): it carries every settlement and mint the move requires (by [`ledger::plan_peg_txs`], so never
/// one execution refuses, planned as far as a whole block holds: a move requiring more fits no block and is
/// refused as such), settles only what that requires, and mints only what our bitcoind shows; early
/// items (of the BTC block right above the block's anchor, optional) are checked by
/// [`early::check_early_items`]. `Ok` when the block neither moves the anchor nor carries peg transactions
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
pub use early::early_plan;
pub use ledger::Room;

#[cfg(test)]
mod tests;
