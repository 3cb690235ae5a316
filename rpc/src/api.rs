//! The API as one `#[rpc]` trait: jsonrpsee generates the server trait (`SidechainApiServer`,
//! implemented in [`crate::handlers`]) and the typed client (`SidechainApiClient`, implemented for
//! every jsonrpsee client) from it, so the two can never disagree on a name, a parameter or a result.
//!
//! Method names are Bitcoin Core style (lowercase, no namespace) so operators' habits carry over.
//! Parameters are positional, as in Core. Every method is read-only except `sendrawtransaction` and
//! `claimpegin`. Peg-in methods take Bitcoin values as `bitcoin-cli` shows them (`txid:vout`, block hashes
//! in display order) and Elements' names where Elements has the method (`claimpegin`, `getpeginaddress`).

use crate::types::{
    AccountInfo, BitcoinViewInfo, BlockSummary, ChainInfo, ClaimPegInResult, CommitInfo, ConsensusStateInfo,
    EvidenceInfo, FederationInfo, GetBlockResult, HeaderRangeInfo, HistoryEntryInfo, MempoolInfo, NetworkInfo,
    PeerInfo, PegInAddressInfo, PegInStatus, PegOutInfo, ReserveProofInfo, SigningInfo, TransactionInfo, ValidatorInfo,
};
use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;
use primitives::{AccountId, BlockId, Height, TxId};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

/// A block named by height (a JSON number) or by hash (a 64-hex-digit JSON string).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockRef {
    /// By height.
    Height(Height),
    /// By hash.
    Hash(BlockId),
}

impl fmt::Display for BlockRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockRef::Height(h) => write!(f, "height {h}"),
            BlockRef::Hash(h) => write!(f, "hash {h}"),
        }
    }
}

/// Neither a block height nor a block hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a block height (a number) or a block hash (64 hex digits), got {0:?}")]
pub struct BadBlockRef(pub String);

impl std::str::FromStr for BlockRef {
    type Err = BadBlockRef;
    /// A decimal height or a 64-hex-digit hash (what the CLI accepts).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(h) = s.parse::<u64>() {
            return Ok(BlockRef::Height(Height(h)));
        }
        s.parse::<BlockId>().map(BlockRef::Hash).map_err(|_| BadBlockRef(s.to_owned()))
    }
}

impl Serialize for BlockRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BlockRef::Height(h) => s.serialize_u64(h.get()),
            BlockRef::Hash(h) => h.serialize(s),
        }
    }
}

/// What `Serialize` writes (and `Deserialize` reads): a height as a number or a hash as hex.
impl JsonSchema for BlockRef {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("BlockRef")
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "oneOf": [generator.subschema_for::<Height>(), generator.subschema_for::<BlockId>()],
            "description": "a block height (a number) or a block hash (64 hex digits)",
        })
    }
}

impl<'de> Deserialize<'de> for BlockRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Height(u64),
            Text(String),
        }
        let expected = "a block height (a non-negative integer) or a block hash (64 hex digits)";
        match Raw::deserialize(d).map_err(|_| serde::de::Error::custom(format!("expected {expected}")))? {
            Raw::Height(h) => Ok(BlockRef::Height(Height(h))),
            Raw::Text(t) => t
                .parse::<BlockId>()
                .map(BlockRef::Hash)
                .map_err(|_| serde::de::Error::custom(format!("expected {expected}, got {t:?}"))),
        }
    }
}

/// The sidechain JSON-RPC API.
///
/// Peg-in methods: `getfederationinfo`, `getpeginaddress`, `getpegstatus`, `claimpegin`. Peg-out methods:
/// `listpegouts`, `getpegoutstatus`; `getreserveproof` proves the reserves.
#[rpc(server, client)]
pub trait SidechainApi {
    /// Chain id, genesis hash, tip (height, hash, time, state root), BTC anchor, peg status, the reserve
    /// in short (`peg`: BTC held, supply, genesis supply, `reserve_ok`), minimum fee, and whether this node
    /// validates and is syncing.
    ///
    /// `peg.reserve_ok` is `supply - genesis_supply <= btc_held`: the genesis balances are left out because
    /// on test networks they are created from nothing (a real chain's genesis has none).
    #[method(name = "getblockchaininfo")]
    async fn get_blockchain_info(&self) -> RpcResult<ChainInfo>;

