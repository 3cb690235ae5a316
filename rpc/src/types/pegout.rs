//! The peg-out JSON: one burn on its way to Bitcoin (`listpegouts`, `getpegoutstatus`).
//!
//! As for peg-in, the stage is decided here by one pure function ([`PegOutInfo::new`]) from the ledger's
//! records (the burn, its batch, the federation threshold), so the node and the test backend agree.
//! Bitcoin values are shown as `bitcoin-cli` shows them (txids and block hashes in display order).

use bitcoin::amount::serde::as_sat;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, Script, Txid};
use ledger::batching::BatchRecord;
use ledger::pegout::BurnRecord;
use primitives::{AccountId, Hash32, Height};
use serde::{Deserialize, Serialize};

/// Where a burn is on its way to Bitcoin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PegOutStage {
    /// Burned, waiting for a batch.
    Queued,
    /// In a batch that does not have enough signatures yet.
    Batched,
    /// In a batch with at least the federation threshold of signatures (it can be broadcast).
    Signed,
    /// The batch confirmed on Bitcoin.
    Paid,
}

impl std::fmt::Display for PegOutStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PegOutStage::Queued => "queued",
            PegOutStage::Batched => "batched",
            PegOutStage::Signed => "signed",
            PegOutStage::Paid => "paid",
        })
    }
}

/// The batch paying a burn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PegOutBatchInfo {
    /// Batch sequence number.
    pub id: u64,
    /// The Bitcoin txid of the batch (display order).
    pub btc_txid: String,
    /// Signatures collected over signatures needed, as `"k/n"` (n is the federation threshold).
    pub signatures: String,
    /// The batch's Bitcoin fee.
    #[serde(rename = "fee_sat", with = "as_sat")]
    pub fee: Amount,
    /// Upper bound of the signed size the fee was priced on.
    pub vbytes: u64,
}

/// The Bitcoin block where a burn was paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PegOutPaidIn {
    /// Its height.
    pub btc_height: u32,
    /// Its hash (display order).
    pub btc_block_hash: String,
}

/// One burn (`listpegouts` entry, `getpegoutstatus` result).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PegOutInfo {
    /// Burn sequence number.
    pub burn_id: u64,
    /// The sidechain transaction that burned.
    pub burn_txid: Hash32,
    /// Who burned.
    pub owner: AccountId,
    /// The payout address on the node's Bitcoin network; null when the script is not an address.
    pub btc_address: Option<String>,
    /// What the payout pays.
    #[serde(rename = "amount_sat", with = "as_sat")]
    pub amount: Amount,
    /// The sidechain fee the burn paid.
    #[serde(rename = "fee_sat", with = "as_sat")]
    pub fee: Amount,
    /// The sidechain block that accepted the burn.
    pub burned_at: Height,
    /// `queued`, `batched`, `signed` or `paid`.
    pub stage: PegOutStage,
    /// The batch paying it, once batched (null if its record is gone).
    pub batch: Option<PegOutBatchInfo>,
    /// Where it was paid, once paid.
    pub paid_in: Option<PegOutPaidIn>,
}

impl PegOutInfo {
    /// The status of `burn`, with `batch` its batch record (if batched and still stored) and `threshold` the
    /// signatures a batch needs.
    pub fn new(burn: &BurnRecord, batch: Option<&BatchRecord>, threshold: usize, network: bitcoin::Network) -> Self {
        let stage = if burn.paid_in.is_some() {
            PegOutStage::Paid
        } else if batch.is_some_and(|b| b.is_signed(threshold)) {
            PegOutStage::Signed
        } else if burn.batch.is_some() {
            PegOutStage::Batched
        } else {
            PegOutStage::Queued
        };
        PegOutInfo {
            burn_id: burn.id,
            burn_txid: burn.txid,
            owner: burn.owner,
            btc_address: script_address(&burn.script_pubkey, network),
            amount: burn.amount,
            fee: burn.fee,
            burned_at: burn.burned_at,
            stage,
            batch: batch.map(|b| PegOutBatchInfo {
                id: b.id,
                btc_txid: Txid::from_byte_array(b.txid.0).to_string(),
                signatures: format!("{}/{}", b.shares.len(), threshold),
                fee: b.fee,
                vbytes: b.vbytes,
            }),
            paid_in: burn.paid_in.map(|a| PegOutPaidIn {
                btc_height: a.height.0,
                btc_block_hash: BlockHash::from_byte_array(a.hash.0).to_string(),
            }),
        }
    }
}

/// The address paying `script` on `network`, if it is one.
pub fn script_address(script: &[u8], network: bitcoin::Network) -> Option<String> {
    bitcoin::Address::from_script(Script::from_bytes(script), network).ok().map(|a| a.to_string())
}

