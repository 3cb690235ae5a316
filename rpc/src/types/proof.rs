//! What a wallet needs to trust no node: certified headers (`getheaders`) and state entries with their
//! proofs (`prove = true` on `getaccount`, `getpegstatus`, `getpegoutstatus`), in a form any language
//! decodes: hex of borsh bytes, laid out in `docs/PROTOCOL.md`. The checks themselves are the `light`
//! crate's; this module only turns the JSON into its types ([`HeaderRangeInfo::decode`]) and checks a
//! set of entries against a followed header ([`StateProofInfo::verify`]).

use ledger::{BlockHeader, StateKey, StateProof};
use light::{CertifiedHeader, HeaderRange, LightClient, LightError, ProvedValue};
use primitives::{canonical_bytes, AccountId, BlockId, Height, StateRoot, TxId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One proved state entry: borsh of the key, of the value (null: absent), and of the proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProvedEntry {
    /// borsh(`StateKey`), hex.
    pub key: String,
    /// borsh(value), hex; null when the entry does not exist.
    pub value: Option<String>,
    /// borsh(jmt `SparseMerkleProof`), hex.
    pub proof: String,
}

/// Why a proved entry or a header does not decode.
#[derive(Debug, thiserror::Error)]
pub enum EntryDecodeError {
    /// A field is not hex.
    #[error("{part} is not hex: {source}")]
    Hex {
        /// Which field.
        part: &'static str,
        /// The decoder's error.
        #[source]
        source: hex::FromHexError,
    },
    /// A field's bytes are not what it should hold.
    #[error("{part} does not decode: {source}")]
    Borsh {
        /// Which field.
        part: &'static str,
        /// The decoder's error.
        #[source]
        source: borsh::io::Error,
    },
}

fn unhex(part: &'static str, s: &str) -> Result<Vec<u8>, EntryDecodeError> {
    hex::decode(s).map_err(|source| EntryDecodeError::Hex { part, source })
}

fn unborsh<T: borsh::BorshDeserialize>(part: &'static str, bytes: &[u8]) -> Result<T, EntryDecodeError> {
    borsh::from_slice(bytes).map_err(|source| EntryDecodeError::Borsh { part, source })
}

impl ProvedEntry {
    /// The JSON form of `key` holding `value` by `proof`.
    pub fn new(key: &StateKey, value: Option<&[u8]>, proof: &StateProof) -> Self {
        ProvedEntry {
            key: hex::encode(canonical_bytes(key)),
            value: value.map(hex::encode),
            proof: hex::encode(proof.to_bytes()),
        }
    }

    /// The key, the value and its proof.
    pub fn decode(&self) -> Result<(StateKey, ProvedValue), EntryDecodeError> {
        let key = unborsh("key", &unhex("key", &self.key)?)?;
        let value = self.value.as_deref().map(|v| unhex("value", v)).transpose()?;
        let proof = StateProof::from_bytes(&unhex("proof", &self.proof)?)
            .map_err(|source| EntryDecodeError::Borsh { part: "proof", source })?;
        Ok((key, ProvedValue { value, proof }))
    }
}

/// State entries at one height with their proofs against that height's state root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StateProofInfo {
    /// The height whose state this is (the header to check the root against).
    pub height: Height,
    /// Its state root, as the node says (a verifier takes the root from the certified header instead).
    pub state_root: StateRoot,
    /// The entries the answer rests on.
    pub entries: Vec<ProvedEntry>,
}

