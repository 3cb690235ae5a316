//! User transactions, their signatures, ids and the transaction root of a block.
//!
//! Invariant owned here: the bytes a user signs and the bytes a txid hashes are a fixed function of the
//! transaction (borsh, see `docs/PROTOCOL.md`), and enum tags are stable forever. New kinds of
//! transactions are appended as new variants; existing tags are never renumbered or reused.

use crate::codec;
use bitcoin::Amount;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{
    canonical_bytes, signing_bytes, tagged_hash, AccountId, GenesisHash, Hash32, Height, Keypair, PublicKey, Round,
    SignDomain, Signature, SignatureError, TxId, ValidatorIndex,
};
use serde::{Deserialize, Serialize};

/// Tag of [`txid`](SignedUserTx::txid).
pub const TXID_TAG: &str = "sidechain/txid";
/// Tag of an inner node of the transaction merkle tree.
pub const TX_NODE_TAG: &str = "sidechain/tx-node";
/// Tag of the transaction root of a block without transactions.
pub const TX_ROOT_EMPTY_TAG: &str = "sidechain/tx-root-empty";

/// A transaction signed by the owner of an account.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct UserTx {
    /// The key that signs; the sender is `signer.account_id()`.
    pub signer: PublicKey,
    /// Must equal the sender's account nonce; incremented by one when the transaction is applied.
    pub nonce: u64,
    /// Paid to the fee pool; at least `Params::min_fee`.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub fee: Amount,
    /// What the transaction does.
    pub kind: UserTxKind,
}

/// The kinds of user transaction. The borsh tag is the position below and is part of every signature.
///
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum UserTxKind {
    /// Tag 0: move `amount` from the signer's account to `to`.
    Transfer {
        /// Recipient; created on first credit.
        to: AccountId,
        /// Strictly positive.
        #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
        amount: Amount,
    },
    /// Tag 1: asks every validator to watch the signer's deposit address (the federation keys tweaked by
    /// the genesis hash and the signer's account, see `peg::deposit`), so BTC paid there is minted to the
    /// signer when the anchor covers it. Its fee is at least `Params::registration_fee`; live for
    /// `Params::registration_ttl` blocks, renewed by every mint to it. One address per account, so one registration per account.
    RegisterDeposit,
    /// Tag 2: burns `amount + fee` and queues a Bitcoin payment of exactly `amount` to `btc_script_pubkey`
    /// (a standard output script; the fee covers the payout output at twice the agreed rate plus
    /// `min_fee`). Refused while `Params::pegout_enabled` is false.
    PegOut {
        /// The output script to pay (from the user's BTC address).
        btc_script_pubkey: Vec<u8>,
        /// What the payout pays.
        #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
        amount: Amount,
    },
}

/// A user transaction with the signer's ed25519 signature over
/// `signing_bytes(SignDomain::UserTx, genesis_hash, canonical_bytes(tx))`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedUserTx {
    /// The signed transaction.
    pub tx: UserTx,
    /// Signature by `tx.signer`.
    pub signature: Signature,
}

/// A transaction as it appears in a block. The borsh tag is the position below.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum Tx {
    /// Tag 0: a user transaction.
    User(SignedUserTx) = 0,
    /// Tag 1: a transaction signed by one validator's consensus key.
    Validator(SignedValidatorTx) = 1,
    /// Tag 2: proof that a validator signed two conflicting consensus messages, recorded in state once.
    Evidence(EvidenceTx) = 2,
    /// Tag 3: a BTC deposit to the federation, minted to its recipient (a proposer-asserted BTC fact).
    Mint(MintTx) = 3,
    /// Tag 4: a peg-out batch confirmed on Bitcoin at or below the anchor (a proposer-asserted BTC fact).
    Settle(SettleTx) = 4,
    /// Tag 5: a federation change approved by 2f+1 of the set in force.
    Reconfigure(crate::reconfigure::ReconfigureTx) = 5,
    /// Tag 6: one peg key holder's signatures for a batch (its ECDSA signatures are its authority).
    PegShare(PegShareTx) = 6,
    /// Tag 7: one signer's FROST commitments or shares for a taproot batch's key path (signed by its peg key).
    Frost(crate::frost_tx::FrostTx) = 7,
}

