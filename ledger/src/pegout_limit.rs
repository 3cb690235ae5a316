//! The peg-out circuit breaker: a rolling limit on what payout batches pay to burners.
//!
//! Why: the other peg rules guard against hostile users and up to f faulty validators; this one bounds the
//! damage of what those rules did not foresee (a bug that credits too much, a stolen account holding a large
//! balance). At most `Params::pegout_limit` leaves the federation's wallet to burners per
//! `Params::pegout_limit_window` Bitcoin blocks, so operators have time to notice and halt the peg before
//! the reserves are gone. It bounds what the ledger asks the federation to sign, not what k peg keys could
//! sign outside it.
//!
//! The rule, pure and by the anchor so every node agrees without a clock:
//! - a payout batch built by a block whose anchor is at BTC height `A` counts its payouts (the burns'
//!   amounts; its Bitcoin fee is the fee pool's and is not counted) at `A`;
//! - at a block whose anchor is at `H`, the amount used is what was counted at heights `h` with
//!   `h + window > H`;
//! - a batch takes burns from the head of the queue, in queue order, while used plus taken stays within the
//!   limit; the first burn that does not fit stops it (no skipping, so a small burn never overtakes a
//!   large one and every burn is paid in its turn); the rest wait in the queue, visibly (`getpegoutstatus`,
//!   `getfederationinfo`);
//! - a single burn above the whole limit could never be paid and would block the queue behind it forever,
//!   so it is refused when burned ([`TxError::PegOutAboveLimit`]).
//!
//! A window of 0 turns the breaker off. Invariant owned here: the window record holds at most one entry per
//! anchor height, all still inside the window when written (older ones are dropped), so it stays within
//! `window + 1` entries.

use crate::codec;
use crate::error::TxError;
use crate::genesis::{Chain, Params};
use crate::overlay::Overlay;
use crate::pegout::{pegout_queue, BurnRecord};
use crate::state::{StateError, StateKey, StateReader};
use bitcoin::Amount;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{canonical_bytes, BtcHeight};
use serde::{Deserialize, Serialize};

/// What payout batches paid, by the anchor height of the block that built them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct WindowEntry {
    /// The anchor height of the building block(s).
    pub btc_height: BtcHeight,
    /// The payouts of the batches built at that anchor height.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub paid: Amount,
}

/// The payouts inside the rolling window, oldest first (one entry per anchor height).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PegOutWindow {
    /// Ascending by height.
    pub entries: Vec<WindowEntry>,
}

/// Whether an entry counted at `h` is still inside a `window` seen from anchor height `anchor`.
fn inside(h: BtcHeight, anchor: BtcHeight, window: u32) -> bool {
    u64::from(h.0) + u64::from(window) > u64::from(anchor.0)
}

impl PegOutWindow {
    /// Paid by batches inside the window seen from `anchor`.
    pub fn used_at(&self, anchor: BtcHeight, window: u32) -> Amount {
        self.entries.iter().filter(|e| inside(e.btc_height, anchor, window)).map(|e| e.paid).sum()
    }

    /// The first anchor height, from `anchor` on, at which `need` more fits under `limit`; `None` if `need`
    /// is above the limit itself.
    pub fn fits_from(&self, anchor: BtcHeight, window: u32, limit: Amount, need: Amount) -> Option<BtcHeight> {
        if need > limit {
            return None;
        }
        let expiries = self.entries.iter().map(|e| BtcHeight(e.btc_height.0.saturating_add(window)));
        std::iter::once(anchor)
            .chain(expiries.filter(|h| *h > anchor))
            .find(|h| self.used_at(*h, window).checked_add(need).is_some_and(|t| t <= limit))
    }

    /// The height at which everything counted now has left the window (the last entry's expiry).
    fn all_out_at(&self, anchor: BtcHeight, window: u32) -> BtcHeight {
        self.entries
            .iter()
            .map(|e| BtcHeight(e.btc_height.0.saturating_add(window)))
            .max()
            .unwrap_or(anchor)
            .max(anchor)
    }
}