/// Why a proved answer was not believed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// An entry does not decode.
    #[error("proof entry {index}: {source}")]
    Entry {
        /// The entry.
        index: usize,
        /// What failed.
        #[source]
        source: EntryDecodeError,
    },
    /// A header does not decode.
    #[error("header {height}: {source}")]
    Header {
        /// The height the node put on it.
        height: Height,
        /// What failed.
        #[source]
        source: EntryDecodeError,
    },
    /// A header or a proof fails the light client's checks.
    #[error(transparent)]
    Light(#[from] LightError),
    /// The node's state root is not the one its certified header carries.
    #[error("the node says the state root at height {height} is {claimed}, its certified header says {certified}")]
    StateRoot {
        /// The height.
        height: Height,
        /// The root the node sent.
        claimed: StateRoot,
        /// The root of the certified header.
        certified: StateRoot,
    },
    /// The answer came without a proof (ask with `prove = true`).
    #[error("the node sent no proof")]
    NoProof,
    /// An entry the answer needs is not among the proved ones.
    #[error("the answer rests on {key:?}, which the node did not prove")]
    Missing {
        /// The entry missing.
        key: StateKey,
    },
    /// A proved value is not what its key holds.
    #[error("the proved value of {key:?} does not decode")]
    Value {
        /// The entry.
        key: StateKey,
    },
    /// The answer says something its proved entries do not.
    #[error("the node's answer says {field} is {claimed}, the proved state says {proved}")]
    Differs {
        /// The field.
        field: &'static str,
        /// What the node said.
        claimed: String,
        /// What the proof says.
        proved: String,
    },
}

/// Proved entries, checked, by key.
#[derive(Clone, Debug, Default)]
pub struct ProvedState {
    /// The height whose state they are.
    pub height: Height,
    entries: BTreeMap<StateKey, Option<Vec<u8>>>,
}

impl ProvedState {
    /// The proved value of `key`, decoded (`None`: proved absent). `Err` if the node did not prove `key` or
    /// the bytes are not a `T`.
    pub fn get<T: borsh::BorshDeserialize>(&self, key: &StateKey) -> Result<Option<T>, VerifyError> {
        let raw = self.entries.get(key).ok_or(VerifyError::Missing { key: *key })?;
        raw.as_deref().map(|b| borsh::from_slice(b).map_err(|_| VerifyError::Value { key: *key })).transpose()
    }
}

impl StateProofInfo {
    /// The entries `keys` of the state `snapshot` is (its version the height), with their proofs against
    /// its root.
    pub fn read<R: ledger::jmt::storage::TreeReader>(
        snapshot: &ledger::Snapshot<'_, R>,
        keys: &[StateKey],
    ) -> Result<Self, ledger::StateError> {
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            let (value, proof) = snapshot.prove(key)?;
            entries.push(ProvedEntry::new(key, value.as_deref(), &proof));
        }
        Ok(StateProofInfo { height: Height(snapshot.version()), state_root: snapshot.root()?, entries })
    }

    /// Checks every entry against the state root of the header `client` followed at `self.height` (the
    /// caller first extends the client to that height) and returns them by key.
    pub fn verify(&self, client: &LightClient) -> Result<ProvedState, VerifyError> {
        let certified = client.state_root(self.height)?;
        if certified != self.state_root {
            return Err(VerifyError::StateRoot { height: self.height, claimed: self.state_root, certified });
        }
        let mut entries = BTreeMap::new();
        for (index, e) in self.entries.iter().enumerate() {
            let (key, proved) = e.decode().map_err(|source| VerifyError::Entry { index, source })?;
            client.verify_entry(self.height, &key, proved.value.as_deref(), &proved.proof)?;
            entries.insert(key, proved.value);
        }
        Ok(ProvedState { height: self.height, entries })
    }
}

/// A header with its commit certificate, as `getheaders` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CertifiedHeaderInfo {
    /// The header's height (for people; the verifier reads the header's own).
    pub height: Height,
    /// The header's hash (for people; the verifier hashes the header itself).
    pub hash: BlockId,
    /// borsh(`BlockHeader`), hex: 214 bytes.
    pub header: String,
    /// borsh(`CommitCertificate`), hex.
    pub commit: String,
    /// The `Federation` state entry after this block with its proof against its state root: on every
    /// header at a multiple of `federation_change_min_lead` and on the last of an answer, null elsewhere.
    pub federation: Option<ProvedEntry>,
}

/// Result of `getheaders`: consecutive certified headers (none past the tip).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HeaderRangeInfo {
    /// The headers, lowest first.
    pub headers: Vec<CertifiedHeaderInfo>,
}

