//! The values the API exchanges: what the node's backend hands the server, and the JSON results.
//!
//! Why separate from the ledger types: JSON is read by people and by scripts in other languages, so it
//! uses explicit field names and units (`balance_sat`, plus `balance_btc` as a string where a person reads
//! it; times in `_ms`), while Rust code keeps `bitcoin::Amount` and the protocol newtypes. Raw protocol
//! bytes are always available too (`hex`: canonical borsh, see `docs/PROTOCOL.md`), so a client can check
//! signatures and hashes itself rather than trust this JSON.
//!
//! Bitcoin block hashes (the BTC anchor) are shown in Bitcoin's RPC display order (byte-reversed), as
//! `bitcoin-cli` shows them; sidechain hashes are shown in their natural byte order.
//!
//! Transactions live in `types/tx.rs`, the peg-in types (deposit status, claims, peg totals) in
//! `types/pegin.rs`, and so on for each concern; all are re-exported here.

use bitcoin::amount::serde::as_sat;
use bitcoin::Amount;
use consensus::{CommitCertificate, Equivocation};
use ledger::{Block, Genesis, Tx};
use primitives::schema;
use primitives::{
    canonical_bytes, AccountId, BlockId, BtcHeight, GenesisHash, Hash32, Height, PublicKey, Round, Signature,
    StateRoot, TxId, ValidatorIndex,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod pegin;
pub use self::pegin::*;
mod pegout;
pub use self::pegout::*;
mod reserve;
pub use self::reserve::*;
mod proof;
pub use self::proof::*;
mod bitcoin_view;
pub use self::bitcoin_view::*;
mod federation;
pub use self::federation::*;
mod signing;
pub use self::signing::*;
mod tx;
pub use self::tx::*;
mod history;
pub use self::history::*;

/// Satoshis per bitcoin.
const SAT_PER_BTC: u64 = 100_000_000;

/// An amount as a BTC decimal string with all 8 decimals, e.g. `"1.50000000"`: exact, never a float.
pub fn btc_string(amount: Amount) -> String {
    let sat = amount.to_sat();
    format!("{}.{:08}", sat / SAT_PER_BTC, sat % SAT_PER_BTC)
}

/// Whether the peg accepts peg-ins and peg-outs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PegStatus {
    /// Peg operations proceed.
    Active,
    /// f+1 validators reported a Bitcoin reorg deeper than N: no mints, no anchor moves, until 2f+1
    /// validators vote `resumepeg`. Transfers go on.
    Halted,
}

/// The Bitcoin block the sidechain has agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BtcAnchorInfo {
    /// Bitcoin height.
    pub height: BtcHeight,
    /// Bitcoin block hash in RPC display order (as `bitcoin-cli getblockhash` prints it).
    #[schemars(with = "schema::BtcHash")]
    pub hash: bitcoin::BlockHash,
}

impl From<ledger::BtcAnchor> for BtcAnchorInfo {
    fn from(a: ledger::BtcAnchor) -> Self {
        BtcAnchorInfo { height: a.height, hash: a.hash }
    }
}

/// Result of `getblockchaininfo`; the backend produces it whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChainInfo {
    /// The genesis chain id, e.g. `fedpeg-regtest-1`.
    pub chain_id: String,
    /// Hash of the genesis (every user signature covers it).
    pub genesis_hash: GenesisHash,
    /// Height of the newest committed block (0: only the genesis).
    pub height: Height,
    /// Hash of that block; the genesis hash at height 0.
    pub best_block_hash: BlockId,
    /// Its time, milliseconds since the Unix epoch (the genesis time at height 0).
    pub time_ms: u64,
    /// State root after that block.
    pub state_root: StateRoot,
    /// The Bitcoin anchor after that block.
    pub btc_anchor: BtcAnchorInfo,
    /// Peg status.
    pub peg_status: PegStatus,
    /// The reserve at the tip: BTC held, supply, and whether what the peg created is backed.
    pub peg: ChainPegInfo,
    /// The smallest fee a user transaction may pay (the genesis `min_fee`).
    #[serde(rename = "min_fee_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub min_fee: Amount,
    /// Whether this node is a validator.
    pub validator: bool,
    /// Whether the node is catching up with its peers (its height is behind theirs).
    pub syncing: bool,
    /// This validator's signing breakers: paused by its operator, or refusing batches (see `pausesigning`).
    pub signing: SigningInfo,
    /// Conditions an operator must look at (empty when all is well): the anchor lagging this node's
    /// bitcoind, a confirmed batch not settled, this node's proposals failing to build, peg-outs waiting on
    /// an operator.
    #[serde(default)]
    pub alerts: Vec<AlertInfo>,
}

