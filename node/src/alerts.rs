//! Alerts: the few conditions under which the peg is stuck and an operator must look, raised from facts the
//! node already has (its status, its bitcoind's snapshot, the state at the tip).
//!
//! Why: finding 11 of issue 20. With the anchor frozen at 113 while bitcoind went on to 132, the federation
//! bumping a batch Bitcoin had already confirmed and every round 0 failing to build, the dashboard still
//! said "peg: active" and no log line stood out. Each alert here is one such condition, typed, with the
//! figures that show it.
//!
//! Shape: [`alerts`] is pure (facts and the instants each condition started in, bounds in, alerts out);
//! [`AlertTracker`] keeps those instants and returns what changed, so the host logs WARN once when an alert
//! is raised and INFO once when it clears (never every tick), and INFO once when the wait of the burn at the
//! head of the peg-out queue changes reason.

use bitcoin::Amount;
use ledger::pegout_wait::PegOutWait;
use primitives::Height;
use std::collections::BTreeMap;

/// How far things may go before an alert is raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertBounds {
    /// Blocks the anchor may trail bitcoind's best beyond the confirmations a deposit needs.
    pub anchor_lag_blocks: u32,
    /// For how long (ms) that lag must last before it is an alert (the anchor catches up a few blocks per
    /// sidechain block after a burst of BTC blocks).
    pub anchor_lag_ms: u64,
    /// Blocks past the depth at which a confirmed batch is settled (the confirmations) while it is still
    /// in flight.
    pub settle_slack_blocks: u32,
    /// Consecutive proposals of this node that failed to build.
    pub build_failures: u32,
    /// Sidechain blocks the head of the peg-out queue may wait on an operator (fee pool short, a batch the
    /// builder refuses) before it is an alert.
    pub pegout_stuck_blocks: u64,
}

impl Default for AlertBounds {
    fn default() -> Self {
        AlertBounds {
            anchor_lag_blocks: 3,
            anchor_lag_ms: 30_000,
            settle_slack_blocks: 3,
            build_failures: 3,
            pegout_stuck_blocks: 20,
        }
    }
}

/// What the node knows at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertFacts {
    /// Milliseconds, any monotonic origin.
    pub now_ms: u64,
    /// The committed tip.
    pub height: Height,
    /// The tip's anchor height.
    pub anchor_height: u32,
    /// Our bitcoind's best height (None: no bitcoind, or unreachable).
    pub bitcoind_best: Option<u32>,
    /// Confirmations a deposit needs (`pegin_confirmations`): how far the anchor trails by design.
    pub confirmations: u32,
    /// In-flight batches a version of which our bitcoind shows in a block: (batch id, BTC height).
    pub confirmed_in_flight: Vec<(u64, u32)>,
    /// This node's proposals that failed to build in a row (0 after one that built).
    pub build_failures: u32,
    /// Why the burn at the head of the peg-out queue waits (None: the queue is empty).
    pub queue_wait: Option<PegOutWait>,
}

/// What the host remembers between instants: when each ongoing condition started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Since {
    /// When the anchor's lag went past the bound (ms).
    pub anchor_lag: Option<u64>,
    /// The height at which the queue's head started waiting on an operator.
    pub pegout_stuck: Option<Height>,
}

/// Which alert (one at most of each kind is up at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertKind {
    /// See [`Alert::AnchorLag`].
    AnchorLag,
    /// See [`Alert::ConfirmedBatchInFlight`].
    ConfirmedBatchInFlight,
    /// See [`Alert::ProposalsFailing`].
    ProposalsFailing,
    /// See [`Alert::PegOutStuck`].
    PegOutStuck,
}

impl AlertKind {
    /// A short stable name (JSON, logs).
    pub fn code(self) -> &'static str {
        match self {
            AlertKind::AnchorLag => "anchor_lag",
            AlertKind::ConfirmedBatchInFlight => "confirmed_batch_in_flight",
            AlertKind::ProposalsFailing => "proposals_failing",
            AlertKind::PegOutStuck => "pegout_stuck",
        }
    }
}