/// Parses a sidechain burn txid (64 hex digits, no colon).
pub fn parse_burn_txid(s: &str) -> Result<Hash32, String> {
    let t = s.trim();
    if t.contains(':') {
        return Err(format!(
            "expected a sidechain burn txid (64 hex digits); {s:?} looks like a Bitcoin outpoint (use getpegstatus)"
        ));
    }
    t.parse::<Hash32>().map_err(|_| format!("expected a sidechain burn txid (64 hex digits), got {s:?}"))
}

/// Reads burns `ids` (newest first) from `state`, each with its batch.
pub fn read_pegouts<S: ledger::StateReader>(
    state: &S,
    count: usize,
    skip: usize,
    threshold: usize,
    network: bitcoin::Network,
) -> Result<Vec<PegOutInfo>, ledger::StateError> {
    let next = ledger::pegout::pegout_queue(state)?.next_burn_id;
    let mut out = Vec::new();
    for id in (0..next).rev().skip(skip).take(count) {
        if let Some(b) = ledger::pegout::burn(state, id)? {
            out.push(pegout_info(state, &b, threshold, network)?);
        }
    }
    Ok(out)
}

/// The status of the burn made by `txid`, if any.
pub fn read_pegout_by_txid<S: ledger::StateReader>(
    state: &S,
    txid: &Hash32,
    threshold: usize,
    network: bitcoin::Network,
) -> Result<Option<PegOutInfo>, ledger::StateError> {
    match ledger::pegout::burn_of_tx(state, txid)? {
        Some(b) => Ok(Some(pegout_info(state, &b, threshold, network)?)),
        None => Ok(None),
    }
}

fn pegout_info<S: ledger::StateReader>(
    state: &S,
    b: &BurnRecord,
    threshold: usize,
    network: bitcoin::Network,
) -> Result<PegOutInfo, ledger::StateError> {
    let batch = match b.batch {
        Some(id) => ledger::batching::batch(state, id)?,
        None => None,
    };
    Ok(PegOutInfo::new(b, batch.as_ref(), threshold, network))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burn() -> BurnRecord {
        let mut spk = vec![0x00, 0x14];
        spk.extend([7u8; 20]);
        BurnRecord {
            id: 4,
            owner: AccountId(Hash32([1; 32])),
            script_pubkey: spk,
            amount: Amount::from_sat(50_000),
            fee: Amount::from_sat(200),
            burned_at: Height(9),
            txid: Hash32([2; 32]),
            batch: None,
            paid_in: None,
        }
    }

    fn batch(shares: usize) -> BatchRecord {
        BatchRecord {
            id: 1,
            created_at: Height(10),
            burns: vec![4],
            inputs: vec![],
            change: None,
            fee: Amount::from_sat(300),
            vbytes: 150,
            unsigned_tx: vec![],
            txid: Hash32([3; 32]),
            shares: (0..shares).map(|i| (primitives::ValidatorIndex(i as u16), vec![])).collect(),
        }
    }

    #[test]
    fn stages_follow_the_records() {
        let net = bitcoin::Network::Regtest;
        let q = PegOutInfo::new(&burn(), None, 3, net);
        assert_eq!((q.stage, q.batch.clone(), q.paid_in.clone()), (PegOutStage::Queued, None, None));
        assert!(q.btc_address.as_deref().is_some_and(|a| a.starts_with("bcrt1q")), "{q:?}");
        let mut b = burn();
        b.batch = Some(1);
        let batched = PegOutInfo::new(&b, Some(&batch(2)), 3, net);
        assert_eq!(batched.stage, PegOutStage::Batched);
        let info = batched.batch.expect("batch shown");
        assert_eq!((info.signatures.as_str(), info.btc_txid), ("2/3", "03".repeat(32)));
        assert_eq!(PegOutInfo::new(&b, Some(&batch(3)), 3, net).stage, PegOutStage::Signed);
        b.paid_in = Some(ledger::BtcAnchor { height: primitives::BtcHeight(120), hash: Hash32([5; 32]) });
        let paid = PegOutInfo::new(&b, Some(&batch(3)), 3, net);
        assert_eq!(paid.stage, PegOutStage::Paid);
        assert_eq!(paid.paid_in.map(|p| p.btc_height), Some(120));
        let json = serde_json::to_value(PegOutInfo::new(&burn(), None, 3, net)).unwrap();
        assert_eq!((json["stage"].as_str(), json["amount_sat"].as_u64()), (Some("queued"), Some(50_000)));
    }

    #[test]
    fn non_address_scripts_have_no_address_and_txids_parse() {
        assert_eq!(script_address(&[0x6a, 0x01, 0x00], bitcoin::Network::Regtest), None);
        assert!(parse_burn_txid(&"ab".repeat(32)).is_ok());
        assert!(parse_burn_txid(&format!("{}:0", "ab".repeat(32))).unwrap_err().contains("getpegstatus"));
        assert!(parse_burn_txid("abcd").is_err());
    }
}
