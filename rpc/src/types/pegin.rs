//! The peg's JSON: where a deposit is on its way to the sidechain (`getpegstatus`), what `claimpegin`
//! answers, and the peg totals `getfederationinfo` and `getblockchaininfo` show.
//!
//! Why the stage is computed here and not in the node: the node's backend hands over plain facts
//! ([`PegInFacts`]: the ledger's record, what its bitcoind shows, the registration), and one pure function,
//! [`PegInStatus::new`], decides the stage. So the rule is written once, unit-tested without a node, and the
//! in-memory test backend and `sidechaind` cannot disagree on it.
//!
//! Bitcoin values are shown the way `bitcoin-cli` shows them: outpoints as `txid:vout` and hashes in
//! display (byte-reversed) order. Parameters are parsed here too ([`parse_btc_outpoint`],
//! [`parse_btc_block_hash`], [`parse_account`]), with messages a person can act on.

use super::StateProofInfo;
use bitcoin::amount::serde::as_sat;
use bitcoin::{Amount, BlockHash, OutPoint};
use ledger::{BtcOutPoint, PegInRecord, PegTotals};
use primitives::schema;
use primitives::{AccountId, Hash32, Height, TxId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A parameter of a peg method that is not what it should be (the RPC answers -8 with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PegParamError {
    /// Not `txid:vout`.
    #[error(
        "expected a Bitcoin outpoint as txid:vout (the txid as bitcoin-cli shows it, 64 hex digits, a colon, \
         then the output index), got {0:?}"
    )]
    Outpoint(String),
    /// Not a block hash.
    #[error("expected a Bitcoin block hash (64 hex digits, as bitcoin-cli shows it), got {0:?}")]
    BlockHash(String),
    /// Not an account id.
    #[error("expected a recipient account id (64 hex digits), got {0:?}")]
    Account(String),
    /// Not a sidechain txid.
    #[error("expected a sidechain burn txid (64 hex digits), got {0:?}")]
    BurnTxid(String),
    /// A Bitcoin outpoint where a sidechain burn txid belongs.
    #[error("expected a sidechain burn txid (64 hex digits); {0:?} looks like a Bitcoin outpoint (use getpegstatus)")]
    BurnTxidIsOutpoint(String),
}

/// The first 80 characters of what was given, for an error message.
fn shown(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Parses `txid:vout` as Bitcoin Core shows an outpoint (txid in display order, decimal output index).
pub fn parse_btc_outpoint(s: &str) -> Result<OutPoint, PegParamError> {
    let bad = || PegParamError::Outpoint(shown(s));
    let (txid, vout) = s.trim().split_once(':').ok_or_else(bad)?;
    if txid.len() != 64 || !vout.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(OutPoint { txid: txid.parse().map_err(|_| bad())?, vout: vout.parse().map_err(|_| bad())? })
}

/// Parses a Bitcoin block hash as `bitcoin-cli` shows it.
pub fn parse_btc_block_hash(s: &str) -> Result<BlockHash, PegParamError> {
    let t = s.trim();
    if t.len() != 64 {
        return Err(PegParamError::BlockHash(shown(s)));
    }
    t.parse().map_err(|_| PegParamError::BlockHash(shown(s)))
}

/// Parses a sidechain account id (64 hex digits).
pub fn parse_account(s: &str) -> Result<AccountId, PegParamError> {
    s.trim().parse::<Hash32>().map(AccountId).map_err(|_| PegParamError::Account(shown(s)))
}

/// A Bitcoin outpoint as the ledger keys it (txid in internal byte order).
pub fn ledger_outpoint(o: &OutPoint) -> BtcOutPoint {
    BtcOutPoint::from_bitcoin(o)
}

/// The peg totals at the tip (`getfederationinfo.peg_totals`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PegTotalsInfo {
    /// Value of the federation's Bitcoin outputs as of the anchor (every recorded deposit).
    #[serde(rename = "btc_held_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub btc_held: Amount,
    /// Every balance on the sidechain, fee pool included: genesis balances plus minted deposits.
    #[serde(rename = "supply_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub supply: Amount,
    /// Credited to recipients by mints.
    #[serde(rename = "minted_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub minted: Amount,
    /// Peg-in fees paid to the fee pool.
    #[serde(rename = "pegin_fees_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub pegin_fees: Amount,
    /// Deposits below the minimum: held by the federation, not minted.
    #[serde(rename = "below_minimum_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub below_minimum: Amount,
    /// Deposit outpoints recorded (minted or below the minimum).
    pub deposits: u64,
    /// Burned by peg-outs and not yet paid on Bitcoin.
    #[serde(rename = "unpaid_burns_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub unpaid_burns: Amount,
}

