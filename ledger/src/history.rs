//! An account's history: what each committed block did to which accounts, as entries a wallet or an
//! explorer can list (`listtransactions`).
//!
//! Why here, pure: the entries are a function of the block and the state before it, like execution. A node
//! builds them at commit and can rebuild them from its blocks at any time (the state tree is versioned, so
//! the state before any height is still readable); another implementation can derive the same list.
//!
//! What counts as touching an account: a transfer (sent by one, received by the other), a deposit-address
//! registration, a burn (peg-out request), a mint of a deposit to its recipient, and the payout of a burn
//! when the batch paying it settles on Bitcoin (listed for the burn's owner, at the settling block).
//! Validator transactions, evidence, federation changes, signature shares and mints to the fee pool touch no
//! user account and are not listed.

use crate::batch_records::batch;
use crate::block::Block;
use crate::pegout::{burn, pegout_queue};
use crate::state::{StateError, StateKey, StateReader};
use crate::tx::{BtcOutPoint, MintKind, Tx, UserTxKind};
use bitcoin::Amount;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{AccountId, Height, TxId};

/// What one transaction did to one account.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum HistoryKind {
    /// The account sent `amount` to `to` and paid `fee`.
    Sent {
        /// The recipient.
        to: AccountId,
        /// The amount sent.
        #[borsh(
            serialize_with = "crate::codec::amount::serialize",
            deserialize_with = "crate::codec::amount::deserialize"
        )]
        amount: Amount,
        /// The fee paid.
        #[borsh(
            serialize_with = "crate::codec::amount::serialize",
            deserialize_with = "crate::codec::amount::deserialize"
        )]
        fee: Amount,
    },
    /// The account received `amount` from `from`.
    Received {
        /// The sender.
        from: AccountId,
        /// The amount received.
        #[borsh(
            serialize_with = "crate::codec::amount::serialize",
            deserialize_with = "crate::codec::amount::deserialize"
        )]
        amount: Amount,
    },
    /// The account registered its deposit address and paid `fee`.
    Registered {
        /// The fee paid.
        #[borsh(
            serialize_with = "crate::codec::amount::serialize",
            deserialize_with = "crate::codec::amount::deserialize"
        )]
        fee: Amount,
    },
    /// The account burned `amount` to be paid to `btc_script_pubkey` on Bitcoin (burn `burn_id`).
    Burned {
        /// The burn's id (as `getpegoutstatus` names it).
        burn_id: u64,
        /// The amount to be paid.
        #[borsh(
            serialize_with = "crate::codec::amount::serialize",
            deserialize_with = "crate::codec::amount::deserialize"
        )]
        amount: Amount,
        /// The fee paid.
        #[borsh(
            serialize_with = "crate::codec::amount::serialize",
            deserialize_with = "crate::codec::amount::deserialize"
        )]
        fee: Amount,
        /// Where the BTC goes.
        btc_script_pubkey: Vec<u8>,
    },
    /// A BTC deposit at `outpoint` was minted to the account, less the peg-in fee.
    Minted {
        /// The deposit.
        outpoint: BtcOutPoint,
        /// The deposit's amount on Bitcoin.
        #[borsh(
            serialize_with = "crate::codec::amount::serialize",
            deserialize_with = "crate::codec::amount::deserialize"
        )]
        amount: Amount,
        /// What the account was credited (nothing for a deposit below the minimum, which joins the fee
        /// pool).
        #[borsh(
            serialize_with = "crate::codec::amount::serialize",
            deserialize_with = "crate::codec::amount::deserialize"
        )]
        credited: Amount,
        /// The peg-in fee taken.
        #[borsh(
            serialize_with = "crate::codec::amount::serialize",
            deserialize_with = "crate::codec::amount::deserialize"
        )]
        fee: Amount,
    },
    /// Burn `burn_id` was paid on Bitcoin by the batch version `btc_txid` this block settles.
    PaidOut {
        /// The burn paid.
        burn_id: u64,
        /// The amount paid.
        #[borsh(
            serialize_with = "crate::codec::amount::serialize",
            deserialize_with = "crate::codec::amount::deserialize"
        )]
        amount: Amount,
        /// The Bitcoin transaction that paid it.
        #[borsh(
            serialize_with = "crate::codec::btc_hash::serialize",
            deserialize_with = "crate::codec::btc_hash::deserialize"
        )]
        btc_txid: bitcoin::Txid,
    },
}

/// One entry of an account's history: where the transaction is and what it did to the account.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct HistoryEntry {
    /// The block.
    pub height: Height,
    /// The transaction's position in the block.
    pub index: u32,
    /// The transaction.
    pub txid: TxId,
    /// What it did to the account.
    pub kind: HistoryKind,
}

/// The state after a block, read as the state before it with the block's changes on top (what a node has
/// at commit, before it writes the block).
pub struct AfterBlock<'a, S> {
    before: &'a S,
    changes: &'a [(StateKey, Option<Vec<u8>>)],
    /// Positions in `changes`, sorted by key (a write set's changes come in execution's order, not by key),
    /// the last write of a key only. Built on the first read: most blocks mint nothing and read nothing here.
    by_key: std::cell::OnceCell<Vec<usize>>,
}

impl<'a, S: StateReader> AfterBlock<'a, S> {
    /// `changes` as [`crate::WriteSet::changes`] holds them (one per key, `None` a deletion).
    pub fn new(before: &'a S, changes: &'a [(StateKey, Option<Vec<u8>>)]) -> Self {
        AfterBlock { before, changes, by_key: std::cell::OnceCell::new() }
    }

