//! Why a burn that is not in a batch yet waits, and what ends the wait.
//!
//! Why it exists: a burn can sit at `burned` for thousands of blocks (finding 10 of issue 20: the only
//! federation coin reserved by a batch in flight, a fee pool short of the batch fee) and users and operators
//! saw no reason. This module names the reason as a type, for `getpegoutstatus`, the CLI, the dashboard,
//! the node's log and its alerts.
//!
//! Invariant owned here: the reason is derived from the very planner block execution builds batches with
//! (`Overlay::plan_payout`, behind `build_batch_if_due`), run on the same state at the same anchor, so
//! what is shown cannot drift from what execution does. The planner's answer is for "if the next batch
//! height were now": state and the anchor can change before it (a settlement, a mint, a vote), so the
//! reason is the current one, recomputed at every tip.

use crate::batching::{batch, batch_index, spendable_utxos, PayoutPlan, PayoutWait};
use crate::error::TxError;
use crate::genesis::Chain;
use crate::overlay::Overlay;
use crate::pegout::{pegout_queue, BurnRecord};
use crate::pegout_limit::burn_waits_on_limit;
use crate::state::{StateError, StateKey, StateReader};
use bitcoin::Amount;
use primitives::{BtcHeight, Height};

/// Why a queued burn is not paid yet, and what ends the wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PegOutWait {
    /// Nothing holds it: the batch built at height `at` (the next multiple of `pegout_interval`) pays it.
    NextBatch {
        /// The sidechain height whose block builds the batch.
        at: Height,
    },
    /// Peg operations are halted (a Bitcoin reorg deeper than N); ends when validators resume the peg.
    PegHalted,
    /// More burns are ahead of it than one batch pays; ends as the batches before it are built.
    BehindFullBatch {
        /// Burns ahead of it in the queue.
        ahead: usize,
        /// Most payouts per batch.
        batch_size: usize,
        /// The next batch height.
        next_batch: Height,
    },
    /// The rolling peg-out limit (the circuit breaker) is reached; ends when the anchor reaches `until`.
    RollingLimit {
        /// Paid inside the window now.
        used: Amount,
        /// The limit per window.
        limit: Amount,
        /// The window, BTC blocks.
        window: u32,
        /// The anchor height from which it (and the burns before it) fits.
        until: BtcHeight,
    },
    /// The spendable federation coins do not cover the batch; ends when a batch in flight settles (its
    /// change comes back), an immature coinbase output matures, or a deposit is minted.
    NoSpendableCoin {
        /// What the coins the builder may spend hold.
        have: Amount,
        /// Payouts plus fee.
        need: Amount,
        /// Batches in flight whose inputs are reserved (they come back, as change, when each settles).
        reserved_by: Vec<u64>,
        /// Coinbase outputs in the spendable set that are not 100 blocks deep yet.
        immature: Amount,
    },
    /// The fee pool holds less than the batch's Bitcoin fee; ends when fees (peg-in, burn) or a payment to
    /// the plain federation address bring it `short_by` more. Operators must act if it lasts.
    FeePoolShort {
        /// The batch's Bitcoin fee.
        fee: Amount,
        /// The pool's balance.
        pool: Amount,
        /// `fee - pool`.
        short_by: Amount,
    },
    /// A payout below its script's dust limit: Bitcoin would not relay the batch. Execution refuses such
    /// burns, so this only shows a rule change; it does not end by itself.
    BelowDust {
        /// The payout.
        amount: Amount,
        /// The least amount that is not dust for its script.
        min: Amount,
    },
    /// The builder refused for another reason (a size limit, an input it cannot sign); does not end by
    /// itself.
    BatchRefused(peg::BatchError),
}

impl PegOutWait {
    /// A short stable name (JSON, metrics labels, logs).
    pub fn code(&self) -> &'static str {
        match self {
            PegOutWait::NextBatch { .. } => "next_batch",
            PegOutWait::PegHalted => "peg_halted",
            PegOutWait::BehindFullBatch { .. } => "behind_full_batch",
            PegOutWait::RollingLimit { .. } => "rolling_limit",
            PegOutWait::NoSpendableCoin { .. } => "no_spendable_coin",
            PegOutWait::FeePoolShort { .. } => "fee_pool_short",
            PegOutWait::BelowDust { .. } => "below_dust",
            PegOutWait::BatchRefused(_) => "batch_refused",
        }
    }

    /// Whether an operator has to act for it to end (the others end by themselves as the chain goes on).
    pub fn needs_operator(&self) -> bool {
        matches!(self, PegOutWait::FeePoolShort { .. } | PegOutWait::BelowDust { .. } | PegOutWait::BatchRefused(_))
    }
}

impl std::fmt::Display for PegOutWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PegOutWait::NextBatch { at } => write!(f, "waiting for the next batch, built at height {at}"),
            PegOutWait::PegHalted => f.write_str("waiting: the peg is halted until validators resume it"),
            PegOutWait::BehindFullBatch { ahead, batch_size, next_batch } => write!(
                f,
                "waiting: {ahead} burns are ahead of it and a batch pays at most {batch_size}; the next batch is \
                 at height {next_batch}"
            ),
            PegOutWait::RollingLimit { used, limit, window, until } => write!(
                f,
                "waiting: rolling peg-out limit reached ({} of {} sat paid in the last {window} BTC blocks) until \
                 BTC height {until}",
                used.to_sat(),
                limit.to_sat()
            ),
            PegOutWait::NoSpendableCoin { have, need, reserved_by, immature } => {
                write!(
                    f,
                    "waiting: no spendable federation coin covers the batch (have {} sat, need {} sat)",
                    have.to_sat(),
                    need.to_sat()
                )?;
                if !reserved_by.is_empty() {
                    write!(f, "; coins reserved by batches in flight {reserved_by:?} come back when they settle")?;
                }
                if *immature > Amount::ZERO {
                    write!(f, "; {} sat of coinbase outputs are not mature yet", immature.to_sat())?;
                }
                Ok(())
            }
            PegOutWait::FeePoolShort { fee, pool, short_by } => write!(
                f,
                "waiting: the fee pool ({} sat) is {} sat short of the batch fee {} sat; fees or a payment to the \
                 plain federation address end it",
                pool.to_sat(),
                short_by.to_sat(),
                fee.to_sat()
            ),
            PegOutWait::BelowDust { amount, min } => {
                write!(f, "waiting: payout {} sat is below the dust limit {} sat", amount.to_sat(), min.to_sat())
            }
            PegOutWait::BatchRefused(e) => write!(f, "waiting: the batch cannot be built: {e}"),
        }
    }
}

