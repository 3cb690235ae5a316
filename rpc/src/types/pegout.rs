//! The peg-out JSON: one burn on its way to Bitcoin (`listpegouts`, `getpegoutstatus`).
//!
//! As for peg-in, the stage is decided here by one pure function ([`PegOutInfo::new`]) from the ledger's
//! records (the burn, its batch, the federation threshold), so the node and the test backend agree.
//! Bitcoin values are shown as `bitcoin-cli` shows them (txids and block hashes in display order).

use super::StateProofInfo;
use bitcoin::amount::serde::as_sat;
use bitcoin::{Amount, Script, Txid};
use ledger::batching::BatchRecord;
use ledger::pegout::BurnRecord;
use primitives::schema;
use primitives::{AccountId, Height, TxId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a burn is on its way to Bitcoin, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PegOutBatchInfo {
    /// Batch sequence number.
    pub id: u64,
    /// The Bitcoin txid of the batch (display order).
    #[schemars(with = "schema::BtcHash")]
    pub btc_txid: String,
    /// Signatures collected over signatures needed, as `"k/n"` (n is the federation threshold), or `"key path"`
    /// once a taproot federation signed it with one FROST signature.
    pub signatures: String,
    /// The batch's Bitcoin fee.
    #[serde(rename = "fee_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub fee: Amount,
    /// Upper bound of the signed size the fee was priced on.
    pub vbytes: u64,
    /// Which version is current: 1, then one more per fee bump.
    pub version: usize,
    /// The txids of earlier (bumped) versions, oldest first (display order). All versions conflict.
    #[schemars(with = "Vec<schema::BtcHash>")]
    pub earlier_btc_txids: Vec<String>,
    /// Taproot custody: the key-path signing of this batch (absent on a wsh chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frost: Option<FrostSigningInfo>,
}

/// A taproot batch's key-path signing, as the chain runs it (`ledger::frost_signing`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FrostSigningInfo {
    /// The attempt (from 0); each failed attempt excludes the signers that failed it.
    pub attempt: u32,
    /// `committing`, `sharing`, `signed`, or `fell back` (the batch is signed in the `multi_a` leaf).
    pub stage: String,
    /// Nonce commitments this attempt has (the first `needed` committers sign).
    pub commitments: usize,
    /// Signature shares this attempt has.
    pub shares: usize,
    /// Signers a key-path signature needs (k).
    pub needed: u32,
    /// Validators excluded from this batch's signing (a bad share, or silent when chosen), by position.
    pub excluded: Vec<u16>,
}

impl FrostSigningInfo {
    /// From the session record of a batch needing `needed` signers.
    pub fn new(s: &ledger::frost_signing::FrostSessionRecord, needed: u32) -> Self {
        use ledger::frost_signing::SessionStage;
        let stage = match (&s.stage, s.fell_back) {
            (_, true) => "fell back",
            (SessionStage::Committing, _) => "committing",
            (SessionStage::Sharing, _) => "sharing",
            (SessionStage::Signed(_), _) => "signed",
            (SessionStage::FallBack, _) => "fell back",
        };
        FrostSigningInfo {
            attempt: s.attempt,
            stage: stage.into(),
            commitments: s.commitments.len(),
            shares: s.shares.len(),
            needed,
            excluded: s.excluded.clone(),
        }
    }

    /// One line for a status column: e.g. `FROST attempt 1: 2/3 commitments`.
    pub fn summary(&self) -> String {
        match self.stage.as_str() {
            "committing" => format!("FROST attempt {}: {}/{} commitments", self.attempt, self.commitments, self.needed),
            "sharing" => format!("FROST attempt {}: {}/{} shares", self.attempt, self.shares, self.needed),
            other => format!("FROST {other} (attempt {})", self.attempt),
        }
    }
}

/// The Bitcoin block where a burn was paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PegOutPaidIn {
    /// Its height.
    pub btc_height: u32,
    /// Its hash (display order).
    #[schemars(with = "schema::BtcHash")]
    pub btc_block_hash: String,
}

