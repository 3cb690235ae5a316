//! This validator's half of key-path signing (taproot custody, issue 23): its FROST commitments when a
//! batch version's signing collects them, its shares once the chain fixed it among the signers.
//!
//! A nonce is used at most once, ever. The rules that make it so:
//! - nonces come fresh from the OS generator, one set per (batch, version, attempt), made at most once per
//!   process ([`FrostSigner::messages`] remembers what it sent);
//! - they are written to the nonce file (0600, synced) before their commitment leaves the node;
//! - they are taken out of the file (synced) before the share that uses them is made;
//! - the nonces in the file are destroyed when the node starts ([`NonceStore::open`]), their turns kept as
//!   committed: a node that died between the rounds never shares for that attempt (the session excludes it
//!   at the deadline), nor commits again in it;
//! - a share is made only for the packages the chain fixed (committed state), and only when the commitment
//!   the chain recorded under this validator is the one these nonces make.
//!
//! Before its share, the validator runs the same checks as before a leaf share: the share-time breaker and
//! the record that keeps it from ever signing two versions of a batch that would not conflict.

use crate::chain::ChainState;
use crate::fault::{CrashConfig, CrashPoint};
use ledger::frost_signing::{frost_session, restore_session, SessionStage};
use ledger::{FrostRound, FrostTx, StateReader};
use peg::frost::{KeyShare, SigningNonces};
use primitives::ValidatorIndex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tracing::{error, info, warn};

/// File name of the nonce store in the datadir.
pub const NONCE_FILE: &str = "frost_nonces.json";

/// One signing turn: (batch, version txid, attempt).
type Turn = (u64, bitcoin::Txid, u32);

/// Why the nonce store failed.
#[derive(Debug, thiserror::Error)]
pub enum NonceStoreError {
    /// The file could not be read, written or synced.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Nonces the library cannot serialize (never for nonces it made).
    #[error("FROST nonces do not serialize")]
    Serialize,
}

/// The nonces of this validator's commitments not yet used, in memory and in a file, and the turns whose
/// nonces an earlier run made and this one destroyed.
pub struct NonceStore {
    path: PathBuf,
    live: BTreeMap<Turn, Vec<SigningNonces>>,
    burned: std::collections::BTreeSet<Turn>,
}

