//! The peg's records in state: deposit registrations, what became of each deposit outpoint, the outputs
//! the federation holds and the peg totals behind the reserve promise.
//!
//! Why apart from `pegin.rs`: the state's typed reads ([`crate::state::StateReader::get_pegin`] and the
//! like) return these records, and the mint rules in `pegin.rs` run on top of state. Inside `pegin.rs` they
//! made the state depend on execution and execution on the state. `crate::pegin::*` re-exports them.

use crate::btc_anchor::BtcAnchor;
use crate::codec;
use bitcoin::Amount;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{AccountId, Height, TxId};
use serde::{Deserialize, Serialize};

/// An account's deposit address is watched until `expires_at` (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Registration {
    /// The block that registered (or last refreshed) it.
    pub registered_at: Height,
    /// The last height at which it is live.
    pub expires_at: Height,
}

impl Registration {
    /// Whether deposits to it must be minted by a block at `height`.
    pub fn is_live_at(&self, height: Height) -> bool {
        height <= self.expires_at
    }
}

/// What became of one deposit outpoint. Kept forever: it is what makes a mint happen only once.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PegInRecord {
    /// The account the deposit script is bound to.
    pub recipient: AccountId,
    /// The deposit's value on Bitcoin.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub amount: Amount,
    /// What the recipient received: `amount - fee`, or zero below the minimum.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub credited: Amount,
    /// The peg-in fee paid to the fee pool (zero below the minimum).
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub fee: Amount,
    /// The BTC block holding the deposit.
    pub btc_block: BtcAnchor,
    /// The sidechain block that recorded it.
    pub minted_at: Height,
    /// The mint transaction's id.
    pub mint_txid: TxId,
}

impl PegInRecord {
    /// Recorded but not minted: the deposit was below `Params::pegin_min_amount` (or did not cover its fee).
    pub fn below_minimum(&self) -> bool {
        self.credited == Amount::ZERO
    }
}

/// A Bitcoin output the federation holds, with what it needs to spend it later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct FederationUtxo {
    /// Its value.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub amount: Amount,
    /// The recipient whose tweak the spending keys need (`peg::deposit`); `None` for an output to the
    /// plain, untweaked federation script (a batch's change, a refresh, a `MintKind::Federation` mint).
    /// Explicit, never inferred from the recipient: a deposit bound to the fee pool's id is tweaked too.
    pub tweak: Option<AccountId>,
    /// The BTC block holding it.
    pub btc_block: BtcAnchor,
    /// The federation epoch whose wallet holds it (whose keys sign its spend).
    pub epoch: u32,
    /// Paid by a coinbase: no batch spends it before the anchor is [`COINBASE_MATURITY`] blocks past it.
    pub coinbase: bool,
}

/// Bitcoin's coinbase maturity: a coinbase output is spendable in a block at least this many blocks above
/// it. A batch is broadcast at an anchor `a` (so it confirms at `a + 1` or later); an output at `h` may go
/// into it when `a >= h + COINBASE_MATURITY`, one block of margin.
pub const COINBASE_MATURITY: u32 = 100;

impl FederationUtxo {
    /// Whether a batch built at anchor height `anchor` may spend it (coinbase maturity).
    pub fn is_mature_at(&self, anchor: primitives::BtcHeight) -> bool {
        !self.coinbase || anchor.get() >= self.btc_block.height.get().saturating_add(COINBASE_MATURITY)
    }
}

/// Running totals of the peg, updated by every mint (and later every burn and payout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PegTotals {
    /// Sum of every balance, fee pool included (genesis balances, plus minted deposits).
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub supply: Amount,
    /// Value of the federation's UTXOs as of the anchor.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub btc_held: Amount,
    /// Credited to recipients by mints.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub minted: Amount,
    /// Peg-in fees credited to the fee pool.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub pegin_fees: Amount,
    /// Held deposits that were below the minimum and were not minted.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub below_minimum: Amount,
    /// Deposit outpoints recorded (minted or below the minimum).
    pub deposits: u64,
    /// Burned and not yet paid on Bitcoin: `supply + unpaid_burns <= btc_held` is the reserve promise.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub unpaid_burns: Amount,
}