impl HeaderRangeInfo {
    /// The JSON form of `headers`, each with its certificate and perhaps the federation entry after it.
    pub fn new(headers: Vec<(BlockHeader, consensus::CommitCertificate, Option<ProvedEntry>)>) -> Self {
        HeaderRangeInfo {
            headers: headers
                .into_iter()
                .map(|(h, c, federation)| CertifiedHeaderInfo {
                    height: h.height,
                    hash: h.hash(),
                    header: hex::encode(canonical_bytes(&h)),
                    commit: hex::encode(canonical_bytes(&c)),
                    federation,
                })
                .collect(),
        }
    }

    /// The range for [`LightClient::extend`]. A federation entry must be the `Federation` key.
    pub fn decode(&self) -> Result<HeaderRange, VerifyError> {
        let mut headers = Vec::with_capacity(self.headers.len());
        for (index, h) in self.headers.iter().enumerate() {
            let err = |source| VerifyError::Header { height: h.height, source };
            let header = unborsh("header", &unhex("header", &h.header).map_err(err)?).map_err(err)?;
            let commit = unborsh("commit", &unhex("commit", &h.commit).map_err(err)?).map_err(err)?;
            let federation = match &h.federation {
                None => None,
                Some(e) => {
                    let (key, proved) = e.decode().map_err(|source| VerifyError::Entry { index, source })?;
                    if key != StateKey::Federation {
                        return Err(VerifyError::Missing { key: StateKey::Federation });
                    }
                    Some(proved)
                }
            };
            headers.push(CertifiedHeader { header, commit, federation });
        }
        Ok(HeaderRange { headers })
    }
}

fn same<T: PartialEq + std::fmt::Debug>(field: &'static str, claimed: T, proved: T) -> Result<(), VerifyError> {
    if claimed == proved {
        return Ok(());
    }
    Err(VerifyError::Differs { field, claimed: format!("{claimed:?}"), proved: format!("{proved:?}") })
}

impl crate::types::AccountInfo {
    /// Checks this answer about `account` (the one asked for) against its proof (asked with `prove = true`)
    /// and `client`'s certified header at the proof's height: every field must be the proved account's (an
    /// absent account: 0 and 0).
    pub fn verify(&self, client: &LightClient, account: &AccountId) -> Result<ProvedState, VerifyError> {
        same("account", self.account, *account)?;
        let key = StateKey::Account(*account);
        let proved = self.proof.as_ref().ok_or(VerifyError::NoProof)?.verify(client)?;
        let rebuilt = Self::new(*account, proved.get(&key)?);
        same("balance_sat", self.balance.to_sat(), rebuilt.balance.to_sat())?;
        same("balance_btc", &self.balance_btc, &rebuilt.balance_btc)?;
        same("nonce", self.nonce, rebuilt.nonce)?;
        Ok(proved)
    }
}

impl crate::types::PegInStatus {
    /// Checks this answer about `outpoint` (the one asked for) against its proof: the deposit's ledger
    /// record as of the proof's height (taken after the answer, so a deposit minted in between shows as
    /// minted). Returns the status the proof gives: with a record, every ledger field rebuilt from it (a
    /// node that said otherwise fails); without one, the node's own Bitcoin view (seen, claimed, with
    /// confirmations), which no proof covers, and a node that says `minted` or `below_minimum` fails.
    pub fn verify(&self, client: &LightClient, outpoint: &bitcoin::OutPoint) -> Result<Self, VerifyError> {
        use crate::types::{PegInFacts, PegInStage};
        same("outpoint", self.outpoint, *outpoint)?;
        let key = StateKey::PegIn(crate::types::ledger_outpoint(outpoint));
        let proved = self.proof.as_ref().ok_or(VerifyError::NoProof)?.verify(client)?;
        let recorded = matches!(self.stage, PegInStage::Minted | PegInStage::BelowMinimum) || self.minted_at.is_some();
        let Some(record) = proved.get::<ledger::PegInRecord>(&key)? else {
            if recorded {
                return Err(VerifyError::Differs {
                    field: "stage",
                    claimed: format!("{:?}", self.stage),
                    proved: "no ledger record of the deposit".into(),
                });
            }
            return Ok(self.clone());
        };
        let facts = PegInFacts {
            minted_time_ms: client.header(record.minted_at).map(|h| h.time_ms),
            record: Some(record),
            confirmations_required: self.confirmations_required,
            ..PegInFacts::default()
        };
        let mut rebuilt = Self::new(*outpoint, &facts);
        if recorded {
            same("stage", self.stage, rebuilt.stage)?;
            same("recipient", self.recipient, rebuilt.recipient)?;
            same("amount_sat", self.amount, rebuilt.amount)?;
            same("btc_block_hash", self.btc_block_hash, rebuilt.btc_block_hash)?;
            same("btc_height", self.btc_height, rebuilt.btc_height)?;
            same("minted_at", self.minted_at, rebuilt.minted_at)?;
            same("mint_txid", self.mint_txid, rebuilt.mint_txid)?;
            same("credited_sat", self.credited, rebuilt.credited)?;
            same("fee_sat", self.fee, rebuilt.fee)?;
            if rebuilt.minted_time_ms.is_some() {
                same("minted_time_ms", self.minted_time_ms, rebuilt.minted_time_ms)?;
            }
        }
        rebuilt.proof = self.proof.clone();
        Ok(rebuilt)
    }
}

