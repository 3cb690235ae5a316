//! Which federation coins are worth spending: why an attacker's dust never blocks a batch, sweep or refresh.
//!
//! Anyone can pay the federation's addresses any amount, and deposits below the minimum are still recorded
//! as held coins (`PegTotals::below_minimum`). A coin whose input costs more at the agreed fee rate than it
//! is worth only lowers what a transaction spending it can pay. Worse, a sweep or refresh that took coins
//! in age order would take the attacker's hundred oldest dust coins, fail to pay its own fee, and fail again
//! at every interval, so old-epoch coins would never reach the wallet in force and the emergency clock of
//! real coins would run out.
//!
//! The rule, the same in every builder (payout batches, bumps, sweeps, refreshes), from state alone so every
//! node agrees: a coin is **economic** when its value is above the cost of spending it at the agreed rate,
//! [`peg::fee::planned_input_vbytes`] of its wallet at that rate (the same input cost a peg-in is charged). Uneconomic coins are left
//! where they are: still held and counted in `btc_held` (the reserve promise does not rely on them being
//! spendable cheaply), reported by [`uneconomic_coins`] in the peg status, and picked up by a later
//! interval once the rate falls enough for them to pay their way. Builders take economic coins by value
//! (largest first) within the input cap, so whatever dust sits beside a real coin, the real coin is taken.

use crate::batch_records::{spendable_utxos, Candidate};
use crate::federation::FederationState;
use crate::genesis::Chain;
use crate::state::{StateError, StateKey, StateReader};
use bitcoin::{Amount, FeeRate};
use std::collections::BTreeMap;

/// What spending one input of `wallet` costs at `rate`: the size a batch plans for it (the largest
/// satisfaction for the wsh wallet, the key path for taproot custody), as the peg-in fee is priced.
pub fn input_cost(wallet: &peg::Federation, rate: FeeRate) -> Result<Amount, peg::PegError> {
    let vbytes = peg::fee::planned_input_vbytes(wallet)?;
    rate.fee_vb(vbytes).ok_or(peg::PegError::FeeOverflow { vbytes, rate })
}

/// Whether a coin of `amount` is worth more than `cost`, what spending it costs.
pub fn is_economic(amount: Amount, cost: Amount) -> bool {
    amount > cost
}

/// The economic ones of `candidates` (all of one wallet, whose input costs `cost`), by value: largest
/// first, then oldest, then by outpoint (a total order, so every node takes the same ones).
pub fn by_value(candidates: impl IntoIterator<Item = Candidate>, cost: Amount) -> Vec<Candidate> {
    let mut coins: Vec<Candidate> = candidates.into_iter().filter(|c| is_economic(c.input.amount, cost)).collect();
    coins.sort_by(|a, b| {
        b.input
            .amount
            .cmp(&a.input.amount)
            .then(a.confirmed_at.cmp(&b.confirmed_at))
            .then(a.input.outpoint.cmp(&b.input.outpoint))
    });
    coins
}

/// Held coins not worth spending now: counted in `btc_held`, left out of every batch until the rate falls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UneconomicCoins {
    /// How many spendable federation coins are uneconomic at the agreed rate.
    pub coins: u64,
    /// Their value.
    pub amount: Amount,
}

/// The spendable federation coins that are uneconomic at the agreed rate after `state`.
pub fn uneconomic_coins<S: StateReader>(chain: &Chain, state: &S) -> Result<UneconomicCoins, StateError> {
    let federation: FederationState = crate::federation::federation_state(chain, state)?;
    let rate = crate::fee_rate::agreed_bitcoin_fee_rate(chain, state)?;
    let mut costs: BTreeMap<u32, Amount> = BTreeMap::new();
    let mut out = UneconomicCoins::default();
    for o in spendable_utxos(state)?.0 {
        let Some(u) = state.get_federation_utxo(&o)? else { continue };
        let cost = match costs.get(&u.epoch) {
            Some(c) => *c,
            None => {
                // Every stored epoch's wallet built when it was accepted (`check_proposal`); one that does
                // not build now is corrupt state.
                let corrupt = |reason: String| StateError::Corrupt { key: StateKey::Federation, reason };
                let epoch = federation.epoch(u.epoch).ok_or_else(|| corrupt(format!("no epoch {}", u.epoch)))?;
                let wallet = chain.wallet(epoch).map_err(|e| corrupt(e.to_string()))?;
                let cost = input_cost(&wallet, rate).map_err(|e| corrupt(e.to_string()))?;
                costs.insert(u.epoch, cost);
                cost
            }
        };
        if !is_economic(u.amount, cost) {
            out.coins = out.coins.saturating_add(1);
            out.amount = out.amount.checked_add(u.amount).unwrap_or(Amount::MAX_MONEY);
        }
    }
    Ok(out)
}