/// A condition an operator must look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alert {
    /// The anchor trails our bitcoind's best by more than the confirmations plus the bound, for longer than
    /// the bound: mints and settlements are stuck.
    AnchorLag {
        /// The tip's anchor height.
        anchor: u32,
        /// Our bitcoind's best height.
        bitcoind_best: u32,
        /// Since when (ms).
        since_ms: u64,
    },
    /// A batch our bitcoind shows confirmed, deep enough to be settled, is still in flight (and may still
    /// be bumped).
    ConfirmedBatchInFlight {
        /// The batch.
        batch: u64,
        /// The BTC block holding a version of it.
        btc_height: u32,
        /// Its depth on our bitcoind.
        depth: u32,
    },
    /// This node's last proposals all failed to build.
    ProposalsFailing {
        /// How many in a row.
        consecutive: u32,
    },
    /// The burn at the head of the peg-out queue has waited on an operator for longer than the bound (the
    /// fee pool short of the batch fee, a batch the builder refuses).
    PegOutStuck {
        /// Why it waits.
        wait: PegOutWait,
        /// Since which sidechain height.
        since: Height,
        /// What the fee pool lacks, when that is the reason.
        short_by: Option<Amount>,
    },
}

impl Alert {
    /// Its kind.
    pub fn kind(&self) -> AlertKind {
        match self {
            Alert::AnchorLag { .. } => AlertKind::AnchorLag,
            Alert::ConfirmedBatchInFlight { .. } => AlertKind::ConfirmedBatchInFlight,
            Alert::ProposalsFailing { .. } => AlertKind::ProposalsFailing,
            Alert::PegOutStuck { .. } => AlertKind::PegOutStuck,
        }
    }
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Alert::AnchorLag { anchor, bitcoind_best, .. } => write!(
                f,
                "the BTC anchor ({anchor}) lags this node's bitcoind ({bitcoind_best}) by {} blocks: mints and \
                 settlements are stuck; check that proposals build and validators agree on bitcoind",
                bitcoind_best.saturating_sub(*anchor)
            ),
            Alert::ConfirmedBatchInFlight { batch, btc_height, depth } => write!(
                f,
                "peg-out batch {batch} is confirmed in BTC block {btc_height} ({depth} deep on this node's \
                 bitcoind) but not settled: the anchor does not cover it"
            ),
            Alert::ProposalsFailing { consecutive } => {
                write!(f, "this node's last {consecutive} proposals failed to build (see the WARN lines before)")
            }
            Alert::PegOutStuck { wait, since, .. } => write!(f, "peg-outs wait since height {since}: {wait}"),
        }
    }
}

/// The alerts `facts` raise, given when each ongoing condition started (`since`, as [`next_since`] keeps it).
pub fn alerts(facts: &AlertFacts, since: &Since, bounds: &AlertBounds) -> Vec<Alert> {
    let mut out = Vec::new();
    if let (Some(best), Some(start)) = (facts.bitcoind_best, since.anchor_lag) {
        if facts.now_ms.saturating_sub(start) >= bounds.anchor_lag_ms {
            out.push(Alert::AnchorLag { anchor: facts.anchor_height, bitcoind_best: best, since_ms: start });
        }
    }
    if let Some(best) = facts.bitcoind_best {
        let settled_by = facts.confirmations.saturating_add(bounds.settle_slack_blocks);
        let late = facts
            .confirmed_in_flight
            .iter()
            .map(|(batch, h)| (*batch, *h, best.saturating_sub(*h).saturating_add(1)))
            .filter(|(_, _, depth)| *depth > settled_by)
            .min_by_key(|(batch, _, _)| *batch);
        if let Some((batch, btc_height, depth)) = late {
            out.push(Alert::ConfirmedBatchInFlight { batch, btc_height, depth });
        }
    }
    if facts.build_failures >= bounds.build_failures {
        out.push(Alert::ProposalsFailing { consecutive: facts.build_failures });
    }
    if let (Some(wait), Some(start)) = (&facts.queue_wait, since.pegout_stuck) {
        if facts.height.get().saturating_sub(start.get()) >= bounds.pegout_stuck_blocks {
            let short_by = match wait {
                PegOutWait::FeePoolShort { short_by, .. } => Some(*short_by),
                _ => None,
            };
            out.push(Alert::PegOutStuck { wait: wait.clone(), since: start, short_by });
        }
    }
    out
}

