//! Choosing a proposal's transactions from mempool candidates.
//!
//! Invariant owned here: whatever [`select_txs`] returns executes without error on the state it was
//! given (same checks as block execution), fits the block limits, and keeps each sender's
//! transactions in nonce order. Senders take turns, so one busy account cannot fill a block alone.

use crate::error::TxError;
use crate::genesis::Chain;
use crate::overlay::Overlay;
use crate::state::StateReader;
use crate::tx::{SignedUserTx, Tx};
use primitives::{verify_batch, AccountId, PublicKey, Signature, TxId};
use std::collections::{BTreeMap, VecDeque};

/// The outcome of a selection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Transactions for the block, in order.
    pub txs: Vec<Tx>,
    /// Candidates that did not apply, with why (a gap in nonces shows as `BadNonce` with `got >
    /// expected`: those may become valid later; the mempool decides what to evict).
    pub rejected: Vec<(TxId, TxError)>,
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

/// The longest prefix of `txs` that fits in a block beside `fixed`, within `Params::block_max_txs` and
/// `block_max_bytes`. For the federation pool's transactions (signature shares, federation-change
/// approvals) and evidence, which go into a proposal's front whole otherwise: a pool holding more than a
/// block (it keeps up to 512; `block_max_txs` may be lower) would make every proposal too big to build.
/// A prefix applies as the whole does: `ledger::select_pool_txs` judged each after the ones before it.
pub fn fit_prefix(params: &crate::Params, fixed: &[Tx], txs: Vec<Tx>) -> Vec<Tx> {
    let max_txs = (params.block_max_txs as usize).saturating_sub(fixed.len());
    let mut bytes = crate::txs_encoded_len(fixed);
    let fit = txs
        .iter()
        .take(max_txs)
        .take_while(|t| {
            bytes += t.encoded_len();
            bytes <= params.block_max_bytes as usize
        })
        .count();
    let mut txs = txs;
    txs.truncate(fit);
    txs
}

/// A proposal's transactions in block order, within `Params::block_max_txs` and `block_max_bytes`:
/// `front` (the peg plan's settlements and mints, the federation pool's shares and changes, evidence),
/// then the longest prefix of `selection` (user transactions from [`select_txs`], in application order, so
/// every prefix applies) that fits in what `front` and `back` leave, then `back` (the proposer's own
/// validator transactions: reorg reports, resume votes, fee-rate votes).
///
/// Why user transactions get only what is left: the peg's and the federation's transactions must not wait
/// behind a full mempool. Why `back` goes last: the selection was made on the state before the block, and
/// a reorg report that completes f+1 halts the peg, after which a burn selected before it no longer
/// applies (`PegOut` is refused while halted): with the report in front, that block would not build, and
/// the halt would wait for as long as someone keeps a burn in the mempool.
pub fn assemble_proposal(params: &crate::Params, front: Vec<Tx>, selection: Vec<Tx>, back: Vec<Tx>) -> Vec<Tx> {
    let room = (params.block_max_txs as usize).saturating_sub(front.len() + back.len());
    let mut bytes = crate::txs_encoded_len(&front) + back.iter().map(Tx::encoded_len).sum::<usize>();
    let max_bytes = params.block_max_bytes as usize;
    let fit = selection
        .iter()
        .take_while(|t| {
            bytes += t.encoded_len();
            bytes <= max_bytes
        })
        .count();
    let mut txs = front;
    txs.extend(selection.into_iter().take(room.min(fit)));
    txs.extend(back);
    txs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, user_key};
    use crate::tx::{EvidenceTx, UserTxKind};
    use bitcoin::Amount;
    use primitives::{Height, Round, ValidatorIndex};

    #[test]
    fn a_pool_bigger_than_a_block_is_cut_to_what_fits_beside_the_fixed_part() {
        let chain = Chain::new(testkit::genesis(4, 2, Amount::from_sat(1_000_000))).unwrap();
        let mut params = chain.params().clone();
        params.block_max_txs = 16;
        let fixed = user_txs(&chain, 3);
        let pool = user_txs(&chain, 40);
        let kept = fit_prefix(&params, &fixed, pool.clone());
        assert_eq!(kept, pool[..13].to_vec(), "16 - 3 of them, in order");
        params.block_max_bytes = (crate::txs_encoded_len(&fixed) + crate::txs_encoded_len(&pool[..5])) as u32;
        assert_eq!(fit_prefix(&params, &fixed, pool.clone()).len(), 5, "and within the byte budget");
        assert!(fit_prefix(&params, &user_txs(&chain, 16), pool).is_empty());
    }

    fn user_txs(chain: &Chain, n: u64) -> Vec<Tx> {
        let k = user_key(0);
        (0..n)
            .map(|nonce| {
                let to = user_key(1).public().account_id();
                let kind = UserTxKind::Transfer { to, amount: Amount::from_sat(1) };
                Tx::User(
                    crate::UserTx { signer: k.public(), nonce, fee: Amount::from_sat(100), kind }
                        .sign(&k, chain.genesis_hash()),
                )
            })
            .collect()
    }

    fn evidence(size: usize) -> Tx {
        Tx::Evidence(EvidenceTx {
            offender: ValidatorIndex(0),
            height: Height(1),
            round: Round(0),
            proof: vec![7; size],
        })
    }

    #[test]
    fn user_transactions_get_only_the_bytes_and_count_the_others_leave() {
        let (chain, _) = testkit::chain_and_store(4, 2, Amount::from_sat(1_000_000));
        let users = user_txs(&chain, 10);
        let user_len = users[0].encoded_len();
        let (front, back) = (vec![evidence(500)], vec![evidence(300)]);
        let others = crate::txs_encoded_len(&front) + back[0].encoded_len();
        // Room in bytes for exactly 3 user transactions (and a byte short of a 4th).
        let mut params = chain.params().clone();
        params.block_max_bytes = (others + 4 * user_len - 1) as u32;
        let txs = assemble_proposal(&params, front.clone(), users.clone(), back.clone());
        assert_eq!(txs.len(), 5, "front, 3 user transactions, back");
        assert_eq!((&txs[0], &txs[4]), (&front[0], &back[0]), "the proposer's own transactions go last");
        assert_eq!(&txs[1..4], &users[..3], "a prefix of the selection, in its order");
        assert!(crate::txs_encoded_len(&txs) <= params.block_max_bytes as usize);
        // The count: 4 slots, two taken by front and back.
        params.block_max_bytes = u32::MAX;
        params.block_max_txs = 4;
        let txs = assemble_proposal(&params, front.clone(), users.clone(), back.clone());
        assert_eq!(txs, vec![front[0].clone(), users[0].clone(), users[1].clone(), back[0].clone()]);
        // Nothing left for users: the peg's and the federation's transactions still go in.
        params.block_max_txs = 2;
        assert_eq!(
            assemble_proposal(&params, front.clone(), users, back.clone()),
            vec![front[0].clone(), back[0].clone()]
        );
    }
}
