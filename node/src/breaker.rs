//! A validator's two signing breakers as the event loop uses them: the operator's pause switch and the
//! record of the shares the share-time check refused.
//!
//! Why: a signature share, once gossiped, cannot be taken back, and k of them move the federation's BTC.
//! So before any share leaves (payout batch, fee bump, sweep or refresh alike) the service asks two things
//! of this component:
//! - **the pause switch** (`pausesigning` / `resumesigning`): an operator who distrusts what the chain
//!   asks for (an incident elsewhere, a suspicious batch) stops this validator's shares at once, without
//!   stopping its consensus votes and blocks. The switch is kept in the node's own store, synced, so a
//!   restart or a kill -9 never unpauses it silently, and it is logged at WARN when set and at every start
//!   while set;
//! - **the share-time check** ([`ledger::breaker::check_batch`], pure, over committed state): each version
//!   it refuses is logged once at ERROR (operators must act), counted, and shown in the status until the
//!   check passes or the batch leaves flight.
//!
//! Invariant owned here: while paused, [`SigningGuard::may_sign`] is false, whatever the chain holds. The
//! flag is set in memory before the store write, so a failed write still leaves this run paused (it fails
//! closed); a resume clears it only after the write. On pause the service also drops this validator's
//! shares still waiting in the federation pool ([`own_share`]) and keeps them out of its proposals, so
//! what it already signed does not reach a block through itself.

use crate::storage::{Store, StoreError};
use ledger::breaker::ShareCheckError;
use std::collections::BTreeMap;
use tracing::{error, info, warn};

/// One batch version this validator refuses to sign, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The batch.
    pub batch: u64,
    /// The refused version (its unsigned txid).
    pub txid: bitcoin::Txid,
    /// Why, as a stable name ([`ShareCheckError::kind`]).
    pub kind: &'static str,
    /// Why, for people.
    pub reason: String,
}

/// The breakers at a glance (status, RPC, metrics, dashboard).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SigningStatus {
    /// Since when (ms since the Unix epoch) an operator has paused this validator's signing.
    pub paused_since_ms: Option<u64>,
    /// Batch versions the share-time check refused since this node started.
    pub refusals: u64,
    /// The versions refused now (their batches are still in flight).
    pub refused: Vec<Refusal>,
}

/// The pause switch and the refusals (see the module docs).
#[derive(Debug, Default)]
pub struct SigningGuard {
    paused_since_ms: Option<u64>,
    refused: BTreeMap<(u64, bitcoin::Txid), ShareCheckError>,
    refusals: u64,
}

impl SigningGuard {
    /// The switch as the store holds it; a validator that starts paused says so at WARN.
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        let paused_since_ms = store.signing_paused_since()?;
        if let Some(since_ms) = paused_since_ms {
            warn!(
                since_ms,
                "peg signing is PAUSED by an operator (kept across restarts): this validator releases no \
                signature share until `sidechain-cli resumesigning`"
            );
        }
        Ok(SigningGuard { paused_since_ms, ..SigningGuard::default() })
    }

    /// Whether a share may leave this node now (the pause switch is off).
    pub fn may_sign(&self) -> bool {
        self.paused_since_ms.is_none()
    }

    /// Pauses signing (durably, before it returns); pausing again keeps the first time.
    pub fn pause(&mut self, store: &Store, now_ms: u64) -> Result<(), StoreError> {
        if self.paused_since_ms.is_none() {
            // In memory first: if the write fails, this run stays paused (fail closed) and the error says
            // the switch may not survive a restart.
            self.paused_since_ms = Some(now_ms);
            store.set_signing_paused_since(Some(now_ms))?;
        }
        warn!(
            since_ms = self.paused_since_ms,
            "peg signing PAUSED by an operator: this validator releases no \
            signature share until `resumesigning` (consensus votes and blocks go on)"
        );
        Ok(())
    }

    /// Resumes signing (durably, before it returns).
    pub fn resume(&mut self, store: &Store) -> Result<(), StoreError> {
        if let Some(since_ms) = self.paused_since_ms {
            store.set_signing_paused_since(None)?;
            self.paused_since_ms = None;
            warn!(paused_since_ms = since_ms, "peg signing resumed by an operator");
        } else {
            info!("peg signing resume asked for, but it was not paused");
        }
        Ok(())
    }

    /// The versions the check refuses now (from one pass over the batches that lack our share): each one
    /// not refused before is logged at ERROR and counted; versions no longer refused are forgotten.
    pub fn set_refused(&mut self, now: Vec<(u64, bitcoin::Txid, ShareCheckError)>) {
        let mut next = BTreeMap::new();
        for (batch, txid, why) in now {
            if !self.refused.contains_key(&(batch, txid)) {
                self.refusals = self.refusals.saturating_add(1);
                error!(batch, btc_txid = %txid, reason = why.kind(), error = %why,
                    "REFUSING TO SIGN a federation transaction that committed state does not justify: find out why \
                     before anything else (pausesigning stops all signing)");
            }
            next.insert((batch, txid), why);
        }
        self.refused = next;
    }

    /// Forgets refusals of batches no longer in flight.
    pub fn retain_in_flight(&mut self, in_flight: &[u64]) {
        self.refused.retain(|(batch, _), _| in_flight.contains(batch));
    }

    /// While paused no check runs, so the list is not renewed: forget what left flight, keep the rest
    /// (the last verdicts, which may be why an operator paused).
    pub fn paused_pass(&mut self, in_flight: Option<&[u64]>) {
        match in_flight {
            Some(ids) => self.retain_in_flight(ids),
            // The index cannot be read: nothing shown can be vouched for.
            None => self.refused.clear(),
        }
    }

    /// For the status.
    pub fn status(&self) -> SigningStatus {
        SigningStatus {
            paused_since_ms: self.paused_since_ms,
            refusals: self.refusals,
            refused: self
                .refused
                .iter()
                .map(|((batch, txid), why)| Refusal {
                    batch: *batch,
                    txid: *txid,
                    kind: why.kind(),
                    reason: why.to_string(),
                })
                .collect(),
        }
    }
}

