//! The peg-in side of execution: deposit registrations, mints, the federation's UTXO set and the totals
//! behind the reserve promise.
//!
//! Why in the ledger: whether a deposit is minted, to whom, once, and for how much is part of the state
//! every full node recomputes; only the BTC facts a mint asserts (the output exists, pays that script, sits
//! in the anchored chain) need a bitcoind, and validators check those before they prevote.
//!
//! Invariants owned here:
//! - **exactly once**: a deposit outpoint gets a [`PegInRecord`] at most once and keeps it forever;
//! - **conservation**: a mint of a deposit worth `v` adds `v` to [`PegTotals::btc_held`] and either adds
//!   exactly `v` to balances (recipient `v - fee`, fee pool `fee`) and to [`PegTotals::supply`], or, below
//!   the minimum, nothing (the BTC is held and counted in [`PegTotals::below_minimum`]), so
//!   `supply - genesis supply <= btc_held` holds after every block;
//! - registrations are live for `Params::registration_ttl` blocks and renewed by every mint to them; a
//!   live registration cannot be refreshed until half its life is gone, and each costs at least
//!   `Params::registration_fee` (every one grows state and the watchers' rescans, so it must not be a cheap
//!   way to fill blocks or state).
//!
//! The records themselves sit below, in [`crate::peg_records`] (re-exported here), because the state's typed
//! reads return them; this file holds the rules that write them.

pub use crate::peg_records::{FederationUtxo, PegInRecord, PegTotals, Registration, COINBASE_MATURITY};

use crate::error::TxError;
use crate::genesis::Chain;
use crate::overlay::{Overlay, Receipt};
use crate::state::{fee_pool_id, ChainMeta, StateError, StateKey, StateReader};
use crate::tx::{MintKind, MintTx, SignedUserTx};
use bitcoin::Amount;
use borsh::BorshSerialize;
use primitives::{canonical_bytes, AccountId, Height};

fn add(a: Amount, b: Amount) -> Result<Amount, TxError> {
    a.checked_add(b).filter(|s| *s <= Amount::MAX_MONEY).ok_or(TxError::PegTotalOverflow)
}