/// One burn (`listpegouts` entry, `getpegoutstatus` result).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PegOutInfo {
    /// Burn sequence number.
    pub burn_id: u64,
    /// The sidechain transaction that burned.
    pub burn_txid: TxId,
    /// Who burned.
    pub owner: AccountId,
    /// The payout address on the node's Bitcoin network; null when the script is not an address.
    pub btc_address: Option<String>,
    /// What the payout pays.
    #[serde(rename = "amount_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub amount: Amount,
    /// The sidechain fee the burn paid.
    #[serde(rename = "fee_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
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
    /// Why a burn not yet batched waits beyond the next batch interval, as a sentence saying what ends it
    /// ("waiting: rolling peg-out limit reached ... until BTC height H", "waiting: the fee pool ... is N sat
    /// short ..."); null when it is batched or only waits for the next batch height.
    #[serde(default)]
    pub waiting: Option<String>,
    /// Why a burn not yet batched waits, typed (null once batched): `ledger::pegout_wait`, derived from the
    /// batch planner execution runs.
    #[serde(default)]
    pub wait: Option<PegOutWaitInfo>,
    /// The state entries this answer rests on, with their proofs (null unless asked with `prove = true`).
    #[serde(default)]
    pub proof: Option<StateProofInfo>,
}

/// Why a queued burn waits (`getpegoutstatus.wait`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PegOutWaitReason {
    /// Nothing holds it: the next batch height pays it.
    NextBatch,
    /// The peg is halted.
    PegHalted,
    /// More burns are ahead of it than one batch pays.
    BehindFullBatch,
    /// The rolling peg-out limit.
    RollingLimit,
    /// No spendable federation coin covers the batch.
    NoSpendableCoin,
    /// The fee pool is short of the batch fee.
    FeePoolShort,
    /// A payout below dust.
    BelowDust,
    /// The batch builder refused.
    BatchRefused,
}

/// A queued burn's wait: the reason, what ends it, and its figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PegOutWaitInfo {
    /// The reason.
    pub reason: PegOutWaitReason,
    /// A sentence: the reason and what ends it.
    pub description: String,
    /// Whether an operator must act for it to end (the others end as the chain goes on).
    pub needs_operator: bool,
    /// The sidechain height that ends it (`next_batch`, `behind_full_batch`: the next batch height).
    #[serde(default)]
    pub until_height: Option<Height>,
    /// The anchor height that ends it (`rolling_limit`).
    #[serde(default)]
    pub until_btc_height: Option<u32>,
    /// What the fee pool lacks (`fee_pool_short`).
    #[serde(default)]
    pub short_by_sat: Option<u64>,
    /// Batches in flight whose coins come back when they settle (`no_spendable_coin`).
    #[serde(default)]
    pub reserved_by_batches: Vec<u64>,
}

impl From<&ledger::pegout_wait::PegOutWait> for PegOutWaitInfo {
    fn from(w: &ledger::pegout_wait::PegOutWait) -> Self {
        use ledger::pegout_wait::PegOutWait as W;
        let mut info = PegOutWaitInfo {
            reason: PegOutWaitReason::NextBatch,
            description: w.to_string(),
            needs_operator: w.needs_operator(),
            until_height: None,
            until_btc_height: None,
            short_by_sat: None,
            reserved_by_batches: Vec::new(),
        };
        info.reason = match w {
            W::NextBatch { at } => {
                info.until_height = Some(*at);
                PegOutWaitReason::NextBatch
            }
            W::PegHalted => PegOutWaitReason::PegHalted,
            W::BehindFullBatch { next_batch, .. } => {
                info.until_height = Some(*next_batch);
                PegOutWaitReason::BehindFullBatch
            }
            W::RollingLimit { until, .. } => {
                info.until_btc_height = Some(until.0);
                PegOutWaitReason::RollingLimit
            }
            W::NoSpendableCoin { reserved_by, .. } => {
                info.reserved_by_batches = reserved_by.clone();
                PegOutWaitReason::NoSpendableCoin
            }
            W::FeePoolShort { short_by, .. } => {
                info.short_by_sat = Some(short_by.to_sat());
                PegOutWaitReason::FeePoolShort
            }
            W::BelowDust { .. } => PegOutWaitReason::BelowDust,
            W::BatchRefused(_) => PegOutWaitReason::BatchRefused,
        };
        info
    }
}

