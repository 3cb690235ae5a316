//! Transactions in JSON (`getblock` verbosity 2, `gettransaction`): what each kind does, with Bitcoin
//! values in `bitcoin-cli`'s form (the ledger keeps Bitcoin's own `Txid`/`BlockHash`, so nothing is converted).
//!
//! Why a file of its own: one match over every ledger transaction kind, kept apart from the block, chain and
//! account views in `types.rs`.

use bitcoin::amount::serde::as_sat;
use bitcoin::Amount;
use ledger::{Tx, UserTxKind};
use primitives::schema;
use primitives::{canonical_bytes, AccountId, Height, PublicKey, Round, Signature, TxId, ValidatorIndex};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TxKindInfo {
    /// A transfer between accounts.
    Transfer {
        /// Recipient.
        to: AccountId,
        /// Amount moved.
        #[serde(rename = "amount_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        amount: Amount,
    },
    /// Equivocation evidence recorded in state (no signer, no fee).
    Evidence {
        /// The validator that signed twice.
        offender: ValidatorIndex,
        /// Height of its two messages.
        height: Height,
        /// Round of its two messages.
        round: Round,
    },
    /// Registers the signer's deposit address, so deposits to it are minted to the signer.
    Registerdeposit,
    /// Burns coins for a Bitcoin payment of `amount` to `btc_script_pubkey`.
    Pegout {
        /// The payout's output script, hex.
        btc_script_pubkey: String,
        /// What the payout pays.
        #[serde(rename = "amount_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        amount: Amount,
    },
    /// A validator reports that its bitcoind no longer has the anchor in force (a reorg deeper than N).
    Reportreorg {
        /// The reporting validator.
        validator: ValidatorIndex,
        /// The anchor it no longer sees, height.
        btc_height: u32,
        /// And hash.
        #[schemars(with = "schema::BtcHash")]
        btc_block_hash: bitcoin::BlockHash,
    },
    /// A peg key holder's signatures for every input of a batch version.
    Pegoutsignatures {
        /// The signer: its position in the validator list of the batch's wallet epoch.
        validator: ValidatorIndex,
        /// The batch.
        batch: u64,
        /// The version signed (unsigned txid, as Bitcoin Core shows it).
        #[schemars(with = "schema::BtcHash")]
        btc_txid: bitcoin::Txid,
        /// How many inputs it signed.
        inputs: usize,
    },
    /// A signer's FROST nonce commitments or signature shares for a taproot batch version's key path.
    Frostsigning {
        /// The signer: its position in the validator list of the batch's wallet epoch.
        validator: ValidatorIndex,
        /// The batch.
        batch: u64,
        /// The version being signed (unsigned txid, as Bitcoin Core shows it).
        #[schemars(with = "schema::BtcHash")]
        btc_txid: bitcoin::Txid,
        /// The signing attempt (from 0).
        attempt: u32,
        /// `commit` or `share`.
        round: String,
        /// How many inputs it covers.
        inputs: usize,
    },
    /// A federation change approved by 2f+1 of the set in force.
    Reconfigure {
        /// The first height the new set decides.
        activation_height: Height,
        /// Validators in the new set.
        validators: usize,
        /// Signatures the new wallet needs.
        peg_threshold: u32,
        /// Approvals carried.
        approvals: usize,
    },
    /// A peg-out batch confirmed on Bitcoin: its burns are paid.
    Settle {
        /// The batch.
        batch: u64,
        /// The confirmed transaction, as Bitcoin Core shows it.
        #[schemars(with = "schema::BtcHash")]
        btc_txid: bitcoin::Txid,
        /// The BTC block holding it.
        #[schemars(with = "schema::BtcHash")]
        btc_block_hash: bitcoin::BlockHash,
        /// Its height.
        btc_height: u32,
    },
    /// A validator's fee-rate vote (from its bitcoind's view of Bitcoin fees).
    Feeratevote {
        /// The voting validator.
        validator: ValidatorIndex,
        /// Its rate, sat/vB.
        sat_per_vb: u64,
    },
    /// A validator votes to resume the halted peg from an anchor.
    Resumepeg {
        /// The voting validator.
        validator: ValidatorIndex,
        /// The anchor to resume from, height.
        btc_height: u32,
        /// And hash.
        #[schemars(with = "schema::BtcHash")]
        btc_block_hash: bitcoin::BlockHash,
    },
    /// A BTC deposit minted to its recipient (no signer: validators checked it against bitcoind).
    Mint {
        /// The deposit output, `txid:vout` as Bitcoin Core shows it.
        #[schemars(with = "schema::BtcOutPoint")]
        btc_outpoint: bitcoin::OutPoint,
        /// The recipient.
        recipient: AccountId,
        /// The deposit's value.
        #[serde(rename = "amount_sat", with = "as_sat")]
        #[schemars(with = "schema::Sat")]
        amount: Amount,
        /// The BTC block holding it.
        #[schemars(with = "schema::BtcHash")]
        btc_block_hash: bitcoin::BlockHash,
        /// Its height.
        btc_height: u32,
    },
}

/// A ledger outpoint as Bitcoin's type.
pub fn btc_outpoint(o: &ledger::BtcOutPoint) -> bitcoin::OutPoint {
    o.to_bitcoin()
}

