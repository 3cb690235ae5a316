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
use std::collections::BTreeMap;

/// Where a burn is on its way to Bitcoin, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PegOutStage {
    /// Burned, waiting for a batch.
    Burned,
    /// In a batch no validator signed yet.
    Batched,
    /// In a batch some validators signed, fewer than the threshold (`signatures` says how many).
    Signed,
    /// Its batch has the threshold of signatures: validators broadcast it to Bitcoin.
    Broadcast,
    /// Its batch did not confirm in time and was fee-bumped (a new version spending the same coins).
    Bumped,
    /// A version of its batch is in a Bitcoin block this node's bitcoind shows, not yet N deep.
    Confirmed,
    /// The anchor covers the confirmation (N deep): the burn is paid, for good.
    Final,
}

impl std::fmt::Display for PegOutStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PegOutStage::Burned => "burned",
            PegOutStage::Batched => "batched",
            PegOutStage::Signed => "signed",
            PegOutStage::Broadcast => "broadcast",
            PegOutStage::Bumped => "bumped",
            PegOutStage::Confirmed => "confirmed",
            PegOutStage::Final => "final",
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
    /// Which version is current: 1, then one more per fee bump.
    pub version: usize,
    /// The txids of earlier (bumped) versions, oldest first (display order). All versions conflict.
    pub earlier_btc_txids: Vec<String>,
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
    /// `burned`, `batched`, `signed`, `broadcast`, `bumped`, `confirmed` or `final`.
    pub stage: PegOutStage,
    /// The batch paying it, once batched (null if its record is gone).
    pub batch: Option<PegOutBatchInfo>,
    /// Where it was paid, once final.
    pub paid_in: Option<PegOutPaidIn>,
    /// The BTC block height this node's bitcoind shows a version of its batch in, before it is final
    /// (validators only: a node without a bitcoind cannot tell).
    pub confirmed_btc_height: Option<u32>,
    /// Why a burn not yet batched waits beyond the next batch interval: "waiting: rolling peg-out limit
    /// reached ... until BTC height H" when the circuit breaker holds it (null otherwise).
    #[serde(default)]
    pub waiting: Option<String>,
}

/// The rolling peg-out limit, the circuit breaker (`getfederationinfo.pegout_limit`; null when the genesis
/// turns it off): what payout batches may pay per window and what they paid in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PegOutLimitInfo {
    /// The most paid out to burners per window.
    #[serde(rename = "limit_sat", with = "as_sat")]
    pub limit: Amount,
    /// The window, in BTC blocks (by the anchor height of the blocks that built the batches).
    pub window_btc_blocks: u32,
    /// The anchor height the figures are seen from (the tip's).
    pub anchor_btc_height: u32,
    /// Paid by batches built inside the window.
    #[serde(rename = "used_sat", with = "as_sat")]
    pub used: Amount,
    /// What a batch may still pay now.
    #[serde(rename = "available_sat", with = "as_sat")]
    pub available: Amount,
    /// When the burn at the head of the queue waits on the limit: the BTC height from which it fits.
    pub head_waits_until_btc_height: Option<u32>,
}

impl PegOutLimitInfo {
    /// The breaker's figures after `state` (`None` when it is off).
    pub fn read<S: ledger::StateReader>(
        params: &ledger::Params,
        state: &S,
    ) -> Result<Option<Self>, ledger::StateError> {
        Ok(ledger::pegout_limit::pegout_limit_status(params, state)?.map(|s| PegOutLimitInfo {
            limit: s.limit,
            window_btc_blocks: s.window,
            anchor_btc_height: s.anchor.0,
            used: s.used,
            available: s.available,
            head_waits_until_btc_height: s.head_waits_until.map(|h| h.0),
        }))
    }
}

