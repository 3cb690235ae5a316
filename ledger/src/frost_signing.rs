//! FROST signing of taproot batches in block execution (issue 23): the chain is the coordinator of every
//! key-path signing, running `peg::frost::session` over the commitments and shares blocks carry.
//!
//! The life of a taproot batch:
//! 1. A version is planned for the key path (57.5 vB an input). At the end of the block that built it (or
//!    bumped it) its session opens ([`FrostSessionRecord`], attempt 0).
//! 2. `Frost` transactions ([`crate::frost_tx::FrostTx`]) carry each signer's commitments, then the chosen
//!    signers' shares; `Overlay::apply_frost` checks the peg-key signature and hands the message to the
//!    session. When the session has every input's signature, they are recorded as the one share of
//!    [`crate::batch_records::GROUP_SIGNER`]: the version is signed, validators broadcast it, the bump
//!    clock starts, exactly as when `k` leaf shares are in.
//! 3. At the end of every block the open session's deadline is checked (`Overlay::advance_frost_sessions`):
//!    a phase that timed out starts the next attempt without its silent signers. When the session gives up
//!    (fewer than `k` left, or every attempt failed) the batch falls back for good: a new version planned for
//!    the `multi_a` leaf is built like a fee bump, and `PegShare` transactions sign it with the peg keys.
//!    If the fee pool cannot pay that version yet, it is tried again at every block.
//!
//! Why the fallback is a new version and not leaf shares for the same one: a key-path version's fee covers
//! 57.5 vB an input; finished in the leaf (135 vB and more) it would pay well below its rate and could sit
//! unconfirmed or below the relay floor.
//!
//! Why fixed deadlines and attempts rather than parameters: they bound a signing whatever a genesis says
//! (each failed attempt excludes at least one faulty signer, so `n - k + 1` attempts reach an honest set;
//! one more absorbs an attempt that timed out with nobody to blame), and adding genesis parameters would
//! change the hash of every existing genesis.

use crate::batch_records::{batch, batch_index, GROUP_SIGNER};
use crate::error::TxError;
use crate::federation::federation_state;
pub use crate::frost_records::{
    batch_wallet, finalize_version, frost_session, restore_session, session_rules, FinalizeError, FrostSessionRecord,
    SessionStage, FROST_PHASE_BLOCKS,
};
use crate::frost_tx::{FrostRound, FrostTx, FrostTxError};
use crate::genesis::Chain;
use crate::overlay::{Overlay, Receipt};
use crate::state::{ChainMeta, StateKey, StateReader};
use bitcoin::hashes::Hash as _;
use bitcoin::Amount;
use peg::frost::session::Outcome;
use primitives::canonical_bytes;