/// When each condition started, after `facts` (pure: the previous record and the facts in).
pub fn next_since(prev: &Since, facts: &AlertFacts, bounds: &AlertBounds) -> Since {
    let lagging = facts.bitcoind_best.is_some_and(|best| {
        best.saturating_sub(facts.anchor_height) > facts.confirmations.saturating_add(bounds.anchor_lag_blocks)
    });
    let stuck = facts.queue_wait.as_ref().is_some_and(PegOutWait::needs_operator);
    Since {
        anchor_lag: lagging.then(|| prev.anchor_lag.unwrap_or(facts.now_ms)),
        pegout_stuck: stuck.then(|| prev.pegout_stuck.unwrap_or(facts.height)),
    }
}

/// What changed at one instant: for the host to log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertChanges {
    /// Alerts raised now (WARN once each).
    pub raised: Vec<Alert>,
    /// Kinds that cleared now (INFO once each).
    pub cleared: Vec<AlertKind>,
    /// The queue's wait, when its reason changed (INFO once): `Some(None)` when the queue emptied.
    pub wait_changed: Option<Option<PegOutWait>>,
}

/// Keeps [`Since`], the alerts up and the queue's last wait reason between instants.
#[derive(Clone, Debug)]
pub struct AlertTracker {
    bounds: AlertBounds,
    since: Since,
    up: BTreeMap<AlertKind, Alert>,
    last_wait: Option<&'static str>,
    build_failures: u32,
}

impl AlertTracker {
    /// A tracker with `bounds`, nothing up.
    pub fn new(bounds: AlertBounds) -> Self {
        AlertTracker { bounds, since: Since::default(), up: BTreeMap::new(), last_wait: None, build_failures: 0 }
    }

    /// Counts one of this node's proposals: built (`true`) or failed.
    pub fn proposal_built(&mut self, built: bool) {
        self.build_failures = if built { 0 } else { self.build_failures.saturating_add(1) };
    }

    /// Proposals that failed to build in a row.
    pub fn build_failures(&self) -> u32 {
        self.build_failures
    }

    /// Takes the facts of now; returns what changed (an alert whose figures move stays "up", not re-raised).
    pub fn observe(&mut self, facts: &AlertFacts) -> AlertChanges {
        self.since = next_since(&self.since, facts, &self.bounds);
        let now: BTreeMap<AlertKind, Alert> =
            alerts(facts, &self.since, &self.bounds).into_iter().map(|a| (a.kind(), a)).collect();
        let mut changes = AlertChanges {
            raised: now.iter().filter(|(k, _)| !self.up.contains_key(k)).map(|(_, a)| a.clone()).collect(),
            cleared: self.up.keys().filter(|k| !now.contains_key(k)).copied().collect(),
            wait_changed: None,
        };
        self.up = now;
        let code = facts.queue_wait.as_ref().map(PegOutWait::code);
        if code != self.last_wait {
            self.last_wait = code;
            changes.wait_changed = Some(facts.queue_wait.clone());
        }
        changes
    }

    /// The alerts up, by kind.
    pub fn active(&self) -> Vec<Alert> {
        self.up.values().cloned().collect()
    }
}