/// A person's reading of a burn held by the breaker.
pub fn limit_wait_reason(w: &ledger::pegout_limit::LimitWait) -> String {
    format!(
        "waiting: rolling peg-out limit reached ({} of {} sat paid in the last {} BTC blocks) until BTC height {}",
        w.used.to_sat(),
        w.limit.to_sat(),
        w.window,
        w.not_before.0
    )
}

impl PegOutInfo {
    /// The status of `burn`, with `batch` its batch record (if batched and still stored; it knows how many
    /// signatures it needs) and `confirmed` the batch versions (txid, internal order) this node's bitcoind
    /// shows in a block, with the block's height.
    pub fn new(
        burn: &BurnRecord,
        batch: Option<&BatchRecord>,
        network: bitcoin::Network,
        confirmed: &BTreeMap<Hash32, u32>,
    ) -> Self {
        let confirmed_btc_height = match (burn.paid_in, batch) {
            (None, Some(b)) => b.version_txids().find_map(|t| confirmed.get(&t).copied()),
            _ => None,
        };
        let stage = match batch {
            _ if burn.paid_in.is_some() => PegOutStage::Final,
            _ if confirmed_btc_height.is_some() => PegOutStage::Confirmed,
            Some(b) if b.bumps() > 0 => PegOutStage::Bumped,
            Some(b) if b.is_signed() => PegOutStage::Broadcast,
            Some(b) if !b.shares.is_empty() => PegOutStage::Signed,
            _ if burn.batch.is_some() => PegOutStage::Batched,
            _ => PegOutStage::Burned,
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
                signatures: format!("{}/{}", b.shares.len(), b.signers_needed),
                fee: b.fee,
                vbytes: b.vbytes,
                version: b.bumps() + 1,
                earlier_btc_txids: b.earlier.iter().map(|v| Txid::from_byte_array(v.txid.0).to_string()).collect(),
            }),
            paid_in: burn.paid_in.map(|a| PegOutPaidIn {
                btc_height: a.height.0,
                btc_block_hash: BlockHash::from_byte_array(a.hash.0).to_string(),
            }),
            confirmed_btc_height,
            waiting: None,
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

/// What a node knows besides state when it shows burns.
#[derive(Clone, Debug)]
pub struct PegOutView {
    /// The node's Bitcoin network (addresses).
    pub network: bitcoin::Network,
    /// Batch versions (txid, internal order) its bitcoind shows in a block, with the block height.
    pub confirmed: BTreeMap<Hash32, u32>,
    /// The chain's parameters (the rolling peg-out limit).
    pub params: ledger::Params,
}

/// Reads burns `ids` (newest first) from `state`, each with its batch.
pub fn read_pegouts<S: ledger::StateReader>(
    state: &S,
    count: usize,
    skip: usize,
    view: &PegOutView,
) -> Result<Vec<PegOutInfo>, ledger::StateError> {
    let next = ledger::pegout::pegout_queue(state)?.next_burn_id;
    let mut out = Vec::new();
    for id in (0..next).rev().skip(skip).take(count) {
        if let Some(b) = ledger::pegout::burn(state, id)? {
            out.push(pegout_info(state, &b, view)?);
        }
    }
    Ok(out)
}

/// The status of the burn made by `txid`, if any.
pub fn read_pegout_by_txid<S: ledger::StateReader>(
    state: &S,
    txid: &Hash32,
    view: &PegOutView,
) -> Result<Option<PegOutInfo>, ledger::StateError> {
    match ledger::pegout::burn_of_tx(state, txid)? {
        Some(b) => Ok(Some(pegout_info(state, &b, view)?)),
        None => Ok(None),
    }
}

fn pegout_info<S: ledger::StateReader>(
    state: &S,
    b: &BurnRecord,
    view: &PegOutView,
) -> Result<PegOutInfo, ledger::StateError> {
    let batch = match b.batch {
        Some(id) => ledger::batching::batch(state, id)?,
        None => None,
    };
    let mut info = PegOutInfo::new(b, batch.as_ref(), view.network, &view.confirmed);
    info.waiting = ledger::pegout_limit::burn_waits_on_limit(&view.params, state, b)?.map(|w| limit_wait_reason(&w));
    Ok(info)
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
            kind: ledger::batching::BatchKind::Payout,
            epoch: 0,
            signers_needed: 3,
            change_epoch: 0,
            created_at: Height(10),
            burns: vec![4],
            inputs: vec![],
            change: None,
            fee: Amount::from_sat(300),
            vbytes: 150,
            unsigned_tx: vec![],
            txid: Hash32([3; 32]),
            shares: (0..shares).map(|i| (primitives::ValidatorIndex(i as u16), vec![])).collect(),
            signed_at_anchor: None,
            earlier: vec![],
        }
    }

    #[test]
    fn stages_follow_the_records() {
        let net = bitcoin::Network::Regtest;
        let none = BTreeMap::new();
        let q = PegOutInfo::new(&burn(), None, net, &none);
        assert_eq!((q.stage, q.batch.clone(), q.paid_in.clone()), (PegOutStage::Burned, None, None));
        assert!(q.btc_address.as_deref().is_some_and(|a| a.starts_with("bcrt1q")), "{q:?}");
        let mut b = burn();
        b.batch = Some(1);
        assert_eq!(PegOutInfo::new(&b, Some(&batch(0)), net, &none).stage, PegOutStage::Batched);
        let signed = PegOutInfo::new(&b, Some(&batch(2)), net, &none);
        assert_eq!(signed.stage, PegOutStage::Signed);
        let info = signed.batch.expect("batch shown");
        assert_eq!((info.signatures.as_str(), info.btc_txid, info.version), ("2/3", "03".repeat(32), 1));
        assert_eq!(PegOutInfo::new(&b, Some(&batch(3)), net, &none).stage, PegOutStage::Broadcast);
        // Bumped: the first version is kept as an earlier one and a new version is current.
        let mut bumped = batch(0);
        bumped.earlier.push(batch(3).current_version());
        bumped.txid = Hash32([6; 32]);
        let info = PegOutInfo::new(&b, Some(&bumped), net, &none);
        assert_eq!(info.stage, PegOutStage::Bumped);
        let shown = info.batch.expect("batch");
        assert_eq!((shown.version, shown.earlier_btc_txids), (2, vec!["03".repeat(32)]));
        // Our bitcoind shows the first version in block 130: confirmed, whichever version it is.
        let confirmed = BTreeMap::from([(Hash32([3; 32]), 130)]);
        let info = PegOutInfo::new(&b, Some(&bumped), net, &confirmed);
        assert_eq!((info.stage, info.confirmed_btc_height), (PegOutStage::Confirmed, Some(130)));
        b.paid_in = Some(ledger::BtcAnchor { height: primitives::BtcHeight(120), hash: Hash32([5; 32]) });
        let paid = PegOutInfo::new(&b, Some(&batch(3)), net, &confirmed);
        assert_eq!((paid.stage, paid.confirmed_btc_height), (PegOutStage::Final, None));
        assert_eq!(paid.paid_in.map(|p| p.btc_height), Some(120));
        let json = serde_json::to_value(PegOutInfo::new(&burn(), None, net, &none)).unwrap();
        assert_eq!((json["stage"].as_str(), json["amount_sat"].as_u64()), (Some("burned"), Some(50_000)));
        assert!(PegOutStage::Burned < PegOutStage::Broadcast && PegOutStage::Confirmed < PegOutStage::Final);
    }

    #[test]
    fn non_address_scripts_have_no_address_and_txids_parse() {
        assert_eq!(script_address(&[0x6a, 0x01, 0x00], bitcoin::Network::Regtest), None);
        assert!(parse_burn_txid(&"ab".repeat(32)).is_ok());
        assert!(parse_burn_txid(&format!("{}:0", "ab".repeat(32))).unwrap_err().contains("getpegstatus"));
        assert!(parse_burn_txid("abcd").is_err());
    }
}
