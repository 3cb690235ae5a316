//! The committed chain: the store, the genesis, the tip, and the two ways a height becomes final here —
//! deciding it in consensus, or receiving it (with its certificate) through sync.
//!
//! Invariant owned here: a height is written only after its commit certificate verifies against the
//! validator set in force at that height (read from the state before it: federation changes are part of
//! the chain) and its block re-executes to the state root in its header. Full nodes and validators go
//! through the same [`ChainState::commit`]; nothing else writes blocks.

use crate::storage::{CommitBatch, Store, StoreError};
use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{CertificateError, CommitCertificate, ValidatorSet, ValidatorSetError};
use ledger::{BlockError, Chain, Snapshot, StateError};
use primitives::{canonical_bytes, tagged_hash, BlockId, GenesisHash, Hash32, Height, Round, TxId, ValidatorIndex};
use std::sync::Arc;

/// A block as it travels and is stored: the ledger block plus the certificate of the height before it,
/// whose hash the header commits to (`last_commit_hash`). Carrying the previous certificate in the block
/// makes the chain self-certifying: block `h` proves `h - 1` final.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FullBlock {
    /// The block.
    pub block: ledger::Block,
    /// 2f+1 precommits for height `h - 1` (none for height 1).
    pub last_commit: Option<CommitCertificate>,
}

impl FullBlock {
    /// The block hash (the consensus value).
    pub fn hash(&self) -> BlockId {
        self.block.hash()
    }

    /// The height.
    pub fn height(&self) -> Height {
        self.block.header.height
    }
}

/// The hash a header stores for the previous height's certificate (zero when there is none).
pub fn commit_hash(cert: Option<&CommitCertificate>) -> Hash32 {
    cert.map_or(Hash32::ZERO, |c| tagged_hash("sidechain/commit", &[&canonical_bytes(c)]))
}