    fn by_key(&self) -> &[usize] {
        self.by_key.get_or_init(|| {
            let changes = self.changes;
            let mut sorted: Vec<usize> = (0..changes.len()).collect();
            sorted.sort_by_key(|i| changes[*i].0); // stable: writes of one key stay in order
            let mut by_key: Vec<usize> = Vec::with_capacity(sorted.len());
            for i in sorted {
                match by_key.last_mut() {
                    Some(last) if changes[*last].0 == changes[i].0 => *last = i,
                    _ => by_key.push(i),
                }
            }
            by_key
        })
    }
}

impl<S: StateReader> StateReader for AfterBlock<'_, S> {
    fn get_raw(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        let by_key = self.by_key();
        match by_key.binary_search_by(|i| self.changes[*i].0.cmp(key)) {
            Ok(i) => Ok(self.changes[by_key[i]].1.clone()),
            Err(_) => self.before.get_raw(key),
        }
    }
}

/// Every (account, entry) pair block `block` at `height` makes, in block order (within a transaction: the
/// sender before the recipient, burns paid in batch order). `pre` is the state before the block: it names
/// the burns a settlement pays and the id the block's first burn gets; `post` the state after it: what
/// each mint credited (the peg-in fee is execution's to decide).
pub fn block_history<S: StateReader, T: StateReader>(
    pre: &S,
    post: &T,
    height: Height,
    block: &Block,
) -> Result<Vec<(AccountId, HistoryEntry)>, StateError> {
    let mut out = Vec::new();
    let mut next_burn_id = pegout_queue(pre)?.next_burn_id;
    for (index, tx) in block.txs.iter().enumerate() {
        let txid = tx.txid();
        let entry = |kind| HistoryEntry { height, index: index as u32, txid, kind };
        match tx {
            Tx::User(signed) => {
                let (sender, fee) = (signed.tx.sender(), signed.tx.fee);
                match &signed.tx.kind {
                    UserTxKind::Transfer { to, amount } => {
                        out.push((sender, entry(HistoryKind::Sent { to: *to, amount: *amount, fee })));
                        out.push((*to, entry(HistoryKind::Received { from: sender, amount: *amount })));
                    }
                    UserTxKind::RegisterDeposit => out.push((sender, entry(HistoryKind::Registered { fee }))),
                    UserTxKind::PegOut { btc_script_pubkey, amount } => {
                        let kind = HistoryKind::Burned {
                            burn_id: next_burn_id,
                            amount: *amount,
                            fee,
                            btc_script_pubkey: btc_script_pubkey.clone(),
                        };
                        next_burn_id += 1;
                        out.push((sender, entry(kind)));
                    }
                }
            }
            Tx::Mint(m) if m.kind == MintKind::Deposit => {
                let (credited, fee) = match post.get_pegin(&m.outpoint)? {
                    Some(r) => (r.credited, r.fee),
                    None => {
                        let reason = "a committed mint has no peg-in record".to_owned();
                        return Err(StateError::Corrupt { key: StateKey::PegIn(m.outpoint), reason });
                    }
                };
                let kind = HistoryKind::Minted { outpoint: m.outpoint, amount: m.amount, credited, fee };
                out.push((m.recipient, entry(kind)));
            }
            Tx::Settle(s) => {
                let Some(record) = batch(pre, s.batch)? else { continue };
                for id in &record.burns {
                    if let Some(b) = burn(pre, *id)? {
                        let kind = HistoryKind::PaidOut { burn_id: b.id, amount: b.amount, btc_txid: s.txid };
                        out.push((b.owner, entry(kind)));
                    }
                }
            }
            Tx::Mint(_) | Tx::Validator(_) | Tx::Evidence(_) | Tx::Reconfigure(_) | Tx::PegShare(_) | Tx::Frost(_) => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Account, MemStore};
    use primitives::{canonical_bytes, Hash32};

    /// After a block: its changes (a write, a deletion) over the state before it, the rest unchanged.
    #[test]
    fn after_block_reads_the_changes_over_the_state_before() {
        let (a, b, c) = (AccountId(Hash32([1; 32])), AccountId(Hash32([2; 32])), AccountId(Hash32([3; 32])));
        let account = |sats| Account { balance: Amount::from_sat(sats), nonce: 0 };
        let mut store = MemStore::new();
        let before = vec![
            (StateKey::Account(a), Some(canonical_bytes(&account(1)))),
            (StateKey::Account(b), Some(canonical_bytes(&account(2)))),
            (StateKey::Account(c), Some(canonical_bytes(&account(3)))),
        ];
        store.apply(&crate::state::build_write_set(&store, 0, before).expect("write set"));
        let snap = store.snapshot(0);
        // In execution's order, not by key; a key written twice reads as its last write.
        let changes = vec![
            (StateKey::ChainMeta, None),
            (StateKey::Account(a), Some(canonical_bytes(&account(9)))),
            (StateKey::Account(b), None),
            (StateKey::Account(a), Some(canonical_bytes(&account(10)))),
        ];
        let after = AfterBlock::new(&snap, &changes);
        assert_eq!(after.get_account(&a).expect("read"), Some(account(10)));
        assert_eq!(after.get_account(&b).expect("read"), None);
        assert_eq!(after.get_account(&c).expect("read"), Some(account(3)));
    }
}
