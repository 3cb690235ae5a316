//! The mempool: signed user transactions waiting for a block.
//!
//! Invariants owned here:
//! - every transaction in the pool is valid on top of the committed state *and* the pool's earlier
//!   transactions of the same sender (nonces contiguous from the account's nonce, balance covering all);
//! - the pool is bounded in count and bytes; when full, a newcomer must pay a higher fee than the
//!   cheapest transaction at the end of some sender's queue, which is evicted (the eviction rule never
//!   opens a nonce gap);
//! - after a block, included transactions leave, and the rest are re-checked against the new state.

use ledger::{check_tx, Chain, Overlay, SignedUserTx, StateReader, TxError};
use primitives::{AccountId, TxId};
use std::collections::{BTreeMap, HashMap};

/// Why a transaction was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    /// The transaction itself is invalid.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// It is already in the pool.
    #[error("transaction {0} is already in the mempool")]
    Duplicate(TxId),
    /// Its nonce leaves a gap after the sender's pending transactions.
    #[error("nonce {got} of {account} is ahead: next acceptable nonce is {expected}")]
    NonceGap { account: AccountId, expected: u64, got: u64 },
    /// The pool is full and the fee does not beat the cheapest evictable transaction.
    #[error(
        "mempool full ({count} transactions, {bytes} bytes) and fee {fee} does not beat the cheapest ({cheapest})"
    )]
    Full { count: usize, bytes: usize, fee: bitcoin::Amount, cheapest: bitcoin::Amount },
    /// Larger than any block could hold.
    #[error("transaction of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
}

/// Size bounds of the pool.
#[derive(Clone, Copy, Debug)]
pub struct MempoolLimits {
    /// Most transactions held.
    pub max_txs: usize,
    /// Most encoded bytes held.
    pub max_bytes: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits { max_txs: 50_000, max_bytes: 64 * 1024 * 1024 }
    }
}

struct Entry {
    tx: SignedUserTx,
    id: TxId,
    size: usize,
}

/// The pool.
pub struct Mempool {
    limits: MempoolLimits,
    /// Per sender, pending transactions by nonce (contiguous).
    by_sender: BTreeMap<AccountId, BTreeMap<u64, Entry>>,
    ids: HashMap<TxId, (AccountId, u64)>,
    bytes: usize,
    /// Arrival order, for fair block filling.
    arrival: BTreeMap<u64, TxId>,
    arrival_of: HashMap<TxId, u64>,
    next_seq: u64,
}

impl Mempool {
    /// An empty pool.
    pub fn new(limits: MempoolLimits) -> Self {
        Mempool {
            limits,
            by_sender: BTreeMap::new(),
            ids: HashMap::new(),
            bytes: 0,
            arrival: BTreeMap::new(),
            arrival_of: HashMap::new(),
            next_seq: 0,
        }
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Encoded bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &TxId) -> bool {
        self.ids.contains_key(id)
    }

    /// A pending transaction.
    pub fn get(&self, id: &TxId) -> Option<&SignedUserTx> {
        let (a, n) = self.ids.get(id)?;
        self.by_sender.get(a)?.get(n).map(|e| &e.tx)
    }

    /// Admits `tx` if it is valid after the sender's pending transactions on top of `state`.
    pub fn add<S: StateReader>(&mut self, chain: &Chain, state: &S, tx: SignedUserTx) -> Result<TxId, MempoolError> {
        let id = tx.txid();
        if self.ids.contains_key(&id) {
            return Err(MempoolError::Duplicate(id));
        }
        let size = borsh::to_vec(&tx).map(|v| v.len()).unwrap_or(usize::MAX);
        let max = chain.params().block_max_bytes as usize;
        if size > max {
            return Err(MempoolError::TooLarge { size, max });
        }
        let sender = tx.tx.sender();
        // Replay the sender's pending transactions, then check the newcomer on top (signature included).
        let mut overlay = Overlay::new(state);
        let pending = self.by_sender.get(&sender);
        let mut expected = overlay.account(&sender).map_err(TxError::from)?.nonce;
        if let Some(p) = pending {
            for e in p.values() {
                if overlay.apply_user_tx(chain, &e.tx).is_err() {
                    break;
                }
                expected += 1;
            }
        }
        if tx.tx.nonce > expected {
            return Err(MempoolError::NonceGap { account: sender, expected, got: tx.tx.nonce });
        }
        check_tx(chain, &overlay, &tx)?;
        self.make_room(size, tx.tx.fee, &sender)?;
        self.insert(sender, Entry { tx, id, size });
        Ok(id)
    }