impl<S: StateReader> Overlay<'_, S> {
    /// The height of the block being executed (or, for mempool checks, the next block).
    fn next_height(&self) -> Result<Height, StateError> {
        Ok(self.chain_meta()?.map(|m| m.height.next()).unwrap_or(Height(1)))
    }

    /// `RegisterDeposit`: pays the fee (at least `registration_fee`) and makes the signer's deposit address
    /// live.
    pub(crate) fn apply_register(&mut self, chain: &Chain, signed: &SignedUserTx) -> Result<Receipt, TxError> {
        let tx = &signed.tx;
        let min = chain.params().registration_fee;
        if tx.fee < min {
            return Err(TxError::RegistrationFeeTooLow { fee: tx.fee, min });
        }
        let (from, sender) = self.debited_sender(tx, Amount::ZERO)?;
        let height = self.next_height()?;
        let ttl = chain.params().registration_ttl;
        if let Some(r) = self.get_registration(&from)? {
            if r.is_live_at(height) && r.expires_at.get() - height.get() > ttl / 2 {
                return Err(TxError::RegistrationStillLive { account: from, expires_at: r.expires_at });
            }
        }
        let expires_at = Height(height.get().saturating_add(ttl));
        self.put_account(from, sender);
        if tx.fee > Amount::ZERO {
            let pool_id = fee_pool_id();
            let mut pool = self.account(&pool_id)?;
            pool.balance = crate::overlay::credit(pool_id, pool.balance, tx.fee)?;
            self.put_account(pool_id, pool);
        }
        self.put(StateKey::Registration(from), &Registration { registered_at: height, expires_at });
        Ok(Receipt { txid: signed.txid(), sender: Some(from), fee: tx.fee })
    }

    /// `Mint`: records the deposit once, credits its recipient (minus the peg-in fee, which goes to the
    /// fee pool) unless it is below the minimum, adds the output to the federation's UTXOs, renews the
    /// recipient's registration. `meta` is the chain meta of the block being executed (its anchor).
    pub(crate) fn apply_mint(&mut self, chain: &Chain, mint: &MintTx, meta: &ChainMeta) -> Result<Receipt, TxError> {
        if crate::halt::peg_halt(self)?.is_halted() {
            return Err(TxError::PegHalted);
        }
        let anchor = meta.btc_anchor;
        let genesis_anchor = chain.genesis().btc_anchor;
        if mint.btc_block.height <= genesis_anchor.height {
            return Err(TxError::MintBeforeGenesisAnchor {
                btc_height: mint.btc_block.height,
                genesis: genesis_anchor.height,
            });
        }
        // An early mint (of the block right above the anchor) must agree with the peg cursor.
        let early = crate::peg_cursor::is_early(&mint.btc_block, &anchor);
        if early {
            self.check_early(&mint.btc_block)?;
        } else if mint.btc_block.height > anchor.height {
            return Err(TxError::MintAboveAnchor { btc_height: mint.btc_block.height, anchor: anchor.height });
        }
        if mint.btc_block.height == anchor.height && mint.btc_block.hash != anchor.hash {
            return Err(TxError::MintNotInAnchoredChain { btc_block: mint.btc_block.hash, anchor: anchor.hash });
        }
        if mint.amount == Amount::ZERO || mint.amount > Amount::MAX_MONEY {
            return Err(TxError::BadMintAmount(mint.amount));
        }
        if mint.kind == MintKind::Federation && mint.recipient != fee_pool_id() {
            return Err(TxError::FederationMintRecipient { recipient: mint.recipient });
        }
        // The change of a peg-out batch pays the plain federation script too; it is the federation's own
        // coin coming back, never a deposit.
        for id in crate::batching::batch_index(self)?.in_flight {
            if crate::batching::batch(self, id)?.is_some_and(|b| b.version_txids().any(|t| t == mint.outpoint.txid)) {
                return Err(TxError::MintOfBatchOutput { batch: id });
            }
        }
        if let Some(done) = self.get_pegin(&mint.outpoint)? {
            return Err(TxError::AlreadyMinted { outpoint: mint.outpoint, at: done.minted_at });
        }
        // Every output the federation already holds (a settled batch's change above all) is its own coin.
        if self.get_federation_utxo(&mint.outpoint)?.is_some() {
            return Err(TxError::AlreadyHeld { outpoint: mint.outpoint });
        }
        let federation = crate::federation::federation_state(chain, self)?;
        let epoch = federation.epoch(mint.epoch).ok_or(TxError::UnknownEpoch(mint.epoch))?;
        let wallet = chain.wallet(epoch).map_err(TxError::wallet)?;
        let fee = chain.pegin_fee_in(&wallet, crate::fee_rate::agreed_fee_rate(chain, self)?);
        let mintable = mint.amount >= chain.params().pegin_min_amount && mint.amount > fee;
        let (credited, fee) = if mintable { (mint.amount - fee, fee) } else { (Amount::ZERO, Amount::ZERO) };

        let mut totals = self.peg_totals()?;
        totals.btc_held = add(totals.btc_held, mint.amount)?;
        totals.deposits = totals.deposits.saturating_add(1);
        if mintable {
            totals.supply = add(totals.supply, mint.amount)?;
            totals.minted = add(totals.minted, credited)?;
            totals.pegin_fees = add(totals.pegin_fees, fee)?;
            let mut recipient = self.account(&mint.recipient)?;
            recipient.balance = crate::overlay::credit(mint.recipient, recipient.balance, credited)?;
            self.put_account(mint.recipient, recipient);
            let pool_id = fee_pool_id();
            let mut pool = self.account(&pool_id)?;
            pool.balance = crate::overlay::credit(pool_id, pool.balance, fee)?;
            self.put_account(pool_id, pool);
        } else {
            totals.below_minimum = add(totals.below_minimum, mint.amount)?;
        }
        let txid = mint.txid();
        let record = PegInRecord {
            recipient: mint.recipient,
            amount: mint.amount,
            credited,
            fee,
            btc_block: mint.btc_block,
            minted_at: meta.height,
            mint_txid: txid,
        };
        self.put(StateKey::PegIn(mint.outpoint), &record);
        let utxo = FederationUtxo {
            amount: mint.amount,
            tweak: (mint.kind == MintKind::Deposit).then_some(mint.recipient),
            btc_block: mint.btc_block,
            epoch: mint.epoch,
            coinbase: mint.coinbase,
        };
        self.put(StateKey::FederationUtxo(mint.outpoint), &utxo);
        self.add_spendable(mint.outpoint)?;
        self.put(StateKey::PegTotals, &totals);
        if early {
            self.set_peg_cursor(mint.btc_block);
        }
        if let Some(mut r) = self.get_registration(&mint.recipient)? {
            let renewed = Height(meta.height.get().saturating_add(chain.params().registration_ttl));
            if renewed > r.expires_at {
                r.expires_at = renewed;
                self.put(StateKey::Registration(mint.recipient), &r);
            }
        }
        Ok(Receipt { txid, sender: None, fee })
    }

    fn put<T: BorshSerialize>(&mut self, key: StateKey, value: &T) {
        self.writes.insert(key, canonical_bytes(value));
    }
}

/// Whether a block at `height` must mint deposits to `account`'s address (its registration is live).
pub fn registration_is_live<S: StateReader>(
    state: &S,
    account: &AccountId,
    height: Height,
) -> Result<bool, StateError> {
    Ok(state.get_registration(account)?.is_some_and(|r| r.is_live_at(height)))
}
