//! `getreserveproof`: the federation's reserves with inclusion proofs against a final state root.
//!
//! Why: "supply + unpaid burns <= BTC held" should not be taken on a node's word. Every figure here is a
//! state entry with a Jellyfish Merkle proof against the state root of the tip header, and that header is
//! final by its commit certificate, so a user checks the proofs ([`ReserveProofInfo::verify`]), then the
//! UTXOs against any bitcoind (`gettxout`), without trusting the node that answered.

use super::proof::ProvedEntry;
use bitcoin::amount::serde::as_sat;
use bitcoin::Amount;
use ledger::batching::{ReserveProof, SpendableUtxos};
use ledger::{FederationUtxo, PegTotals, StateKey};
use light::ProvedValue;
use primitives::schema;
use primitives::{AccountId, Height, StateRoot};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One federation output the reserves count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReserveUtxo {
    /// The output, as Bitcoin Core shows it.
    #[schemars(with = "schema::BtcOutPoint")]
    pub outpoint: bitcoin::OutPoint,
    /// Its value.
    #[serde(rename = "amount_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub amount: Amount,
    /// Whose deposit tweak the spending keys need; null for an untweaked output (the plain federation
    /// script: a batch's change, a refresh, an output paid to the plain address).
    pub tweak: Option<AccountId>,
    /// The federation epoch whose wallet holds it (its peg keys are in the proved `Federation` entry).
    pub epoch: u32,
    /// Free for the next batch (false: reserved by a batch in flight).
    pub spendable: bool,
}

/// Result of `getreserveproof`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReserveProofInfo {
    /// The height whose state this is.
    pub height: Height,
    /// That block's state root: every proof is against it.
    pub state_root: StateRoot,
    /// BTC the federation holds.
    #[serde(rename = "btc_held_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub btc_held: Amount,
    /// All sidechain balances.
    #[serde(rename = "supply_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub supply: Amount,
    /// Burned and not yet paid on Bitcoin (with the Bitcoin fees of batches in flight).
    #[serde(rename = "unpaid_burns_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub unpaid_burns: Amount,
    /// The fee pool's balance (part of supply).
    #[serde(rename = "fee_pool_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub fee_pool: Amount,
    /// Genesis balances (test networks only; not backed by BTC).
    #[serde(rename = "genesis_supply_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub genesis_supply: Amount,
    /// `supply + unpaid_burns - genesis_supply <= btc_held`.
    pub reserve_ok: bool,
    /// The federation's outputs: spendable ones and those batches in flight spend.
    pub utxos: Vec<ReserveUtxo>,
    /// Ids of the batches in flight.
    pub batches_in_flight: Vec<u64>,
    /// Every entry the figures come from, with its proof.
    pub entries: Vec<ProvedEntry>,
}

/// Why a reserve proof does not hold; the entry index names the first entry that fails.
#[derive(Debug, thiserror::Error)]
pub enum ReserveProofError {
    /// An entry does not decode.
    #[error("entry {index}: {source}")]
    Entry {
        /// The entry.
        index: usize,
        /// What failed.
        #[source]
        source: super::proof::EntryDecodeError,
    },
    /// An entry's proof does not verify against the state root.
    #[error("entry {index}: {source}")]
    Proof {
        /// The entry.
        index: usize,
        /// The tree's verdict.
        #[source]
        source: ledger::ProofError,
    },
    /// A federation output entry proves no output.
    #[error("entry {index}: federation output missing")]
    OutputMissing {
        /// The entry.
        index: usize,
    },
    /// A proved federation output the list does not show as proved.
    #[error("entry {index}: output {outpoint:?} is not listed as proved")]
    OutputNotListed {
        /// The entry.
        index: usize,
        /// The output.
        outpoint: ledger::BtcOutPoint,
    },
    /// No entry proves the peg totals.
    #[error("no proved peg totals")]
    NoTotals,
    /// The figures shown are not the proved totals.
    #[error("the figures differ from the proved peg totals")]
    TotalsDiffer,
}

fn decode<T: borsh::BorshDeserialize>(v: &Option<Vec<u8>>) -> Option<T> {
    v.as_ref().and_then(|b| borsh::from_slice(b).ok())
}

impl ReserveProofInfo {
    /// The JSON view of `proof` at `height`.
    pub fn new(height: Height, proof: &ReserveProof, genesis_supply: Amount) -> Self {
        let mut totals = PegTotals::default();
        let mut fee_pool = Amount::ZERO;
        let mut spendable = SpendableUtxos::default();
        let mut in_flight = Vec::new();
        let mut utxos = Vec::new();
        for (key, value, _) in &proof.entries {
            match key {
                StateKey::PegTotals => totals = decode(value).unwrap_or_default(),
                StateKey::Account(_) => fee_pool = decode::<ledger::Account>(value).unwrap_or_default().balance,
                StateKey::SpendableUtxos => spendable = decode(value).unwrap_or_default(),
                StateKey::BatchIndex => {
                    in_flight = decode::<ledger::batching::BatchIndex>(value).unwrap_or_default().in_flight
                }
                StateKey::FederationUtxo(o) => {
                    if let Some(u) = decode::<FederationUtxo>(value) {
                        utxos.push(ReserveUtxo {
                            outpoint: crate::types::btc_outpoint(o),
                            amount: u.amount,
                            tweak: u.tweak,
                            epoch: u.epoch,
                            spendable: spendable.0.contains(o),
                        });
                    }
                }
                _ => {}
            }
        }
        let owed = totals.supply.checked_add(totals.unpaid_burns).unwrap_or(Amount::MAX_MONEY);
        let pegged = owed.checked_sub(genesis_supply).unwrap_or(Amount::ZERO);
        ReserveProofInfo {
            height,
            state_root: proof.root,
            btc_held: totals.btc_held,
            supply: totals.supply,
            unpaid_burns: totals.unpaid_burns,
            fee_pool,
            genesis_supply,
            reserve_ok: pegged <= totals.btc_held,
            utxos,
            batches_in_flight: in_flight,
            entries: proof.entries.iter().map(|(k, v, p)| ProvedEntry::new(k, v.as_deref(), p)).collect(),
        }
    }

    /// Checks every entry's proof against `state_root`, and that the figures above are what the proved
    /// entries say (the totals and each listed output). `Err` names the first entry that fails.
    pub fn verify(&self) -> Result<(), ReserveProofError> {
        use ReserveProofError as E;
        let mut totals = None;
        for (index, e) in self.entries.iter().enumerate() {
            let (key, ProvedValue { value, proof }) = e.decode().map_err(|source| E::Entry { index, source })?;
            proof.verify(self.state_root, &key, value.as_deref()).map_err(|source| E::Proof { index, source })?;
            if key == StateKey::PegTotals {
                totals = decode::<PegTotals>(&value);
            }
            if let StateKey::FederationUtxo(outpoint) = key {
                let u = decode::<FederationUtxo>(&value).ok_or(E::OutputMissing { index })?;
                let listed = self.utxos.iter().find(|x| x.outpoint == crate::types::btc_outpoint(&outpoint));
                if listed.map(|x| (x.amount, x.tweak, x.epoch)) != Some((u.amount, u.tweak, u.epoch)) {
                    return Err(E::OutputNotListed { index, outpoint });
                }
            }
        }
        let t = totals.ok_or(E::NoTotals)?;
        if (t.btc_held, t.supply, t.unpaid_burns) != (self.btc_held, self.supply, self.unpaid_burns) {
            return Err(E::TotalsDiffer);
        }
        Ok(())
    }
}
