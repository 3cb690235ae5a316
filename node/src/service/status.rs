//! The status the node publishes (RPC, metrics and the dashboard read it) and the alerts it logs: both are
//! views of the components' state, computed after each event (see [`crate::alerts`]).

use super::handle::{NodeStatus, PegSummary};
use super::proposer::now_ms;
use super::state::State;
use ledger::StateReader;

impl State {
    /// Publishes the status if it changed (the watchers wake only then).
    pub(super) fn publish_status(&self) {
        let state_root = self.chain.state().root().unwrap_or_default();
        let s = NodeStatus {
            height: self.chain.tip(),
            tip_hash: self.chain.tip_hash(),
            state_root,
            round: self.host.core().round().get(),
            mempool_txs: self.mempool.len(),
            peers: self.sync.peer_count(),
            peer_id: self.peer_id.clone(),
            listen_addrs: self.listen_addrs.clone(),
            validator_index: self.validator_index.map(|i| i.get()),
            evidence: self.host.evidence().len(),
            synced_blocks: self.synced_blocks,
            block_executions: self.chain.executions(),
            tip_committed_ms: self.tip_committed_ms,
            tip_time_ms: self.chain.state().chain_meta().ok().flatten().map_or(0, |m| m.time_ms),
            last_commit_round: self.chain.tip_cert().map_or(0, |c| c.round.get()),
            best_peer_height: self.sync.best_peer_height(),
            step: format!("{:?}", self.host.core().step()).to_lowercase(),
            locked: self.host.core().locked().map(|rv| (rv.round.get(), rv.value)),
            peer_heights: self.sync.peer_heights().map(|(p, h)| (p.to_owned(), *h)).collect(),
            peg: PegSummary { claims_pending: self.duties.claims_pending(), ..self.peg_summary.clone() },
            signing: self.signer.guard.status(),
            alerts: self.alerts.0.active(),
        };
        self.status.send_if_modified(|old| {
            let changed = *old != s;
            *old = s;
            changed
        });
    }

    /// Takes the facts of now into the alert tracker and logs what changed (see [`crate::alerts`]).
    pub(super) fn observe_alerts(&mut self) {
        let state = self.chain.state();
        let chain = self.chain.chain();
        if self.alerts.1 != self.chain.tip() {
            self.alerts.1 = self.chain.tip();
            self.alerts.2 = crate::alerts::queue_wait_at(chain, &state);
        }
        let snap = self.duties.snapshot();
        let (tracker, _, wait) = &mut self.alerts;
        let facts =
            crate::alerts::facts_at(chain, &state, snap.as_ref(), now_ms(), tracker.build_failures(), wait.clone());
        crate::alerts::log_changes(&tracker.observe(&facts));
    }
}