/// The window record (empty when never written).
pub fn pegout_window<S: StateReader>(state: &S) -> Result<PegOutWindow, StateError> {
    let key = StateKey::PegOutWindow;
    state
        .get_raw(&key)?
        .map(|b| borsh::from_slice(&b).map_err(|e| StateError::Corrupt { key, reason: e.to_string() }))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Whether the breaker is on (a non-zero window).
pub fn limit_is_on(params: &Params) -> bool {
    params.pegout_limit_window > 0
}

/// Refuses a burn that no window could ever pay.
pub fn check_burn_amount(params: &Params, amount: Amount) -> Result<(), TxError> {
    if limit_is_on(params) && amount > params.pegout_limit {
        return Err(TxError::PegOutAboveLimit {
            amount,
            limit: params.pegout_limit,
            window: params.pegout_limit_window,
        });
    }
    Ok(())
}

/// The breaker as of a state: what `getfederationinfo` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PegOutLimitStatus {
    /// `Params::pegout_limit`.
    pub limit: Amount,
    /// `Params::pegout_limit_window`, BTC blocks.
    pub window: u32,
    /// The anchor height the figures are seen from (the state's).
    pub anchor: BtcHeight,
    /// Paid by payout batches inside the window.
    pub used: Amount,
    /// What a batch built at this anchor may still pay.
    pub available: Amount,
    /// When the burn at the head of the queue does not fit now: the BTC height from which it does.
    pub head_waits_until: Option<BtcHeight>,
}

/// The breaker's figures after `state` under `params`; `None` when it is off.
pub fn pegout_limit_status<S: StateReader>(
    params: &Params,
    state: &S,
) -> Result<Option<PegOutLimitStatus>, StateError> {
    if !limit_is_on(params) {
        return Ok(None);
    }
    let (limit, window) = (params.pegout_limit, params.pegout_limit_window);
    let anchor = state.chain_meta()?.map(|m| m.btc_anchor.height).unwrap_or_default();
    let w = pegout_window(state)?;
    let used = w.used_at(anchor, window);
    let head = match pegout_queue(state)?.queued.first() {
        Some(id) => crate::pegout::burn(state, *id)?.map(|b| b.amount),
        None => None,
    };
    let head_waits_until = head
        .filter(|a| used.checked_add(*a).is_none_or(|t| t > limit))
        .map(|a| w.fits_from(anchor, window, limit, a).unwrap_or_else(|| w.all_out_at(anchor, window)));
    Ok(Some(PegOutLimitStatus {
        limit,
        window,
        anchor,
        used,
        available: limit.checked_sub(used).unwrap_or(Amount::ZERO),
        head_waits_until,
    }))
}

/// Why a queued burn waits on the breaker, if it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitWait {
    /// Paid inside the window now.
    pub used: Amount,
    /// The limit.
    pub limit: Amount,
    /// The window, BTC blocks.
    pub window: u32,
    /// The burn is not paid before the anchor reaches this BTC height (the height from which it and the
    /// burns before it fit; a lower bound when they need more than one window).
    pub not_before: BtcHeight,
}

/// Whether `burn` (queued, not batched) waits on the breaker after `state`: the burns before it in the queue
/// and itself do not fit in what the window has left.
pub fn burn_waits_on_limit<S: StateReader>(
    params: &Params,
    state: &S,
    burn: &BurnRecord,
) -> Result<Option<LimitWait>, StateError> {
    if !limit_is_on(params) || burn.batch.is_some() {
        return Ok(None);
    }
    let queue = pegout_queue(state)?;
    let Some(pos) = queue.queued.iter().position(|id| *id == burn.id) else { return Ok(None) };
    let mut ahead = Amount::ZERO;
    for id in &queue.queued[..pos] {
        if let Some(b) = crate::pegout::burn(state, *id)? {
            ahead = ahead.checked_add(b.amount).unwrap_or(Amount::MAX_MONEY);
        }
    }
    let need = ahead.checked_add(burn.amount).unwrap_or(Amount::MAX_MONEY);
    let (limit, window) = (params.pegout_limit, params.pegout_limit_window);
    let anchor = state.chain_meta()?.map(|m| m.btc_anchor.height).unwrap_or_default();
    let w = pegout_window(state)?;
    let used = w.used_at(anchor, window);
    if used.checked_add(need).is_some_and(|t| t <= limit) {
        return Ok(None);
    }
    // More than one window's worth with the burns ahead: those are paid at this anchor at the earliest, so
    // it cannot fit before they leave the window.
    let not_before = w
        .fits_from(anchor, window, limit, need)
        .unwrap_or_else(|| w.all_out_at(anchor, window).max(BtcHeight(anchor.0.saturating_add(window))));
    Ok(Some(LimitWait { used, limit, window, not_before }))
}