/// Tag of a signature share's id.
pub const PEG_SHARE_TXID_TAG: &str = "sidechain/peg-share-txid";

/// Signer `signer` of batch `batch`'s wallet epoch signs version `txid`: one DER ECDSA signature with the
/// SIGHASH_ALL byte per input, by its peg key (tweaked for deposit inputs). Every node verifies each one
/// against that exact version before recording it, so the transaction needs no other signature: any node
/// relays it and any proposer includes it. That is what lets validators who left the federation still
/// sign the sweep of the wallet they hold keys of.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PegShareTx {
    /// The batch.
    pub batch: u64,
    /// The version signed (the unsigned transaction's txid).
    #[borsh(
        serialize_with = "crate::codec::btc_hash::serialize",
        deserialize_with = "crate::codec::btc_hash::deserialize"
    )]
    #[serde(with = "crate::codec::btc_hash_json")]
    pub txid: bitcoin::Txid,
    /// The signer's position in the validator list of the batch's wallet epoch.
    pub signer: ValidatorIndex,
    /// One per input, in input order.
    pub signatures: Vec<Vec<u8>>,
}

impl PegShareTx {
    /// `tagged_hash("sidechain/peg-share-txid", borsh(share))`.
    pub fn txid(&self) -> TxId {
        TxId(tagged_hash(PEG_SHARE_TXID_TAG, &[&canonical_bytes(self)]))
    }
}

/// "Batch `batch`, version `txid`, is in BTC block `btc_block`": checked by every validator against its own
/// bitcoind like a mint. A block that moves the anchor over that BTC block must carry it. Execution then
/// settles the batch: its burns are paid, its inputs leave the federation's holdings and its change joins
/// them.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SettleTx {
    /// The batch.
    pub batch: u64,
    /// The version that confirmed (its txid).
    #[borsh(
        serialize_with = "crate::codec::btc_hash::serialize",
        deserialize_with = "crate::codec::btc_hash::deserialize"
    )]
    #[serde(with = "crate::codec::btc_hash_json")]
    pub txid: bitcoin::Txid,
    /// The BTC block holding it.
    pub btc_block: crate::btc_anchor::BtcAnchor,
}

impl SettleTx {
    /// `tagged_hash("sidechain/txid", borsh(settle))`.
    pub fn txid(&self) -> TxId {
        TxId(tagged_hash(TXID_TAG, &[&canonical_bytes(self)]))
    }
}

/// Tag of a validator transaction's id.
pub const VALIDATOR_TXID_TAG: &str = "sidechain/validator-txid";

/// A transaction by one validator, signed with its consensus key in `SignDomain::ValidatorTx`. It is valid
/// only in the block at `height`, so it can never be replayed: a validator puts its own into the blocks it
/// proposes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ValidatorTx {
    /// The signer.
    pub validator: ValidatorIndex,
    /// The only block height it may appear at.
    pub height: Height,
    /// What it says.
    pub kind: ValidatorTxKind,
}

/// What a validator says. The borsh tag is the position below; future kinds are appended.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum ValidatorTxKind {
    /// Tag 0: "my bitcoind no longer has `anchor` (the anchor in force), or the block early peg items
    /// named above it (the peg cursor), in its best chain": a reorg deeper than N. With f+1 reports for
    /// the anchor in force, peg operations halt.
    ReportReorg {
        /// The anchor in force when reporting.
        anchor: crate::btc_anchor::BtcAnchor,
    },
    /// Tag 1: "resume the peg from `anchor`". With 2f+1 of them for one anchor while halted, the peg resumes
    /// and the next block's anchor is `anchor` (which may be on another branch than the old one).
    ResumePeg {
        /// The anchor to resume from.
        anchor: crate::btc_anchor::BtcAnchor,
    },
    /// Tag 2: "my bitcoind says Bitcoin fees are `sat_per_vb` now" (its estimate, or its mempool's floor,
    /// or the operator's floor, whichever is highest). State keeps each validator's latest vote; the agreed
    /// rate follows the median of fresh votes (see `fee_rate`).
    FeeRateVote {
        /// The rate, in sat/vB (1 to `fee_rate::MAX_FEE_RATE`).
        sat_per_vb: u64,
    },
}