    fn insert(&mut self, sender: AccountId, e: Entry) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.arrival.insert(seq, e.id);
        self.arrival_of.insert(e.id, seq);
        self.ids.insert(e.id, (sender, e.tx.tx.nonce));
        self.bytes += e.size;
        self.by_sender.entry(sender).or_default().insert(e.tx.tx.nonce, e);
    }

    fn remove_entry(&mut self, sender: &AccountId, nonce: u64) -> Option<Entry> {
        let q = self.by_sender.get_mut(sender)?;
        let e = q.remove(&nonce)?;
        if q.is_empty() {
            self.by_sender.remove(sender);
        }
        self.ids.remove(&e.id);
        if let Some(seq) = self.arrival_of.remove(&e.id) {
            self.arrival.remove(&seq);
        }
        self.bytes -= e.size;
        Some(e)
    }

    /// Evicts the cheapest queue tails until `size` more bytes and one more transaction fit, as long as
    /// each evicted one pays strictly less than `fee`.
    fn make_room(&mut self, size: usize, fee: bitcoin::Amount, newcomer: &AccountId) -> Result<(), MempoolError> {
        while self.ids.len() + 1 > self.limits.max_txs || self.bytes + size > self.limits.max_bytes {
            let cheapest = self
                .by_sender
                .iter()
                .filter(|(a, _)| *a != newcomer)
                .filter_map(|(a, q)| q.iter().next_back().map(|(n, e)| (e.tx.tx.fee, *a, *n)))
                .min();
            match cheapest {
                Some((c, a, n)) if c < fee => {
                    self.remove_entry(&a, n);
                }
                other => {
                    return Err(MempoolError::Full {
                        count: self.ids.len(),
                        bytes: self.bytes,
                        fee,
                        cheapest: other.map_or(bitcoin::Amount::ZERO, |(c, _, _)| c),
                    })
                }
            }
        }
        Ok(())
    }

    /// Candidates for a block, in arrival order (the ledger's selection orders nonces per sender).
    pub fn candidates(&self, max: usize) -> Vec<SignedUserTx> {
        self.arrival.values().take(max).filter_map(|id| self.get(id).cloned()).collect()
    }

    /// After a block: drops included transactions, then drops whatever is no longer valid on `state`
    /// (nonce used, balance spent) and everything after it in its sender's queue.
    pub fn on_block<S: StateReader>(&mut self, chain: &Chain, state: &S, included: &[TxId]) {
        for id in included {
            if let Some((a, n)) = self.ids.get(id).copied() {
                self.remove_entry(&a, n);
            }
        }
        let senders: Vec<AccountId> = self.by_sender.keys().copied().collect();
        for sender in senders {
            let nonces: Vec<u64> = self.by_sender.get(&sender).map(|q| q.keys().copied().collect()).unwrap_or_default();
            let mut overlay = Overlay::new(state);
            let mut invalid_from = None;
            for n in &nonces {
                let ok = self
                    .by_sender
                    .get(&sender)
                    .and_then(|q| q.get(n))
                    .is_some_and(|e| overlay.apply_user_tx(chain, &e.tx).is_ok());
                if !ok {
                    invalid_from = Some(*n);
                    break;
                }
            }
            if let Some(from) = invalid_from {
                for n in nonces.into_iter().filter(|n| *n >= from) {
                    self.remove_entry(&sender, n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::Amount;
    use ledger::testkit::{chain_and_store, transfer, user_key};

    fn sats(n: u64) -> Amount {
        Amount::from_sat(n)
    }

    #[test]
    fn admits_contiguous_nonces_and_rejects_gaps_duplicates_and_overspend() {
        let (chain, store) = chain_and_store(4, 3, sats(10_000));
        let state = store.snapshot(0);
        let mut pool = Mempool::new(MempoolLimits::default());
        let a = user_key(0);
        let b = user_key(1).public().account_id();
        let t0 = transfer(&chain, &a, 0, b, sats(1_000), sats(100));
        let id0 = pool.add(&chain, &state, t0.clone()).expect("nonce 0");
        assert!(matches!(pool.add(&chain, &state, t0), Err(MempoolError::Duplicate(id)) if id == id0));
        pool.add(&chain, &state, transfer(&chain, &a, 1, b, sats(1_000), sats(100))).expect("nonce 1 pipelined");
        assert!(matches!(
            pool.add(&chain, &state, transfer(&chain, &a, 5, b, sats(1), sats(100))),
            Err(MempoolError::NonceGap { expected: 2, got: 5, .. })
        ));
        // 10_000 - 2 * 1_100 = 7_800 left: 8_000 + fee is too much.
        assert!(matches!(
            pool.add(&chain, &state, transfer(&chain, &a, 2, b, sats(8_000), sats(100))),
            Err(MempoolError::Invalid(TxError::InsufficientBalance { .. }))
        ));
        // A reused (already pending) nonce is a bad nonce for the overlay.
        assert!(matches!(
            pool.add(&chain, &state, transfer(&chain, &a, 0, b, sats(5), sats(100))),
            Err(MempoolError::Invalid(TxError::BadNonce { .. }))
        ));
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn bad_signature_is_rejected() {
        let (chain, store) = chain_and_store(4, 2, sats(10_000));
        let mut tx = transfer(&chain, &user_key(0), 0, user_key(1).public().account_id(), sats(10), sats(100));
        tx.signature.0[0] ^= 1;
        let mut pool = Mempool::new(MempoolLimits::default());
        assert!(matches!(
            pool.add(&chain, &store.snapshot(0), tx),
            Err(MempoolError::Invalid(TxError::BadSignature(_)))
        ));
        assert!(pool.is_empty());
    }

    #[test]
    fn full_pool_evicts_the_cheapest_tail_only_for_a_higher_fee() {
        let (chain, store) = chain_and_store(4, 4, sats(100_000));
        let state = store.snapshot(0);
        let mut pool = Mempool::new(MempoolLimits { max_txs: 2, max_bytes: usize::MAX });
        let to = user_key(3).public().account_id();
        pool.add(&chain, &state, transfer(&chain, &user_key(0), 0, to, sats(10), sats(100))).expect("a");
        pool.add(&chain, &state, transfer(&chain, &user_key(1), 0, to, sats(10), sats(300))).expect("b");
        let cheap = transfer(&chain, &user_key(2), 0, to, sats(10), sats(100));
        assert!(matches!(pool.add(&chain, &state, cheap), Err(MempoolError::Full { .. })));
        let rich = transfer(&chain, &user_key(2), 0, to, sats(10), sats(200));
        pool.add(&chain, &state, rich).expect("evicts the 100-sat one");
        assert_eq!(pool.len(), 2);
        let fees: Vec<u64> = pool.candidates(10).iter().map(|t| t.tx.fee.to_sat()).collect();
        assert_eq!(fees, vec![300, 200]);
    }
}
