//! The properties checked after every height.

use super::config::{EARLY_ITEMS_BOUND, HALT_BOUND, LIVENESS_BOUND};
use super::failure::SimFailure;
use super::world::World;
use crate::btc_follow::{from_peg, to_peg};
use ledger::{BtcAnchor, StateReader};
use primitives::Height;
use std::collections::HashSet;

impl World {
    pub(super) fn check_invariants(&mut self) -> Result<(), SimFailure> {
        let seed = self.cfg.seed;
        let state = self.store.snapshot(self.height);
        let meta = state.chain_meta().map_err(|e| self.state_err(e))?.expect("meta");
        let halt = ledger::peg_halt(&state).map_err(|e| self.state_err(e))?;
        // Peg liveness: a quorum of bitcoinds is ready for a move and the anchor does not make one for too
        // long. While the anchor is reorged away or the peg halted, the halt bound applies instead.
        let p = self.chain.params();
        let quorum = self.snapshot_at(self.quorum_tip(), meta.btc_anchor.height.get());
        let ready = peg::choose_anchor(&*quorum, to_peg(&meta.btc_anchor), p.pegin_confirmations, p.max_anchor_step);
        let moved = self.trace_anchor_moved(meta.btc_anchor);
        let halted = halt.is_halted() || halt.resume_to.is_some();
        // Early peg items are progress toward the move (the next BTC block's items go in ahead of it), but
        // they must end in a move within the longer bound.
        let behind = ready.is_some() && !moved && !halted;
        self.waiting = if behind && !self.early_in_last { self.waiting + 1 } else { 0 };
        self.since_move = if behind { self.since_move + 1 } else { 0 };
        if self.waiting > LIVENESS_BOUND || self.since_move > EARLY_ITEMS_BOUND {
            return Err(SimFailure::AnchorStuck {
                seed,
                height: self.height,
                anchor: meta.btc_anchor.height.get(),
                tip: self.btc.tip(),
                heights: self.since_move,
            });
        }
        if let Some(since) = self.episode.reorged_at.filter(|_| self.episode.resumed_at.is_none()) {
            if self.height - since > HALT_BOUND {
                return Err(SimFailure::HaltStuck { seed, height: self.height, heights: self.height - since });
            }
        }
        // The epochs in state are exactly the approved changes that reached their height.
        let fs = ledger::federation_state(&self.chain, &state).map_err(|e| self.state_err(e))?;
        let got: Vec<Vec<u32>> =
            fs.epochs.iter().map(|e| e.validators.iter().map(|v| self.identity(&v.consensus_key)).collect()).collect();
        let want = self.episode.epochs_by(Height(self.height + 1));
        if got != want {
            return Err(SimFailure::WrongEpochs { seed, height: self.height, got, want });
        }
        // Every coin state holds is on Bitcoin (at or below the anchor) with the script its record says.
        let mut coins = ledger::batching::spendable_utxos(&state).map_err(|e| self.state_err(e))?.0;
        let index = ledger::batching::batch_index(&state).map_err(|e| self.state_err(e))?;
        for id in &index.in_flight {
            if let Some(b) = ledger::batching::batch(&state, *id).map_err(|e| self.state_err(e))? {
                coins.extend(b.inputs.iter().map(|i| i.outpoint));
            }
        }
        // Every version still collecting shares passes the share-time breaker: honest batches never trip it.
        for id in &index.in_flight {
            let Some(b) = ledger::batching::batch(&state, *id).map_err(|e| self.state_err(e))? else { continue };
            if !b.is_signed() {
                ledger::breaker::check_batch(&self.chain, &state, &b).map_err(|reason| SimFailure::BreakerTripped {
                    seed,
                    height: self.height,
                    reason,
                })?;
            }
        }
        let cursor = ledger::peg_cursor(&state).map_err(|e| self.state_err(e))?;
        for o in coins {
            let Some(u) = state.get_federation_utxo(&o).map_err(|e| self.state_err(e))? else { continue };
            let fail = |reason| SimFailure::CoinNotOnBitcoin { seed, height: self.height, outpoint: o, reason };
            let Some((out, h, coinbase)) = self.btc.created(&bitcoin::OutPoint { txid: o.txid, vout: o.vout }) else {
                return Err(fail("no such output in the best chain"));
            };
            let script = match u.tweak {
                None => self.wallet(u.epoch).script_pubkey(),
                Some(r) => self.deposit_script(u.epoch, &r),
            };
            // Above the anchor only when minted early: right above it, in the block the peg cursor pins, or
            // in the block of that height the episode's deep reorg replaced (same transactions, new hash, as
            // for anchored coins; the halt cleared the cursor or is about to).
            let best = from_peg((h, self.btc.blocks[h as usize].hash));
            let pinned = cursor.is_some_and(|c| c.btc_block == u.btc_block && best == u.btc_block);
            let replaced = self.episode.reorged_at.is_some() && best != u.btc_block;
            let early = h == meta.btc_anchor.height.get() + 1 && u.btc_block.height.get() == h && (pinned || replaced);
            if h > meta.btc_anchor.height.get() && !early {
                return Err(fail("above the anchor"));
            }
            if out.script_pubkey != script {
                return Err(fail("its script is not the one the record's epoch and tweak give"));
            }
            if out.value != u.amount || coinbase != u.coinbase {
                return Err(fail("amount or coinbase flag differ"));
            }
        }
        // No batch confirms twice.
        let mut seen = HashSet::new();
        for b in &self.btc.blocks {
            for t in &b.txids {
                if let Some(id) = self.versions.get(t) {
                    if !seen.insert(*id) {
                        return Err(SimFailure::PaidTwice { seed, height: self.height, batch: *id });
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the last block moved the anchor (compared with the block before it).
    fn trace_anchor_moved(&self, now: BtcAnchor) -> bool {
        let before =
            self.store.snapshot(self.height.saturating_sub(1)).chain_meta().ok().flatten().map(|m| m.btc_anchor);
        before != Some(now)
    }
}
