//! This validator's peg duties, the node half of the peg: what it adds to the blocks it proposes (the
//! anchor move with its mints and settlements, claims, its own validator transactions), what it objects to
//! in others' blocks, and what it tells the Bitcoin follower after each commit.
//!
//! Data flows one way: the follower's snapshot (what our bitcoind shows) comes in by a watch channel; the
//! duties read it with committed state and answer the proposer and the validity judge; after a commit they
//! hand the follower its new inputs (the anchor, the registry of watched scripts, the pending claims). They
//! never reach back into the event loop: the loop asks, and carries out what they return.

use super::BlockObjection;
use crate::btc_follow::{from_peg, to_peg, BtcSnapshot};
use crate::chain::{ChainState, FullBlock};
use crate::claims::{ClaimLimits, ClaimSource, ClaimStore};
use crate::command_error::CommandError;
use crate::keys::NodeKeys;
use ledger::StateReader;
use primitives::{Height, ValidatorIndex};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::{debug, error, warn};

/// The peg at a glance (metrics, RPC, dashboard).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PegSummary {
    /// Totals in state at the tip.
    pub totals: ledger::PegTotals,
    /// The tip's BTC anchor height.
    pub anchor_height: u32,
    /// Our bitcoind's best height (validators with a reachable bitcoind).
    pub bitcoind_best: Option<u32>,
    /// Deposits our bitcoind shows above the anchor, not minted yet.
    pub deposits_seen: usize,
    /// Claims pending here.
    pub claims_pending: usize,
    /// Peg operations halted (f+1 validators reported a Bitcoin reorg deeper than N).
    pub halted: bool,
}

/// Where our block's peg part goes: the anchor in force (`prev`), the `(height, round)` we propose at, and
/// the room the block leaves after what goes in first.
#[derive(Clone, Copy, Debug)]
pub struct OfferAt {
    pub prev: ledger::BtcAnchor,
    pub height: Height,
    pub round: primitives::Round,
    pub room: crate::pegin::Room,
}

/// The channels between the duties and the Bitcoin follower (see [`crate::btc_follow::FollowConfig`]).
pub struct FollowerLinks {
    /// What our bitcoind shows (`None` without a bitcoind).
    pub btc: Option<watch::Receiver<BtcSnapshot>>,
    /// The anchor height in force, for the follower's scan window.
    pub anchor_height: watch::Sender<u32>,
    /// The deposit scripts to watch.
    pub registry: watch::Sender<Arc<crate::pegin::Registry>>,
    /// The claims to verify.
    pub claims: watch::Sender<Vec<crate::pegin::PegClaim>>,
}

/// See the module docs.
pub struct PegDuties {
    keys: NodeKeys,
    btc: Option<watch::Receiver<BtcSnapshot>>,
    anchor_height: watch::Sender<u32>,
    registry: watch::Sender<Arc<crate::pegin::Registry>>,
    claims: watch::Sender<Vec<crate::pegin::PegClaim>>,
    claim_store: ClaimStore,
    /// The anchor an operator asked to resume the halted peg from (voted when we propose).
    resume_request: watch::Sender<Option<ledger::BtcAnchor>>,
    fee_rate_floor_sat_vb: u64,
    /// Test fault: propose anchor moves without their mints.
    omit_mints: bool,
}

impl PegDuties {
    /// Duties for a node with `keys`, linked to its follower.
    pub fn new(keys: NodeKeys, links: FollowerLinks, fee_rate_floor_sat_vb: u64, omit_mints: bool) -> Self {
        Self {
            keys,
            btc: links.btc,
            anchor_height: links.anchor_height,
            registry: links.registry,
            claims: links.claims,
            claim_store: ClaimStore::new(ClaimLimits::default()),
            resume_request: watch::channel(None).0,
            fee_rate_floor_sat_vb,
            omit_mints,
        }
    }

    /// What our bitcoind showed at its last poll (`None` without one).
    pub fn snapshot(&self) -> Option<BtcSnapshot> {
        self.btc.as_ref().map(|b| b.borrow().clone())
    }

    /// The follower's snapshot channel (for the handle).
    pub fn snapshot_receiver(&self) -> Option<watch::Receiver<BtcSnapshot>> {
        self.btc.clone()
    }

