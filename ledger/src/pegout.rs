//! The burn side of peg-out: a `PegOut` burns sidechain coins and queues a Bitcoin payment.
//!
//! Why here: whether a burn is accepted, what it costs and that it is queued exactly once is part of the
//! state every node recomputes. Building the Bitcoin batch that pays queued burns is in
//! [`crate::batching`], fee bumps in [`crate::bumping`], the agreed rate in [`crate::fee_rate`].
//!
//! Invariants owned here:
//! - a burn moves `amount` out of `supply` into `unpaid_burns` (so `supply + unpaid_burns` is unchanged and
//!   the reserve check `supply + unpaid_burns <= btc_held` is unaffected by burning) and `fee` to the pool;
//! - every burn gets the next id and joins the queue once, in block order;
//! - a burn never pays the plain federation script of any epoch (the BTC would come back bound to nobody);
//!   a burn to a *deposit* script (anyone's, the burner's own included) is allowed: a P2WSH does not reveal
//!   that it is one, and once its batch settles the output is a deposit like any other, minted exactly once
//!   to the account the script is bound to (required when that registration is live, else by `claimpegin`);
//! - the fee covers, at twice the agreed fee rate, the whole batch that would pay the burn alone (one
//!   federation input, its payout output, the change: [`pegout_fee`]) plus `min_fee`. The fee pool pays
//!   batch fees; priced this way a lone burn brings the pool what its own batch costs, so a user's peg-out
//!   never waits on unrelated fee income (finding 10 of issue 20: a burn priced on its output alone left
//!   the pool 422 sat short of a one-burn batch, and the burn waited for good). Burns batched together
//!   overpay their shared part; the surplus stays in the pool for bumps, refreshes and sweeps.

use crate::codec;
use crate::error::TxError;
use crate::genesis::Chain;
use crate::overlay::{Overlay, Receipt};
use crate::state::{fee_pool_id, StateError, StateKey, StateReader};
use crate::tx::SignedUserTx;
use bitcoin::{Amount, Script, ScriptBuf};
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{canonical_bytes, AccountId, Height, TxId};
use serde::{Deserialize, Serialize};

/// Longest payout script accepted (P2WSH and P2TR are 34 bytes).
pub const MAX_PAYOUT_SCRIPT_LEN: usize = 34;

/// One accepted burn, kept forever (its batch is filled in when it is batched).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BurnRecord {
    /// Sequence number, from 0, in block order.
    pub id: u64,
    /// Who burned.
    pub owner: AccountId,
    /// Where the BTC goes.
    pub script_pubkey: Vec<u8>,
    /// What the payout pays, exactly.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub amount: Amount,
    /// The fee paid to the fee pool.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub fee: Amount,
    /// The block that accepted it.
    pub burned_at: Height,
    /// The burn transaction.
    pub txid: TxId,
    /// The batch paying it, once batched (each burn belongs to exactly one batch, forever).
    pub batch: Option<u64>,
    /// Where it was paid: the BTC block of the batch version that confirmed, once settled.
    pub paid_in: Option<crate::btc_anchor::BtcAnchor>,
}

/// The queue of burns not yet in a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PegOutQueue {
    /// The id the next burn gets.
    pub next_burn_id: u64,
    /// Ids of burns waiting for a batch, oldest first.
    pub queued: Vec<u64>,
}

/// Reads the queue (empty when never written).
pub fn pegout_queue<S: StateReader>(state: &S) -> Result<PegOutQueue, StateError> {
    read_or_default(state, StateKey::PegOutQueue)
}

/// Reads a burn.
pub fn burn<S: StateReader>(state: &S, id: u64) -> Result<Option<BurnRecord>, StateError> {
    let key = StateKey::Burn(id);
    state
        .get_raw(&key)?
        .map(|b| borsh::from_slice(&b).map_err(|e| StateError::Corrupt { key, reason: e.to_string() }))
        .transpose()
}

/// The burn a transaction made, by its txid.
pub fn burn_of_tx<S: StateReader>(state: &S, txid: &TxId) -> Result<Option<BurnRecord>, StateError> {
    let key = StateKey::BurnByTx(*txid);
    let id: Option<u64> = state
        .get_raw(&key)?
        .map(|b| borsh::from_slice(&b).map_err(|e| StateError::Corrupt { key, reason: e.to_string() }))
        .transpose()?;
    match id {
        Some(id) => burn(state, id),
        None => Ok(None),
    }
}