impl<S: StateReader> Overlay<'_, S> {
    /// `Frost`: a signer's commitments or shares for the current attempt of a batch version's key-path
    /// signing, after its peg-key signature. The session decides; when it has every signature, they are the
    /// version's one share (of [`GROUP_SIGNER`]).
    pub(crate) fn apply_frost(&mut self, chain: &Chain, meta: &ChainMeta, tx: &FrostTx) -> Result<Receipt, TxError> {
        let id = tx.batch;
        if !batch_index(self)?.in_flight.contains(&id) {
            return Err(TxError::NotInFlight { batch: id });
        }
        let mut record = batch(self, id)?.ok_or(TxError::UnknownBatch(id))?;
        if record.txid != tx.txid {
            return Err(TxError::NotCurrentBatchVersion { batch: id });
        }
        if record.is_signed() {
            return Err(TxError::BatchAlreadySigned(id));
        }
        let federation = federation_state(chain, self)?;
        let epoch = federation.epoch(record.epoch).ok_or(TxError::UnknownEpoch(record.epoch))?;
        let signer = tx.signer;
        let Some(member) = epoch.validators.get(signer.as_usize()) else {
            return Err(TxError::UnknownSigner { batch: id, signer, signers: epoch.validators.len() });
        };
        let mut stored = frost_session(self, id)?.ok_or(FrostTxError::NotKeyPath(id))?;
        if stored.fell_back || stored.version != record.txid {
            return Err(FrostTxError::NotKeyPath(id).into());
        }
        precheck(&stored, &record, tx)?;
        tx.verify(chain.genesis_hash(), &member.peg_key)?;
        let mut session = restore_session(chain, epoch, &record, &stored)?;
        let refused = |source| FrostTxError::Refused { batch: id, source };
        let encoding = |source| FrostTxError::Encoding { signer, source };
        let height = meta.height.get();
        let session_id = record.txid.to_byte_array();
        fn decode<T, E>(items: &[Vec<u8>], f: impl Fn(&[u8]) -> Result<T, E>) -> Result<Vec<T>, E> {
            items.iter().map(|b| f(b)).collect()
        }
        let outcome = match &tx.round {
            FrostRound::Commit(items) => {
                let decoded = decode(items, peg::frost::wire::decode_commitments).map_err(encoding)?;
                session.commit(session_id, signer.as_usize(), tx.attempt, decoded, height).map_err(refused)?
            }
            FrostRound::Share(items) => {
                let decoded = decode(items, peg::frost::wire::decode_share).map_err(encoding)?;
                session.share(session_id, signer.as_usize(), tx.attempt, decoded, height).map_err(refused)?
            }
        };
        let snapshot = session.snapshot().map_err(|e| refused(peg::frost::session::Refusal::Frost(e)))?;
        stored.update(snapshot);
        if let (Outcome::Signed, SessionStage::Signed(signatures)) = (&outcome, &stored.stage) {
            record.shares = vec![(GROUP_SIGNER, signatures.iter().map(|s| s.to_vec()).collect())];
            record.signed_at_anchor = Some(meta.btc_anchor.height);
            self.writes.insert(StateKey::Batch(id), canonical_bytes(&record));
            stored.trim();
        }
        if stored.stage == SessionStage::FallBack {
            // A bad share left fewer than `k` (or ended the last attempt): the leaf version is built at the
            // end of this block (`advance_frost_sessions`).
            stored.fell_back = true;
            stored.trim();
        }
        self.writes.insert(StateKey::FrostSession(id), canonical_bytes(&stored));
        Ok(Receipt { txid: tx.txid(), sender: None, fee: Amount::ZERO })
    }

    /// End of every block: opens the key-path signing of every taproot version that has none, ends the
    /// attempts whose deadline passed, and builds the leaf version of a batch that gave up the key path.
    pub(crate) fn advance_frost_sessions(&mut self, chain: &Chain, meta: &ChainMeta) -> Result<(), TxError> {
        let in_flight = batch_index(self)?.in_flight;
        if in_flight.is_empty() {
            return Ok(());
        }
        let federation = federation_state(chain, self)?;
        let height = meta.height.get();
        // Leaf versions are built like fee bumps, never while the peg is halted (sweeps and refreshes run
        // with peg-outs off too, so that is no condition).
        let may_build = !crate::halt::peg_halt(self)?.is_halted();
        for id in in_flight {
            let Some(record) = batch(self, id)? else { continue };
            let Some(epoch) = federation.epoch(record.epoch) else { continue };
            if chain.frost_group(epoch).is_none() {
                continue;
            }
            let stored = frost_session(self, id)?;
            let stored = match stored {
                // A new batch, or a bump of a key-path version: its signing opens.
                None => FrostSessionRecord::open(record.txid, height),
                // A new version of a key-path batch (a fee bump of a signed one): a new signing, everyone
                // eligible again (a timeout says nothing certain about a signer).
                Some(s) if !s.fell_back && s.version != record.txid => FrostSessionRecord::open(record.txid, height),
                Some(s) if s.fell_back => {
                    if s.version == record.txid && may_build {
                        // The leaf version is due (or could not be built yet: fee pool short, no coins):
                        // tried at every block until it is.
                        let _ = self.bump(chain, record, meta)?;
                    }
                    continue;
                }
                Some(s) => {
                    let rules = session_rules(epoch.validators.len(), epoch.peg_threshold as usize);
                    let due = s.snapshot().deadline(&rules).is_some_and(|d| height >= d);
                    if !due || record.is_signed() {
                        continue;
                    }
                    // A guard: a session execution opened always restores. If it does not, the key path is
                    // given up for this batch (the leaf version), rather than every block failing or the batch
                    // waiting for good.
                    let mut s = s;
                    match restore_session(chain, epoch, &record, &s) {
                        Ok(mut session) => {
                            session.on_height(height);
                            let snapshot = session.snapshot().map_err(|e| FrostTxError::Refused {
                                batch: id,
                                source: peg::frost::session::Refusal::Frost(e),
                            })?;
                            s.update(snapshot);
                        }
                        Err(_) => s.stage = SessionStage::FallBack,
                    }
                    if s.stage == SessionStage::FallBack {
                        s.fell_back = true;
                        s.trim();
                        self.writes.insert(StateKey::FrostSession(id), canonical_bytes(&s));
                        // The leaf version; if it cannot be built now, the fallen-back branch retries.
                        if may_build {
                            let _ = self.bump(chain, record, meta)?;
                        }
                        continue;
                    }
                    s
                }
            };
            self.writes.insert(StateKey::FrostSession(id), canonical_bytes(&stored));
        }
        Ok(())
    }
}

/// The checks of a FROST message that need no cryptography, against the stored session: the attempt, the
/// phase, the signer's standing and the item count. Run before the peg-key signature and the session's
/// restoration, so junk costs every node a state read and nothing more.
fn precheck(
    stored: &FrostSessionRecord,
    record: &crate::batch_records::BatchRecord,
    tx: &FrostTx,
) -> Result<(), TxError> {
    use peg::frost::session::Refusal;
    let id = record.id;
    let signer = tx.signer.as_usize();
    let me = tx.signer.0;
    let refused = |source| -> TxError { FrostTxError::Refused { batch: id, source }.into() };
    if stored.excluded.contains(&me) {
        return Err(refused(Refusal::Excluded(signer)));
    }
    if tx.attempt != stored.attempt {
        return Err(refused(Refusal::WrongAttempt { got: tx.attempt, current: stored.attempt }));
    }
    let (items, stage_ok, repeated) = match &tx.round {
        FrostRound::Commit(items) => {
            (items.len(), stored.stage == SessionStage::Committing, stored.commitments.iter().any(|(s, _)| *s == me))
        }
        FrostRound::Share(items) => {
            let chosen = stored.commitments.iter().any(|(s, _)| *s == me);
            if stored.stage == SessionStage::Sharing && !chosen {
                return Err(refused(Refusal::NotASigner(signer)));
            }
            (items.len(), stored.stage == SessionStage::Sharing, stored.shares.iter().any(|(s, _)| *s == me))
        }
    };
    if !stage_ok {
        return Err(refused(Refusal::NotNow));
    }
    if repeated {
        return Err(refused(Refusal::Repeated(signer)));
    }
    if items != record.inputs.len() {
        return Err(refused(Refusal::WrongCount { got: items, inputs: record.inputs.len() }));
    }
    Ok(())
}
