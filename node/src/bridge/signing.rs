//! This validator's half of peg-out signing: which in-flight batch versions it signs (after the
//! share-time check and the record that keeps it from ever signing two versions that would not conflict),
//! and which versions k shares complete, finalized for the broadcaster.
//!
//! It owns the pause switch ([`SigningGuard`]), the finalized transactions and the fee-bump warnings, and
//! the two channels to the Bitcoin side (signed transactions to rebroadcast, the versions the follower
//! watches for). It reads committed state and returns new shares; the event loop puts them in the
//! federation pool and on the network.

use crate::breaker::SigningGuard;
use crate::chain::ChainState;
use crate::fault::CrashConfig;
use ledger::StateReader;
use primitives::ValidatorIndex;
use std::collections::{HashMap, HashSet};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// A batch version the share-time check refused: (batch, unsigned txid, why).
type Refused = (u64, bitcoin::Txid, ledger::breaker::ShareCheckError);

/// Why a signed batch version could not be finalized (logged; the next block retries).
pub use ledger::frost_signing::FinalizeError;

/// See the module docs.
pub struct BatchSigner {
    /// The operator's pause switch and the share-time check's refusals.
    pub guard: SigningGuard,
    peg_key: bitcoin::secp256k1::SecretKey,
    peg_public: bitcoin::PublicKey,
    /// Signed batches for the rebroadcaster (validators with a bitcoind).
    signed_batches: Option<watch::Sender<Vec<bitcoin::Transaction>>>,
    /// The (txid, outputs) of every version with k shares, for the follower to look for on Bitcoin.
    batch_versions: watch::Sender<Vec<(bitcoin::Txid, u32)>>,
    /// Versions finalized already, so each is finalized once.
    finalized: HashMap<(u64, bitcoin::Txid), bitcoin::Transaction>,
    /// Versions whose due fee bump could not be built, warned about once.
    bump_warned: HashSet<(u64, bitcoin::Txid)>,
    crash: CrashConfig,
    /// Taproot custody: this validator's key-path signing (none on a wsh chain or without a key share).
    frost: Option<super::frost::FrostSigner>,
}

impl BatchSigner {
    /// A signer with `guard` (read from the store), signing with `keys.peg`.
    pub fn new(
        guard: SigningGuard,
        keys: &crate::keys::NodeKeys,
        signed_batches: Option<watch::Sender<Vec<bitcoin::Transaction>>>,
        batch_versions: watch::Sender<Vec<(bitcoin::Txid, u32)>>,
        crash: CrashConfig,
        frost: Option<super::frost::FrostSigner>,
    ) -> Self {
        Self {
            guard,
            peg_key: keys.peg,
            peg_public: keys.peg_public(),
            signed_batches,
            batch_versions,
            finalized: HashMap::new(),
            bump_warned: HashSet::new(),
            crash,
            frost,
        }
    }

    /// This validator's FROST messages due at the tip (taproot key path); none while signing is paused.
    pub fn frost_messages(&mut self, cs: &ChainState) -> Vec<(ledger::FrostTx, u32)> {
        match &mut self.frost {
            Some(f) if self.guard.may_sign() => f.messages(cs),
            _ => Vec::new(),
        }
    }

    /// After this pass's FROST messages went out (the crash point of the kill-between-rounds test).
    pub fn frost_sent(&self, cs: &ChainState, commitments: bool) {
        if let Some(f) = &self.frost {
            f.sent_commitments(cs, commitments);
        }
    }

    /// Whether `share` is this validator's (see [`crate::breaker::own_share`]).
    pub fn is_own_share<S: StateReader>(&self, cs: &ChainState, state: &S, share: &ledger::PegShareTx) -> bool {
        crate::breaker::own_share(cs.federation(), state, &self.peg_public, share)
    }

    /// The shares this validator should add at the tip: none while paused (the pass is recorded), else
    /// those `shares_for` makes; refusals go to the guard.
    pub fn shares_to_sign(&mut self, cs: &ChainState) -> Vec<ledger::PegShareTx> {
        let state = cs.state();
        let index = ledger::batching::batch_index(&state).ok();
        if !self.guard.may_sign() {
            self.guard.paused_pass(index.as_ref().map(|i| i.in_flight.as_slice()));
            return Vec::new();
        }
        let (shares, refused) = self.shares_for(cs, &state);
        self.guard.set_refused(refused);
        if let Some(index) = index {
            self.guard.retain_in_flight(&index.in_flight);
        }
        shares
    }