/// The next height at which a block builds a payout batch, after `tip`.
pub fn next_batch_height(chain: &Chain, tip: Height) -> Height {
    let interval = chain.params().pegout_interval.max(1);
    Height(tip.get().saturating_add(interval) / interval * interval)
}

/// Why `burn` waits after `state`; `None` once it is in a batch (or not queued).
pub fn pegout_wait<S: StateReader>(chain: &Chain, state: &S, burn: &BurnRecord) -> Result<Option<PegOutWait>, TxError> {
    if burn.batch.is_some() {
        return Ok(None);
    }
    let queue = pegout_queue(state)?;
    let Some(pos) = queue.queued.iter().position(|id| *id == burn.id) else { return Ok(None) };
    let meta = state.chain_meta()?;
    let tip = meta.map(|m| m.height).unwrap_or_default();
    let anchor = meta.map(|m| m.btc_anchor.height).unwrap_or_default();
    let next_batch = next_batch_height(chain, tip);
    let plan = Overlay::new(state).plan_payout(chain, anchor)?;
    let limited = || -> Result<PegOutWait, TxError> {
        Ok(match burn_waits_on_limit(chain.params(), state, burn)? {
            Some(w) => PegOutWait::RollingLimit { used: w.used, limit: w.limit, window: w.window, until: w.not_before },
            // The planner and the breaker's view agree by construction; should they not, say "next batch".
            None => PegOutWait::NextBatch { at: next_batch },
        })
    };
    let batch_size = peg::BatchLimits::STANDARD.max_outputs;
    Ok(Some(match plan {
        PayoutPlan::Nothing => return Ok(None),
        PayoutPlan::Wait(PayoutWait::Halted) => PegOutWait::PegHalted,
        PayoutPlan::Build { burns, .. } if burns.iter().any(|b| b.id == burn.id) => {
            PegOutWait::NextBatch { at: next_batch }
        }
        PayoutPlan::Build { .. } | PayoutPlan::Wait(_) if pos >= batch_size => {
            // Not in the next batch in any case; the breaker may hold it longer.
            match limited()? {
                w @ PegOutWait::RollingLimit { .. } => w,
                _ => PegOutWait::BehindFullBatch { ahead: pos, batch_size, next_batch },
            }
        }
        PayoutPlan::Build { .. } | PayoutPlan::Wait(PayoutWait::RollingLimit) => limited()?,
        PayoutPlan::Wait(PayoutWait::FeePoolShort { fee, pool }) => {
            PegOutWait::FeePoolShort { fee, pool, short_by: fee.checked_sub(pool).unwrap_or(Amount::ZERO) }
        }
        PayoutPlan::Wait(PayoutWait::Builder(peg::BatchError::InsufficientFunds { have, need })) => {
            let (reserved_by, immature) = coins_out_of_reach(state, anchor)?;
            PegOutWait::NoSpendableCoin { have, need, reserved_by, immature }
        }
        PayoutPlan::Wait(PayoutWait::Builder(peg::BatchError::DustPayout { amount, min, .. })) => {
            PegOutWait::BelowDust { amount, min }
        }
        PayoutPlan::Wait(PayoutWait::Builder(e)) => PegOutWait::BatchRefused(e),
    }))
}

/// Why the burn at the head of the queue waits (the queue's wait: every burn behind it waits at least as
/// long); `None` when nothing is queued.
pub fn queue_wait<S: StateReader>(chain: &Chain, state: &S) -> Result<Option<PegOutWait>, TxError> {
    let Some(head) = pegout_queue(state)?.queued.first().copied() else { return Ok(None) };
    match crate::pegout::burn(state, head)? {
        Some(b) => pegout_wait(chain, state, &b),
        None => {
            Err(StateError::Corrupt { key: StateKey::Burn(head), reason: "queued burn has no record".into() }.into())
        }
    }
}

/// The batches in flight (whose inputs the spendable set lacks until they settle) and the value of the
/// spendable coinbase outputs not mature at `anchor`.
fn coins_out_of_reach<S: StateReader>(state: &S, anchor: BtcHeight) -> Result<(Vec<u64>, Amount), StateError> {
    let reserved_by = batch_index(state)?
        .in_flight
        .into_iter()
        .filter_map(|id| batch(state, id).transpose())
        .filter(|b| b.as_ref().map_or(true, |b| !b.inputs.is_empty()))
        .map(|b| b.map(|b| b.id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut immature = Amount::ZERO;
    for o in spendable_utxos(state)?.0 {
        if let Some(u) = state.get_federation_utxo(&o)? {
            if !u.is_mature_at(anchor) {
                immature = immature.checked_add(u.amount).unwrap_or(Amount::MAX_MONEY);
            }
        }
    }
    Ok((reserved_by, immature))
}
