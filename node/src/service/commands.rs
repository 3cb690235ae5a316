//! The operator's and RPC's commands ([`Command`]): each answered on its oneshot channel, after whatever it
//! changes is carried out (a status read right after a signing switch shows the switch).

use super::handle::{Command, ServiceError};
use super::proposer::now_ms;
use super::state::State;
use crate::claims::ClaimSource;
use crate::command_error::CommandError;
use crate::wire::{Gossip, TOPIC_TXS};
use ledger::SignedUserTx;
use tracing::{info, warn};

impl State {
    /// Carries out one command and answers it.
    pub(super) async fn on_command(&mut self, cmd: Command) -> Result<(), ServiceError> {
        match cmd {
            Command::SubmitTx(tx, done) => {
                let res = self.admit_tx(tx.clone());
                if res.is_ok() {
                    self.spawn_publish(TOPIC_TXS, Gossip::Tx(tx));
                }
                let _ = done.send(res.map_err(CommandError::from));
            }
            Command::MempoolInfo(done) => {
                let _ = done.send((self.mempool.len(), self.mempool.bytes()));
            }
            Command::MempoolTxids(done) => {
                let _ = done.send(self.mempool.candidates(usize::MAX).iter().map(SignedUserTx::txid).collect());
            }
            Command::MempoolTx(id, done) => {
                let _ = done.send(self.mempool.get(&id).cloned());
            }
            Command::Evidence(done) => {
                let _ = done.send(self.host.evidence().to_vec());
            }
            Command::ResumePeg(anchor, done) => {
                let res = match self.validator_index {
                    None => Err(CommandError::NotAValidator),
                    Some(_) => self.duties.request_resume(&self.chain, anchor),
                };
                let _ = done.send(res);
            }
            Command::ApproveFederation(proposal, done) => {
                let res = match self.validator_index {
                    None => Err(CommandError::NotInSetInForce),
                    // Signed for the epoch in force: the approval is void once that epoch is over.
                    Some(me) => ledger::federation::check_proposal(self.chain.chain(), &proposal)
                        .map(|()| {
                            let epoch = self.chain.federation().in_force().epoch;
                            proposal.approve(me, epoch, &self.cfg.keys.consensus, self.chain.chain().genesis_hash())
                        })
                        .map_err(CommandError::from),
                };
                if res.is_ok() {
                    warn!(validators = proposal.validators.len(), from = %proposal.activation_height,
                        "operator approves a federation change");
                }
                let _ = done.send(res);
            }
            Command::SubmitFederationChange(change, done) => {
                let tx = ledger::Tx::Reconfigure(change);
                let id = tx.txid();
                let state = self.chain.state();
                let res =
                    self.fed_pool.admit(self.chain.chain(), &state, tx.clone()).map(|_| id).map_err(CommandError::from);
                if res.is_ok() {
                    warn!(txid = %id, "federation change accepted into the pool");
                    self.spawn_publish(TOPIC_TXS, Gossip::Fed(tx));
                }
                let _ = done.send(res);
            }
            Command::SetSigningPaused(pause, done) => {
                let res = match pause {
                    true => self.signer.guard.pause(self.chain.store(), now_ms()),
                    false => self.signer.guard.resume(self.chain.store()),
                };
                if !self.signer.guard.may_sign() {
                    // Even if the write failed (the switch is on in memory): our shares still waiting for a
                    // block leave the pool, so our own proposals do not carry them.
                    let dropped = self.drop_own_shares();
                    info!(dropped, "signing paused: our pending signature shares left the federation pool");
                }
                if res.is_ok() && !pause {
                    // Whatever waits for our share gets it now, not at the next block.
                    self.sign_and_share();
                }
                // Published before the answer, so a status read right after it shows the switch.
                self.publish_status();
                let _ = done.send(res.map(|()| self.signer.guard.status()));
            }
            Command::ClaimPegin(claim, done) => {
                let res = self.duties.add_claim(&self.chain, claim.clone(), ClaimSource::Local);
                if res.is_ok() {
                    self.spawn_publish(TOPIC_TXS, Gossip::Claim(claim));
                }
                let _ = done.send(res);
            }
        }
        Ok(())
    }
}