    /// Whether the peg gives a block something to carry now: an anchor move or a claim execution accepts.
    pub fn has_work<S: StateReader>(&self, cs: &ChainState, state: &S) -> bool {
        let Some(btc) = &self.btc else { return false };
        let Ok(Some(meta)) = state.chain_meta() else { return false };
        let p = cs.chain().params();
        let snap = btc.borrow();
        if peg::choose_anchor(&*snap, to_peg(&meta.btc_anchor), p.pegin_confirmations, p.max_anchor_step).is_some() {
            return true;
        }
        // Verified claims execution would accept (one it refuses is no reason for a block).
        let version = self.registry.borrow().version;
        let (prev, height) = (meta.btc_anchor, cs.tip().next());
        let room = crate::pegin::Room::block(cs.chain());
        crate::pegin::peg_plan(cs.chain(), state, &snap, version, &prev, &prev, height, true, room)
            .is_ok_and(|plan| !plan.claims.is_empty())
    }

    /// The anchor and peg transactions for our block at `(height, round)`, in what `room` leaves: the move
    /// `next_anchor` chooses and, in round 0, the late settlements our bitcoind shows.
    pub fn offer<S: StateReader>(
        &self,
        cs: &ChainState,
        state: &S,
        at: OfferAt,
    ) -> (ledger::BtcAnchor, ledger::PegPlan) {
        let OfferAt { height, round, room, .. } = at;
        let (btc_anchor, mut plan) = self.next_anchor(cs, state, at);
        if round.get() == 0 {
            if let Some(btc) = &self.btc {
                let late = crate::pegin::late_settles(state, &btc.borrow(), height, &btc_anchor, &plan, room);
                plan.settles.extend(late);
            }
        }
        if self.omit_mints && !plan.mints.is_empty() {
            warn!(%height, left_out = plan.mints.len(), "FAULT: proposing an anchor move without its mints");
            plan.mints.clear();
        }
        (btc_anchor, plan)
    }

    /// A validator's check of a proposed block's peg part against its own bitcoind: the anchor move, then
    /// the mints and settlements it must carry. `None`: nothing to object to.
    pub fn objection(
        &self,
        cs: &ChainState,
        prev: &ledger::BtcAnchor,
        block: &ledger::Block,
    ) -> Option<BlockObjection> {
        let proposed = &block.header.btc_anchor;
        let state = cs.state();
        // The anchor 2f+1 validators agreed to resume from (execution holds the block to exactly it).
        let agreed = ledger::peg_halt(&state).is_ok_and(|h| h.resume_to == Some(*proposed));
        if proposed != prev && !agreed {
            let Some(btc) = &self.btc else { return Some(BlockObjection::NoBitcoind) };
            let p = cs.chain().params();
            let snap = btc.borrow();
            let checked = peg::check_anchor_move(
                &*snap,
                to_peg(prev),
                to_peg(proposed),
                p.pegin_confirmations,
                p.max_anchor_step,
            );
            if let Err(why) = checked {
                return Some(BlockObjection::Anchor(why));
            }
        }
        let snap = self.snapshot();
        let version = self.registry.borrow().version;
        crate::pegin::check_block_peg(cs.chain(), &state, snap.as_ref(), version, prev, block)
            .err()
            .map(BlockObjection::Peg)
    }

    /// After `fb` committed: log a halt or a resume, drop minted and stale claims, hand the follower the new
    /// anchor and the scripts to watch (registrations in the block, a new epoch, a deposit window's end),
    /// and warn about coins execution could not sweep.
    pub fn after_commit(&mut self, cs: &ChainState, fb: &FullBlock) {
        let state = cs.state();
        let tip = fb.height();
        if let Ok(h) = ledger::peg_halt(&state) {
            if h.halted_at == Some(tip) {
                error!(height = %tip, reporters = ?h.reports,
                    "PEG HALTED: f+1 validators report a Bitcoin reorg deeper than N; no mints and no anchor \
                     moves until 2f+1 validators vote ResumePeg (transfers go on)");
            }
            if h.resume_to.is_some() {
                warn!(height = %tip, anchor = ?h.resume_to, "peg resumes from the agreed anchor");
                self.resume_request.send_replace(None);
            }
        }
        // Minted claims are done; claims nobody could mint for CLAIM_TTL_BLOCKS are dropped (those our
        // bitcoind rejects go at once, see `apply_claim_verdicts`).
        let dropped = self.claim_store.retain(|c, at| {
            let fresh = tip.get().saturating_sub(at.get()) <= crate::pegin::CLAIM_TTL_BLOCKS;
            fresh && matches!(state.get_pegin(&c.outpoint), Ok(None))
        });
        if dropped {
            self.publish_claims();
        }
        let chain = cs.chain();
        let fs = cs.federation();
        let next_height = tip.next();
        // Checked first: `make_mut` copies the whole registry while the follower holds it.
        if self.registry.borrow().epochs_changed(chain, fs, next_height) {
            self.registry.send_if_modified(|r| Arc::make_mut(r).set_epochs(chain, fs, next_height));
        }
        self.warn_unswept_coins(cs, tip, fs);
        let registered = crate::pegin::registrations_in(&fb.block);
        if !registered.is_empty() {
            self.registry.send_modify(|r| {
                Arc::make_mut(r).add(chain, &registered);
            });
        }
    }