    /// Height of the newest committed block (0 when only the genesis exists).
    #[method(name = "getblockcount")]
    async fn get_block_count(&self) -> RpcResult<Height>;

    /// Hash of the committed block at `height` (1..=tip). -8 out of range.
    #[method(name = "getblockhash")]
    async fn get_block_hash(&self, height: Height) -> RpcResult<BlockId>;

    /// A block by height or hash with its commit certificate. `verbosity` 0: hex of the canonical
    /// borsh block; 1 (default): JSON with txids; 2: JSON with full transactions.
    /// -5 unknown hash, -8 height out of range or bad verbosity.
    #[method(name = "getblock")]
    async fn get_block(&self, block: BlockRef, verbosity: Option<u8>) -> RpcResult<GetBlockResult>;

    /// The commit certificate of the block at `height`. -8 out of range.
    #[method(name = "getcommit")]
    async fn get_commit(&self, height: Height) -> RpcResult<CommitInfo>;

    /// A transaction from the mempool or a committed block, with where it is. -5 unknown.
    #[method(name = "gettransaction")]
    async fn get_transaction(&self, txid: TxId) -> RpcResult<TransactionInfo>;

    /// Balance and nonce of an account at the tip; an unknown account has balance 0 and nonce 0. With
    /// `prove` true, the answer is read from the entry it carries in `proof` (height, state root, the
    /// `Account` entry and its Jellyfish Merkle proof), which a light client checks against the certified
    /// header at that height (`getheaders`).
    #[method(name = "getaccount")]
    async fn get_account(&self, account: AccountId, prove: Option<bool>) -> RpcResult<AccountInfo>;

    /// Headers from `from` on with their commit certificates, at most `count` (default and cap 1000), each
    /// header at a multiple of the chain's `federation_change_min_lead` and the last one also carrying the
    /// `Federation` state entry after it with its proof: what a light client needs to follow the chain and
    /// its validator-set changes from the genesis file. No headers when `from` is above the tip. -8 for
    /// `from` 0.
    #[method(name = "getheaders")]
    async fn get_headers(&self, from: Height, count: Option<u64>) -> RpcResult<HeaderRangeInfo>;

    /// What committed transactions did to `account`, newest first: `count` entries (default 100, at most
    /// 1000) after skipping the `skip` newest (default 0). Each entry: `height`, `index` (in the block),
    /// `txid`, `kind` and its fields: `sent` (`to`, `amount_sat`, `fee_sat`), `received` (`from`,
    /// `amount_sat`), `registered` (`fee_sat`), `burned` (`burn_id`, `amount_sat`, `fee_sat`,
    /// `btc_address`), `minted` (`btc_outpoint`, `amount_sat`) or `paid_out` (`burn_id`, `amount_sat`,
    /// `btc_txid`). -8 count above 1000; -1 when this node keeps no history (`[index] history = false`).
    /// With `prove` true, each entry also carries `proof`: its transaction (hex borsh `Tx`), the block's
    /// transaction count and the branch of sibling hashes to the block's transaction root, which a light
    /// client checks against the certified header.
    #[method(name = "listtransactions")]
    async fn list_transactions(
        &self,
        account: AccountId,
        count: Option<u64>,
        skip: Option<u64>,
        prove: Option<bool>,
    ) -> RpcResult<Vec<HistoryEntryInfo>>;

    /// Submits a signed transaction (hex of its canonical borsh bytes); returns its txid.
    /// -22 if it does not decode, -26 if the mempool rejects it (the reason is in the message; `data` is
    /// `"duplicate"`, `"registration_still_live"` or `"other"`, see [`crate::errors::TxRejectReason`]).
    #[method(name = "sendrawtransaction")]
    async fn send_raw_transaction(&self, hex: String) -> RpcResult<TxId>;

    /// Mempool size in transactions and bytes.
    #[method(name = "getmempoolinfo")]
    async fn get_mempool_info(&self) -> RpcResult<MempoolInfo>;