/// The rolling peg-out limit, the circuit breaker (`getfederationinfo.pegout_limit`; null when the genesis
/// turns it off): what payout batches may pay per window and what they paid in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PegOutLimitInfo {
    /// The most paid out to burners per window.
    #[serde(rename = "limit_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub limit: Amount,
    /// The window, in BTC blocks (by the anchor height of the blocks that built the batches).
    pub window_btc_blocks: u32,
    /// The anchor height the figures are seen from (the tip's).
    pub anchor_btc_height: u32,
    /// Paid by batches built inside the window.
    #[serde(rename = "used_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub used: Amount,
    /// What a batch may still pay now.
    #[serde(rename = "available_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
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

impl PegOutInfo {
    /// The status of `burn`, with `batch` its batch record (if batched and still stored; it knows how many
    /// signatures it needs) and `confirmed` the batch versions (by txid) this node's bitcoind
    /// shows in a block, with the block's height.
    pub fn new(
        burn: &BurnRecord,
        batch: Option<&BatchRecord>,
        network: bitcoin::Network,
        confirmed: &BTreeMap<Txid, u32>,
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
                btc_txid: b.txid.to_string(),
                signatures: b.signing_progress(),
                fee: b.fee,
                vbytes: b.vbytes,
                version: b.bumps() + 1,
                earlier_btc_txids: b.earlier.iter().map(|v| v.txid.to_string()).collect(),
                frost: None,
            }),
            paid_in: burn.paid_in.map(|a| PegOutPaidIn { btc_height: a.height.0, btc_block_hash: a.hash.to_string() }),
            confirmed_btc_height,
            waiting: None,
            wait: None,
            proof: None,
        }
    }
}

/// The address paying `script` on `network`, if it is one.
pub fn script_address(script: &[u8], network: bitcoin::Network) -> Option<String> {
    bitcoin::Address::from_script(Script::from_bytes(script), network).ok().map(|a| a.to_string())
}

/// Parses a sidechain burn txid (64 hex digits, no colon).
pub fn parse_burn_txid(s: &str) -> Result<TxId, super::PegParamError> {
    let t = s.trim();
    if t.contains(':') {
        return Err(super::PegParamError::BurnTxidIsOutpoint(s.to_string()));
    }
    t.parse::<TxId>().map_err(|_| super::PegParamError::BurnTxid(s.to_string()))
}