/// Why a block cannot be appended to the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Storage failed (not a verdict on the block).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The state could not be read (not a verdict on the block).
    #[error(transparent)]
    State(#[from] StateError),
    /// A validator set in state is unusable (never for sets that passed the ledger's checks).
    #[error("validator set: {0}")]
    Validators(#[from] ValidatorSetError),
    /// The block's height is not the next one.
    #[error("block at height {got} does not follow tip {tip}")]
    NotNext { tip: Height, got: Height },
    /// The block does not build on our tip.
    #[error("block {height} builds on {got}, our tip is {tip}")]
    WrongParent { height: Height, tip: BlockId, got: BlockId },
    /// The certificate does not decide this block.
    #[error("certificate at height {height} is for {cert}, block is {block}")]
    CertForOtherBlock { height: Height, cert: BlockId, block: BlockId },
    /// The certificate does not verify.
    #[error("certificate for height {height}: {source}")]
    BadCertificate {
        height: Height,
        #[source]
        source: Box<CertificateError>,
    },
    /// The block's own copy of the previous certificate is missing or wrong.
    #[error("block {height}: last commit {source}")]
    BadLastCommit {
        height: Height,
        #[source]
        source: LastCommitError,
    },
    /// Execution rejected the block.
    #[error("block {height} is invalid: {source}")]
    Invalid {
        height: Height,
        #[source]
        source: Box<BlockError>,
    },
    /// A stored value is missing where the store's invariants put one: the store is damaged.
    #[error("stored {what} at height {height} is missing")]
    Missing { what: &'static str, height: Height },
    /// A stored value does not decode.
    #[error("stored {what} at height {height} does not decode: {source}")]
    Undecodable {
        what: &'static str,
        height: Height,
        #[source]
        source: std::io::Error,
    },
    /// An evidence transaction whose proof does not show the equivocation it names.
    #[error("block {height}: evidence tx {index}: {source}")]
    BadEvidence {
        height: Height,
        index: usize,
        #[source]
        source: EvidenceCheckError,
    },
}

/// What is wrong with a block's copy of the previous block's certificate (its "last commit").
#[derive(Debug, thiserror::Error)]
pub enum LastCommitError {
    /// Absent above height 1.
    #[error("is missing")]
    Missing,
    /// Present at height 1, which has no previous block.
    #[error("present at height 1")]
    AtHeightOne,
    /// It decides another block than our tip.
    #[error("is for block {block}")]
    ForOtherBlock { block: BlockId },
    /// It does not verify against the tip's validator set.
    #[error("{0}")]
    Invalid(#[source] Box<CertificateError>),
    /// Its hash is not the header's `last_commit_hash`.
    #[error("hash does not match the header")]
    HashMismatch,
}

/// Why an evidence transaction's proof does not show the equivocation it names.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceCheckError {
    /// The proof bytes are not a borsh [`consensus::Equivocation`].
    #[error("proof does not decode: {0}")]
    Decode(#[source] borsh::io::Error),
    /// The two messages are not a signed equivocation by that validator.
    #[error(transparent)]
    Proof(#[from] consensus::EvidenceError),
    /// A valid proof, but of another offence than the transaction names.
    #[error(
        "proof is against validator {} at {}/{}, the transaction names {} at {}/{}",
        proof.0, proof.1, proof.2, named.0, named.1, named.2
    )]
    NamesAnother {
        /// Offender, height and round the proof shows.
        proof: (ValidatorIndex, Height, Round),
        /// Offender, height and round the transaction names.
        named: (ValidatorIndex, Height, Round),
    },
    /// The validator set in force at the offence's height is unusable.
    #[error("validator set: {0}")]
    Set(#[from] ValidatorSetError),
}

/// Writes the genesis state as height 0 into an empty store (nothing when a tip exists).
pub fn write_genesis(chain: &Chain, store: &Store) -> Result<(), ChainError> {
    store.check_genesis(chain.genesis_hash())?;
    if store.tip()?.is_none() {
        let ws = chain.genesis_state(store)?;
        let batch = CommitBatch {
            height: Height(0),
            hash: chain.genesis_hash().as_block_id(),
            block: &[],
            cert: &[],
            state: &ws,
            txids: &[],
            registrations: &[],
            history: None,
        };
        store.commit(&batch)?;
    }
    Ok(())
}

/// The consensus set of a federation epoch.
pub fn consensus_set(epoch: &ledger::FederationEpoch) -> Result<ValidatorSet, ChainError> {
    Ok(light::consensus_set(epoch)?)
}

/// What the state after `tip` says about validator sets, read once per tip: the federation history (it
/// knows the epoch of every height up to `tip + 1`, and a change pending for `tip + 2`).
struct TipSets {
    federation: ledger::FederationState,
    /// Decided `tip` (its certificate, carried by the next block, verifies against it).
    tip: ValidatorSet,
    /// Decides `tip + 1`.
    next: ValidatorSet,
    /// Decides `tip + 2`, as far as the tip's state knows: early consensus messages for it are checked
    /// against this.
    after_next: ValidatorSet,
}

impl TipSets {
    fn read(chain: &Chain, store: &Store, tip: Height) -> Result<Self, ChainError> {
        Self::from_federation(ledger::federation_state(chain, &Snapshot::new(store, tip.get()))?, tip)
    }

    /// The sets of `tip`, `tip + 1` and `tip + 2` from the federation state after `tip`. A change can only
    /// take effect at `tip + 2` if it is pending now (`federation_change_min_lead >= 2`: block `tip + 1`
    /// cannot schedule one for `tip + 2`), so the set of `tip + 2` is the pending one when it activates
    /// there, and the set of `tip + 1` otherwise; never the set in force at the tip.
    fn from_federation(federation: ledger::FederationState, tip: Height) -> Result<Self, ChainError> {
        let next = consensus_set(federation.deciding(tip.next()))?;
        let after_next = consensus_set(federation.deciding(tip.next().next()))?;
        Ok(TipSets { tip: consensus_set(federation.at_height(tip))?, next, after_next, federation })
    }

    fn at(&self, tip: Height, h: Height) -> Option<&ValidatorSet> {
        if h == tip.next() {
            Some(&self.next)
        } else if h == tip.next().next() {
            Some(&self.after_next)
        } else {
            None
        }
    }
}

/// Checks an evidence transaction's proof: two conflicting messages, both validly signed by the named
/// validator of this chain's set, at the named height and round. The ledger records evidence without
/// looking inside (it does not know consensus types); this is where every node checks it.
pub fn verify_evidence(
    ev: &ledger::EvidenceTx,
    validators: &ValidatorSet,
    genesis: &GenesisHash,
) -> Result<consensus::Equivocation, EvidenceCheckError> {
    let e: consensus::Equivocation = borsh::from_slice(&ev.proof).map_err(EvidenceCheckError::Decode)?;
    e.verify(validators, genesis)?;
    let (proof, named) = ((e.offender(), e.height(), e.round()), (ev.offender, ev.height, ev.round));
    if proof != named {
        return Err(EvidenceCheckError::NamesAnother { proof, named });
    }
    Ok(e)
}

/// The committed chain as this node holds it.
pub struct ChainState {
    chain: Chain,
    store: Arc<Store>,
    /// The federation and the validator sets around the tip.
    sets: TipSets,
    tip: Height,
    tip_hash: BlockId,
    tip_cert: Option<CommitCertificate>,
    /// Whether commits write the account history.
    history: HistoryIndex,
    /// The last block executed on this tip (by the validity judge, or built by this node) with its outcome,
    /// so that committing it does not execute it again. Reused only for an equal block: its header names
    /// the parent (checked equal to the tip), and the whole transaction list must match, not only its root
    /// (a txid does not cover the transaction's kind, so one root can stand for two lists). Cleared when the
    /// tip moves. A mutex only so the judge can fill it through `&self`; the event loop is its one user.
    executed: std::sync::Mutex<Option<(ledger::Block, ledger::ExecutionOutcome)>>,
    /// Blocks executed so far (validity and commit), for tests and metrics: one per block is the goal.
    executions: std::sync::atomic::AtomicU64,
}

/// Whether a node keeps the account history (`listtransactions`). A validator that serves no wallets may
/// turn it off; turned on again, the node catches up from its blocks when it opens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistoryIndex {
    /// Kept: built at every commit, caught up from blocks on open.
    #[default]
    On,
    /// Not kept (what was built stays, and its mark says how far it goes).
    Off,
}

impl ChainState {
    /// Opens the chain on `store` keeping the account history: see [`ChainState::open_with`].
    pub fn open(chain: Chain, store: Arc<Store>) -> Result<ChainState, ChainError> {
        Self::open_with(chain, store, HistoryIndex::On)
    }

    /// Opens the chain on `store`: writes the genesis state on first start, else resumes at the stored tip.
    /// With the history on, first indexes every committed block the history does not cover yet (a node that
    /// ran without it, or whose history column family was dropped).
    pub fn open_with(chain: Chain, store: Arc<Store>, history: HistoryIndex) -> Result<ChainState, ChainError> {
        write_genesis(&chain, &store)?;
        let tip = store.tip()?.unwrap_or(Height(0));
        let sets = TipSets::read(&chain, &store, tip)?;
        let (tip_hash, tip_cert) = if tip == Height(0) {
            (chain.genesis_hash().as_block_id(), None)
        } else {
            let fb =
                Self::read_block(&store, tip)?.ok_or(ChainError::Missing { what: "block at the tip", height: tip })?;
            (fb.hash(), Self::read_cert(&store, tip)?)
        };
        if history == HistoryIndex::On {
            Self::catch_up_history(&store, tip)?;
        }
        Ok(ChainState {
            chain,
            store,
            sets,
            tip,
            tip_hash,
            tip_cert,
            history,
            executed: std::sync::Mutex::new(None),
            executions: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Indexes the history of every block above the index's mark, through `tip`: each block against the
    /// state before it (the state tree keeps every version).
    fn catch_up_history(store: &Store, tip: Height) -> Result<(), ChainError> {
        let from = store.history_indexed_to()?.map_or(Height(1), Height::next);
        if from > tip {
            return Ok(());
        }
        tracing::info!(from = from.get(), to = tip.get(), "indexing account history from stored blocks");
        for h in from.get()..=tip.get() {
            let h = Height(h);
            let fb = Self::read_block(store, h)?.ok_or(ChainError::Missing { what: "block", height: h })?;
            let (pre, post) = (Snapshot::new(store, h.get() - 1), Snapshot::new(store, h.get()));
            let entries = ledger::history::block_history(&pre, &post, h, &fb.block).map_err(ChainError::from)?;
            store.index_history(h, &entries, h == tip)?;
        }
        Ok(())
    }

    fn read_block(store: &Store, h: Height) -> Result<Option<FullBlock>, ChainError> {
        store
            .block(h)?
            .map(|b| {
                borsh::from_slice(&b).map_err(|source| ChainError::Undecodable { what: "block", height: h, source })
            })
            .transpose()
    }

    fn read_cert(store: &Store, h: Height) -> Result<Option<CommitCertificate>, ChainError> {
        store
            .cert(h)?
            .map(|b| {
                borsh::from_slice(&b).map_err(|source| ChainError::Undecodable {
                    what: "certificate",
                    height: h,
                    source,
                })
            })
            .transpose()
    }

    /// The chain definition.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The store (shared with read-only readers such as RPC).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The validator set of the height after the tip.
    pub fn validators(&self) -> &ValidatorSet {
        &self.sets.next
    }

    /// The validator set of height `h`, for `h` the height after the tip or the one after that (consensus
    /// messages arrive for both); `None` for any other height.
    pub fn validators_at(&self, h: Height) -> Option<&ValidatorSet> {
        self.sets.at(self.tip, h)
    }

    /// The federation history and any pending change, as of the tip.
    pub fn federation(&self) -> &ledger::FederationState {
        &self.sets.federation
    }

    /// The committed tip height.
    pub fn tip(&self) -> Height {
        self.tip
    }

    /// The hash of the tip block (the genesis hash at height 0).
    pub fn tip_hash(&self) -> BlockId {
        self.tip_hash
    }

    /// The certificate of the tip (none at genesis).
    pub fn tip_cert(&self) -> Option<&CommitCertificate> {
        self.tip_cert.as_ref()
    }

    /// The state after the tip.
    pub fn state(&self) -> Snapshot<'_, Store> {
        Snapshot::new(&*self.store, self.tip.get())
    }

    /// A committed block.
    pub fn block(&self, h: Height) -> Result<Option<FullBlock>, ChainError> {
        if h == Height(0) || h > self.tip {
            return Ok(None);
        }
        Self::read_block(&self.store, h)
    }

    /// A committed block's certificate.
    pub fn cert(&self, h: Height) -> Result<Option<CommitCertificate>, ChainError> {
        if h == Height(0) || h > self.tip {
            return Ok(None);
        }
        Self::read_cert(&self.store, h)
    }

    /// Checks everything about `fb` as the next block except its certificate: parent, the embedded
    /// previous certificate, evidence, and execution (state root). The outcome is kept for the commit of
    /// the same block (see [`ChainState::commit`]), so a block judged and then committed executes once.
    pub fn validate_next(&self, fb: &FullBlock) -> Result<(), ChainError> {
        self.check_next(fb)?;
        let mut executed = self.executed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if executed.as_ref().is_some_and(|(done, _)| *done == fb.block) {
            return Ok(());
        }
        *executed = Some((fb.block.clone(), self.execute(fb)?));
        Ok(())
    }

    /// Keeps the outcome of building `fb` on this tip (`ledger::build_block` executes what it builds), so
    /// that judging and committing this node's own proposal execute it no more. Ignored unless `fb` extends
    /// the tip.
    pub fn keep_built(&self, fb: &FullBlock, outcome: ledger::ExecutionOutcome) {
        if fb.height() == self.tip.next() && fb.block.header.prev_hash == self.tip_hash {
            *self.executed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((fb.block.clone(), outcome));
        }
    }

    /// Blocks executed so far by this chain state (validity checks and commits).
    pub fn executions(&self) -> u64 {
        self.executions.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn execute(&self, fb: &FullBlock) -> Result<ledger::ExecutionOutcome, ChainError> {
        self.executions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ledger::execute_block(&self.chain, &*self.store, &fb.block)
            .map_err(|e| ChainError::Invalid { height: fb.height(), source: Box::new(e) })
    }

    /// The checks of [`ChainState::validate_next`] that need no execution. (The tx root is execution's to
    /// check; a kept outcome is only reused for an equal block, which that execution checked.)
    fn check_next(&self, fb: &FullBlock) -> Result<(), ChainError> {
        let h = fb.height();
        if h != self.tip.next() {
            return Err(ChainError::NotNext { tip: self.tip, got: h });
        }
        let header = &fb.block.header;
        if header.prev_hash != self.tip_hash {
            return Err(ChainError::WrongParent { height: h, tip: self.tip_hash, got: header.prev_hash });
        }
        let bad_last_commit = |source| ChainError::BadLastCommit { height: h, source };
        match (&fb.last_commit, self.tip) {
            (None, Height(0)) => {}
            (None, _) => return Err(bad_last_commit(LastCommitError::Missing)),
            (Some(_), Height(0)) => return Err(bad_last_commit(LastCommitError::AtHeightOne)),
            (Some(c), tip) => {
                if c.value != self.tip_hash {
                    return Err(bad_last_commit(LastCommitError::ForOtherBlock { block: c.value }));
                }
                c.verify(&self.sets.tip, self.chain.genesis_hash(), tip)
                    .map_err(|e| bad_last_commit(LastCommitError::Invalid(Box::new(e))))?;
            }
        }
        if header.last_commit_hash != commit_hash(fb.last_commit.as_ref()) {
            return Err(bad_last_commit(LastCommitError::HashMismatch));
        }
        for (index, tx) in fb.block.txs.iter().enumerate() {
            if let ledger::Tx::Evidence(ev) = tx {
                // Against the set that was in force at the offence's height.
                let bad = |source: EvidenceCheckError| ChainError::BadEvidence { height: h, index, source };
                let set = light::consensus_set(self.sets.federation.at_height(ev.height)).map_err(|e| bad(e.into()))?;
                verify_evidence(ev, &set, self.chain.genesis_hash()).map_err(bad)?;
            }
        }
        Ok(())
    }

    /// Appends `fb` with the certificate that decided it: verifies the certificate and the block (executing
    /// it unless [`ChainState::validate_next`] just did), and writes block, certificate and state in one
    /// atomic batch.
    pub fn commit(&mut self, fb: &FullBlock, cert: &CommitCertificate) -> Result<ledger::ExecutionOutcome, ChainError> {
        let h = fb.height();
        if cert.value != fb.hash() {
            return Err(ChainError::CertForOtherBlock { height: h, cert: cert.value, block: fb.hash() });
        }
        cert.verify(&self.sets.next, self.chain.genesis_hash(), h)
            .map_err(|e| ChainError::BadCertificate { height: h, source: Box::new(e) })?;
        self.check_next(fb)?;
        let kept = self.executed.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let outcome = match kept {
            Some((done, outcome)) if done == fb.block => outcome,
            _ => self.execute(fb)?,
        };
        let block_bytes = canonical_bytes(fb);
        let cert_bytes = canonical_bytes(cert);
        let txids: Vec<TxId> = fb.block.txs.iter().map(ledger::Tx::txid).collect();
        let registrations = crate::pegin::registrations_in(&fb.block);
        let history = match self.history {
            HistoryIndex::On => {
                let pre = self.state();
                let post = ledger::history::AfterBlock::new(&pre, &outcome.write_set.changes);
                Some(ledger::history::block_history(&pre, &post, h, &fb.block)?)
            }
            HistoryIndex::Off => None,
        };
        self.store.commit(&CommitBatch {
            height: h,
            hash: fb.hash(),
            block: &block_bytes,
            cert: &cert_bytes,
            state: &outcome.write_set,
            txids: &txids,
            registrations: &registrations,
            history: history.as_deref(),
        })?;
        self.tip = h;
        self.tip_hash = fb.hash();
        self.tip_cert = Some(cert.clone());
        self.sets = TipSets::read(&self.chain, &self.store, h)?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::testkit::{validator_key, validator_peg_key};
    use ledger::StateReader as _;
    use ledger::{FederationEpoch, FederationState, GenesisValidator};
    use primitives::Round;

    fn epoch(n: u32, members: std::ops::Range<u32>, from: u64) -> FederationEpoch {
        let validators: Vec<GenesisValidator> = members
            .map(|i| GenesisValidator {
                consensus_key: validator_key(i).public(),
                peg_key: validator_peg_key(i),
                p2p_addr: format!("/ip4/127.0.0.1/tcp/{}", 26656 + i),
                power: 1,
            })
            .collect();
        let peg_threshold = validators.len() as u32;
        FederationEpoch { epoch: n, validators, peg_threshold, from_height: Height(from) }
    }

    /// At tip 10, a change from validators 0..4 to 4..9 pending for height 12 (tip + 2): proposals for
    /// height 12 are judged by the new set, height 11's by the old one, and heights past 12 not at all.
    #[test]
    fn the_proposer_at_tip_plus_two_comes_from_the_set_in_force_there() {
        let tip = Height(10);
        let old = epoch(0, 0..4, 1);
        let new = epoch(1, 4..9, 12);
        let fs = FederationState { epochs: vec![old.clone()], pending: Some(new.clone()) };
        let sets = TipSets::from_federation(fs, tip).expect("sets");
        let (old_set, new_set) = (consensus_set(&old).expect("set"), consensus_set(&new).expect("set"));
        assert_eq!(sets.at(tip, Height(11)), Some(&old_set));
        assert_eq!(sets.at(tip, Height(12)), Some(&new_set));
        assert_eq!(sets.at(tip, Height(13)), None, "not known yet: not judged");
        assert_eq!(sets.at(tip, Height(10)), None);
        // The two sets pick different proposers at height 12 (the new one has five members): the wrong set
        // would refuse the honest proposer.
        let differ =
            (0..20u32).any(|r| old_set.proposer(Height(12), Round(r)) != new_set.proposer(Height(12), Round(r)));
        assert!(differ);
        // A change pending for later leaves tip + 2 with the set of tip + 1.
        let later = FederationState { epochs: vec![old.clone()], pending: Some(epoch(1, 4..9, 13)) };
        let sets = TipSets::from_federation(later, tip).expect("sets");
        assert_eq!(sets.at(tip, Height(12)), Some(&old_set));
        // Once activated (the state after block 11), height 12 is `tip + 1` and still the new set.
        let active = FederationState { epochs: vec![old, new], pending: None };
        let sets = TipSets::from_federation(active, Height(11)).expect("sets");
        assert_eq!(sets.at(Height(11), Height(12)), Some(&new_set));
        assert_eq!(sets.at(Height(11), Height(13)), Some(&new_set));
    }

    /// A chain of 4 validators and 2 funded users on a fresh RocksDB store.
    fn open_chain(dir: &std::path::Path) -> ChainState {
        let chain = Chain::new(ledger::testkit::genesis(4, 2, bitcoin::Amount::from_sat(1_000_000))).expect("chain");
        let store = Arc::new(Store::open(&dir.join("db")).expect("store"));
        ChainState::open(chain, store).expect("open")
    }

    /// The next block with `txs`, and the certificate of all 4 validators for it.
    fn next_block(cs: &ChainState, txs: Vec<ledger::Tx>) -> (FullBlock, CommitCertificate) {
        let h = cs.tip().next();
        let template = ledger::BlockTemplate {
            height: h,
            prev_hash: cs.tip_hash(),
            time_ms: cs.chain().genesis().genesis_time_ms + h.get() * 1000,
            proposer: ValidatorIndex(0),
            btc_anchor: cs.chain().genesis().btc_anchor,
            last_commit_hash: commit_hash(cs.tip_cert()),
        };
        let (block, _) = ledger::build_block(cs.chain(), &**cs.store(), template, txs).expect("build");
        let fb = FullBlock { block, last_commit: cs.tip_cert().cloned() };
        let value = fb.hash();
        let signatures = (0..4u32)
            .map(|i| {
                let validator = ValidatorIndex(i as u16);
                let vote = consensus::Vote {
                    kind: consensus::VoteKind::Precommit,
                    height: h,
                    round: Round(0),
                    value: Some(value),
                    validator,
                };
                (validator, vote.sign(&validator_key(i), cs.chain().genesis_hash()).signature)
            })
            .collect();
        (fb, CommitCertificate { height: h, round: Round(0), value, signatures })
    }

    fn pay(cs: &ChainState, nonce: u64, sats: u64) -> ledger::Tx {
        let to = ledger::testkit::user_key(1).public().account_id();
        let fee = cs.chain().params().min_fee;
        ledger::testkit::transfer(
            cs.chain(),
            &ledger::testkit::user_key(0),
            nonce,
            to,
            bitcoin::Amount::from_sat(sats),
            fee,
        )
        .into()
    }

    /// A block judged (executed) and then committed executes once; one committed without a judgement
    /// executes at commit; and a block whose transactions were swapped under the judged header is refused,
    /// never committed with the judged outcome.
    #[test]
    fn a_judged_block_is_executed_once_and_its_outcome_only_serves_its_own_transactions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cs = open_chain(dir.path());
        let (fb, cert) = next_block(&cs, vec![pay(&cs, 0, 10)]);
        cs.validate_next(&fb).expect("valid");
        cs.validate_next(&fb).expect("judged again: no new execution");
        assert_eq!(cs.executions(), 1);
        let outcome = cs.commit(&fb, &cert).expect("commit");
        assert_eq!(cs.executions(), 1, "the commit reused the judged outcome");
        assert_eq!(cs.state().root().expect("root"), outcome.state_root);
        assert_eq!(outcome.state_root, fb.block.header.state_root);

        // Our own proposal: built (executed once, by the builder), judged and committed without executing.
        let (own, own_cert) = next_block(&cs, vec![pay(&cs, 1, 20)]);
        let template = ledger::BlockTemplate {
            height: own.height(),
            prev_hash: own.block.header.prev_hash,
            time_ms: own.block.header.time_ms,
            proposer: own.block.header.proposer,
            btc_anchor: own.block.header.btc_anchor,
            last_commit_hash: own.block.header.last_commit_hash,
        };
        let (_, built) =
            ledger::build_block(cs.chain(), &**cs.store(), template, own.block.txs.clone()).expect("build");
        cs.keep_built(&own, built);
        cs.validate_next(&own).expect("valid");
        cs.commit(&own, &own_cert).expect("commit");
        assert_eq!(cs.executions(), 1, "the builder's outcome served the judge and the commit");

        let (fb2, cert2) = next_block(&cs, vec![pay(&cs, 2, 20)]);
        cs.commit(&fb2, &cert2).expect("commit without a judgement");
        assert_eq!(cs.executions(), 2, "executed at commit");

        let (fb3, cert3) = next_block(&cs, vec![pay(&cs, 3, 30)]);
        cs.validate_next(&fb3).expect("valid");
        let mut swapped = fb3.clone();
        swapped.block.txs = vec![pay(&cs, 3, 31)];
        assert_eq!(swapped.hash(), fb3.hash(), "the header, hence the id, is the judged one");
        let e = cs.commit(&swapped, &cert3).expect_err("other transactions under the judged header");
        assert!(
            matches!(&e, ChainError::Invalid { source, .. } if matches!(**source, ledger::BlockError::TxRootMismatch { .. })),
            "{e:?}"
        );
        assert_eq!(cs.tip(), Height(3), "nothing committed");
        cs.commit(&fb3, &cert3).expect("the judged block itself");
        let paid = cs.state().get_account(&ledger::testkit::user_key(1).public().account_id()).expect("read");
        assert_eq!(paid.map(|a| a.balance), Some(bitcoin::Amount::from_sat(1_000_000 + 10 + 20 + 20 + 30)));
    }
}
