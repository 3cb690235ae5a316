//! Choosing a proposal's transactions from mempool candidates.
//!
//! Invariant owned here: whatever [`select_txs`] returns executes without error on the state it was
//! given (same checks as block execution), fits the block limits, and keeps each sender's
//! transactions in nonce order. Senders take turns, so one busy account cannot fill a block alone.

use crate::execute::{Overlay, TxError};
use crate::genesis::Chain;
use crate::state::StateReader;
use crate::tx::{SignedUserTx, Tx};
use primitives::{verify_batch, AccountId, Hash32, PublicKey, Signature};
use std::collections::{BTreeMap, VecDeque};

/// The outcome of a selection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Transactions for the block, in order.
    pub txs: Vec<Tx>,
    /// Candidates that did not apply, with why (a gap in nonces shows as `BadNonce` with `got >
    /// expected`: those may become valid later; the mempool decides what to evict).
    pub rejected: Vec<(Hash32, TxError)>,
    /// Valid candidates left out because the block was full.
    pub left_out: usize,
}

/// Picks a valid, nonce-ordered subset of `candidates` within `Params::block_max_txs` and
/// `block_max_bytes`, applying them in turn on top of `state` (the state the block builds on).
pub fn select_txs<S: StateReader>(
    chain: &Chain,
    state: &S,
    candidates: Vec<SignedUserTx>,
) -> Result<Selection, crate::StateError> {
    let mut out = Selection::default();
    let genesis_hash = chain.genesis_hash();
    // Signatures: one batch; one by one only when the batch fails.
    let items: Vec<(PublicKey, Vec<u8>, Signature)> =
        candidates.iter().map(|s| (s.tx.signer, s.tx.signing_bytes(genesis_hash), s.signature)).collect();
    let all_good = verify_batch(&items).is_ok();
    // Group by sender in order of first appearance, each group sorted by nonce (stable).
    let mut order: Vec<AccountId> = Vec::new();
    let mut groups: BTreeMap<AccountId, Vec<SignedUserTx>> = BTreeMap::new();
    for s in candidates {
        if !all_good {
            if let Err(e) = s.verify_signature(genesis_hash) {
                out.rejected.push((s.txid(), TxError::BadSignature(e)));
                continue;
            }
        }
        let sender = s.tx.sender();
        groups
            .entry(sender)
            .or_insert_with(|| {
                order.push(sender);
                Vec::new()
            })
            .push(s);
    }
    let mut queues: Vec<VecDeque<SignedUserTx>> = order
        .iter()
        .filter_map(|a| groups.remove(a))
        .map(|mut g| {
            g.sort_by_key(|s| s.tx.nonce);
            VecDeque::from(g)
        })
        .collect();

    let params = chain.params();
    let max_txs = params.block_max_txs as usize;
    let max_bytes = params.block_max_bytes as usize;
    let mut bytes = 4usize;
    let mut overlay = Overlay::new(state);
    let mut full = false;
    // Round robin: one transaction per sender per pass.
    while queues.iter().any(|q| !q.is_empty()) {
        for q in queues.iter_mut() {
            let Some(s) = q.pop_front() else { continue };
            // As in a block: the one-byte `Tx` tag, then the signed transaction.
            let len = 1 + primitives::canonical_bytes(&s).len();
            if full || out.txs.len() >= max_txs || bytes + len > max_bytes {
                full = true;
                out.left_out += 1 + q.len();
                q.clear();
                continue;
            }
            match overlay.apply_user_tx(chain, &s) {
                Ok(_) => {
                    bytes += len;
                    out.txs.push(Tx::User(s));
                }
                Err(TxError::State(e)) => return Err(e),
                Err(e) => out.rejected.push((s.txid(), e)),
            }
        }
    }
    Ok(out)
}