    /// Txids in the mempool.
    #[method(name = "getrawmempool")]
    async fn get_raw_mempool(&self) -> RpcResult<Vec<TxId>>;

    /// Connected peers.
    #[method(name = "getpeerinfo")]
    async fn get_peer_info(&self) -> RpcResult<Vec<PeerInfo>>;

    /// Our peer id, listen addresses and number of connections.
    #[method(name = "getnetworkinfo")]
    async fn get_network_info(&self) -> RpcResult<NetworkInfo>;

    /// The validator set: index, consensus key, peg key, power.
    #[method(name = "getvalidators")]
    async fn get_validators(&self) -> RpcResult<Vec<ValidatorInfo>>;

    /// Equivocation evidence: who signed two conflicting messages, where.
    #[method(name = "getevidence")]
    async fn get_evidence(&self) -> RpcResult<Vec<EvidenceInfo>>;

    /// The federation's Bitcoin wallet: descriptor, threshold, keys, script and address, peg-in rules
    /// (confirmations, minimum, `pegin_fee_sat`) and the peg totals at the tip (`peg_totals`).
    #[method(name = "getfederationinfo")]
    async fn get_federation_info(&self) -> RpcResult<FederationInfo>;

    /// The Bitcoin address whose deposits are minted to `account` (bound to it and to this chain).
    #[method(name = "getpeginaddress")]
    async fn get_pegin_address(&self, account: AccountId) -> RpcResult<PegInAddressInfo>;

    /// Where the deposit `outpoint` (`txid:vout`, as Bitcoin Core shows it) is on its way to the sidechain:
    /// `unknown`, `seen` (this node's bitcoind shows it above the anchor, with `confirmations` of
    /// `confirmations_required`), `claim_pending`, `claim_rejected` (with `reason`), `minted` (with the
    /// block, its time, the mint txid, `credited_sat` and `fee_sat`) or `below_minimum` (held, not minted).
    /// Only validators have a bitcoind: a full node shows `unknown` until the deposit is recorded.
    /// -8 when `outpoint` is not `txid:vout`.
    /// With `prove` true, `proof` carries the deposit's `PegIn` entry (or its absence), read after the
    /// answer.
    #[method(name = "getpegstatus")]
    async fn get_peg_status(&self, outpoint: String, prove: Option<bool>) -> RpcResult<PegInStatus>;

    /// Burns (peg-outs) at the tip, newest first: `count` (default 100, at most 1000) after skipping `skip`
    /// (default 0). Each entry: `burn_id`, `burn_txid`, `owner`, `btc_address` (on this node's Bitcoin
    /// network; null if the script is not an address), `amount_sat`, `fee_sat`, `burned_at`, `stage`
    /// (`queued`, `batched`, `signed` or `paid`), `batch` (`{id, btc_txid, signatures: "k/n", fee_sat,
    /// vbytes}` or null) and `paid_in` (`{btc_height, btc_block_hash}` or null). -8 count above 1000.
    #[method(name = "listpegouts")]
    async fn list_pegouts(&self, count: Option<u64>, skip: Option<u64>) -> RpcResult<Vec<PegOutInfo>>;

    /// The status of the burn made by the sidechain transaction `burn_txid` (64 hex digits), in the shape of
    /// one `listpegouts` entry. (`getpegstatus` takes Bitcoin outpoints, for peg-ins.) -8 when `burn_txid`
    /// is not 64 hex digits, -5 when no committed burn has that txid (a burn still in the mempool is not
    /// recorded yet).
    /// With `prove` true, `proof` carries the entries it rests on (`BurnByTx`, `Burn` and the `Batch` it is
    /// in), all at one height read after the answer.
    #[method(name = "getpegoutstatus")]
    async fn get_pegout_status(&self, burn_txid: String, prove: Option<bool>) -> RpcResult<PegOutInfo>;