    /// After the tip moved (one block decided here, or a run of synced ones): the follower scans from the
    /// new anchor (once per move, not per synced block: each change makes it poll).
    pub fn tip_moved(&self, cs: &ChainState) {
        if let Ok(Some(meta)) = cs.state().chain_meta() {
            self.anchor_height.send_if_modified(|h| std::mem::replace(h, meta.btc_anchor.height.get()) != *h);
        }
    }

    /// Operator: vote to resume the halted peg from `anchor` when we next propose.
    pub fn request_resume(&self, cs: &ChainState, anchor: ledger::BtcAnchor) -> Result<(), CommandError> {
        let halt = ledger::peg_halt(&cs.state()).map_err(CommandError::State)?;
        if !halt.is_halted() {
            return Err(CommandError::PegNotHalted);
        }
        warn!(anchor = anchor.height.get(), "operator asks to resume the peg; voting when proposing");
        self.resume_request.send_replace(Some(anchor));
        Ok(())
    }

    /// The peg at the tip and what our bitcoind shows (recomputed when the tip moves: it reads state).
    pub fn summary(&self, cs: &ChainState) -> PegSummary {
        let state = cs.state();
        let snap = self.btc.as_ref().map(|b| b.borrow());
        PegSummary {
            totals: state.peg_totals().unwrap_or_default(),
            anchor_height: state.chain_meta().ok().flatten().map_or(0, |m| m.btc_anchor.height.get()),
            bitcoind_best: snap.as_ref().and_then(|s| s.best),
            deposits_seen: snap.as_ref().map_or(0, |s| {
                s.deposits
                    .values()
                    .flat_map(|b| b.scan.deposits.iter())
                    .filter(|d| matches!(state.get_pegin(&crate::pegin::mint_for(d).outpoint), Ok(None)))
                    .count()
            }),
            claims_pending: self.claims.borrow().len(),
            halted: ledger::peg_halt(&state).is_ok_and(|h| h.is_halted()),
        }
    }

    /// Claims pending here.
    pub fn claims_pending(&self) -> usize {
        self.claims.borrow().len()
    }

    /// The anchor to propose and the peg transactions it carries: in round 0 the highest block our bitcoind
    /// shows with enough confirmations (within `max_anchor_step`) whose settlements and mints our index can
    /// list and `room` can hold; if no move fits, the previous anchor with the first early items of the
    /// next BTC block that fit (`crate::pegin::early_plan`), so a BTC block with more outputs than a block
    /// holds cannot freeze the anchor; from round 1 on, the previous anchor and only verified claims, so a
    /// lagging minority of bitcoinds cannot stall the chain.
    fn next_anchor<S: StateReader>(
        &self,
        cs: &ChainState,
        state: &S,
        at: OfferAt,
    ) -> (ledger::BtcAnchor, ledger::PegPlan) {
        let OfferAt { prev, round, height, room } = at;
        let prev = &prev;
        let halt = ledger::peg_halt(state).unwrap_or_default();
        if let Some(agreed) = halt.resume_to {
            return (agreed, ledger::PegPlan::default());
        }
        let Some(btc) = &self.btc else { return (*prev, ledger::PegPlan::default()) };
        if round.get() > 0 || halt.is_halted() {
            return (*prev, ledger::PegPlan::default());
        }
        let chain = cs.chain();
        let p = chain.params();
        let snap = btc.borrow().clone();
        let version = self.registry.borrow().version;
        let keep = || {
            // Claims only (the anchor stays), planned as far as `room`: all of it can go in.
            let plan = crate::pegin::peg_plan(chain, state, &snap, version, prev, prev, height, true, room)
                .unwrap_or_else(|why| {
                    debug!(%height, reason = %why, "no claims to mint");
                    ledger::PegPlan::default()
                });
            (*prev, plan)
        };
        let Some(wanted) = peg::choose_anchor(&snap, to_peg(prev), p.pegin_confirmations, p.max_anchor_step) else {
            return keep();
        };
        let wanted = from_peg(wanted);
        crate::pegin::anchor_with_plan(chain, state, &snap, version, prev, &wanted, height, room)
            .or_else(|| {
                crate::pegin::early_plan(chain, state, &snap, version, prev, &wanted, height, room).map(|e| (*prev, e))
            })
            .unwrap_or_else(keep)
    }

