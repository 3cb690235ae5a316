//! What this node's own bitcoind shows right now (`getbitcoinview`): whether it answers, how far its best
//! block is ahead of the BTC anchor, and the deposits it sees above the anchor that are not minted yet.
//!
//! Why a method of its own: the anchor and the reserve are chain facts every node agrees on, but the
//! bitcoind's health and the deposits still gathering confirmations are this node's local view. The
//! dashboard needs both to say "bitcoind unreachable" and to show peg-ins in flight as k/N; an operator's
//! script needs the same. A full node has no bitcoind and says so (`bitcoind: "none"`).

use bitcoin::amount::serde::as_sat;
use bitcoin::Amount;
use primitives::schema;
use primitives::AccountId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether this node has a bitcoind and whether it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BitcoindState {
    /// No bitcoind configured (full nodes, validators run without one).
    None,
    /// Configured, but its last poll failed: anchor moves and mints wait for it.
    Unreachable,
    /// Answering.
    Ok,
}

/// One deposit this node's bitcoind shows above the anchor, to a registered deposit script, not minted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DepositInFlight {
    /// `txid:vout` as Bitcoin Core shows it.
    #[schemars(with = "schema::BtcOutPoint")]
    pub outpoint: String,
    /// The account it is bound to.
    pub recipient: AccountId,
    /// Its value.
    #[serde(rename = "amount_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub amount: Amount,
    /// The BTC block holding it, height.
    pub btc_height: u32,
    /// And hash (display order).
    #[schemars(with = "schema::BtcHash")]
    pub btc_block_hash: String,
    /// Confirmations on this node's bitcoind (its best height minus `btc_height`, plus one).
    pub confirmations: u32,
}

/// Result of `getbitcoinview`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BitcoinViewInfo {
    /// `none`, `unreachable` or `ok`.
    pub bitcoind: BitcoindState,
    /// Its best height (null unless `ok`).
    pub best_height: Option<u32>,
    /// The BTC anchor height at the tip.
    pub anchor_height: u32,
    /// `best_height - anchor_height` (null unless `ok`): normally about `confirmations_required - 1`; much
    /// more means the anchor is stuck.
    pub lag_blocks: Option<u32>,
    /// Confirmations a deposit needs before it is minted.
    pub confirmations_required: u32,
    /// Deposits in flight, oldest BTC block first.
    pub deposits: Vec<DepositInFlight>,
}

impl BitcoinViewInfo {
    /// The view of a node without a bitcoind.
    pub fn without_bitcoind(anchor_height: u32, confirmations_required: u32) -> Self {
        BitcoinViewInfo {
            bitcoind: BitcoindState::None,
            best_height: None,
            anchor_height,
            lag_blocks: None,
            confirmations_required,
            deposits: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_are_explicit() {
        let v = serde_json::to_value(BitcoinViewInfo::without_bitcoind(7, 6)).unwrap();
        assert_eq!(v["bitcoind"], "none");
        assert_eq!(v["anchor_height"], 7);
        assert!(v["lag_blocks"].is_null());
        assert_eq!(v["deposits"], serde_json::json!([]));
    }
}