/// Which alert (`getblockchaininfo.alerts[].kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The anchor trails this node's bitcoind by more than the confirmations plus a bound, for a while.
    AnchorLag,
    /// A batch this node's bitcoind shows confirmed, deep enough to settle, is still in flight.
    ConfirmedBatchInFlight,
    /// This node's last proposals failed to build.
    ProposalsFailing,
    /// The head of the peg-out queue has waited on an operator (fee pool short, batch refused) for a while.
    PegoutStuck,
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertInfo {
    /// Which.
    pub kind: AlertKind,
    /// What is wrong, with its figures, and what to look at.
    pub description: String,
}

/// Where this node's consensus is at the height being decided (`getconsensusstate`): what an operator
/// looks at when a height takes long, and what the crash tests read to see a validator kept its lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConsensusStateInfo {
    /// The height being decided (tip + 1).
    pub height: Height,
    /// Its current round.
    pub round: u32,
    /// `unstarted`, `propose`, `prevote`, `precommit` or `commit`.
    pub step: String,
    /// The round of the polka this validator is locked on (null: not locked).
    pub locked_round: Option<u32>,
    /// The block it is locked on (null: not locked).
    pub locked_block: Option<BlockId>,
    /// This node's validator index (null: a full node).
    pub validator_index: Option<u16>,
}

/// A committed block with the certificate that made it final (what the backend stores per height).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    /// The block.
    pub block: Block,
    /// 2f+1 precommits for its hash.
    pub commit: CommitCertificate,
}

/// One precommit signature of a commit certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommitSignature {
    /// Index of the signer in the validator set.
    pub validator: ValidatorIndex,
    /// Its ed25519 signature over the precommit.
    pub signature: Signature,
}

/// Result of `getcommit`, and the `commit` of `getblock`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommitInfo {
    /// Height of the decided block.
    pub height: Height,
    /// Round it was decided in.
    pub round: Round,
    /// Hash of the decided block.
    pub block_hash: BlockId,
    /// The precommit signatures.
    pub signatures: Vec<CommitSignature>,
    /// Canonical borsh bytes of the certificate, for verification without this JSON.
    pub hex: String,
}

impl From<&CommitCertificate> for CommitInfo {
    fn from(c: &CommitCertificate) -> Self {
        CommitInfo {
            height: c.height,
            round: c.round,
            block_hash: c.value,
            signatures: c
                .signatures
                .iter()
                .map(|(validator, signature)| CommitSignature { validator: *validator, signature: *signature })
                .collect(),
            hex: hex::encode(canonical_bytes(c)),
        }
    }
}

/// The transactions of a block: ids (verbosity 1) or full (verbosity 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum BlockTxs {
    /// Transaction ids in block order.
    Ids(Vec<TxId>),
    /// Full transactions in block order.
    Full(Vec<TxInfo>),
}

/// A block in JSON (`getblock` verbosity 1 and 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlockInfo {
    /// Block hash.
    pub hash: BlockId,
    /// Height.
    pub height: Height,
    /// Blocks on top of it, itself included (1 for the tip), as in Bitcoin Core.
    pub confirmations: u64,
    /// Genesis hash of its chain.
    pub genesis_hash: GenesisHash,
    /// Previous block hash (the genesis hash at height 1).
    pub prev_hash: BlockId,
    /// Proposer's time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Index of the proposer.
    pub proposer: ValidatorIndex,
    /// Bitcoin anchor after this block.
    pub btc_anchor: BtcAnchorInfo,
    /// Merkle root of the txids.
    pub tx_root: Hash32,
    /// State root after this block.
    pub state_root: StateRoot,
    /// Hash of the previous block's commit certificate.
    pub last_commit_hash: Hash32,
    /// Encoded size of the block in bytes.
    pub size: usize,
    /// Number of transactions.
    pub tx_count: usize,
    /// The transactions.
    pub tx: BlockTxs,
    /// The certificate that made this block final.
    pub commit: CommitInfo,
}