    /// Claims the deposit `outpoint` (`txid:vout`) in BTC block `btc_block_hash` (as `bitcoin-cli` shows
    /// it) for `recipient`, the account its address was derived for: for deposits whose registration was
    /// missed or had expired. Anyone may claim (the mint can only go to that recipient); validators check the
    /// claim against their own bitcoinds and mint it once the anchor covers the block. Returns
    /// `{status: "submitted", ...}`. -8 malformed parameter, -27 already minted or already pending, -26
    /// refused (too many claims pending).
    #[method(name = "claimpegin")]
    async fn claim_pegin(
        &self,
        outpoint: String,
        recipient: String,
        btc_block_hash: String,
    ) -> RpcResult<ClaimPegInResult>;

    /// Operator (validators only): vote to resume the halted peg from the BTC block `btc_hash` at
    /// `btc_height` (as `bitcoin-cli` shows it; pick one with N confirmations on the chain to follow). The
    /// validator signs a `ResumePeg` in the next block it proposes; 2f+1 votes for one block resume the peg
    /// and the next block's anchor is that block. -8 malformed hash, -26 refused (not a validator, or the
    /// peg is not halted).
    #[method(name = "resumepeg")]
    async fn resume_peg(&self, btc_height: u32, btc_hash: String) -> RpcResult<String>;

    /// Operator: pause this validator's peg signing. Until `resumesigning` it releases no signature share
    /// for any federation transaction (payout batch, fee bump, sweep, refresh); consensus votes and blocks
    /// go on. Kept in the node's store, so a restart does not unpause it. Returns the signing status
    /// (`getblockchaininfo.signing`).
    #[method(name = "pausesigning")]
    async fn pause_signing(&self) -> RpcResult<SigningInfo>;

    /// Operator: resume this validator's peg signing after `pausesigning`: the shares it withheld go out at
    /// once. Returns the signing status.
    #[method(name = "resumesigning")]
    async fn resume_signing(&self) -> RpcResult<SigningInfo>;

    /// Operator (validators of the set in force only): this validator's approval of `proposal` (validators,
    /// peg threshold, activation height), signed with its consensus key. Collect 2f+1 of them and pass them
    /// to `submitfederationchange`. -26 refused (not a validator, or a set with duplicate keys, a
    /// threshold that breaks 2f+1, an emergency key among the peg keys).
    #[method(name = "approvefederationchange")]
    async fn approve_federation_change(&self, proposal: ledger::FederationProposal) -> RpcResult<ledger::Approval>;

    /// A federation change with the approvals of 2f+1 (by power) of the set in force: checked against the
    /// tip and relayed; the next block includes it and the new set takes over at its activation height.
    /// Returns its txid. -26 refused, with the reason (too few approvals, a change already pending, an
    /// activation height too soon, a bad set).
    #[method(name = "submitfederationchange")]
    async fn submit_federation_change(&self, change: ledger::ReconfigureTx) -> RpcResult<TxId>;

    /// The reserves at the tip with proofs: BTC held, supply, unpaid burns, the fee pool and every federation
    /// output, each a state entry with its Jellyfish Merkle proof against the tip's state root (final by its
    /// commit certificate). `ReserveProofInfo::verify` checks them without trusting this node.
    #[method(name = "getreserveproof")]
    async fn get_reserve_proof(&self) -> RpcResult<ReserveProofInfo>;

    /// Where consensus is at the height being decided: round, step, and the block this validator is
    /// locked on.
    #[method(name = "getconsensusstate")]
    async fn get_consensus_state(&self) -> RpcResult<ConsensusStateInfo>;

    /// What this node's own bitcoind shows: `bitcoind` (`none`, `unreachable` or `ok`), its best height, the
    /// anchor height and the lag between them, and the deposits it sees above the anchor that are not minted
    /// yet, each with its confirmations of `confirmations_required`. Local to this node (not consensus).
    #[method(name = "getbitcoinview")]
    async fn get_bitcoin_view(&self) -> RpcResult<BitcoinViewInfo>;

    /// WebSocket only: a [`BlockSummary`] for every block committed after subscribing.
    #[subscription(name = "subscribenewblocks", unsubscribe = "unsubscribenewblocks", item = BlockSummary)]
    async fn subscribe_new_blocks(&self) -> SubscriptionResult;
}
