//! Committing a block, decided here or fetched by sync, and what follows the tip: the mempool, the peg
//! duties, the federation pool, our place in the federation, signing, the status and the next height.

use super::handle::ServiceError;
use super::proposer::now_ms;
use super::state::State;
use crate::chain::{ChainError, FullBlock};
use crate::wire::{Gossip, TOPIC_STATUS};
use consensus::CommitCertificate;
use primitives::{Height, TxId};
use tokio::time::Instant;
use tracing::{debug, info, warn};

impl State {
    pub(super) fn commit_decided(&mut self, fb: FullBlock, cert: CommitCertificate) -> Result<(), ServiceError> {
        self.commit_block(&fb, &cert, false)?;
        self.after_tip_moved()
    }

    /// Commits one block; the caller restarts consensus afterwards.
    /// `synced`: the block came by sync rather than being decided here (counted apart in the status, so
    /// metrics never take a synced block's age for a finality time).
    pub(super) fn commit_block(
        &mut self,
        fb: &FullBlock,
        cert: &CommitCertificate,
        synced: bool,
    ) -> Result<(), ServiceError> {
        self.crash_point(crate::fault::CrashPoint::BeforeCommitWrite, fb.height());
        match self.chain.commit(fb, cert) {
            Ok(outcome) => {
                self.crash_point(crate::fault::CrashPoint::AfterCommitWrite, fb.height());
                let included: Vec<TxId> = outcome.receipts.iter().map(|r| r.txid).collect();
                self.mempool.on_block(self.chain.chain(), &self.chain.state(), &included);
                let state = self.chain.state();
                self.duties.after_commit(&self.chain, fb);
                self.fed_pool.prune(self.chain.chain(), &state, &included);
                self.follow_federation(fb.height());
                self.signer.publish_signed(&self.chain);
                self.sign_and_share();
                self.tip_committed_ms = now_ms();
                self.tip_committed_at = Instant::now();
                if synced {
                    self.synced_blocks += 1;
                }
                self.peg_summary = self.duties.summary(&self.chain);
                // RPC reads the tip from the status: publish it before anyone hears of the block, so a
                // subscriber (or a client that saw the tx leave the mempool) can read the block at once.
                self.publish_status();
                // Nobody listening is fine.
                let _ = self.blocks.send(fb.block.clone());
                info!(height = %fb.height(), block = %fb.hash(), txs = included.len(), "committed");
                Ok(())
            }
            // Storage failures stop the node; a block that does not verify is the sender's problem.
            Err(ChainError::Store(e)) => Err(e.into()),
            Err(ChainError::State(e)) => Err(ChainError::State(e).into()),
            Err(e) => {
                warn!(height = %fb.height(), error = %e, "refusing block");
                Err(e.into())
            }
        }
    }

    /// After block `height`: our place in the set of the next height (we may have joined or left the
    /// federation), and the deposit scripts to watch (a new epoch, or the end of a deposit window).
    fn follow_federation(&mut self, height: Height) {
        let next = self.chain.validators().index_of(&self.cfg.keys.consensus_public());
        if next != self.validator_index {
            match next {
                Some(i) => warn!(%height, index = %i, "this node is a validator from the next height on"),
                None => {
                    warn!(%height, "this node is no longer a validator (federation change); running as a full node")
                }
            }
            self.validator_index = next;
        }
        let fs = self.chain.federation();
        if let Some(p) = &fs.pending {
            debug!(%height, epoch = p.epoch, from = %p.from_height, "federation change pending");
        }
    }

    pub(super) fn after_tip_moved(&mut self) -> Result<(), ServiceError> {
        self.duties.tip_moved(&self.chain);
        self.chain.store().wal_clear()?;
        self.host.start_height(self.chain.tip().next(), self.chain.validators().clone(), Vec::new());
        self.spawn_publish(TOPIC_STATUS, Gossip::Status { height: self.chain.tip() });
        Ok(())
    }
}