/// The facts of now, read from the state at the tip and our bitcoind's snapshot (the host's part: reads
/// only). `queue_wait` is passed in: the host recomputes it when the tip moves ([`queue_wait_at`]).
pub fn facts_at<S: ledger::StateReader>(
    chain: &ledger::Chain,
    state: &S,
    btc: Option<&crate::btc_follow::BtcSnapshot>,
    now_ms: u64,
    build_failures: u32,
    queue_wait: Option<PegOutWait>,
) -> AlertFacts {
    let meta = state.chain_meta().ok().flatten();
    let mut confirmed_in_flight = Vec::new();
    if let Some(snap) = btc {
        let in_flight = ledger::batching::batch_index(state).map(|i| i.in_flight).unwrap_or_default();
        for id in in_flight {
            let Ok(Some(b)) = ledger::batching::batch(state, id) else { continue };
            let found = b.version_txids().find_map(|v| {
                let txid = v;
                snap.deposits.iter().find(|(_, blk)| blk.txids.contains(&txid)).map(|(h, _)| *h)
            });
            if let Some(h) = found {
                confirmed_in_flight.push((id, h));
            }
        }
    }
    AlertFacts {
        now_ms,
        height: meta.map(|m| m.height).unwrap_or_default(),
        anchor_height: meta.map_or(chain.genesis().btc_anchor.height.get(), |m| m.btc_anchor.height.get()),
        bitcoind_best: btc.and_then(|s| s.best),
        confirmations: chain.params().pegin_confirmations,
        confirmed_in_flight,
        build_failures,
        queue_wait,
    }
}

/// Why the head of the peg-out queue waits after `state` (None: nothing queued, or the planner could not
/// run, which the log says).
pub fn queue_wait_at<S: ledger::StateReader>(chain: &ledger::Chain, state: &S) -> Option<PegOutWait> {
    match ledger::pegout_wait::queue_wait(chain, state) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot tell why the peg-out queue waits");
            None
        }
    }
}

/// An alert as `getblockchaininfo` shows it.
pub fn alert_info(a: &Alert) -> rpc::types::AlertInfo {
    use rpc::types::AlertKind as K;
    let kind = match a.kind() {
        AlertKind::AnchorLag => K::AnchorLag,
        AlertKind::ConfirmedBatchInFlight => K::ConfirmedBatchInFlight,
        AlertKind::ProposalsFailing => K::ProposalsFailing,
        AlertKind::PegOutStuck => K::PegoutStuck,
    };
    rpc::types::AlertInfo { kind, description: a.to_string() }
}

