//! An account's history in JSON (`listtransactions`): one entry per thing a committed transaction did to
//! the account, newest first. Bitcoin values are shown as `bitcoin-cli` shows them.

use bitcoin::amount::serde::as_sat;
use bitcoin::{Amount, OutPoint, Txid};
use ledger::history::{HistoryEntry, HistoryKind};
use primitives::schema;
use primitives::{AccountId, Height, TxId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One `listtransactions` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryEntryInfo {
    /// The block.
    pub height: Height,
    /// The transaction's position in the block.
    pub index: u32,
    /// The transaction.
    pub txid: TxId,
    /// What it did to the account (`kind` and its fields).
    #[serde(flatten)]
    pub kind: HistoryKindInfo,
    /// The transaction and its branch to the block's transaction root (null unless asked with `prove`).
    #[serde(default)]
    pub proof: Option<super::TxProofInfo>,
}

/// What one transaction did to the account, by `kind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HistoryKindInfo {
    /// Sent `amount_sat` to `to`, paying `fee_sat`.
    Sent {
        /// The recipient.
        to: AccountId,
        /// The amount sent.
        #[serde(rename = "amount_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        amount: Amount,
        /// The fee paid.
        #[serde(rename = "fee_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        fee: Amount,
    },
    /// Received `amount_sat` from `from`.
    Received {
        /// The sender.
        from: AccountId,
        /// The amount received.
        #[serde(rename = "amount_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        amount: Amount,
    },
    /// Registered the account's deposit address, paying `fee_sat`.
    Registered {
        /// The fee paid.
        #[serde(rename = "fee_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        fee: Amount,
    },
    /// Burned `amount_sat` to be paid on Bitcoin (a peg-out; `getpegoutstatus` with this `txid` follows it).
    Burned {
        /// The burn's id.
        burn_id: u64,
        /// The amount to be paid.
        #[serde(rename = "amount_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        amount: Amount,
        /// The fee paid.
        #[serde(rename = "fee_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        fee: Amount,
        /// The payout address on the node's Bitcoin network; null when the script is not an address.
        btc_address: Option<String>,
    },
    /// A BTC deposit was minted to the account (a peg-in): `credited_sat` of its `amount_sat`, after the
    /// peg-in fee `fee_sat` (a deposit below the minimum credits nothing).
    Minted {
        /// The deposit, `txid:vout` as Bitcoin Core shows it.
        #[schemars(with = "schema::BtcOutPoint")]
        btc_outpoint: OutPoint,
        /// The deposit's amount on Bitcoin.
        #[serde(rename = "amount_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        amount: Amount,
        /// What the account was credited.
        #[serde(rename = "credited_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        credited: Amount,
        /// The peg-in fee taken.
        #[serde(rename = "fee_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        fee: Amount,
    },
    /// A burn of the account was paid on Bitcoin (the block settled the batch paying it).
    PaidOut {
        /// The burn paid.
        burn_id: u64,
        /// The amount paid.
        #[serde(rename = "amount_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        amount: Amount,
        /// The Bitcoin transaction that paid it.
        #[schemars(with = "schema::BtcHash")]
        btc_txid: Txid,
    },
}

impl HistoryEntryInfo {
    /// The entry as JSON shows it; addresses on `network`.
    pub fn new(e: &HistoryEntry, network: bitcoin::Network) -> Self {
        let kind = match &e.kind {
            HistoryKind::Sent { to, amount, fee } => HistoryKindInfo::Sent { to: *to, amount: *amount, fee: *fee },
            HistoryKind::Received { from, amount } => HistoryKindInfo::Received { from: *from, amount: *amount },
            HistoryKind::Registered { fee } => HistoryKindInfo::Registered { fee: *fee },
            HistoryKind::Burned { burn_id, amount, fee, btc_script_pubkey } => HistoryKindInfo::Burned {
                burn_id: *burn_id,
                amount: *amount,
                fee: *fee,
                btc_address: super::script_address(btc_script_pubkey, network),
            },
            HistoryKind::Minted { outpoint, amount, credited, fee } => HistoryKindInfo::Minted {
                btc_outpoint: outpoint.to_bitcoin(),
                amount: *amount,
                credited: *credited,
                fee: *fee,
            },
            HistoryKind::PaidOut { burn_id, amount, btc_txid } => {
                HistoryKindInfo::PaidOut { burn_id: *burn_id, amount: *amount, btc_txid: *btc_txid }
            }
        };
        HistoryEntryInfo { height: e.height, index: e.index, txid: e.txid, kind, proof: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash as _;
    use primitives::Hash32;

    /// The JSON a wallet reads: the kind as a tag beside the position, amounts in satoshis, Bitcoin values
    /// as `bitcoin-cli` shows them; and it reads back.
    #[test]
    fn entries_show_their_kind_flat_with_bitcoin_values_as_bitcoin_cli_does() {
        let entry = |kind| HistoryEntry { height: Height(7), index: 2, txid: TxId(Hash32([3; 32])), kind };
        let mut internal = [0u8; 32];
        internal[0] = 0xab;
        let paid = HistoryEntryInfo::new(
            &entry(HistoryKind::PaidOut {
                burn_id: 4,
                amount: Amount::from_sat(5_000),
                btc_txid: Txid::from_byte_array(internal),
            }),
            bitcoin::Network::Regtest,
        );
        let json = serde_json::to_value(&paid).expect("json");
        assert_eq!(json["kind"], "paid_out");
        assert_eq!((json["height"].as_u64(), json["index"].as_u64()), (Some(7), Some(2)));
        assert_eq!((json["burn_id"].as_u64(), json["amount_sat"].as_u64()), (Some(4), Some(5_000)));
        assert_eq!(json["btc_txid"], format!("{}ab", "00".repeat(31)));
        assert_eq!(serde_json::from_value::<HistoryEntryInfo>(json).expect("back"), paid);

        let mut p2wpkh = vec![0x00, 0x14];
        p2wpkh.extend([7u8; 20]);
        let burned = HistoryEntryInfo::new(
            &entry(HistoryKind::Burned {
                burn_id: 4,
                amount: Amount::from_sat(5_000),
                fee: Amount::from_sat(100),
                btc_script_pubkey: p2wpkh,
            }),
            bitcoin::Network::Regtest,
        );
        let json = serde_json::to_value(&burned).expect("json");
        assert_eq!(json["kind"], "burned");
        assert!(json["btc_address"].as_str().expect("an address").starts_with("bcrt1q"));
        assert_eq!(json["fee_sat"].as_u64(), Some(100));
    }
}