impl crate::types::PegOutInfo {
    /// Checks this answer about the burn `burn_txid` (the one asked for) against its proof: the txid maps
    /// to the burn's id, the burn record (owner, amount, fee, height, and its payout once paid) and the
    /// batch it is in, as of the proof's height (taken after the answer: a burn paid in between shows as
    /// paid). Returns the status the proved records give (`network` names the addresses; Bitcoin
    /// confirmations, which no proof covers, are left out).
    pub fn verify(
        &self,
        client: &LightClient,
        burn_txid: &TxId,
        network: bitcoin::Network,
    ) -> Result<Self, VerifyError> {
        same("burn_txid", self.burn_txid, *burn_txid)?;
        let proved = self.proof.as_ref().ok_or(VerifyError::NoProof)?.verify(client)?;
        let id: u64 = proved
            .get(&StateKey::BurnByTx(*burn_txid))?
            .ok_or(VerifyError::Missing { key: StateKey::BurnByTx(*burn_txid) })?;
        same("burn_id", self.burn_id, id)?;
        let burn: ledger::BurnRecord =
            proved.get(&StateKey::Burn(id))?.ok_or(VerifyError::Missing { key: StateKey::Burn(id) })?;
        same("owner", self.owner, burn.owner)?;
        same("amount_sat", self.amount.to_sat(), burn.amount.to_sat())?;
        same("fee_sat", self.fee.to_sat(), burn.fee.to_sat())?;
        same("burned_at", self.burned_at, burn.burned_at)?;
        let batch: Option<ledger::batching::BatchRecord> = match burn.batch {
            Some(b) => Some(proved.get(&StateKey::Batch(b))?.ok_or(VerifyError::Missing { key: StateKey::Batch(b) })?),
            None => None,
        };
        let mut view = Self::new(&burn, batch.as_ref(), network, &BTreeMap::new());
        if let Some(paid) = &self.paid_in {
            same("paid_in", Some(paid), view.paid_in.as_ref())?;
        }
        view.proof = self.proof.clone();
        Ok(view)
    }
}

/// A transaction with the branch that puts it in its block (`listtransactions` with `prove`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TxProofInfo {
    /// borsh(`Tx`), hex.
    pub tx: String,
    /// How many transactions the block holds.
    pub count: u32,
    /// Sibling hashes from the transaction up to the block's transaction root (`ledger::tx_branch`).
    pub branch: Vec<primitives::Hash32>,
}

impl TxProofInfo {
    /// The proof of `tx`, one of `count` in its block, by `branch`.
    pub fn new(tx: &ledger::Tx, count: usize, branch: Vec<primitives::Hash32>) -> Self {
        TxProofInfo { tx: hex::encode(canonical_bytes(tx)), count: u32::try_from(count).unwrap_or(u32::MAX), branch }
    }
}