impl BlockInfo {
    /// The JSON view of a stored block; `full` selects verbosity 2; `tip` is the current height.
    pub fn new(stored: &StoredBlock, full: bool, tip: Height) -> Self {
        let b = &stored.block;
        let h = &b.header;
        let tx = if full {
            BlockTxs::Full(b.txs.iter().map(TxInfo::from).collect())
        } else {
            BlockTxs::Ids(b.txs.iter().map(Tx::txid).collect())
        };
        BlockInfo {
            hash: b.hash(),
            height: h.height,
            confirmations: tip.get().saturating_sub(h.height.get()).saturating_add(1),
            genesis_hash: h.genesis_hash,
            prev_hash: h.prev_hash,
            time_ms: h.time_ms,
            proposer: h.proposer,
            btc_anchor: h.btc_anchor.into(),
            tx_root: h.tx_root,
            state_root: h.state_root,
            last_commit_hash: h.last_commit_hash,
            size: canonical_bytes(b).len(),
            tx_count: b.txs.len(),
            tx,
            commit: CommitInfo::from(&stored.commit),
        }
    }
}

/// Result of `getblock`: hex at verbosity 0, JSON at 1 and 2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum GetBlockResult {
    /// Canonical borsh bytes of the block (verbosity 0).
    Hex(String),
    /// The block as JSON (verbosity 1 and 2).
    Json(Box<BlockInfo>),
}

/// Where a transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxLocation {
    /// Waiting in this node's mempool.
    Mempool,
    /// In a committed block.
    Block {
        /// Height of the block.
        height: Height,
        /// Its hash.
        block_hash: BlockId,
        /// Position in the block.
        index: u32,
    },
}

/// A transaction the backend found, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxLookup {
    /// The transaction.
    pub tx: Tx,
    /// Where it is.
    pub location: TxLocation,
}

/// Whether a transaction is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TxStatus {
    /// In the mempool, not yet in a block.
    Mempool,
    /// In a committed (final) block.
    Committed,
}

/// Result of `gettransaction`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TransactionInfo {
    /// Mempool or committed.
    pub status: TxStatus,
    /// Height of its block (committed only).
    pub height: Option<Height>,
    /// Hash of its block (committed only).
    pub block_hash: Option<BlockId>,
    /// Position in its block (committed only).
    pub index: Option<u32>,
    /// Blocks on top of its block, its own included; 0 in the mempool.
    pub confirmations: u64,
    /// The transaction.
    pub tx: TxInfo,
}

/// Result of `getaccount`. An account that never received anything has balance 0 and nonce 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountInfo {
    /// The account id.
    pub account: AccountId,
    /// Spendable balance.
    #[serde(rename = "balance_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub balance: Amount,
    /// The same balance in BTC, for people (e.g. `"1.50000000"`).
    pub balance_btc: String,
    /// The nonce its next transaction must carry (committed state; pending mempool transactions are
    /// not counted).
    pub nonce: u64,
    /// The state entries this answer rests on, with their proofs (null unless asked with `prove = true`).
    #[serde(default)]
    pub proof: Option<StateProofInfo>,
}

impl AccountInfo {
    /// The view of an account; `None` (never seen) is zero balance, nonce 0.
    pub fn new(account: AccountId, state: Option<ledger::Account>) -> Self {
        let a = state.unwrap_or_default();
        AccountInfo { account, balance: a.balance, balance_btc: btc_string(a.balance), nonce: a.nonce, proof: None }
    }
}

/// Result of `getmempoolinfo`; the backend produces it whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MempoolInfo {
    /// Number of transactions.
    pub size: usize,
    /// Their encoded size in bytes.
    pub bytes: u64,
    /// The mempool's byte limit.
    pub max_bytes: u64,
}

/// One connected peer (`getpeerinfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PeerInfo {
    /// libp2p peer id.
    pub peer_id: String,
    /// Remote multiaddr.
    pub addr: String,
    /// Its validator index, if it identified as a validator.
    pub validator_index: Option<ValidatorIndex>,
    /// The height it last reported.
    pub height: Option<Height>,
    /// The node's score of the peer: 0 is clean, negative after misbehaviour (banned far enough down).
    pub score: i64,
}

