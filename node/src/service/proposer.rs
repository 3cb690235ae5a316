//! The proposer: builds this validator's block for a `(height, round)` from what the components offer,
//! in one fixed order: the peg's transactions (settlements, required mints, claims, as
//! `ledger::plan_peg_txs` applied them, so what it judged acceptable is exactly what the block executes),
//! then the federation pool's and the evidence, user transactions in what is left, and this validator's
//! own transactions last (`ledger::assemble_proposal` says why).
//!
//! It only reads: the components lend their state through [`BlockInputs`], and the answer is a
//! [`Proposed`] the event loop hands to the consensus host.

use crate::bridge::duties::OfferAt;
use crate::bridge::{BatchSigner, PegDuties};
use crate::chain::{commit_hash, ChainError, ChainState, FullBlock};
use crate::fed_pool::FedPool;
use crate::mempool::Mempool;
use consensus::Equivocation;
use ledger::{BlockTemplate, StateReader};
use primitives::{Height, Round, ValidatorIndex};
use std::collections::HashSet;
use tracing::info;

/// What the proposer reads.
pub struct BlockInputs<'a> {
    pub chain: &'a ChainState,
    pub duties: &'a PegDuties,
    pub signer: &'a BatchSigner,
    pub fed_pool: &'a FedPool,
    pub mempool: &'a Mempool,
    pub evidence: &'a [Equivocation],
}

/// The proposer's answer.
pub enum Proposed {
    /// Our block.
    Block(FullBlock),
    /// Not ours to build: not a validator, or not the height after the tip.
    NotOurs,
    /// Our block could not be built (we propose nothing this round; the alerts count it).
    Unbuildable(ledger::BlockError),
}

/// Milliseconds since the Unix epoch (a block's time).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl BlockInputs<'_> {
    /// Builds our block for `height` (`None`: not ours to build, or it could not be built).
    pub fn propose(&self, me: Option<ValidatorIndex>, height: Height, round: Round) -> Result<Proposed, ChainError> {
        if height != self.chain.tip().next() {
            return Ok(Proposed::NotOurs);
        }
        let Some(proposer) = me else { return Ok(Proposed::NotOurs) };
        let state = self.chain.state();
        let meta = state
            .chain_meta()
            .map_err(ChainError::from)?
            .ok_or(ChainError::Missing { what: "chain meta", height: self.chain.tip() })?;
        let chain = self.chain.chain();
        // The peg's transactions go first, in the order `ledger::plan_peg_txs` applied them (settlements,
        // required mints, claims), so what it judged acceptable is exactly what this block executes; then
        // the federation pool's, evidence (few, small, must not wait behind a full mempool); user
        // transactions fill what is left; this validator's own go last (`ledger::assemble_proposal` says why).
        let own = self.duties.own_validator_txs(self.chain, &state, &meta.btc_anchor, height, proposer);
        let mut pool: Vec<ledger::Tx> = self.fed_pool.select(chain, &state);
        if !self.signer.guard.may_sign() {
            // Paused: none of our shares through our own blocks (one relayed back to us included).
            let signer = &self.signer;
            pool.retain(|t| !matches!(t, ledger::Tx::PegShare(s) if signer.is_own_share(self.chain, &state, s)));
        }
        // Evidence first (at most 8, small), then the pool, cut to what fits beside our own (the pool may
        // hold more than a block): a big pool never keeps evidence out.
        let mut evidence = self.evidence_to_include(&state)?;
        evidence.append(&mut pool);
        let mut pool = ledger::fit_prefix(chain.params(), &own, evidence);
        let reserved: Vec<ledger::Tx> = own.iter().chain(&pool).cloned().collect();
        let room = crate::pegin::Room::after(chain, &reserved);
        let at = OfferAt { prev: meta.btc_anchor, height, round, room };
        let (btc_anchor, plan) = self.duties.offer(self.chain, &state, at);
        let mut front = plan.txs();
        pool.retain(|t| !plan.supersedes(t));
        front.append(&mut pool);
        let candidates = self.mempool.candidates(chain.params().block_max_txs as usize * 2);
        let selection = ledger::select_txs(chain, &state, candidates).map_err(ChainError::from)?;
        let txs = ledger::assemble_proposal(chain.params(), front, selection.txs, own);
        let template = BlockTemplate {
            height,
            prev_hash: self.chain.tip_hash(),
            time_ms: now_ms().max(meta.time_ms + 1),
            proposer,
            btc_anchor,
            last_commit_hash: commit_hash(self.chain.tip_cert()),
        };
        match ledger::build_block(chain, &**self.chain.store(), template, txs) {
            Ok((block, outcome)) => {
                let fb = FullBlock { block, last_commit: self.chain.tip_cert().cloned() };
                self.chain.keep_built(&fb, outcome);
                info!(%height, block = %fb.hash(), txs = fb.block.txs.len(), "proposing");
                Ok(Proposed::Block(fb))
            }
            Err(e) => Ok(Proposed::Unbuildable(e)),
        }
    }

    /// Evidence this node saw that the state does not hold yet, as transactions (at most 8 per block).
    pub fn evidence_to_include<S: StateReader>(&self, state: &S) -> Result<Vec<ledger::Tx>, ChainError> {
        let mut out = Vec::new();
        let mut keys = HashSet::new();
        for e in self.evidence {
            if out.len() == 8 {
                break;
            }
            // One record per (offender, height, round), however many message pairs show it.
            if keys.insert((e.offender(), e.height(), e.round()))
                && state.get_evidence(e.offender(), e.height(), e.round()).map_err(ChainError::from)?.is_none()
            {
                out.push(ledger::Tx::Evidence(ledger::EvidenceTx {
                    offender: e.offender(),
                    height: e.height(),
                    round: e.round(),
                    proof: crate::wire::encode(e),
                }));
            }
        }
        Ok(out)
    }
}