impl crate::types::HistoryEntryInfo {
    /// Checks this entry of `account`'s history against its proof: the transaction is in the certified
    /// block at `height` (its branch leads to the header's transaction root), its id is the entry's, and
    /// what the entry says follows from the transaction itself: who sent and received, amounts, fees, a
    /// burn's address, the deposit minted (its credit and fee adding up to it), the Bitcoin transaction of a
    /// payout. Returns the fields no proof covers here (they come from state): a burn's id, a mint's split
    /// into credit and fee, a payout's burn and amount. Also unproved: the entry's position in the block
    /// (the header commits to no transaction count) and that no entry is missing (the index is the node's).
    pub fn verify(&self, client: &LightClient, account: &AccountId) -> Result<Vec<&'static str>, VerifyError> {
        use crate::types::HistoryKindInfo as K;
        use ledger::{Tx, UserTxKind as U};
        let proof = self.proof.as_ref().ok_or(VerifyError::NoProof)?;
        let bytes = unhex("tx", &proof.tx).map_err(|source| VerifyError::Entry { index: 0, source })?;
        let tx: Tx = unborsh("tx", &bytes).map_err(|source| VerifyError::Entry { index: 0, source })?;
        same("txid", self.txid, tx.txid())?;
        client.verify_tx(self.height, self.index, proof.count, &tx, &proof.branch)?;
        let kind_differs = || VerifyError::Differs {
            field: "kind",
            claimed: format!("{:?}", self.kind),
            proved: format!("transaction {}", self.txid),
        };
        match (&self.kind, &tx) {
            (K::Sent { to, amount, fee }, Tx::User(u)) => match &u.tx.kind {
                U::Transfer { to: t, amount: a } if u.tx.sender() == *account => {
                    same("to", to, t)?;
                    same("amount_sat", amount, a)?;
                    same("fee_sat", fee, &u.tx.fee)?;
                    Ok(Vec::new())
                }
                _ => Err(kind_differs()),
            },
            (K::Received { from, amount }, Tx::User(u)) => match &u.tx.kind {
                U::Transfer { to, amount: a } if to == account => {
                    same("from", *from, u.tx.sender())?;
                    same("amount_sat", amount, a)?;
                    Ok(Vec::new())
                }
                _ => Err(kind_differs()),
            },
            (K::Registered { fee }, Tx::User(u))
                if matches!(u.tx.kind, U::RegisterDeposit) && u.tx.sender() == *account =>
            {
                same("fee_sat", fee, &u.tx.fee)?;
                Ok(Vec::new())
            }
            (K::Burned { amount, fee, btc_address, .. }, Tx::User(u)) => match &u.tx.kind {
                U::PegOut { amount: a, btc_script_pubkey } if u.tx.sender() == *account => {
                    same("amount_sat", amount, a)?;
                    same("fee_sat", fee, &u.tx.fee)?;
                    // The address as shown, back to its script (the network prefix aside).
                    let shown = btc_address
                        .as_deref()
                        .and_then(|a| a.parse::<bitcoin::Address<bitcoin::address::NetworkUnchecked>>().ok())
                        .map(|a| a.assume_checked().script_pubkey().to_bytes());
                    if let Some(shown) = shown {
                        same("btc_address", hex::encode(shown), hex::encode(btc_script_pubkey))?;
                    } else if btc_address.is_some() {
                        return Err(VerifyError::Differs {
                            field: "btc_address",
                            claimed: format!("{btc_address:?}"),
                            proved: hex::encode(btc_script_pubkey),
                        });
                    }
                    Ok(vec!["burn_id"])
                }
                _ => Err(kind_differs()),
            },
            (K::Minted { btc_outpoint, amount, credited, fee }, Tx::Mint(m)) if m.recipient == *account => {
                same("btc_outpoint", crate::types::ledger_outpoint(btc_outpoint), m.outpoint)?;
                same("amount_sat", amount, &m.amount)?;
                same("credited_sat + fee_sat", credited.checked_add(*fee), Some(m.amount))?;
                Ok(vec!["credited_sat", "fee_sat"])
            }
            (K::PaidOut { btc_txid, .. }, Tx::Settle(settle)) => {
                same("btc_txid", btc_txid, &settle.txid)?;
                Ok(vec!["burn_id", "amount_sat"])
            }
            _ => Err(kind_differs()),
        }
    }
}