    /// This validator's own transactions for the block it proposes at `height`: a reorg report when its
    /// bitcoind no longer has the anchor in force, and its resume vote when an operator asked for one.
    pub fn own_validator_txs<S: StateReader>(
        &self,
        cs: &ChainState,
        state: &S,
        anchor: &ledger::BtcAnchor,
        height: Height,
        me: ValidatorIndex,
    ) -> Vec<ledger::Tx> {
        let halt = ledger::peg_halt(state).unwrap_or_default();
        let mut kinds = Vec::new();
        let reported = halt.reported_anchor == Some(*anchor) && halt.reports.contains(&me);
        if let (Some(btc), false, None) = (&self.btc, reported, halt.resume_to) {
            let snap = btc.borrow();
            // The anchored chain is the anchor and, when early peg items went in, the block they named
            // above it (the peg cursor): either one replaced is a reorg deeper than N.
            let cursor = ledger::peg_cursor(state).unwrap_or_default().map(|c| c.btc_block);
            let reorged = [Some(*anchor), cursor].into_iter().flatten().find_map(|a| {
                match peg::check_in_best_chain(&*snap, to_peg(&a)) {
                    Err(why @ peg::AnchorRejection::PreviousAnchorReorged { .. }) => Some(why),
                    _ => None,
                }
            });
            if let Some(why) = reorged {
                error!(%height, anchor = anchor.height.get(), reason = %why, "reporting a Bitcoin reorg deeper than N");
                kinds.push(ledger::ValidatorTxKind::ReportReorg { anchor: *anchor });
            }
        }
        if let Some(resume) = *self.resume_request.borrow() {
            if halt.is_halted() && !halt.resume_votes.iter().any(|(_, v)| *v == me) {
                kinds.push(ledger::ValidatorTxKind::ResumePeg { anchor: resume });
            }
        }
        kinds.extend(self.fee_rate_vote(cs, state, height, me));
        let genesis = *cs.chain().genesis_hash();
        kinds
            .into_iter()
            .map(|kind| {
                let tx = ledger::ValidatorTx { validator: me, height, kind };
                ledger::Tx::Validator(tx.sign(&self.keys.consensus, &genesis))
            })
            .collect()
    }

    /// This validator's fee-rate vote, when it has none in state, its rate changed, or it is half as old as
    /// votes may be: the highest of its bitcoind's rate, its operator's floor and the chain's floor. None
    /// while its bitcoind does not answer (its old vote then ages out).
    fn fee_rate_vote<S: StateReader>(
        &self,
        cs: &ChainState,
        state: &S,
        height: Height,
        me: ValidatorIndex,
    ) -> Option<ledger::ValidatorTxKind> {
        // Only two fields: the snapshot also holds the deposit index, too big to clone per proposal.
        let (best, estimate) = {
            let snap = self.btc.as_ref()?.borrow();
            (snap.best, snap.fee_rate_sat_vb)
        };
        best?;
        let chain = cs.chain();
        let want = estimate
            .unwrap_or(0)
            .max(self.fee_rate_floor_sat_vb)
            .max(chain.params().pegin_fee_rate_sat_vb)
            .clamp(1, ledger::fee_rate::MAX_FEE_RATE);
        let rates = ledger::fee_rate::fee_rates(state).ok()?;
        let refresh = chain.params().fee_vote_max_age / 2;
        match rates.votes.iter().find(|(v, _, _)| *v == me) {
            Some((_, rate, at)) if *rate == want && at.get().saturating_add(refresh) > height.get() => None,
            _ => Some(ledger::ValidatorTxKind::FeeRateVote { sat_per_vb: want }),
        }
    }