/// A transaction in JSON (`getblock` verbosity 2, `gettransaction`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TxInfo {
    /// Transaction id.
    pub txid: TxId,
    /// Canonical borsh bytes of the signed transaction (what `sendrawtransaction` takes).
    pub hex: String,
    /// The signing key (null for evidence).
    pub signer: Option<PublicKey>,
    /// The paying account, the hash of the signer (null for evidence).
    pub from: Option<AccountId>,
    /// The sender's nonce it uses (null for evidence).
    pub nonce: Option<u64>,
    /// The fee paid to the fee pool (0 for evidence).
    #[serde(rename = "fee_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub fee: Amount,
    /// What it does.
    pub kind: TxKindInfo,
    /// The ed25519 signature (null for evidence).
    pub signature: Option<Signature>,
}

impl From<&Tx> for TxInfo {
    fn from(t: &Tx) -> Self {
        match t {
            Tx::User(s) => {
                let kind = match &s.tx.kind {
                    UserTxKind::Transfer { to, amount } => TxKindInfo::Transfer { to: *to, amount: *amount },
                    UserTxKind::RegisterDeposit => TxKindInfo::Registerdeposit,
                    UserTxKind::PegOut { btc_script_pubkey, amount } => {
                        TxKindInfo::Pegout { btc_script_pubkey: hex::encode(btc_script_pubkey), amount: *amount }
                    }
                };
                TxInfo {
                    txid: s.txid(),
                    hex: hex::encode(canonical_bytes(s)),
                    signer: Some(s.tx.signer),
                    from: Some(s.tx.sender()),
                    nonce: Some(s.tx.nonce),
                    fee: s.tx.fee,
                    kind,
                    signature: Some(s.signature),
                }
            }
            Tx::Evidence(e) => unsigned_info(
                t,
                e.txid(),
                TxKindInfo::Evidence { offender: e.offender, height: e.height, round: e.round },
            ),
            Tx::Validator(v) => {
                let kind = match &v.tx.kind {
                    ledger::ValidatorTxKind::ReportReorg { anchor } => TxKindInfo::Reportreorg {
                        validator: v.tx.validator,
                        btc_height: anchor.height.get(),
                        btc_block_hash: anchor.hash,
                    },
                    ledger::ValidatorTxKind::FeeRateVote { sat_per_vb } => {
                        TxKindInfo::Feeratevote { validator: v.tx.validator, sat_per_vb: *sat_per_vb }
                    }
                    ledger::ValidatorTxKind::ResumePeg { anchor } => TxKindInfo::Resumepeg {
                        validator: v.tx.validator,
                        btc_height: anchor.height.get(),
                        btc_block_hash: anchor.hash,
                    },
                };
                TxInfo {
                    txid: v.txid(),
                    hex: hex::encode(canonical_bytes(t)),
                    signer: None,
                    from: None,
                    nonce: None,
                    fee: Amount::ZERO,
                    kind,
                    signature: Some(v.signature),
                }
            }
            Tx::Settle(st) => unsigned_info(
                t,
                st.txid(),
                TxKindInfo::Settle {
                    batch: st.batch,
                    btc_txid: st.txid,
                    btc_block_hash: st.btc_block.hash,
                    btc_height: st.btc_block.height.get(),
                },
            ),
            Tx::PegShare(p) => unsigned_info(
                t,
                p.txid(),
                TxKindInfo::Pegoutsignatures {
                    validator: p.signer,
                    batch: p.batch,
                    btc_txid: p.txid,
                    inputs: p.signatures.len(),
                },
            ),
            Tx::Frost(f) => {
                let (round, inputs) = match &f.round {
                    ledger::FrostRound::Commit(c) => ("commit", c.len()),
                    ledger::FrostRound::Share(s) => ("share", s.len()),
                };
                unsigned_info(
                    t,
                    f.txid(),
                    TxKindInfo::Frostsigning {
                        validator: f.signer,
                        batch: f.batch,
                        btc_txid: f.txid,
                        attempt: f.attempt,
                        round: round.into(),
                        inputs,
                    },
                )
            }
            Tx::Reconfigure(r) => unsigned_info(
                t,
                r.txid(),
                TxKindInfo::Reconfigure {
                    activation_height: r.proposal.activation_height,
                    validators: r.proposal.validators.len(),
                    peg_threshold: r.proposal.peg_threshold,
                    approvals: r.approvals.len(),
                },
            ),
            Tx::Mint(m) => unsigned_info(
                t,
                m.txid(),
                TxKindInfo::Mint {
                    btc_outpoint: btc_outpoint(&m.outpoint),
                    recipient: m.recipient,
                    amount: m.amount,
                    btc_block_hash: m.btc_block.hash,
                    btc_height: m.btc_block.height.get(),
                },
            ),
        }
    }
}

/// A transaction without an ed25519 signer or fee (BTC facts, evidence, shares, federation changes).
fn unsigned_info(t: &Tx, txid: TxId, kind: TxKindInfo) -> TxInfo {
    TxInfo {
        txid,
        hex: hex::encode(canonical_bytes(t)),
        signer: None,
        from: None,
        nonce: None,
        fee: Amount::ZERO,
        kind,
        signature: None,
    }
}