/// Whether `share` is this validator's (peg key `mine`): its signer is our position in the wallet epoch of
/// its batch; when the batch cannot be read, our position in any epoch (so a pause drops too much rather
/// than too little).
pub fn own_share<S: ledger::StateReader>(
    federation: &ledger::FederationState,
    state: &S,
    mine: &bitcoin::PublicKey,
    share: &ledger::PegShareTx,
) -> bool {
    let signer = share.signer.as_usize();
    match ledger::batching::batch(state, share.batch) {
        Ok(Some(b)) => federation.epoch(b.epoch).and_then(|e| e.peg_signer(mine)) == Some(signer),
        _ => federation.epochs.iter().any(|e| e.peg_signer(mine) == Some(signer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash as _;

    fn why(batch: u64) -> ShareCheckError {
        ShareCheckError::BurnPaidTwice { batch, burn: 3 }
    }

    #[test]
    fn the_pause_survives_reopening_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(&dir.path().join("db")).expect("store");
            let mut g = SigningGuard::open(&store).expect("open");
            assert!(g.may_sign());
            g.pause(&store, 1_000).expect("pause");
            g.pause(&store, 2_000).expect("pause again");
            assert!(!g.may_sign());
            assert_eq!(g.status().paused_since_ms, Some(1_000), "pausing again keeps the first time");
        }
        let store = Store::open(&dir.path().join("db")).expect("reopen");
        let mut g = SigningGuard::open(&store).expect("open");
        assert!(!g.may_sign(), "a restart does not unpause");
        assert_eq!(g.status().paused_since_ms, Some(1_000));
        g.resume(&store).expect("resume");
        assert!(g.may_sign());
        drop(g);
        assert!(SigningGuard::open(&store).expect("open").may_sign(), "the resume is durable too");
    }

    #[test]
    fn each_refused_version_is_counted_once_and_forgotten_when_it_passes_or_leaves() {
        let mut g = SigningGuard::default();
        let (a, b) = (bitcoin::Txid::from_byte_array([1; 32]), bitcoin::Txid::from_byte_array([2; 32]));
        g.set_refused(vec![(0, a, why(0))]);
        g.set_refused(vec![(0, a, why(0)), (1, b, why(1))]);
        let s = g.status();
        assert_eq!(s.refusals, 2, "the same version refused at every block counts once");
        assert_eq!(
            s.refused.iter().map(|r| (r.batch, r.kind)).collect::<Vec<_>>(),
            [(0, "burn_paid_twice"), (1, "burn_paid_twice")]
        );
        g.retain_in_flight(&[1]);
        assert_eq!(g.status().refused.len(), 1);
        g.set_refused(Vec::new());
        assert!(g.status().refused.is_empty());
        assert_eq!(g.status().refusals, 2);
        // While paused: what left flight is forgotten, the rest kept; an unreadable index clears it all.
        g.set_refused(vec![(0, a, why(0)), (1, b, why(1))]);
        g.paused_pass(Some(&[1]));
        assert_eq!(g.status().refused.iter().map(|r| r.batch).collect::<Vec<_>>(), [1]);
        g.paused_pass(None);
        assert!(g.status().refused.is_empty());
    }
}