/// A validator transaction with its signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedValidatorTx {
    /// The transaction.
    pub tx: ValidatorTx,
    /// By the consensus key of `tx.validator`.
    pub signature: Signature,
}

impl ValidatorTx {
    /// The exact bytes the signature covers.
    pub fn signing_bytes(&self, genesis_hash: &GenesisHash) -> Vec<u8> {
        signing_bytes(SignDomain::ValidatorTx, genesis_hash, &canonical_bytes(self))
    }

    /// Signs with `key` (the caller makes sure it is `validator`'s consensus key).
    pub fn sign(self, key: &Keypair, genesis_hash: &GenesisHash) -> SignedValidatorTx {
        let signature = key.sign(SignDomain::ValidatorTx, genesis_hash, &canonical_bytes(&self));
        SignedValidatorTx { tx: self, signature }
    }
}

impl SignedValidatorTx {
    /// `tagged_hash("sidechain/validator-txid", borsh(signed))`.
    pub fn txid(&self) -> TxId {
        TxId(tagged_hash(VALIDATOR_TXID_TAG, &[&canonical_bytes(self)]))
    }
}

/// A Bitcoin outpoint as the ledger keeps it: txid in internal byte order (as in transactions, not the
/// reversed RPC display) and output index.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct BtcOutPoint {
    /// The transaction id (internal byte order in borsh and the ledger's JSON; the RPC shows display order).
    #[borsh(
        serialize_with = "crate::codec::btc_hash::serialize",
        deserialize_with = "crate::codec::btc_hash::deserialize"
    )]
    #[serde(with = "crate::codec::btc_hash_json")]
    pub txid: bitcoin::Txid,
    /// The output index.
    pub vout: u32,
}

impl BtcOutPoint {
    /// As rust-bitcoin's outpoint.
    pub fn to_bitcoin(&self) -> bitcoin::OutPoint {
        bitcoin::OutPoint { txid: self.txid, vout: self.vout }
    }

    /// From rust-bitcoin's outpoint.
    pub fn from_bitcoin(o: &bitcoin::OutPoint) -> Self {
        BtcOutPoint { txid: o.txid, vout: o.vout }
    }
}

/// A deposit to the federation, asserted by the proposer and checked by every validator against its own
/// bitcoind before it prevotes (external validity: the output exists in `btc_block`, pays the deposit
/// script of `recipient`, holds `amount`, and `btc_block` is in the anchored chain). Execution checks what
/// needs no bitcoind: the outpoint was never minted, and `btc_block` is at or below the new anchor.
///
/// A block that advances the anchor must carry one for every deposit to a live registration in the BTC
/// blocks it covers, and for every output to the plain federation script ([`MintKind::Federation`], credited
/// to the fee pool), among those execution accepts ([`crate::anchor_move::plan_peg_txs`] decides both); deposits
/// outside that rule (missed or expired registrations) come in through `claimpegin` and are checked the
/// same way.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct MintTx {
    /// The deposit output.
    pub outpoint: BtcOutPoint,
    /// The account its script is bound to.
    pub recipient: AccountId,
    /// The output's value.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub amount: Amount,
    /// The BTC block holding it.
    pub btc_block: crate::btc_anchor::BtcAnchor,
    /// The federation epoch whose wallet the deposit pays (its deposit address for `recipient`).
    pub epoch: u32,
    /// Which script the output pays: the deposit script bound to `recipient`, or the plain federation
    /// script. Recorded with the output, so every later spend signs with the right (tweaked or plain) keys.
    pub kind: MintKind,
    /// Paid by a coinbase transaction: the federation spends it only once it is 100 BTC blocks deep.
    pub coinbase: bool,
}

/// The script a minted output pays, which decides the keys that spend it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum MintKind {
    /// The deposit script bound to the mint's recipient (keys tweaked by the recipient).
    Deposit,
    /// The plain, untweaked federation script; the recipient must be the fee pool.
    Federation,
}