impl From<PegTotals> for PegTotalsInfo {
    fn from(t: PegTotals) -> Self {
        PegTotalsInfo {
            btc_held: t.btc_held,
            supply: t.supply,
            minted: t.minted,
            pegin_fees: t.pegin_fees,
            below_minimum: t.below_minimum,
            deposits: t.deposits,
            unpaid_burns: t.unpaid_burns,
        }
    }
}

/// The reserve at the tip, in short (`getblockchaininfo.peg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChainPegInfo {
    /// Value of the federation's Bitcoin outputs as of the anchor.
    #[serde(rename = "btc_held_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub btc_held: Amount,
    /// Every balance on the sidechain, fee pool included.
    #[serde(rename = "supply_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub supply: Amount,
    /// Burned and not yet paid on Bitcoin (payouts and the Bitcoin fees of batches in flight).
    #[serde(rename = "unpaid_burns_sat", with = "as_sat", default)]
    #[schemars(with = "schema::Sat")]
    pub unpaid_burns: Amount,
    /// The part of `supply` the genesis created. **Test networks only**: genesis balances are not backed
    /// by any BTC (a real chain has none, and all its supply comes from peg-ins).
    #[serde(rename = "genesis_supply_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub genesis_supply: Amount,
    /// `supply - genesis_supply <= btc_held`: everything the peg created is backed by BTC the federation
    /// holds. The genesis balances are left out because nothing backs them (see `genesis_supply`).
    pub reserve_ok: bool,
    /// Peg operations halted: f+1 validators reported a Bitcoin reorg deeper than N. No mints and no anchor
    /// moves until 2f+1 validators vote `resumepeg`; transfers go on.
    pub halted: bool,
    /// Held federation coins worth less than their spend costs at the agreed fee rate (dust anyone can pay
    /// to a federation address): counted in `btc_held`, left out of every batch, sweep and refresh until the
    /// rate falls enough for them to pay their way.
    #[serde(default)]
    pub uneconomic_coins: u64,
    /// Their value.
    #[serde(rename = "uneconomic_sat", with = "as_sat", default)]
    #[schemars(with = "schema::Sat")]
    pub uneconomic: Amount,
}

impl ChainPegInfo {
    /// The reserve view of `totals` on a chain whose genesis created `genesis_supply`.
    pub fn new(totals: &PegTotals, genesis_supply: Amount, halted: bool) -> Self {
        // Burns move value from supply to unpaid burns, so the promise reads the same before and after one.
        let owed = totals.supply.checked_add(totals.unpaid_burns).unwrap_or(Amount::MAX_MONEY);
        let pegged = owed.checked_sub(genesis_supply).unwrap_or(Amount::ZERO);
        ChainPegInfo {
            btc_held: totals.btc_held,
            supply: totals.supply,
            unpaid_burns: totals.unpaid_burns,
            genesis_supply,
            reserve_ok: pegged <= totals.btc_held,
            halted,
            uneconomic_coins: 0,
            uneconomic: Amount::ZERO,
        }
    }

    /// With the held coins that are not worth spending at the agreed rate (`ledger::economic`).
    pub fn with_uneconomic(self, coins: u64, amount: Amount) -> Self {
        ChainPegInfo { uneconomic_coins: coins, uneconomic: amount, ..self }
    }
}

/// What this node knows about one deposit outpoint: the backend's answer for `getpegstatus`, from which
/// [`PegInStatus::new`] decides the stage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PegInFacts {
    /// The ledger's record at the tip (minted, or held below the minimum).
    pub record: Option<PegInRecord>,
    /// Time of the block at `record.minted_at`, milliseconds since the Unix epoch.
    pub minted_time_ms: Option<u64>,
    /// The deposit in this node's deposit index (BTC blocks above the anchor, to registered scripts).
    pub indexed: Option<peg::Deposit>,
    /// A pending claim for it that this node's bitcoind confirmed.
    pub claim_confirmed: Option<peg::Deposit>,
    /// Why this node's bitcoind rejected a pending claim for it.
    pub claim_rejected: Option<String>,
    /// The best height of this node's bitcoind (`None`: no bitcoind, or it does not answer).
    pub btc_best_height: Option<u32>,
    /// Whether the recipient's deposit registration is live for the next block (`None`: recipient unknown).
    pub registration_live: Option<bool>,
    /// Confirmations a deposit needs before it is minted (`Params::pegin_confirmations`).
    pub confirmations_required: u32,
}