/// Result of `getnetworkinfo`; the backend produces it whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NetworkInfo {
    /// Software version, e.g. `sidechaind/0.1.0`.
    pub version: String,
    /// Our libp2p peer id.
    pub peer_id: String,
    /// Multiaddrs we listen on.
    pub listen_addrs: Vec<String>,
    /// Number of connected peers.
    pub connections: usize,
}

/// The federation's Bitcoin wallet (`getfederationinfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FederationInfo {
    /// The descriptor of the wallet in force, `wsh(sortedmulti(k, K_1..K_n))` over the validators' peg keys
    /// (`wsh(or_d(multi(..),and_v(v:multi(..),older(D))))` with emergency keys).
    pub descriptor: String,
    /// Signatures needed to spend (2f+1).
    pub threshold: u32,
    /// Peg keys in the multisig.
    pub keys: u32,
    /// Its output script (hex). Deposits go to recipient-bound addresses instead (`getpeginaddress`).
    pub script_pubkey: String,
    /// Its address on `network`.
    pub address: String,
    /// The Bitcoin network this node shows addresses for.
    pub network: String,
    /// Confirmations a deposit needs before it is minted.
    pub pegin_confirmations: u32,
    /// Smallest deposit that is minted (smaller ones are recorded, not minted).
    #[serde(rename = "pegin_min_amount_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub pegin_min_amount: Amount,
    /// The peg-in fee taken from every minted deposit now (to the fee pool): the cost of spending one
    /// deposit input later, at the agreed fee rate.
    #[serde(rename = "pegin_fee_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub pegin_fee: Amount,
    /// The agreed Bitcoin fee rate (sat/vB): batches and bumps are priced on it, and a burn pays at least
    /// `min_fee` plus, at twice it, the lone batch paying it (`pegout_batch_share_vbytes` plus its payout
    /// output's vbytes: `ledger::pegout::pegout_fee`).
    #[serde(default)]
    pub pegout_fee_rate_sat_vb: u64,
    /// The vbytes of a lone burn's batch besides its payout output (the fixed part, one input of the wallet
    /// in force, the change): what a burn's fee pays for along with its own output.
    #[serde(default)]
    pub pegout_batch_share_vbytes: u64,
    /// Each validator's latest fee-rate vote.
    #[serde(default)]
    pub fee_rate_votes: Vec<FeeRateVoteInfo>,
    /// The peg totals at the tip.
    pub peg_totals: PegTotalsInfo,
    /// The rolling peg-out limit and what the window used (null when the genesis turns it off).
    #[serde(default)]
    pub pegout_limit: Option<PegOutLimitInfo>,
    /// The set in force, a pending change, earlier wallets still holding coins and the sweep moving them,
    /// the emergency path.
    #[serde(flatten, default)]
    pub changes: FederationView,
}

/// One validator's fee-rate vote (`getfederationinfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FeeRateVoteInfo {
    /// The validator.
    pub validator: u16,
    /// Its rate, sat/vB.
    pub sat_per_vb: u64,
    /// The block that carried it.
    pub height: Height,
}

impl FeeRateVoteInfo {
    /// The votes of a fee-rate record.
    pub fn from_rates(rates: &ledger::fee_rate::FeeRates) -> Vec<Self> {
        rates
            .votes
            .iter()
            .map(|(v, sat_per_vb, height)| FeeRateVoteInfo { validator: v.0, sat_per_vb: *sat_per_vb, height: *height })
            .collect()
    }
}

/// A deposit address bound to one recipient (`getpeginaddress`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PegInAddressInfo {
    /// The sidechain account the deposit is minted to.
    pub recipient: AccountId,
    /// Where to send BTC: every federation key tweaked by `tagged_hash(genesis, key, recipient)`.
    pub address: String,
    /// Its output script (hex).
    pub script_pubkey: String,
    /// Its descriptor (tweaked keys), so a wallet can check the address itself.
    pub descriptor: String,
    /// The Bitcoin network of `address`.
    pub network: String,
    /// Confirmations needed before the mint.
    pub confirmations_required: u32,
    /// Smallest deposit that is minted.
    #[serde(rename = "min_amount_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub min_amount: Amount,
    /// What registering the address (`RegisterDeposit`) costs at least; without a registration a deposit
    /// is minted through a claim (`claimpegin`).
    #[serde(rename = "registration_fee_sat", with = "as_sat", default)]
    #[schemars(with = "schema::Sat")]
    pub registration_fee: Amount,
}