impl<S: StateReader> Overlay<'_, S> {
    /// How many of `burns` (the head of the queue, in order) a batch built at `anchor` may pay.
    pub(crate) fn burns_within_limit(
        &self,
        chain: &Chain,
        anchor: BtcHeight,
        burns: &[BurnRecord],
    ) -> Result<usize, StateError> {
        let params = chain.params();
        if !limit_is_on(params) {
            return Ok(burns.len());
        }
        let mut used = pegout_window(self)?.used_at(anchor, params.pegout_limit_window);
        for (n, b) in burns.iter().enumerate() {
            match used.checked_add(b.amount).filter(|t| *t <= params.pegout_limit) {
                Some(t) => used = t,
                None => return Ok(n),
            }
        }
        Ok(burns.len())
    }

    /// Counts a payout batch paying `burns`, built at `anchor`, in the window (dropping what left it).
    pub(crate) fn count_payouts(
        &mut self,
        chain: &Chain,
        anchor: BtcHeight,
        burns: &[BurnRecord],
    ) -> Result<(), TxError> {
        let params = chain.params();
        if !limit_is_on(params) {
            return Ok(());
        }
        let paid =
            burns.iter().try_fold(Amount::ZERO, |s, b| s.checked_add(b.amount)).ok_or(TxError::PegTotalOverflow)?;
        let mut w = pegout_window(self)?;
        w.entries.retain(|e| inside(e.btc_height, anchor, params.pegout_limit_window));
        match w.entries.iter_mut().find(|e| e.btc_height == anchor) {
            Some(e) => e.paid = e.paid.checked_add(paid).ok_or(TxError::PegTotalOverflow)?,
            None => {
                let at = w.entries.partition_point(|e| e.btc_height < anchor);
                w.entries.insert(at, WindowEntry { btc_height: anchor, paid });
            }
        }
        self.writes.insert(StateKey::PegOutWindow, canonical_bytes(&w));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(entries: &[(u32, u64)]) -> PegOutWindow {
        PegOutWindow {
            entries: entries
                .iter()
                .map(|(h, s)| WindowEntry { btc_height: BtcHeight(*h), paid: Amount::from_sat(*s) })
                .collect(),
        }
    }

    #[test]
    fn the_window_counts_what_was_paid_in_the_last_window_blocks() {
        let win = w(&[(100, 5), (150, 7)]);
        assert_eq!(win.used_at(BtcHeight(150), 144), Amount::from_sat(12));
        assert_eq!(win.used_at(BtcHeight(243), 144), Amount::from_sat(12));
        assert_eq!(win.used_at(BtcHeight(244), 144), Amount::from_sat(7), "100 + 144 is out");
        assert_eq!(win.used_at(BtcHeight(294), 144), Amount::ZERO);
        // 10 fits once the entry at 100 is out; 13 is above a limit of 12; 0 fits now.
        let limit = Amount::from_sat(12);
        assert_eq!(win.fits_from(BtcHeight(150), 144, limit, Amount::from_sat(5)), Some(BtcHeight(244)));
        assert_eq!(win.fits_from(BtcHeight(150), 144, limit, Amount::from_sat(10)), Some(BtcHeight(294)));
        assert_eq!(win.fits_from(BtcHeight(150), 144, limit, Amount::ZERO), Some(BtcHeight(150)));
        assert_eq!(win.fits_from(BtcHeight(150), 144, limit, Amount::from_sat(13)), None);
    }
}