/// Where a deposit is on its way to the sidechain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PegInStage {
    /// Nothing known: not recorded, not in this node's deposit index, no claim this node checked. (A node
    /// without a bitcoind only ever knows recorded deposits.)
    Unknown,
    /// This node's bitcoind shows it in a block above the anchor, paying a registered deposit script; it is
    /// minted when the anchor covers its block (after `confirmations_required`) if the registration is live.
    Seen,
    /// A claim for it is pending and this node's bitcoind confirmed it; it is minted when the anchor covers
    /// its block.
    ClaimPending,
    /// A claim for it is pending but this node's bitcoind contradicts it (`reason` says how).
    ClaimRejected,
    /// Minted: the recipient was credited `credited_sat` (the deposit minus the peg-in fee).
    Minted,
    /// Recorded and held by the federation, but below the minimum, so nothing was credited.
    BelowMinimum,
}

/// Result of `getpegstatus`. Fields that do not apply to the stage, or are not known, are null.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PegInStatus {
    /// The deposit output, `txid:vout` as Bitcoin Core shows it.
    #[schemars(with = "schema::BtcOutPoint")]
    pub outpoint: OutPoint,
    /// Where it is.
    pub stage: PegInStage,
    /// The account the deposit address is bound to.
    pub recipient: Option<AccountId>,
    /// The deposit's value on Bitcoin.
    #[serde(rename = "amount_sat", with = "as_sat::opt", default)]
    #[schemars(with = "Option<schema::Sat>")]
    pub amount: Option<Amount>,
    /// The BTC block holding it, as `bitcoin-cli` shows it.
    #[schemars(with = "Option<schema::BtcHash>")]
    pub btc_block_hash: Option<BlockHash>,
    /// That block's height.
    pub btc_height: Option<u32>,
    /// Blocks on this node's bitcoind's best chain from that block to the tip, the block included.
    pub confirmations: Option<u32>,
    /// Confirmations a deposit needs before it is minted.
    pub confirmations_required: u32,
    /// Whether the recipient's deposit registration is live: deposits to a live registration are minted
    /// without a claim; others need `claimpegin`.
    pub registration_live: Option<bool>,
    /// Why a pending claim for it was rejected by this node's bitcoind.
    pub reason: Option<String>,
    /// The sidechain block that recorded it (minted or below the minimum).
    pub minted_at: Option<Height>,
    /// That block's time, milliseconds since the Unix epoch.
    pub minted_time_ms: Option<u64>,
    /// The mint transaction (`gettransaction` shows it).
    pub mint_txid: Option<TxId>,
    /// What the recipient received (0 below the minimum).
    #[serde(rename = "credited_sat", with = "as_sat::opt", default)]
    #[schemars(with = "Option<schema::Sat>")]
    pub credited: Option<Amount>,
    /// The peg-in fee paid to the fee pool (0 below the minimum).
    #[serde(rename = "fee_sat", with = "as_sat::opt", default)]
    #[schemars(with = "Option<schema::Sat>")]
    pub fee: Option<Amount>,
    /// The state entries this answer rests on, with their proofs (null unless asked with `prove = true`).
    #[serde(default)]
    pub proof: Option<StateProofInfo>,
}

impl PegInStatus {
    /// The status of `outpoint` from what the node knows. The ledger's record wins (it is final); then a
    /// claim our bitcoind confirmed, then our deposit index, then a rejected claim.
    pub fn new(outpoint: OutPoint, facts: &PegInFacts) -> Self {
        let mut s = PegInStatus {
            outpoint,
            stage: PegInStage::Unknown,
            recipient: None,
            amount: None,
            btc_block_hash: None,
            btc_height: None,
            confirmations: None,
            confirmations_required: facts.confirmations_required,
            registration_live: facts.registration_live,
            reason: facts.claim_rejected.clone(),
            minted_at: None,
            minted_time_ms: None,
            mint_txid: None,
            credited: None,
            fee: None,
            proof: None,
        };
        if let Some(r) = &facts.record {
            s.stage = if r.below_minimum() { PegInStage::BelowMinimum } else { PegInStage::Minted };
            s.recipient = Some(r.recipient);
            s.amount = Some(r.amount);
            s.btc_block_hash = Some(r.btc_block.hash);
            s.btc_height = Some(r.btc_block.height.get());
            s.minted_at = Some(r.minted_at);
            s.minted_time_ms = facts.minted_time_ms;
            s.mint_txid = Some(r.mint_txid);
            s.credited = Some(r.credited);
            s.fee = Some(r.fee);
            // A claim can no longer matter once the ledger recorded the deposit.
            s.reason = None;
        } else {
            let sighting = match (&facts.claim_confirmed, &facts.indexed, &facts.claim_rejected) {
                (Some(d), _, _) => Some((PegInStage::ClaimPending, d)),
                (None, Some(d), _) => Some((PegInStage::Seen, d)),
                (None, None, Some(_)) => {
                    s.stage = PegInStage::ClaimRejected;
                    None
                }
                (None, None, None) => None,
            };
            if let Some((stage, d)) = sighting {
                s.stage = stage;
                s.recipient = Some(AccountId(Hash32(d.recipient)));
                s.amount = Some(d.amount);
                s.btc_block_hash = Some(d.btc_block_hash);
                s.btc_height = Some(d.btc_height);
            }
        }
        s.confirmations = match (facts.btc_best_height, s.btc_height) {
            (Some(best), Some(h)) if best >= h => Some(best - h + 1),
            _ => None,
        };
        s
    }
}