impl NonceStore {
    /// Opens the store in `datadir`, destroying whatever an earlier run left (see the module docs).
    /// Returns it and how many sets of nonces were destroyed.
    pub fn open(datadir: &Path) -> Result<(Self, usize), NonceStoreError> {
        let path = datadir.join(NONCE_FILE);
        let io = |source| NonceStoreError::Io { path: path.clone(), source };
        let entries: Vec<serde_json::Value> = match std::fs::read(&path) {
            // An unreadable file may still have held nonces: destroyed all the same, and said so.
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                warn!(path = %path.display(), "unreadable FROST nonce file: destroyed");
                Vec::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let mut burned = std::collections::BTreeSet::new();
        let mut destroyed = 0;
        for e in &entries {
            let turn =
                (|| Some((e["batch"].as_u64()?, e["txid"].as_str()?.parse().ok()?, e["attempt"].as_u64()? as u32)))();
            if let Some(turn) = turn {
                burned.insert(turn);
            }
            destroyed += usize::from(e["nonces"].as_array().is_some_and(|n| !n.is_empty()));
        }
        let store = NonceStore { path: path.clone(), live: BTreeMap::new(), burned };
        store.persist()?;
        Ok((store, destroyed))
    }

    /// Whether this validator made nonces for `turn` (in this run or, destroyed since, in an earlier one).
    fn committed(&self, turn: &Turn) -> bool {
        self.live.contains_key(turn) || self.burned.contains(turn)
    }

    /// Keeps `nonces` for `turn`, synced to disk before returning.
    fn put(&mut self, turn: Turn, nonces: Vec<SigningNonces>) -> Result<(), NonceStoreError> {
        self.live.insert(turn, nonces);
        self.persist()
    }

    /// Takes `turn`'s nonces out, the removal synced to disk before they are returned.
    fn take(&mut self, turn: &Turn) -> Result<Option<Vec<SigningNonces>>, NonceStoreError> {
        let Some(nonces) = self.live.remove(turn) else { return Ok(None) };
        self.persist()?;
        Ok(Some(nonces))
    }

    /// Destroys the nonces of turns `keep` refuses (attempts that ended, batches settled).
    fn retain(&mut self, keep: impl Fn(&Turn) -> bool) -> Result<(), NonceStoreError> {
        let before = (self.live.len(), self.burned.len());
        self.live.retain(|t, _| keep(t));
        self.burned.retain(|t| keep(t));
        if (self.live.len(), self.burned.len()) != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Writes the live nonces aside (0600), syncs, renames over the file, syncs the directory.
    fn persist(&self) -> Result<(), NonceStoreError> {
        let io = |source| NonceStoreError::Io { path: self.path.clone(), source };
        let mut entries = Vec::with_capacity(self.live.len());
        for ((batch, txid, attempt), nonces) in &self.live {
            let nonces = nonces
                .iter()
                .map(|n| n.serialize().map(hex::encode).map_err(|_| NonceStoreError::Serialize))
                .collect::<Result<Vec<_>, _>>()?;
            entries.push(
                serde_json::json!({ "batch": batch, "txid": txid.to_string(), "attempt": attempt, "nonces": nonces }),
            );
        }
        // Turns committed in an earlier run: no nonces, kept so that no restart commits twice in one turn.
        for (batch, txid, attempt) in &self.burned {
            let none: [String; 0] = [];
            entries.push(
                serde_json::json!({ "batch": batch, "txid": txid.to_string(), "attempt": attempt, "nonces": none }),
            );
        }
        let aside = self.path.with_extension("json.next");
        let _ = std::fs::remove_file(&aside);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&aside).map_err(io)?;
        f.write_all(serde_json::Value::Array(entries).to_string().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&aside, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

/// See the module docs.
pub struct FrostSigner {
    share: KeyShare,
    peg_key: bitcoin::secp256k1::SecretKey,
    peg_public: bitcoin::PublicKey,
    nonces: NonceStore,
    /// The messages this process signed, by turn and round (false: commitments, true: shares), sent again
    /// every pass until the chain has them or the turn is over (a full pool must not lose them).
    pending: HashMap<(Turn, bool), (FrostTx, u32)>,
    crash: CrashConfig,
}

impl FrostSigner {
    /// A signer with this validator's key share and nonce store.
    pub fn new(share: KeyShare, keys: &crate::keys::NodeKeys, nonces: NonceStore, crash: CrashConfig) -> Self {
        FrostSigner { share, peg_key: keys.peg, peg_public: keys.peg_public(), nonces, pending: HashMap::new(), crash }
    }

    /// This validator's FROST messages due at the tip: commitments for the attempts that collect them,
    /// shares for those that chose it (new ones for at most 8 batches a pass), each with how many times it
    /// was handed out before (0: new; more: a resend, which gossip must see as a new frame).
    pub fn messages(&mut self, cs: &ChainState) -> Vec<(FrostTx, u32)> {
        let state = cs.state();
        let chain = cs.chain();
        let federation = cs.federation();
        let Ok(index) = ledger::batching::batch_index(&state) else { return Vec::new() };
        let mut out = Vec::new();
        let mut current = HashSet::new();
        let mut new_work = 0;
        for id in &index.in_flight {
            let Ok(Some(b)) = ledger::batching::batch(&state, *id) else { continue };
            let Ok(Some(stored)) = frost_session(&state, *id) else { continue };
            if stored.fell_back || stored.version != b.txid || b.is_signed() {
                continue;
            }
            let Some(epoch) = federation.epoch(b.epoch) else { continue };
            let Some(me) = epoch.peg_signer(&self.peg_public) else { continue };
            if chain.frost_group(epoch).is_none() || me != self.share.index() {
                continue;
            }
            let turn = (*id, b.txid, stored.attempt);
            current.insert(turn);
            let mine = me as u16;
            if stored.excluded.contains(&mine) {
                continue;
            }
            let peg_key = self.peg_key;
            let (txid, attempt, genesis) = (b.txid, stored.attempt, *chain.genesis_hash());
            let sign = move |round| FrostTx::sign(*id, txid, attempt, ValidatorIndex(mine), round, &peg_key, &genesis);
            match stored.stage {
                SessionStage::Committing => {
                    if stored.commitments.iter().any(|(s, _)| *s == mine) {
                        continue;
                    }
                    if let Some((tx, sent)) = self.pending.get_mut(&(turn, false)) {
                        *sent += 1;
                        out.push((tx.clone(), *sent));
                        continue;
                    }
                    // Committed before a restart (nonces destroyed): never a second commitment in one turn.
                    if self.nonces.committed(&turn) || new_work >= 8 {
                        continue;
                    }
                    new_work += 1;
                    let mut rng = bitcoin::secp256k1::rand::thread_rng();
                    let (nonces, commitments): (Vec<_>, Vec<_>) =
                        b.inputs.iter().map(|_| self.share.commit(&mut rng)).unzip();
                    let bytes: Result<Vec<Vec<u8>>, _> = commitments
                        .iter()
                        .map(|c| peg::frost::wire::encode_commitments(c).map(|b| b.to_vec()))
                        .collect();
                    let Ok(bytes) = bytes else { continue };
                    // Persisted before the commitment leaves.
                    if let Err(e) = self.nonces.put(turn, nonces) {
                        error!(batch = id, error = %e, "cannot persist FROST nonces; not committing");
                        continue;
                    }
                    info!(batch = id, attempt = stored.attempt, btc_txid = %b.txid, "FROST: committing");
                    let tx = sign(FrostRound::Commit(bytes));
                    self.pending.insert((turn, false), (tx.clone(), 0));
                    out.push((tx, 0));
                }
                SessionStage::Sharing => {
                    let Some((_, on_chain)) = stored.commitments.iter().find(|(s, _)| *s == mine) else { continue };
                    if stored.shares.iter().any(|(s, _)| *s == mine) {
                        continue;
                    }
                    if let Some((tx, sent)) = self.pending.get_mut(&(turn, true)) {
                        *sent += 1;
                        out.push((tx.clone(), *sent));
                        continue;
                    }
                    if new_work >= 8 {
                        continue;
                    }
                    let on_chain = on_chain.clone();
                    if let Some(share) = self.share_for(cs, &state, &b, epoch, &stored, turn, &on_chain) {
                        new_work += 1;
                        info!(batch = id, attempt = stored.attempt, btc_txid = %b.txid, "FROST: signing");
                        let tx = sign(FrostRound::Share(share));
                        self.pending.insert((turn, true), (tx.clone(), 0));
                        out.push((tx, 0));
                    }
                }
                SessionStage::Signed(_) | SessionStage::FallBack => {}
            }
        }
        // Nonces of turns that are over are destroyed.
        if let Err(e) = self.nonces.retain(|t| current.contains(t)) {
            error!(error = %e, "cannot rewrite the FROST nonce file");
        }
        self.pending.retain(|(t, _), _| current.contains(t));
        out
    }

    /// Called once this pass's messages went out: the crash point for the test that kills a validator between
    /// the rounds.
    pub fn sent_commitments(&self, cs: &ChainState, any: bool) {
        if any {
            self.crash.at(CrashPoint::FrostCommitmentSent, cs.tip().next());
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn share_for<S: StateReader>(
        &mut self,
        cs: &ChainState,
        state: &S,
        b: &ledger::batching::BatchRecord,
        epoch: &ledger::FederationEpoch,
        stored: &ledger::frost_signing::FrostSessionRecord,
        turn: Turn,
        on_chain: &[[u8; peg::frost::wire::COMMITMENTS_BYTES]],
    ) -> Option<Vec<Vec<u8>>> {
        let chain = cs.chain();
        let id = b.id;
        if let Err(why) = ledger::breaker::check_batch(chain, state, b) {
            warn!(batch = id, reason = %why, "FROST: the share-time check refuses this batch version; not signing");
            return None;
        }
        let inputs: Vec<ledger::BtcOutPoint> = b.inputs.iter().map(|i| i.outpoint).collect();
        let store = cs.store();
        match store.signed_batch_versions(id) {
            Ok(signed) if crate::pegin::safe_to_sign(&signed, &b.txid, &inputs) => {}
            Ok(_) => {
                error!(batch = id, "refusing to sign a batch version that does not conflict with one signed before");
                return None;
            }
            Err(e) => {
                error!(batch = id, error = %e, "cannot read what this node signed; not signing");
                return None;
            }
        }
        // The nonces leave the store (synced) before anything is signed with them.
        let nonces = match self.nonces.take(&turn) {
            Ok(Some(n)) => n,
            Ok(None) => {
                info!(
                    batch = id,
                    attempt = turn.2,
                    "FROST: no nonces for this attempt (destroyed at restart); \
                    the session will go on without this validator"
                );
                return None;
            }
            Err(e) => {
                error!(batch = id, error = %e, "cannot rewrite the FROST nonce file; not signing");
                return None;
            }
        };
        let mine: Option<Vec<[u8; peg::frost::wire::COMMITMENTS_BYTES]>> =
            nonces.iter().map(|n| peg::frost::wire::encode_commitments(n.commitments()).ok()).collect();
        if mine.as_deref() != Some(on_chain) {
            warn!(batch = id, attempt = turn.2, "FROST: the chain holds another commitment of ours; not signing");
            return None;
        }
        if let Err(e) = store.record_signed_batch_version(id, crate::storage::SignedVersion { txid: b.txid, inputs }) {
            error!(batch = id, error = %e, "cannot persist the signature record; not signing");
            return None;
        }
        let session = restore_session(chain, epoch, b, stored)
            .map_err(|e| error!(batch = id, error = %e, "FROST session"))
            .ok()?;
        let mut out = Vec::with_capacity(nonces.len());
        // The session was restored from this node's committed state: its inputs are the sighashes this node
        // computed, and `sign` refuses a package whose message is not one of them.
        for ((package, nonce), input) in session.packages().iter().zip(nonces).zip(session.inputs()) {
            match self.share.sign(package, input.sighash, nonce, input.merkle_root) {
                Ok(share) => out.push(peg::frost::wire::encode_share(&share).ok()?.to_vec()),
                Err(e) => {
                    error!(batch = id, error = %e, "FROST: cannot sign");
                    return None;
                }
            }
        }
        Some(out)
    }
}
