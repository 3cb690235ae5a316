//! Sweeps: batches that pay no one and move federation coins to the wallet in force.
//!
//! Two reasons, one mechanism (`peg::plan_sweep`, recorded like any batch and signed, bumped and settled
//! the same way):
//! - **migration**: after a federation change, the coins of earlier epochs move to the new wallet. The old
//!   epoch's keys sign (its holders need not be validators any more: a share is a `PegShare` transaction
//!   whose ECDSA signatures are its authority). Deposits to old addresses minted later are swept the same way;
//! - **refresh**: with emergency keys, `older(D)` counts from each output's confirmation. An output whose
//!   confirmation is `D - refresh_margin` blocks behind the anchor is moved back to the federation, which
//!   restarts its clock: the emergency path never opens while the federation works.
//!
//! Built at `pegout_interval` heights after the payout batch (which may already spend some of the same
//! coins), from state alone, so every node records the same batches. At most one sweep per epoch per
//! interval, at most `max_inputs` coins each, the economic ones only, largest first ([`crate::economic`]):
//! dust never blocks a sweep. The fee pool pays each sweep's fee as it pays a payout
//! batch's (into `unpaid_burns`, so the reserve promise holds at every height); when it cannot, the sweep
//! waits for the next interval.

use crate::batching::{BatchKind, Candidate};
use crate::error::TxError;
use crate::genesis::Chain;
use crate::overlay::Overlay;
use crate::state::{ChainMeta, StateReader};

/// Whether a coin that confirmed at `confirmed_at` is due for a refresh at `anchor`: `delay - margin` blocks
/// deep or more.
pub fn refresh_due(chain: &Chain, confirmed_at: primitives::BtcHeight, anchor: primitives::BtcHeight) -> bool {
    let Some(e) = &chain.genesis().emergency else { return false };
    let due_after = e.delay.saturating_sub(chain.params().refresh_margin);
    anchor.get() >= confirmed_at.get().saturating_add(due_after)
}

impl<S: StateReader> Overlay<'_, S> {
    /// At `pegout_interval` heights (unless the peg is halted): one sweep per earlier epoch holding coins,
    /// oldest epoch first, then one refresh of the coins in force that near the emergency delay.
    pub(crate) fn build_sweeps_if_due(&mut self, chain: &Chain, meta: &ChainMeta) -> Result<(), TxError> {
        let params = chain.params();
        if !meta.height.get().is_multiple_of(params.pegout_interval) || crate::halt::peg_halt(self)?.is_halted() {
            return Ok(());
        }
        let federation = crate::federation::federation_state(chain, self)?;
        let in_force = federation.in_force().clone();
        let target = chain.wallet(&in_force).map_err(TxError::wallet)?.script_pubkey();
        let limits = peg::BatchLimits::STANDARD;
        for epoch in &federation.epochs[..federation.epochs.len() - 1] {
            let (_, candidates) = self.spendable_candidates(meta.btc_anchor.height)?;
            let coins: Vec<Candidate> = candidates.into_iter().filter(|c| c.epoch == epoch.epoch).collect();
            self.sweep(chain, meta, epoch, &in_force, &coins, BatchKind::Sweep, &target, limits)?;
        }
        let (_, candidates) = self.spendable_candidates(meta.btc_anchor.height)?;
        let aging: Vec<Candidate> = candidates
            .into_iter()
            .filter(|c| c.epoch == in_force.epoch && refresh_due(chain, c.confirmed_at, meta.btc_anchor.height))
            .collect();
        self.sweep(chain, meta, &in_force, &in_force, &aging, BatchKind::Refresh, &target, limits)
    }

    /// Sweeps up to `max_inputs` of the economic `coins` of `epoch` (largest first) to `target`.
    #[allow(clippy::too_many_arguments)]
    fn sweep(
        &mut self,
        chain: &Chain,
        meta: &ChainMeta,
        epoch: &crate::federation::FederationEpoch,
        in_force: &crate::federation::FederationEpoch,
        coins: &[Candidate],
        kind: BatchKind,
        target: &bitcoin::ScriptBuf,
        limits: peg::BatchLimits,
    ) -> Result<(), TxError> {
        if coins.is_empty() {
            return Ok(());
        }
        let wallet = chain.wallet(epoch).map_err(TxError::wallet)?;
        let rate = crate::fee_rate::agreed_bitcoin_fee_rate(chain, self)?;
        // Only coins worth their input, largest first (see `crate::economic`): dust an attacker paid to our
        // addresses stays where it is (held, and reported as uneconomic) and never takes a real coin's place
        // under the input cap. What is left out now is taken at a later interval.
        let cost = crate::economic::input_cost(&wallet, rate).map_err(TxError::wallet)?;
        let mut coins = crate::economic::by_value(coins.iter().copied(), cost);
        coins.truncate(limits.max_inputs);
        if coins.is_empty() {
            return Ok(());
        }
        let inputs: Vec<peg::BatchInput> = coins.iter().map(|c| c.input).collect();
        // Economic coins that together still cannot pay the transaction's fixed part and a non-dust output
        // wait too (deterministically, for a lower rate or more coins).
        let Ok(plan) = peg::plan_sweep(&wallet, *chain.genesis_hash().as_bytes(), &inputs, rate, limits, target) else {
            return Ok(());
        };
        self.record_batch(meta, &plan, kind, epoch, in_force.epoch, &mut [])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