/// One validator (`getvalidators`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ValidatorInfo {
    /// Its index (position in the genesis list).
    pub index: ValidatorIndex,
    /// ed25519 consensus key.
    pub consensus_key: PublicKey,
    /// Compressed secp256k1 key in the federation multisig.
    #[schemars(with = "schema::BtcPublicKey")]
    pub peg_key: bitcoin::PublicKey,
    /// Voting power.
    pub power: u64,
    /// Where peers reach it.
    pub p2p_addr: String,
}

impl ValidatorInfo {
    /// The validators of a genesis (epoch 0).
    pub fn from_genesis(genesis: &Genesis) -> Vec<ValidatorInfo> {
        Self::list(&genesis.validators)
    }

    /// A validator list (the genesis set or any epoch's), indexed by position.
    pub fn list(validators: &[ledger::GenesisValidator]) -> Vec<ValidatorInfo> {
        validators
            .iter()
            .enumerate()
            .map(|(i, v)| ValidatorInfo {
                index: ValidatorIndex(u16::try_from(i).unwrap_or(u16::MAX)),
                consensus_key: v.consensus_key,
                peg_key: v.peg_key,
                power: v.power,
                p2p_addr: v.p2p_addr.clone(),
            })
            .collect()
    }
}

/// Which messages were doubled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EquivocationKind {
    /// Two votes of one kind in one round.
    Votes,
    /// Two proposals in one round.
    Proposals,
}

/// Equivocation evidence (`getevidence`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EvidenceInfo {
    /// The validator that signed twice.
    pub offender: ValidatorIndex,
    /// Height of the two messages.
    pub height: Height,
    /// Round of the two messages.
    pub round: Round,
    /// Votes or proposals.
    pub kind: EquivocationKind,
    /// Canonical borsh bytes of the evidence, verifiable alone against the validator set.
    pub hex: String,
}

impl From<&Equivocation> for EvidenceInfo {
    fn from(e: &Equivocation) -> Self {
        let kind = match e {
            Equivocation::Votes(..) => EquivocationKind::Votes,
            Equivocation::Proposals(..) => EquivocationKind::Proposals,
        };
        EvidenceInfo {
            offender: e.offender(),
            height: e.height(),
            round: e.round(),
            kind,
            hex: hex::encode(canonical_bytes(e)),
        }
    }
}

/// What `subscribenewblocks` pushes for each committed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlockSummary {
    /// Height.
    pub height: Height,
    /// Block hash.
    pub hash: BlockId,
    /// Number of transactions.
    pub txs: usize,
    /// Block time, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl From<&Block> for BlockSummary {
    fn from(b: &Block) -> Self {
        BlockSummary { height: b.header.height, hash: b.hash(), txs: b.txs.len(), time_ms: b.header.time_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash as _;

    #[test]
    fn btc_string_is_exact() {
        assert_eq!(btc_string(Amount::from_sat(150_000_000)), "1.50000000");
        assert_eq!(btc_string(Amount::from_sat(1)), "0.00000001");
        assert_eq!(btc_string(Amount::ZERO), "0.00000000");
    }

    #[test]
    fn amounts_are_sats_with_explicit_names() {
        let a = AccountInfo::new(AccountId(Hash32([1; 32])), None);
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["balance_sat"], 0);
        assert_eq!(v["balance_btc"], "0.00000000");
        assert_eq!(v["nonce"], 0);
    }

    #[test]
    fn anchor_hash_is_in_bitcoin_display_order() {
        let mut raw = [0u8; 32];
        raw[0] = 0xab;
        let a = BtcAnchorInfo::from(ledger::BtcAnchor {
            height: BtcHeight(7),
            hash: bitcoin::BlockHash::from_byte_array(raw),
        });
        let s = serde_json::to_value(a).unwrap()["hash"].as_str().unwrap().to_string();
        assert!(s.ends_with("ab"), "{s}");
    }
}