fn read_or_default<S: StateReader, T: BorshDeserialize + Default>(state: &S, key: StateKey) -> Result<T, StateError> {
    state
        .get_raw(&key)?
        .map(|b| borsh::from_slice(&b).map_err(|e| StateError::Corrupt { key, reason: e.to_string() }))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Whether Bitcoin relays a payment to `script`: the standard output types a federation can pay.
pub fn is_supported_payout_script(script: &Script) -> bool {
    script.len() <= MAX_PAYOUT_SCRIPT_LEN
        && (script.is_p2pkh() || script.is_p2sh() || script.is_p2wpkh() || script.is_p2wsh() || script.is_p2tr())
}

/// The vbytes of a lone burn's batch besides its own payout output: the fixed part, one input of `wallet`
/// and the change back to it. The same for every payout script a burn may name (a script of at most
/// [`MAX_PAYOUT_SCRIPT_LEN`] bytes adds exactly its [`peg::output_vbytes`]), so clients are told this one
/// figure (`getfederationinfo.pegout_batch_share_vbytes`) and price any script with [`pegout_fee`].
pub fn pegout_share_vbytes(wallet: &peg::Federation) -> Result<u64, peg::BatchError> {
    let empty = Script::new();
    let lone = peg::lone_payout_vbytes(wallet, empty, &wallet.script_pubkey())?;
    Ok(lone.saturating_sub(peg::output_vbytes(empty)))
}

/// The peg-out fee rule, pure (the CLI runs it too): `min_fee` plus the lone batch paying `script`
/// (`share_vbytes` from [`pegout_share_vbytes`] and the payout output) at twice `rate_sat_vb`.
pub fn pegout_fee(min_fee: Amount, rate_sat_vb: u64, share_vbytes: u64, script: &Script) -> Amount {
    let vbytes = share_vbytes.saturating_add(peg::output_vbytes(script));
    let batch = Amount::from_sat(vbytes.saturating_mul(rate_sat_vb).saturating_mul(2));
    min_fee.checked_add(batch).filter(|a| *a <= Amount::MAX_MONEY).unwrap_or(Amount::MAX_MONEY)
}

/// The least fee a burn to `script` must pay at the chain's floor rate, for the genesis wallet (see
/// [`required_pegout_fee_at`]).
pub fn required_pegout_fee(chain: &Chain, script: &Script) -> Amount {
    required_pegout_fee_at(chain, chain.params().pegin_fee_rate_sat_vb, script)
}

/// The least fee a burn to `script` must pay when the agreed rate is `rate_sat_vb` and the genesis wallet
/// is in force: `min_fee` plus the whole batch that would pay it alone, at twice that rate (headroom for
/// the rate to double before its batch is built, or for one bump).
pub fn required_pegout_fee_at(chain: &Chain, rate_sat_vb: u64, script: &Script) -> Amount {
    // The genesis wallet was sized when the chain was built; the fallback is never used.
    let share = pegout_share_vbytes(chain.genesis_wallet()).unwrap_or(u64::MAX);
    pegout_fee(chain.params().min_fee, rate_sat_vb, share, script)
}

impl<S: StateReader> Overlay<'_, S> {
    /// `PegOut`: burns `amount + fee`, queues the payout, pays the fee to the pool.
    pub(crate) fn apply_pegout(
        &mut self,
        chain: &Chain,
        signed: &SignedUserTx,
        script: &[u8],
        amount: Amount,
    ) -> Result<Receipt, TxError> {
        let tx = &signed.tx;
        let params = chain.params();
        if !params.pegout_enabled {
            return Err(TxError::PegOutDisabled);
        }
        let script = ScriptBuf::from_bytes(script.to_vec());
        if !is_supported_payout_script(&script) {
            return Err(TxError::UnsupportedPayoutScript(hex_of(script.as_bytes())));
        }
        let federation = crate::federation::federation_state(chain, self)?;
        for epoch in federation.epochs.iter().chain(federation.pending.iter()) {
            let wallet = chain.wallet(epoch).map_err(TxError::wallet)?;
            if wallet.script_pubkey() == script {
                return Err(TxError::PayoutToFederation { epoch: epoch.epoch });
            }
        }
        let dust = script.minimal_non_dust();
        if amount < params.pegout_min_amount || amount < dust {
            return Err(TxError::PegOutBelowMinimum { amount, min: params.pegout_min_amount.max(dust) });
        }
        let rate = crate::fee_rate::agreed_fee_rate(chain, self)?;
        let wallet = chain.wallet(federation.in_force()).map_err(TxError::wallet)?;
        let share = pegout_share_vbytes(&wallet).map_err(TxError::wallet)?;
        let required = pegout_fee(params.min_fee, rate, share, &script);
        if tx.fee < required {
            return Err(TxError::PegOutFeeTooLow {
                fee: tx.fee,
                min: required,
                batch_vbytes: share.saturating_add(peg::output_vbytes(&script)),
                sat_per_vb: rate,
            });
        }
        if crate::halt::peg_halt(self)?.is_halted() {
            return Err(TxError::PegHalted);
        }
        let (from, sender) = self.debited_sender(tx, amount)?;
        let pool_id = fee_pool_id();
        let mut pool = if pool_id == from { sender } else { self.account(&pool_id)? };
        pool.balance = crate::overlay::credit(pool_id, pool.balance, tx.fee)?;
        let mut totals = self.peg_totals()?;
        totals.supply = totals.supply.checked_sub(amount).ok_or(TxError::PegTotalOverflow)?;
        totals.unpaid_burns = totals.unpaid_burns.checked_add(amount).ok_or(TxError::PegTotalOverflow)?;
        let mut queue = pegout_queue(self)?;
        let id = queue.next_burn_id;
        queue.next_burn_id = id.checked_add(1).ok_or(TxError::PegTotalOverflow)?;
        queue.queued.push(id);
        let height = self.chain_meta()?.map(|m| m.height.next()).unwrap_or(Height(1));
        let txid = signed.txid();
        let record = BurnRecord {
            id,
            owner: from,
            script_pubkey: script.into_bytes(),
            amount,
            fee: tx.fee,
            burned_at: height,
            txid,
            batch: None,
            paid_in: None,
        };
        self.put_account(from, sender);
        self.put_account(pool_id, pool);
        self.writes.insert(StateKey::Burn(id), canonical_bytes(&record));
        self.writes.insert(StateKey::BurnByTx(txid), canonical_bytes(&id));
        self.writes.insert(StateKey::PegOutQueue, canonical_bytes(&queue));
        self.writes.insert(StateKey::PegTotals, canonical_bytes(&totals));
        Ok(Receipt { txid, sender: Some(from), fee: tx.fee })
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