    /// Hands every in-flight batch's newest version with k shares, finalized, to the broadcaster (validators
    /// with a bitcoind). While a fee bump collects its shares, the previous signed version keeps going out:
    /// all versions conflict, so whichever Bitcoin takes, the batch is paid once.
    pub fn publish_signed(&mut self, cs: &ChainState) {
        let Some(tx) = &self.signed_batches else { return };
        let state = cs.state();
        let chain = cs.chain();
        let federation = cs.federation();
        let Ok(index) = ledger::batching::batch_index(&state) else { return };
        let mut txs = Vec::new();
        let mut versions = Vec::new();
        let meta = state.chain_meta().ok().flatten();
        for id in &index.in_flight {
            let Ok(Some(b)) = ledger::batching::batch(&state, *id) else { continue };
            // Every signed version may have gone out: where one confirmed is what a late settlement needs.
            for v in std::iter::once(b.current_version()).chain(b.earlier.iter().cloned()) {
                if v.is_signed(b.signers_needed) {
                    let outputs = v.unsigned(b.id).map(|t| t.output.len() as u32).unwrap_or(0);
                    versions.push((v.txid, outputs));
                }
            }
            // Still due after the block executed: the bump could not be built (the fee pool cannot pay it,
            // no spendable coins cover it, or the batch has its last version). Operators must hear of it.
            if meta.is_some_and(|m| ledger::bumping::bump_due(chain, &b, &m)) && self.bump_warned.insert((b.id, b.txid))
            {
                let pool = state.get_account(&ledger::fee_pool_id()).ok().flatten().map(|a| a.balance);
                warn!(batch = id, version = b.bumps() + 1, fee_pool = ?pool,
                    "peg-out batch is due for a fee bump that cannot be built: fund the fee pool (pay the plain \
                     federation address) or wait for more federation coins");
            }
            let newest_signed = std::iter::once(b.current_version())
                .chain(b.earlier.iter().rev().cloned())
                .find(|v| v.is_signed(b.signers_needed));
            let Some(v) = newest_signed else { continue };
            let Some(wallet) = federation.epoch(b.epoch).and_then(|e| chain.wallet(e).ok()) else { continue };
            if let Some(done) = self.finalized.get(&(b.id, v.txid)) {
                txs.push(done.clone());
                continue;
            }
            let finalized = ledger::frost_signing::finalize_version(chain, &wallet, b.id, &v);
            match finalized {
                Ok(signed) => {
                    info!(batch = id, version = b.bumps() + 1, btc_txid = %signed.compute_txid(),
                        "peg-out batch signed by a threshold: broadcasting");
                    self.finalized.insert((b.id, v.txid), signed.clone());
                    txs.push(signed);
                }
                Err(e) => error!(batch = id, error = %e, "cannot finalize a signed peg-out batch"),
            }
        }
        self.finalized.retain(|(id, _), _| index.in_flight.contains(id));
        self.batch_versions.send_if_modified(|old| {
            let changed = *old != versions;
            *old = versions;
            changed
        });
        tx.send_if_modified(|old| {
            let changed = *old != txs;
            *old = txs;
            changed
        });
    }

    /// Our signature shares for in-flight batches of every wallet epoch that holds our peg key (in force or
    /// earlier: a validator that left the federation still signs the sweep of its old wallet), that lack
    /// ours and lack their threshold. Batches are built by execution, each burn in exactly one; and each
    /// version must pass the share-time check ([`ledger::breaker::check_batch`]) first: the versions it
    /// refuses come back second, with why.
    fn shares_for<S: StateReader>(&self, cs: &ChainState, state: &S) -> (Vec<ledger::PegShareTx>, Vec<Refused>) {
        let chain = cs.chain();
        let mut refused = Vec::new();
        let Ok(index) = ledger::batching::batch_index(state) else { return (Vec::new(), refused) };
        if index.in_flight.is_empty() {
            return (Vec::new(), refused);
        }
        let federation = cs.federation();
        let my_peg_key = self.peg_public;
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let mut out = Vec::new();
        for id in index.in_flight.iter().take(8) {
            let Ok(Some(b)) = ledger::batching::batch(state, *id) else { continue };
            let Some(epoch) = federation.epoch(b.epoch) else { continue };
            let Some(me) = epoch.peg_signer(&my_peg_key) else { continue };
            let signer = ValidatorIndex(me as u16);
            if b.is_signed() || b.shares.iter().any(|(v, _)| *v == signer) {
                continue;
            }
            let Ok(wallet) = chain.wallet(epoch) else { continue };
            let Ok(tx) = b.unsigned() else { continue };
            if let Err(why) = ledger::breaker::check_batch(chain, state, &b) {
                refused.push((b.id, b.txid, why));
                continue;
            }
            // Persist what we sign before the share leaves, and never sign a version that would not conflict
            // with one signed before (a restart or a bug must not let two versions both confirm).
            let inputs: Vec<ledger::BtcOutPoint> = b.inputs.iter().map(|i| i.outpoint).collect();
            let store = cs.store();
            match store.signed_batch_versions(*id) {
                Ok(signed) if crate::pegin::safe_to_sign(&signed, &b.txid, &inputs) => {}
                Ok(_) => {
                    error!(
                        batch = id,
                        "refusing to sign a batch version that does not conflict with one signed before"
                    );
                    continue;
                }
                Err(e) => {
                    error!(batch = id, error = %e, "cannot read what this node signed; not signing");
                    continue;
                }
            }
            if let Err(e) =
                store.record_signed_batch_version(*id, crate::storage::SignedVersion { txid: b.txid, inputs })
            {
                error!(batch = id, error = %e, "cannot persist the signature record; not signing");
                continue;
            }
            self.crash.at(crate::fault::CrashPoint::BatchSignatureRecorded, cs.tip().next());
            let genesis = *chain.genesis_hash().as_bytes();
            match peg::shares::sign_batch(&secp, &wallet, genesis, &tx, &b.peg_inputs(), me, &self.peg_key) {
                Ok(share) => {
                    info!(batch = id, kind = ?b.kind, epoch = b.epoch, btc_txid = %b.txid,
                        "signing batch");
                    out.push(ledger::PegShareTx { batch: *id, txid: b.txid, signer, signatures: share.signatures });
                }
                Err(e) => error!(batch = id, error = %e, "cannot sign batch"),
            }
        }
        (out, refused)
    }
}