impl MintTx {
    /// `tagged_hash("sidechain/txid", borsh(mint))`.
    pub fn txid(&self) -> TxId {
        TxId(tagged_hash(TXID_TAG, &[&canonical_bytes(self)]))
    }
}

/// Equivocation evidence as a block carries it.
///
/// The ledger does not depend on the consensus crate, so `proof` (the borsh bytes of
/// `consensus::Equivocation`: two signed votes or proposals) is opaque here: the node verifies it against
/// the validator set, and that it names this offender, height and round, before executing the block
/// (every node, validator or not, runs that check). Execution records it under
/// `StateKey::Evidence { offender, height, round }`, at most once.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EvidenceTx {
    /// The validator that signed twice.
    pub offender: ValidatorIndex,
    /// Height of the two messages.
    pub height: Height,
    /// Round of the two messages.
    pub round: Round,
    /// borsh(`consensus::Equivocation`).
    pub proof: Vec<u8>,
}

/// What state keeps of recorded evidence.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// The validator that signed twice.
    pub offender: ValidatorIndex,
    /// Height of the two messages.
    pub height: Height,
    /// Round of the two messages.
    pub round: Round,
    /// The block that recorded it.
    pub included_at: Height,
    /// `tagged_hash("sidechain/txid", borsh(EvidenceTx))`: the evidence transaction, kept in that block.
    pub txid: TxId,
}

impl EvidenceTx {
    /// `tagged_hash("sidechain/txid", borsh(evidence))`.
    pub fn txid(&self) -> TxId {
        TxId(tagged_hash(TXID_TAG, &[&canonical_bytes(self)]))
    }
}

impl UserTx {
    /// The account that pays: the hash of the signer's key.
    pub fn sender(&self) -> AccountId {
        self.signer.account_id()
    }

    /// The exact bytes the signature covers.
    pub fn signing_bytes(&self, genesis_hash: &GenesisHash) -> Vec<u8> {
        signing_bytes(SignDomain::UserTx, genesis_hash, &canonical_bytes(self))
    }

    /// Signs with `key`. The caller makes sure `key.public() == self.signer`.
    pub fn sign(self, key: &Keypair, genesis_hash: &GenesisHash) -> SignedUserTx {
        let signature = key.sign(SignDomain::UserTx, genesis_hash, &canonical_bytes(&self));
        SignedUserTx { tx: self, signature }
    }
}

impl SignedUserTx {
    /// `tagged_hash("sidechain/txid", canonical_bytes(signed_tx))`.
    pub fn txid(&self) -> TxId {
        TxId(tagged_hash(TXID_TAG, &[&canonical_bytes(self)]))
    }

    /// Checks the signature alone (strict ed25519), nothing about state.
    pub fn verify_signature(&self, genesis_hash: &GenesisHash) -> Result<(), SignatureError> {
        self.tx.signer.verify(SignDomain::UserTx, genesis_hash, &canonical_bytes(&self.tx), &self.signature)
    }
}

impl Tx {
    /// The transaction id (for a user transaction, the id of the signed transaction).
    pub fn txid(&self) -> TxId {
        match self {
            Tx::User(t) => t.txid(),
            Tx::Evidence(e) => e.txid(),
            Tx::Mint(m) => m.txid(),
            Tx::Validator(v) => v.txid(),
            Tx::Settle(s) => s.txid(),
            Tx::Reconfigure(r) => r.txid(),
            Tx::PegShare(p) => p.txid(),
            Tx::Frost(f) => f.txid(),
        }
    }

    /// The number of bytes this transaction takes in a block.
    pub fn encoded_len(&self) -> usize {
        canonical_bytes(self).len()
    }
}

impl From<SignedValidatorTx> for Tx {
    fn from(t: SignedValidatorTx) -> Self {
        Tx::Validator(t)
    }
}

impl From<SignedUserTx> for Tx {
    fn from(t: SignedUserTx) -> Self {
        Tx::User(t)
    }
}