/// Logs what changed: WARN once per raised alert, INFO once per cleared one and per change of the queue's
/// wait reason.
pub fn log_changes(changes: &AlertChanges) {
    for a in &changes.raised {
        tracing::warn!(alert = a.kind().code(), "{a}");
    }
    for k in &changes.cleared {
        tracing::info!(alert = k.code(), "alert cleared");
    }
    match &changes.wait_changed {
        Some(Some(w)) => tracing::info!(reason = w.code(), "peg-out queue: {w}"),
        Some(None) => tracing::info!("peg-out queue: empty"),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(now_ms: u64, anchor: u32, best: u32) -> AlertFacts {
        AlertFacts {
            now_ms,
            height: Height(10),
            anchor_height: anchor,
            bitcoind_best: Some(best),
            confirmations: 6,
            ..AlertFacts::default()
        }
    }

    fn kinds(a: &[Alert]) -> Vec<AlertKind> {
        a.iter().map(Alert::kind).collect()
    }

    #[test]
    fn the_anchor_lag_is_an_alert_only_past_the_bound_for_longer_than_the_bound() {
        let b = AlertBounds::default();
        // Trailing by the confirmations plus the bound is normal.
        let normal = facts(0, 100, 109);
        let since = next_since(&Since::default(), &normal, &b);
        assert_eq!(since.anchor_lag, None);
        assert!(alerts(&normal, &since, &b).is_empty());
        // One block more: the clock starts, no alert until it has lasted `anchor_lag_ms`.
        let lag = facts(1_000, 100, 110);
        let since = next_since(&since, &lag, &b);
        assert_eq!(since.anchor_lag, Some(1_000));
        assert!(alerts(&lag, &since, &b).is_empty());
        let later = facts(31_000, 100, 119);
        let since = next_since(&since, &later, &b);
        assert_eq!(since.anchor_lag, Some(1_000), "the clock keeps its start");
        assert_eq!(
            alerts(&later, &since, &b),
            vec![Alert::AnchorLag { anchor: 100, bitcoind_best: 119, since_ms: 1_000 }]
        );
        // Caught up: the clock stops; no bitcoind: no lag alert.
        assert_eq!(next_since(&since, &facts(32_000, 113, 119), &b).anchor_lag, None);
        let blind = AlertFacts { bitcoind_best: None, ..later };
        assert!(alerts(&blind, &next_since(&since, &blind, &b), &b).is_empty());
    }

    #[test]
    fn a_confirmed_batch_still_in_flight_past_its_settling_depth_is_an_alert() {
        let b = AlertBounds::default();
        let mut f = facts(0, 100, 120);
        // Confirmed at 114, 7 deep: within confirmations + slack (9).
        f.confirmed_in_flight = vec![(1, 114)];
        assert!(alerts(&f, &Since::default(), &b).is_empty());
        // Confirmed at 110, 11 deep: it should have settled.
        f.confirmed_in_flight = vec![(1, 114), (0, 110)];
        assert_eq!(
            alerts(&f, &Since::default(), &b),
            vec![Alert::ConfirmedBatchInFlight { batch: 0, btc_height: 110, depth: 11 }]
        );
    }

    #[test]
    fn failing_proposals_and_a_stuck_queue_raise_once_and_clear_once() {
        let b = AlertBounds { pegout_stuck_blocks: 5, ..AlertBounds::default() };
        let mut t = AlertTracker::new(b);
        let short = PegOutWait::FeePoolShort {
            fee: Amount::from_sat(500),
            pool: Amount::from_sat(100),
            short_by: Amount::from_sat(400),
        };
        let mut f = facts(0, 100, 100);
        f.queue_wait = Some(PegOutWait::NextBatch { at: Height(12) });
        let c = t.observe(&f);
        assert_eq!(c.wait_changed, Some(Some(PegOutWait::NextBatch { at: Height(12) })));
        assert!(c.raised.is_empty());
        // The same reason with other figures is no change.
        f.queue_wait = Some(PegOutWait::NextBatch { at: Height(14) });
        assert_eq!(t.observe(&f).wait_changed, None);
        // The pool runs short at height 10: the wait changes now, the alert waits 5 blocks.
        f.queue_wait = Some(short.clone());
        assert!(matches!(t.observe(&f).wait_changed, Some(Some(PegOutWait::FeePoolShort { .. }))));
        f.height = Height(14);
        assert!(t.observe(&f).raised.is_empty());
        f.height = Height(15);
        let c = t.observe(&f);
        let stuck =
            Alert::PegOutStuck { wait: short.clone(), since: Height(10), short_by: Some(Amount::from_sat(400)) };
        assert_eq!(c.raised, vec![stuck.clone()]);
        // Up: not raised again; proposals failing three times in a row add one alert.
        for _ in 0..3 {
            t.proposal_built(false);
        }
        f.build_failures = t.build_failures();
        f.height = Height(16);
        let c = t.observe(&f);
        assert_eq!(kinds(&c.raised), vec![AlertKind::ProposalsFailing]);
        assert_eq!(kinds(&t.active()), vec![AlertKind::ProposalsFailing, AlertKind::PegOutStuck]);
        // One proposal builds and the queue is paid: both clear, once.
        t.proposal_built(true);
        f.build_failures = t.build_failures();
        f.queue_wait = None;
        let c = t.observe(&f);
        assert_eq!(c.cleared, vec![AlertKind::ProposalsFailing, AlertKind::PegOutStuck]);
        assert_eq!(c.wait_changed, Some(None));
        assert_eq!(t.observe(&f), AlertChanges::default());
    }
}
