//! [`Overlay`]: a state with uncommitted changes on top (a block being executed, or a mempool's pending
//! view), and the [`Receipt`] of one applied transaction.
//!
//! Why a module of its own, below every execution rule: each rule module (peg-ins, peg-outs, batches, fee
//! rates, the halt, the federation) adds its own `impl Overlay` and `execute.rs` runs them all. With the
//! overlay inside `execute.rs`, every rule module and `execute.rs` needed each other. Here the overlay holds
//! the changes, reads through them, and debits and credits accounts; which transaction does what is decided
//! above it. `crate::execute::{Overlay, Receipt}` re-export it.

use crate::batch_records::SpendableUtxos;
use crate::error::TxError;
use crate::state::{Account, StateError, StateKey, StateReader};
use crate::tx::UserTx;
use bitcoin::Amount;
use primitives::{canonical_bytes, AccountId, TxId};
use std::collections::BTreeMap;

/// The result of one applied transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction.
    pub txid: TxId,
    /// Who paid (`None` for evidence, which nobody pays for).
    pub sender: Option<AccountId>,
    /// Fee credited to the fee pool.
    pub fee: Amount,
}

/// A state with uncommitted changes on top (a block being executed, or a mempool's pending view).
pub struct Overlay<'a, S> {
    pub(crate) base: &'a S,
    pub(crate) accounts: BTreeMap<AccountId, Account>,
    /// Every other changed key (evidence, peg state), as borsh bytes.
    pub(crate) writes: BTreeMap<StateKey, Vec<u8>>,
    /// The spendable federation outputs once changed, kept decoded: every mint adds one, and re-encoding
    /// the whole set per mint made a BTC block of many outputs cost quadratic time to plan (a cheap flood
    /// would stall round-0 proposals). Encoded once, by reads of its key and by [`Overlay::into_changes`].
    pub(crate) spendable: Option<SpendableUtxos>,
}

impl<'a, S: StateReader> Overlay<'a, S> {
    /// No changes yet.
    pub fn new(base: &'a S) -> Self {
        Overlay { base, accounts: BTreeMap::new(), writes: BTreeMap::new(), spendable: None }
    }

    /// Current view of an account (a missing account is empty).
    pub fn account(&self, id: &AccountId) -> Result<Account, StateError> {
        match self.accounts.get(id) {
            Some(a) => Ok(*a),
            None => Ok(self.base.get_account(id)?.unwrap_or_default()),
        }
    }

    /// The sender of `tx` after paying `amount + fee` and using its nonce (not written yet): checks the
    /// nonce, the balance and overflow. Every user transaction starts here.
    pub(crate) fn debited_sender(&self, tx: &UserTx, amount: Amount) -> Result<(AccountId, Account), TxError> {
        let from = tx.sender();
        let mut sender = self.account(&from)?;
        if tx.nonce != sender.nonce {
            return Err(TxError::BadNonce { account: from, expected: sender.nonce, got: tx.nonce });
        }
        let needed = amount.checked_add(tx.fee).ok_or(TxError::AmountOverflow { amount, fee: tx.fee })?;
        sender.balance = sender.balance.checked_sub(needed).ok_or(TxError::InsufficientBalance {
            account: from,
            balance: sender.balance,
            needed,
        })?;
        sender.nonce = sender.nonce.checked_add(1).ok_or(TxError::NonceExhausted(from))?;
        Ok((from, sender))
    }

    pub(crate) fn put_account(&mut self, id: AccountId, account: Account) {
        self.accounts.insert(id, account);
    }

    /// The changed accounts and other keys as state writes (accounts first, then by key).
    pub fn into_changes(mut self) -> Vec<(StateKey, Option<Vec<u8>>)> {
        if let Some(set) = self.spendable.take() {
            self.writes.insert(StateKey::SpendableUtxos, canonical_bytes(&set));
        }
        let accounts = self.accounts.into_iter().map(|(id, a)| (StateKey::Account(id), Some(canonical_bytes(&a))));
        accounts.chain(self.writes.into_iter().map(|(k, v)| (k, Some(v)))).collect()
    }
}

impl<S: StateReader> StateReader for Overlay<'_, S> {
    fn get_raw(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        match key {
            StateKey::Account(id) => match self.accounts.get(id) {
                Some(a) => Ok(Some(canonical_bytes(a))),
                None => self.base.get_raw(key),
            },
            StateKey::ChainMeta => self.base.get_raw(key),
            StateKey::SpendableUtxos if self.spendable.is_some() => Ok(self.spendable.as_ref().map(canonical_bytes)),
            _ => match self.writes.get(key) {
                Some(v) => Ok(Some(v.clone())),
                None => self.base.get_raw(key),
            },
        }
    }
}

pub(crate) fn credit(account: AccountId, balance: Amount, amount: Amount) -> Result<Amount, TxError> {
    balance.checked_add(amount).filter(|b| *b <= Amount::MAX_MONEY).ok_or(TxError::BalanceOverflow { account, amount })
}