/// What a node knows besides state when it shows burns.
#[derive(Clone, Debug)]
pub struct PegOutView {
    /// The node's Bitcoin network (addresses).
    pub network: bitcoin::Network,
    /// Batch versions (by txid) its bitcoind shows in a block, with the block height.
    pub confirmed: BTreeMap<bitcoin::Txid, u32>,
    /// The chain (the batch planner behind the wait reasons needs its parameters and wallets).
    pub chain: ledger::Chain,
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
    txid: &TxId,
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
    if let (Some(record), Some(shown)) = (&batch, info.batch.as_mut()) {
        // A key-path version still being signed shows its FROST attempt (the dashboard's signatures column).
        if let Some(s) = ledger::frost_signing::frost_session(state, record.id)? {
            let frost = FrostSigningInfo::new(&s, record.signers_needed);
            let current = !s.fell_back && s.version == record.txid;
            if current && !record.is_signed() {
                shown.signatures = frost.summary();
            }
            shown.frost = Some(frost);
        }
    }
    let wait = match ledger::pegout_wait::pegout_wait(&view.chain, state, b) {
        Ok(w) => w,
        Err(ledger::TxError::State(e)) => return Err(e),
        // The planner fails otherwise only on a wallet it cannot build, which batching itself would have
        // failed on first: no reason to show.
        Err(_) => None,
    };
    info.waiting = wait
        .as_ref()
        .filter(|w| !matches!(w, ledger::pegout_wait::PegOutWait::NextBatch { .. }))
        .map(|w| w.to_string());
    info.wait = wait.as_ref().map(PegOutWaitInfo::from);
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash as _;
    use primitives::Hash32;

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
            txid: TxId(Hash32([2; 32])),
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
            txid: bitcoin::Txid::from_byte_array([3; 32]),
            shares: (0..shares).map(|i| (primitives::ValidatorIndex(i as u16), vec![])).collect(),
            signed_at_anchor: None,
            earlier: vec![],
            priced_at_sat_vb: 2,
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
        bumped.txid = bitcoin::Txid::from_byte_array([6; 32]);
        let info = PegOutInfo::new(&b, Some(&bumped), net, &none);
        assert_eq!(info.stage, PegOutStage::Bumped);
        let shown = info.batch.expect("batch");
        assert_eq!((shown.version, shown.earlier_btc_txids), (2, vec!["03".repeat(32)]));
        // Our bitcoind shows the first version in block 130: confirmed, whichever version it is.
        let confirmed = BTreeMap::from([(bitcoin::Txid::from_byte_array([3; 32]), 130)]);
        let info = PegOutInfo::new(&b, Some(&bumped), net, &confirmed);
        assert_eq!((info.stage, info.confirmed_btc_height), (PegOutStage::Confirmed, Some(130)));
        b.paid_in = Some(ledger::BtcAnchor {
            height: primitives::BtcHeight(120),
            hash: bitcoin::BlockHash::from_byte_array([5; 32]),
        });
        let paid = PegOutInfo::new(&b, Some(&batch(3)), net, &confirmed);
        assert_eq!((paid.stage, paid.confirmed_btc_height), (PegOutStage::Final, None));
        assert_eq!(paid.paid_in.map(|p| p.btc_height), Some(120));
        let json = serde_json::to_value(PegOutInfo::new(&burn(), None, net, &none)).unwrap();
        assert_eq!((json["stage"].as_str(), json["amount_sat"].as_u64()), (Some("burned"), Some(50_000)));
        assert!(PegOutStage::Burned < PegOutStage::Broadcast && PegOutStage::Confirmed < PegOutStage::Final);
    }

    #[test]
    fn waits_show_their_reason_and_what_ends_it() {
        use ledger::pegout_wait::PegOutWait;
        let short = PegOutWait::FeePoolShort {
            fee: Amount::from_sat(600),
            pool: Amount::from_sat(178),
            short_by: Amount::from_sat(422),
        };
        let info = PegOutWaitInfo::from(&short);
        assert_eq!(
            (info.reason, info.short_by_sat, info.needs_operator),
            (PegOutWaitReason::FeePoolShort, Some(422), true)
        );
        assert!(info.description.contains("422 sat short"), "{}", info.description);
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["reason"].as_str(), Some("fee_pool_short"));
        let limit = PegOutWait::RollingLimit {
            used: Amount::from_sat(5),
            limit: Amount::from_sat(10),
            window: 144,
            until: primitives::BtcHeight(300),
        };
        let info = PegOutWaitInfo::from(&limit);
        assert_eq!((info.until_btc_height, info.needs_operator), (Some(300), false));
        assert!(info.description.contains("until BTC height 300"));
        let coins = PegOutWait::NoSpendableCoin {
            have: Amount::ZERO,
            need: Amount::from_sat(50_500),
            reserved_by: vec![3],
            immature: Amount::ZERO,
        };
        let info = PegOutWaitInfo::from(&coins);
        assert_eq!((info.reason, info.reserved_by_batches), (PegOutWaitReason::NoSpendableCoin, vec![3]));
        let next = PegOutWaitInfo::from(&PegOutWait::NextBatch { at: Height(20) });
        assert_eq!((next.reason, next.until_height), (PegOutWaitReason::NextBatch, Some(Height(20))));
    }

    #[test]
    fn non_address_scripts_have_no_address_and_txids_parse() {
        assert_eq!(script_address(&[0x6a, 0x01, 0x00], bitcoin::Network::Regtest), None);
        assert!(parse_burn_txid(&"ab".repeat(32)).is_ok());
        assert!(parse_burn_txid(&format!("{}:0", "ab".repeat(32))).unwrap_err().to_string().contains("getpegstatus"));
        assert!(parse_burn_txid("abcd").is_err());
    }
}
