//! Peg-out liveness: every burn is eventually paid, exactly once.
//!
//! Why a separate phase: while hostile users act, a burn may wait for many good reasons (no coins yet, a
//! fee spike, the rolling limit). What must never happen is a burn that waits forever. So each run ends
//! with a quiet tail: Bitcoin mines every height, no reorg, no lag, no new hostile input (the Byzantine
//! validator stays), and one honest deposit to a registered user gives the wallet in force coins to pay
//! with (genesis balances are not backed by BTC). The fee pool gets nothing extra: a burn that waits on it
//! is a finding. The tail ends when every burn within the rolling limit is paid, or after
//! [`super::config::TAIL_BOUND`] heights with the first unpaid burn named and why it waits ([`StuckReason`]).
//! Then every settled burn's payout is checked in the batch version Bitcoin confirmed.
//!
//! The driver (`mod.rs`) runs the tail, since it steps the world; this file holds what the tail asks and
//! checks: the unpaid burns, why one waits, and each payout made once.

use super::failure::{SimFailure, StuckReason};
use super::world::World;
use bitcoin::Amount;
use ledger::{BurnRecord, StateReader};

impl World {
    /// Burns not paid and not waiting on the rolling limit; how many wait on it; how many burns there are.
    pub(super) fn unpaid(&self) -> Result<(Vec<BurnRecord>, u64, u64), SimFailure> {
        let state = self.store.snapshot(self.height);
        let err = |e| self.state_err(e);
        let queue = ledger::pegout::pegout_queue(&state).map_err(err)?;
        let (mut unpaid, mut on_limit) = (Vec::new(), 0);
        for id in 0..queue.next_burn_id {
            let Some(b) = ledger::pegout::burn(&state, id).map_err(err)? else { continue };
            if b.paid_in.is_some() {
                continue;
            }
            if ledger::pegout_limit::burn_waits_on_limit(self.chain.params(), &state, &b).map_err(err)?.is_some() {
                on_limit += 1;
            } else {
                unpaid.push(b);
            }
        }
        Ok((unpaid, on_limit, queue.next_burn_id))
    }

    /// Why burn `b` is not paid yet, as far as state and Bitcoin tell.
    pub(super) fn why_waiting(&self, b: &BurnRecord) -> Result<StuckReason, SimFailure> {
        let state = self.store.snapshot(self.height);
        let err = |e| self.state_err(e);
        if ledger::peg_halt(&state).map_err(err)?.is_halted() {
            return Ok(StuckReason::Halted);
        }
        let anchor = state.chain_meta().map_err(err)?.expect("meta").btc_anchor;
        if let Some(id) = b.batch {
            let batch = ledger::batching::batch(&state, id).map_err(err)?.expect("a burn's batch is recorded");
            if !batch.is_signed() {
                let (shares, needed) = (batch.shares.len(), batch.signers_needed);
                return Ok(StuckReason::Unsigned { batch: id, shares, needed });
            }
            let confirmed = batch.version_txids().find_map(|t| self.btc.confirmed_at(&t));
            return Ok(match confirmed {
                Some(btc_height) => StuckReason::Unsettled { batch: id, btc_height, anchor: anchor.height.get() },
                None => StuckReason::Unconfirmed { batch: id, versions: batch.bumps() + 1 },
            });
        }
        let fs = ledger::federation_state(&self.chain, &state).map_err(err)?;
        let in_force = fs.in_force().epoch;
        let (mut spendable, mut held) = (Amount::ZERO, Amount::ZERO);
        for o in ledger::batching::spendable_utxos(&state).map_err(err)?.0 {
            let Some(u) = state.get_federation_utxo(&o).map_err(err)? else { continue };
            held += u.amount;
            if u.epoch == in_force && u.is_mature_at(anchor.height) {
                spendable += u.amount;
            }
        }
        let queue = ledger::pegout::pegout_queue(&state).map_err(err)?;
        let mut needed = Amount::ZERO;
        for id in queue.queued.iter().take_while(|id| **id <= b.id) {
            needed += ledger::pegout::burn(&state, *id).map_err(err)?.map_or(Amount::ZERO, |b| b.amount);
        }
        let pool = state.get_account(&ledger::fee_pool_id()).map_err(err)?.map_or(Amount::ZERO, |a| a.balance);
        // A rough batch: a few inputs, the queued payouts and change, at the agreed rate.
        let rate = ledger::fee_rate::agreed_bitcoin_fee_rate(&self.chain, &state).map_err(err)?;
        let vbytes = 200 + 43 * queue.queued.len() as u64;
        let fee = rate.fee_vb(vbytes).unwrap_or(Amount::MAX_MONEY);
        Ok(if spendable < needed + fee {
            StuckReason::NoCoins { spendable, held, needed }
        } else if pool < fee {
            StuckReason::FeePoolShort { pool, fee }
        } else {
            StuckReason::NotBatched { spendable, pool }
        })
    }

    /// Every settled burn is paid by the batch version Bitcoin confirmed: its output is there.
    pub(super) fn check_paid_once(&self) -> Result<(), SimFailure> {
        let state = self.store.snapshot(self.height);
        let err = |e| self.state_err(e);
        let queue = ledger::pegout::pegout_queue(&state).map_err(err)?;
        for id in 0..queue.next_burn_id {
            let Some(b) = ledger::pegout::burn(&state, id).map_err(err)? else { continue };
            let (Some(batch), Some(_)) = (b.batch, b.paid_in) else { continue };
            let record = ledger::batching::batch(&state, batch).map_err(err)?.expect("a burn's batch is recorded");
            let confirmed = self.btc.blocks.iter().flat_map(|blk| blk.txs.iter().zip(&blk.txids));
            let mut confirmed = confirmed.filter(|(_, txid)| record.version_txids().any(|t| t == **txid));
            let paid = confirmed.any(|(tx, _)| {
                tx.output.iter().any(|o| o.value == b.amount && o.script_pubkey.as_bytes() == b.script_pubkey)
            });
            if !paid {
                return Err(SimFailure::SettledUnpaid { seed: self.cfg.seed, burn: id, batch });
            }
        }
        Ok(())
    }
}