    /// Keeps a claim for the follower to verify and proposers to mint; refused when already minted, already
    /// pending, or when its source has no room left (see [`crate::claims`] for who may evict whom).
    pub fn add_claim(
        &mut self,
        cs: &ChainState,
        claim: crate::pegin::PegClaim,
        source: ClaimSource,
    ) -> Result<(), CommandError> {
        if let Some(record) = cs.state().get_pegin(&claim.outpoint)? {
            return Err(CommandError::AlreadyMinted { outpoint: claim.outpoint, record: Box::new(record) });
        }
        // Keyed by the whole claim, not the outpoint: a wrong claim (another recipient, another block)
        // must not keep the right one out; at most one of them can ever be confirmed.
        let rejected = self.btc.as_ref().is_some_and(|b| b.borrow().rejected_claims.iter().any(|(c, _)| *c == claim));
        let added = self.claim_store.add(claim, source, cs.tip(), rejected)?;
        if !added.evicted.is_empty() {
            debug!(evicted = added.evicted.len(), "unverified gossip claims evicted for a new one");
        }
        self.publish_claims();
        Ok(())
    }

    /// Hands the pending claims to the follower (and the status) when they changed.
    fn publish_claims(&self) {
        let list = self.claim_store.list();
        self.claims.send_if_modified(|old| {
            let changed = *old != list;
            *old = list;
            changed
        });
    }

    /// Takes our bitcoind's verdicts on pending claims: confirmed ones become unevictable, rejected ones
    /// are dropped now rather than kept until their TTL.
    pub fn apply_claim_verdicts(&mut self) {
        let Some(btc) = &self.btc else { return };
        let (verified, rejected) = {
            let snap = btc.borrow();
            let verified: HashSet<crate::pegin::PegClaim> = snap
                .claims
                .iter()
                .map(|d| {
                    let m = crate::pegin::mint_for(d);
                    crate::pegin::PegClaim { outpoint: m.outpoint, recipient: m.recipient, btc_block: m.btc_block.hash }
                })
                .collect();
            let rejected: HashSet<crate::pegin::PegClaim> =
                snap.rejected_claims.iter().map(|(c, _)| c.clone()).collect();
            (verified, rejected)
        };
        if self.claim_store.apply_verdicts(&verified, &rejected) {
            self.publish_claims();
        }
    }

    /// Execution sweeps earlier wallets and refreshes coins nearing the emergency delay at every interval
    /// height; what is still due right after one could not be swept (the fee pool cannot pay, or the coins
    /// do not cover their own fee). Operators must hear of it: past the delay, the emergency keys can spend.
    fn warn_unswept_coins(&self, cs: &ChainState, height: Height, fs: &ledger::FederationState) {
        let chain = cs.chain();
        if !height.get().is_multiple_of(chain.params().pegout_interval) {
            return;
        }
        let state = cs.state();
        if ledger::peg_halt(&state).is_ok_and(|h| h.is_halted()) {
            return;
        }
        let Ok(Some(meta)) = state.chain_meta() else { return };
        let Ok(spendable) = ledger::batching::spendable_utxos(&state) else { return };
        let in_force = fs.in_force().epoch;
        let (mut old, mut aging) = (0usize, 0usize);
        for o in &spendable.0 {
            let Ok(Some(u)) = state.get_federation_utxo(o) else { continue };
            if u.epoch != in_force {
                old += 1;
            } else if ledger::sweep::refresh_due(chain, u.btc_block.height, meta.btc_anchor.height) {
                aging += 1;
            }
        }
        if old + aging > 0 {
            let pool = state.get_account(&ledger::fee_pool_id()).ok().flatten().map(|a| a.balance);
            warn!(%height, earlier_wallet_outputs = old, outputs_due_for_refresh = aging, fee_pool = ?pool,
                "federation outputs could not be swept or refreshed: fund the fee pool (pay the plain federation \
                 address); outputs left past the emergency delay can be spent by the emergency keys");
        }
    }
}