/// What `claimpegin` did with the claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    /// The node keeps it and gossiped it; validators check it against their bitcoinds and mint it once the
    /// anchor covers its block. Follow it with `getpegstatus`.
    Submitted,
}

/// Result of `claimpegin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClaimPegInResult {
    /// Always `submitted` (a refusal is an error).
    pub status: ClaimStatus,
    /// The claimed deposit output, `txid:vout`.
    #[schemars(with = "schema::BtcOutPoint")]
    pub outpoint: OutPoint,
    /// The account the deposit address was derived for.
    pub recipient: AccountId,
    /// The BTC block said to hold it, as `bitcoin-cli` shows it.
    #[schemars(with = "schema::BtcHash")]
    pub btc_block_hash: BlockHash,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash as _;
    use ledger::BtcAnchor;
    use primitives::BtcHeight;
    use primitives::TxId;

    const TXID: &str = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";

    fn deposit(height: u32) -> peg::Deposit {
        peg::Deposit {
            outpoint: OutPoint { txid: TXID.parse().unwrap(), vout: 1 },
            amount: Amount::from_sat(50_000),
            script_pubkey: bitcoin::ScriptBuf::new(),
            recipient: [7; 32],
            epoch: 0,
            btc_block_hash: BlockHash::from_byte_array([3; 32]),
            btc_height: height,
            coinbase: false,
        }
    }

    fn record(credited: Amount) -> PegInRecord {
        PegInRecord {
            recipient: AccountId(Hash32([7; 32])),
            amount: Amount::from_sat(50_000),
            credited,
            fee: if credited == Amount::ZERO { Amount::ZERO } else { Amount::from_sat(50_000) - credited },
            btc_block: BtcAnchor { height: BtcHeight(105), hash: bitcoin::BlockHash::from_byte_array([3; 32]) },
            minted_at: Height(12),
            mint_txid: TxId(Hash32([9; 32])),
        }
    }

    fn facts() -> PegInFacts {
        PegInFacts { confirmations_required: 6, ..PegInFacts::default() }
    }

    #[test]
    fn outpoints_parse_as_core_shows_them() {
        let o = parse_btc_outpoint(&format!("{TXID}:1")).unwrap();
        assert_eq!(o.to_string(), format!("{TXID}:1"));
        // Display order in, internal order in the ledger: the bytes are reversed.
        let l = ledger_outpoint(&o);
        assert_eq!(l.txid.to_byte_array()[0], 0x3b);
        assert_eq!(crate::types::btc_outpoint(&l), o);
        for bad in [
            "",
            "nope",
            TXID,
            &format!("{TXID}:"),
            &format!("{TXID}:-1"),
            &format!("{TXID}:4294967296"),
            &format!("{TXID}:1:2"),
            &format!("zz{}:0", &TXID[2..]),
            &format!("{}:0", &TXID[1..]),
            ":0",
        ] {
            let e = parse_btc_outpoint(bad).unwrap_err();
            assert!(e.to_string().contains("txid:vout"), "{bad:?}: {e}");
        }
        assert!(parse_btc_block_hash(TXID).is_ok());
        assert!(matches!(parse_btc_block_hash("00"), Err(PegParamError::BlockHash(_))));
        assert!(matches!(parse_account("x"), Err(PegParamError::Account(_))));
    }

    #[test]
    fn nothing_known_is_unknown() {
        let s = PegInStatus::new(deposit(0).outpoint, &facts());
        assert_eq!(
            (s.stage, s.recipient, s.confirmations, s.confirmations_required),
            (PegInStage::Unknown, None, None, 6)
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["stage"], "unknown");
        assert_eq!(v["outpoint"], format!("{TXID}:1"));
        assert!(v["amount_sat"].is_null() && v["credited_sat"].is_null());
        assert_eq!(serde_json::from_value::<PegInStatus>(v).unwrap(), s);
    }

    #[test]
    fn indexed_deposit_is_seen_with_its_confirmations() {
        let f = PegInFacts {
            indexed: Some(deposit(105)),
            btc_best_height: Some(107),
            registration_live: Some(true),
            ..facts()
        };
        let s = PegInStatus::new(deposit(105).outpoint, &f);
        assert_eq!((s.stage, s.confirmations, s.btc_height), (PegInStage::Seen, Some(3), Some(105)));
        assert_eq!((s.amount, s.recipient), (Some(Amount::from_sat(50_000)), Some(AccountId(Hash32([7; 32])))));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!((v["stage"].as_str(), v["amount_sat"].as_u64()), (Some("seen"), Some(50_000)));
    }

    #[test]
    fn claims_pending_and_rejected() {
        let pending = PegInFacts { claim_confirmed: Some(deposit(105)), indexed: Some(deposit(105)), ..facts() };
        let s = PegInStatus::new(deposit(105).outpoint, &pending);
        assert_eq!((s.stage, s.confirmations), (PegInStage::ClaimPending, None), "no best height: unknown depth");
        assert_eq!(serde_json::to_value(&s).unwrap()["stage"], "claim_pending");
        let rejected = PegInFacts { claim_rejected: Some("BTC block 00.. is unknown".into()), ..facts() };
        let s = PegInStatus::new(deposit(105).outpoint, &rejected);
        assert_eq!((s.stage, s.reason.as_deref()), (PegInStage::ClaimRejected, Some("BTC block 00.. is unknown")));
        // A wrong claim does not hide a deposit our index shows; the reason stays visible.
        let both = PegInFacts { indexed: Some(deposit(105)), ..rejected };
        let s = PegInStatus::new(deposit(105).outpoint, &both);
        assert_eq!((s.stage, s.reason.is_some()), (PegInStage::Seen, true));
    }

    #[test]
    fn the_ledger_record_wins() {
        let f = PegInFacts {
            record: Some(record(Amount::from_sat(49_000))),
            minted_time_ms: Some(1_700_000_000_000),
            indexed: Some(deposit(105)),
            claim_rejected: Some("stale".into()),
            btc_best_height: Some(110),
            ..facts()
        };
        let s = PegInStatus::new(deposit(105).outpoint, &f);
        assert_eq!(s.stage, PegInStage::Minted);
        assert_eq!(
            (s.minted_at, s.minted_time_ms, s.mint_txid),
            (Some(Height(12)), Some(1_700_000_000_000), Some(TxId(Hash32([9; 32]))))
        );
        assert_eq!((s.credited, s.fee), (Some(Amount::from_sat(49_000)), Some(Amount::from_sat(1_000))));
        assert_eq!((s.confirmations, s.reason), (Some(6), None));
        assert_eq!(s.btc_block_hash, Some(BlockHash::from_byte_array([3; 32])));
        let held = PegInFacts { record: Some(record(Amount::ZERO)), ..facts() };
        let s = PegInStatus::new(deposit(105).outpoint, &held);
        assert_eq!((s.stage, s.credited), (PegInStage::BelowMinimum, Some(Amount::ZERO)));
        assert_eq!(serde_json::to_value(&s).unwrap()["stage"], "below_minimum");
    }

    #[test]
    fn reserve_leaves_out_unbacked_genesis_supply() {
        let t =
            PegTotals { supply: Amount::from_sat(1_000 + 300), btc_held: Amount::from_sat(300), ..Default::default() };
        assert!(ChainPegInfo::new(&t, Amount::from_sat(1_000), false).reserve_ok);
        assert!(!ChainPegInfo::new(&t, Amount::from_sat(999), false).reserve_ok);
        let v = serde_json::to_value(ChainPegInfo::new(&t, Amount::from_sat(1_000), false)).unwrap();
        assert_eq!((v["btc_held_sat"].as_u64(), v["supply_sat"].as_u64()), (Some(300), Some(1_300)));
        assert_eq!(v["genesis_supply_sat"], 1_000);
    }
}