/// Merkle root over the txids of a block, in block order.
///
/// Leaves are the txids themselves. Each level pairs neighbours: `tagged_hash("sidechain/tx-node",
/// left || right)`; an odd last node is promoted to the next level unchanged (never duplicated, so two
/// different lists cannot share a root as in CVE-2012-2459). One transaction: the root is its txid. No
/// transactions: `tagged_hash("sidechain/tx-root-empty", [])`.
pub fn tx_root(txids: &[TxId]) -> Hash32 {
    if txids.is_empty() {
        return tagged_hash(TX_ROOT_EMPTY_TAG, &[]);
    }
    let mut level: Vec<Hash32> = txids.iter().map(|t| t.0).collect();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// One level up the transaction tree: neighbours paired, an odd last node promoted.
fn next_level(level: &[Hash32]) -> Vec<Hash32> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => tagged_hash(TX_NODE_TAG, &[l.as_bytes(), r.as_bytes()]),
            // The odd last node (chunks(2) never yields an empty chunk).
            promoted => promoted[0],
        })
        .collect()
}

/// The sibling hashes leading from transaction `index` of `txids` to their [`tx_root`], bottom up: none at
/// a level where the node is the odd last one (it is promoted as is). Empty for an index out of range.
pub fn tx_branch(txids: &[TxId], index: usize) -> Vec<Hash32> {
    let mut branch = Vec::new();
    if index >= txids.len() {
        return branch;
    }
    let mut level: Vec<Hash32> = txids.iter().map(|t| t.0).collect();
    let mut at = index;
    while level.len() > 1 {
        let sibling = at ^ 1;
        if sibling < level.len() {
            branch.push(level[sibling]);
        }
        level = next_level(&level);
        at /= 2;
    }
    branch
}

/// The root that transaction `txid`, at `index` of `count` in a block, leads to along `branch` (as
/// [`tx_branch`] makes it); `None` when the branch does not fit that position (an index out of range, or
/// too few or too many hashes).
pub fn tx_root_from_branch(txid: TxId, index: usize, count: usize, branch: &[Hash32]) -> Option<Hash32> {
    if index >= count {
        return None;
    }
    let (mut hash, mut at, mut len, mut siblings) = (txid.0, index, count, branch.iter());
    while len > 1 {
        if at % 2 == 1 {
            hash = tagged_hash(TX_NODE_TAG, &[siblings.next()?.as_bytes(), hash.as_bytes()]);
        } else if at + 1 < len {
            hash = tagged_hash(TX_NODE_TAG, &[hash.as_bytes(), siblings.next()?.as_bytes()]);
        }
        at /= 2;
        len = len.div_ceil(2);
    }
    siblings.next().is_none().then_some(hash)
}

