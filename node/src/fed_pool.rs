//! The federation pool: signature shares, FROST signing messages and federation changes waiting for a block.
//!
//! Why a pool apart from the mempool: these transactions carry their own authority (a share's ECDSA
//! signatures by a peg key of the batch's wallet, a change's approvals by 2f+1 of the set in force), pay no
//! fee and have no nonce. Any node relays them and any proposer includes them, which is what lets a
//! validator that left the federation still sign the sweep of the wallet it holds a key of, and what makes a
//! share land in the next block instead of waiting for its signer's turn to propose.
//!
//! Admission runs the ledger's own check (`ledger::check_pool_tx`) against the tip, so only what would
//! apply is kept and relayed; proposers take what still applies in order (`ledger::select_pool_txs`).

use ledger::{Chain, StateReader, Tx};
use primitives::TxId;

/// Most transactions kept at once.
pub const MAX_POOL_TXS: usize = 2048;

/// Why the pool did not take a transaction.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The pool is full.
    #[error("the federation pool is full ({MAX_POOL_TXS} transactions)")]
    Full,
    /// It would not apply on top of the tip.
    #[error(transparent)]
    Invalid(#[from] ledger::TxError),
}

impl PoolError {
    /// Whether the sender is at fault whatever its view of the chain: a signature or approval that does not
    /// verify, or a proposal no state makes acceptable. (A share for a version this node has not seen yet,
    /// or a change that is pending already, says nothing bad about the sender.)
    pub fn is_forged(&self) -> bool {
        matches!(
            self,
            PoolError::Invalid(
                ledger::TxError::BadApproval { .. }
                    | ledger::TxError::BadBatchShare { .. }
                    | ledger::TxError::Frost(ledger::FrostTxError::BadSignature { .. })
                    | ledger::TxError::BadProposal(_)
                    | ledger::TxError::NotAPoolTx
                    | ledger::TxError::NotEnoughApprovals { .. }
            )
        )
    }
}

/// Shares and federation changes not yet in a block.
#[derive(Debug, Default)]
pub struct FedPool {
    txs: Vec<Tx>,
}

impl FedPool {
    /// Keeps `tx` if it would apply on top of `state`; `Ok(false)` if it is known already.
    pub fn admit<S: StateReader>(&mut self, chain: &Chain, state: &S, tx: Tx) -> Result<bool, PoolError> {
        let id = tx.txid();
        if self.txs.iter().any(|t| t.txid() == id) {
            return Ok(false);
        }
        // One FROST message per signer, turn and round: a validator cannot fill the pool with fresh
        // commitments for one attempt (each would be valid alone).
        let taken = match &tx {
            Tx::Frost(f) => self.txs.iter().any(|t| matches!(t, Tx::Frost(g) if same_turn(f, g))),
            // Likewise one leaf or wsh share per signer and version (ECDSA lets a signer make many).
            Tx::PegShare(p) => self
                .txs
                .iter()
                .any(|t| matches!(t, Tx::PegShare(q) if (q.batch, q.txid, q.signer) == (p.batch, p.txid, p.signer))),
            _ => false,
        };
        if taken {
            return Ok(false);
        }
        if self.txs.len() >= MAX_POOL_TXS {
            return Err(PoolError::Full);
        }
        ledger::check_pool_tx(chain, state, &tx)?;
        self.txs.push(tx);
        Ok(true)
    }

    /// What a block on top of `state` can carry, in arrival order.
    pub fn select<S: StateReader>(&self, chain: &Chain, state: &S) -> Vec<Tx> {
        if self.txs.is_empty() {
            return Vec::new();
        }
        ledger::select_pool_txs(chain, state, &self.txs).unwrap_or_default()
    }

    /// Drops what no longer applies (included, superseded by a bump, signed by others already).
    pub fn prune<S: StateReader>(&mut self, chain: &Chain, state: &S, included: &[TxId]) {
        self.txs.retain(|t| !included.contains(&t.txid()) && ledger::check_pool_tx(chain, state, t).is_ok());
    }

    /// Drops the signature shares `ours` says are this validator's (its signing was paused: its own
    /// proposals must not carry them). Returns how many were dropped.
    pub fn drop_shares(&mut self, ours: impl Fn(&ledger::PegShareTx) -> bool) -> usize {
        let before = self.txs.len();
        self.txs.retain(|t| !matches!(t, Tx::PegShare(s) if ours(s)));
        before - self.txs.len()
    }

    /// How many are waiting.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }
}

/// Whether two FROST messages are one signer's in one round of one attempt of one batch version.
fn same_turn(a: &ledger::FrostTx, b: &ledger::FrostTx) -> bool {
    let round = |f: &ledger::FrostTx| matches!(f.round, ledger::FrostRound::Share(_));
    (a.batch, a.txid, a.attempt, a.signer, round(a)) == (b.batch, b.txid, b.attempt, b.signer, round(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash as _;
    use primitives::ValidatorIndex;

    fn share(batch: u64, signer: u16) -> Tx {
        Tx::PegShare(ledger::PegShareTx {
            batch,
            txid: bitcoin::Txid::from_byte_array([batch as u8; 32]),
            signer: ValidatorIndex(signer),
            signatures: Vec::new(),
        })
    }

    #[test]
    fn one_frost_message_per_signer_turn_and_round() {
        let secret = bitcoin::secp256k1::SecretKey::from_slice(&[3; 32]).expect("key");
        let genesis = primitives::GenesisHash(primitives::Hash32([1; 32]));
        let txid = bitcoin::Txid::from_byte_array([2; 32]);
        let msg = |attempt, signer, round| {
            ledger::FrostTx::sign(0, txid, attempt, ValidatorIndex(signer), round, &secret, &genesis)
        };
        let commit = |b: u8| ledger::FrostRound::Commit(vec![vec![b; 66]]);
        let a = msg(0, 1, commit(2));
        assert!(same_turn(&a, &msg(0, 1, commit(3))), "another commitment in the same turn");
        assert!(!same_turn(&a, &msg(1, 1, commit(2))), "the next attempt");
        assert!(!same_turn(&a, &msg(0, 2, commit(2))), "another signer");
        assert!(!same_turn(&a, &msg(0, 1, ledger::FrostRound::Share(vec![vec![1; 32]]))), "the share round");
    }

    #[test]
    fn dropping_our_shares_keeps_everyone_elses() {
        let mut pool = FedPool { txs: vec![share(0, 1), share(0, 2), share(1, 1), share(1, 3)] };
        assert_eq!(pool.drop_shares(|s| s.signer == ValidatorIndex(1)), 2);
        assert_eq!(pool.txs, vec![share(0, 2), share(1, 3)]);
        assert_eq!(pool.drop_shares(|s| s.signer == ValidatorIndex(1)), 0);
    }
}