/// Whether the bytes behind `tx`'s id could be read as another kind of transaction. User transactions,
/// mints, settlements and evidence share the txid tag (`sidechain/txid` over the variant's own bytes, the
/// enum tag left out), so a transaction root alone does not say which kind a txid is; a light client that
/// proves a transaction's inclusion refuses one whose bytes also decode as another of these kinds (a user
/// could craft such bytes; an honest block of ordinary transactions never has them).
pub fn txid_is_ambiguous(tx: &Tx) -> bool {
    fn reads_as<T: BorshDeserialize>(bytes: &[u8]) -> bool {
        borsh::from_slice::<T>(bytes).is_ok()
    }
    let (bytes, own) = match tx {
        Tx::User(t) => (canonical_bytes(t), 0),
        Tx::Mint(t) => (canonical_bytes(t), 1),
        Tx::Settle(t) => (canonical_bytes(t), 2),
        Tx::Evidence(t) => (canonical_bytes(t), 3),
        Tx::Validator(_) | Tx::Reconfigure(_) | Tx::PegShare(_) | Tx::Frost(_) => return false,
    };
    let readings = [
        reads_as::<SignedUserTx>(&bytes),
        reads_as::<MintTx>(&bytes),
        reads_as::<SettleTx>(&bytes),
        reads_as::<EvidenceTx>(&bytes),
    ];
    readings.iter().enumerate().any(|(kind, reads)| kind != own && *reads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_branch_leads_every_transaction_to_the_root_and_nowhere_else() {
        for count in 1..=11usize {
            let txids: Vec<TxId> = (0..count).map(|i| TxId(tagged_hash("test", &[&[i as u8]]))).collect();
            let root = tx_root(&txids);
            for (index, txid) in txids.iter().enumerate() {
                let branch = tx_branch(&txids, index);
                assert_eq!(tx_root_from_branch(*txid, index, count, &branch), Some(root), "{index} of {count}");
                let other = (index + 1) % count;
                if other != index {
                    assert_ne!(tx_root_from_branch(txids[other], index, count, &branch), Some(root));
                }
                let mut longer = branch.clone();
                longer.push(root);
                assert_eq!(tx_root_from_branch(*txid, index, count, &longer), None, "an extra hash");
                if !branch.is_empty() {
                    assert_eq!(tx_root_from_branch(*txid, index, count, &branch[1..]), None, "a missing hash");
                }
            }
            assert_eq!(tx_root_from_branch(txids[0], count, count, &[]), None, "index out of range");
        }
    }

    #[test]
    fn ordinary_transactions_have_one_reading_and_a_crafted_one_is_flagged() {
        assert!(!txid_is_ambiguous(&Tx::User(sample(3))));
        // Evidence whose proof makes it 76 bytes also reads as a settlement (fixed 76 bytes, any values):
        // one txid, two meanings.
        let crafted =
            EvidenceTx { offender: ValidatorIndex(1), height: Height(2), round: Round(0), proof: vec![0; 58] };
        assert!(txid_is_ambiguous(&Tx::Evidence(crafted.clone())));
        let settle: SettleTx = borsh::from_slice(&canonical_bytes(&crafted)).expect("reads as a settlement");
        assert!(txid_is_ambiguous(&Tx::Settle(settle)));
    }

    fn sample(nonce: u64) -> SignedUserTx {
        let k = Keypair::from_secret([9; 32]);
        UserTx {
            signer: k.public(),
            nonce,
            fee: Amount::from_sat(10),
            kind: UserTxKind::Transfer { to: AccountId(Hash32([1; 32])), amount: Amount::from_sat(5) },
        }
        .sign(&k, &GenesisHash::ZERO)
    }

    #[test]
    fn enum_tags_are_stable() {
        let s = sample(0);
        let tx_bytes = canonical_bytes(&s.tx);
        // signer(32) nonce(8) fee(8) then the kind tag.
        assert_eq!(tx_bytes[48], 0, "Transfer is tag 0");
        assert_eq!(tx_bytes.len(), 32 + 8 + 8 + 1 + 32 + 8);
        assert_eq!(canonical_bytes(&Tx::User(s.clone()))[0], 0, "User is tag 0");
        assert_eq!(borsh::from_slice::<SignedUserTx>(&canonical_bytes(&s)).unwrap(), s);
    }

    #[test]
    fn signature_binds_the_chain() {
        let s = sample(0);
        assert_eq!(s.verify_signature(&GenesisHash::ZERO), Ok(()));
        assert!(s.verify_signature(&GenesisHash(Hash32([1; 32]))).is_err());
    }

    #[test]
    fn tx_root_rules() {
        let ids: Vec<TxId> = (0..3).map(|n| sample(n).txid()).collect();
        assert_eq!(tx_root(&[]), tagged_hash(TX_ROOT_EMPTY_TAG, &[]));
        assert_eq!(tx_root(&ids[..1]), ids[0].0);
        let ab = tagged_hash(TX_NODE_TAG, &[ids[0].as_bytes(), ids[1].as_bytes()]);
        assert_eq!(tx_root(&ids[..2]), ab);
        // Odd leaf promoted, not duplicated.
        let abc = tagged_hash(TX_NODE_TAG, &[ab.as_bytes(), ids[2].as_bytes()]);
        assert_eq!(tx_root(&ids), abc);
        let dup = vec![ids[0], ids[1], ids[2], ids[2]];
        assert_ne!(tx_root(&dup), tx_root(&ids));
    }
}
