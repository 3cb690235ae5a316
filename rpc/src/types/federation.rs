//! The federation over time in JSON (`getfederationinfo`): the set in force, a pending change, every
//! earlier wallet that still holds coins with the sweep moving them, and the emergency path.
//!
//! Built from state alone ([`FederationView::read`]) so the node and the test backend show the same thing.

use super::ValidatorInfo;
use bitcoin::amount::serde::as_sat;
use bitcoin::Amount;
use ledger::batching::{BatchKind, BatchRecord};
use ledger::{Chain, FederationEpoch, StateReader};
use primitives::schema;
use primitives::Height;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The emergency branch of every federation wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EmergencyInfo {
    /// Signatures an emergency spend needs.
    pub threshold: u32,
    /// The emergency keys.
    #[schemars(with = "Vec<schema::BtcPublicKey>")]
    pub keys: Vec<bitcoin::PublicKey>,
    /// Bitcoin blocks an output must be deep before they may spend it.
    pub delay_blocks: u32,
    /// Outputs are refreshed when the anchor is this many blocks short of the delay.
    pub refresh_margin_blocks: u32,
}

/// A federation change accepted and waiting for its height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PendingChangeInfo {
    /// Its epoch number.
    pub epoch: u32,
    /// The first height it decides.
    pub activation_height: Height,
    /// Signatures its wallet will need.
    pub peg_threshold: u32,
    /// Its validators.
    pub validators: Vec<ValidatorInfo>,
    /// Its wallet's descriptor.
    pub descriptor: String,
}

/// One wallet epoch's coins and the batches moving them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EpochHoldingsInfo {
    /// The epoch.
    pub epoch: u32,
    /// Whether it is the one in force.
    pub in_force: bool,
    /// Heights it decided: from, and (for earlier epochs) until, exclusive.
    pub from_height: Height,
    /// The height its successor took over (`null` for the one in force).
    pub until_height: Option<Height>,
    /// The last height its deposit addresses are watched and minted without a claim (`null`: in force).
    pub deposit_window_ends: Option<Height>,
    /// Its plain federation address.
    pub address: String,
    /// Spendable outputs it holds.
    pub utxos: usize,
    /// Their value.
    #[serde(rename = "amount_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub amount: Amount,
    /// Outputs due for a refresh (nearing the emergency delay).
    pub refresh_due: usize,
    /// Sweep and refresh batches in flight that spend its coins.
    pub batches: Vec<SweepBatchInfo>,
}

/// A sweep or refresh batch in flight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SweepBatchInfo {
    /// The batch id.
    pub id: u64,
    /// `sweep` or `refresh`.
    pub kind: String,
    /// The current version's txid, as Bitcoin Core shows it.
    #[schemars(with = "schema::BtcHash")]
    pub btc_txid: String,
    /// Outputs it moves.
    pub inputs: usize,
    /// `"k/n"`: signatures recorded over signatures needed.
    pub signatures: String,
    /// The epoch whose wallet receives the coins.
    pub to_epoch: u32,
    /// Its Bitcoin fee (paid by the fee pool).
    #[serde(rename = "fee_sat", with = "as_sat")]
    #[schemars(with = "schema::Sat")]
    pub fee: Amount,
}

/// Everything about the federation over time, for `getfederationinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FederationView {
    /// The epoch in force.
    pub epoch: u32,
    /// The height it took over.
    pub epoch_from_height: Height,
    /// Its validators.
    pub validators: Vec<ValidatorInfo>,
    /// A change waiting for its height.
    pub pending: Option<PendingChangeInfo>,
    /// Every epoch that holds coins or has batches in flight, the one in force included.
    pub wallets: Vec<EpochHoldingsInfo>,
    /// Whether every coin is in the wallet in force and no sweep is in flight.
    pub sweep_complete: bool,
    /// The emergency path, if the genesis has one.
    pub emergency: Option<EmergencyInfo>,
}

/// The validators of an epoch as `getvalidators` shows them.
pub fn validator_infos(epoch: &FederationEpoch) -> Vec<ValidatorInfo> {
    ValidatorInfo::list(&epoch.validators)
}

fn sweep_info(b: &BatchRecord) -> SweepBatchInfo {
    SweepBatchInfo {
        id: b.id,
        kind: match b.kind {
            BatchKind::Payout => "payout",
            BatchKind::Refresh => "refresh",
            BatchKind::Sweep => "sweep",
        }
        .into(),
        btc_txid: b.txid.to_string(),
        inputs: b.inputs.len(),
        signatures: b.signing_progress(),
        to_epoch: b.change_epoch,
        fee: b.fee,
    }
}

impl FederationView {
    /// Reads it from `state` (the tip's), addresses on `network`.
    pub fn read<S: StateReader>(
        chain: &Chain,
        state: &S,
        network: bitcoin::Network,
    ) -> Result<Self, ledger::StateError> {
        let fs = ledger::federation_state(chain, state)?;
        let in_force = fs.in_force();
        let anchor = state.chain_meta()?.map(|m| m.btc_anchor.height).unwrap_or_default();
        let spendable = ledger::batching::spendable_utxos(state)?;
        let mut coins = Vec::new();
        for o in &spendable.0 {
            if let Some(u) = state.get_federation_utxo(o)? {
                coins.push(u);
            }
        }
        let mut in_flight = Vec::new();
        for id in ledger::batching::batch_index(state)?.in_flight {
            if let Some(b) = ledger::batching::batch(state, id)? {
                in_flight.push(b);
            }
        }
        let window = chain.params().deposit_window;
        let mut wallets = Vec::new();
        for (i, e) in fs.epochs.iter().enumerate() {
            let mine: Vec<&ledger::FederationUtxo> = coins.iter().filter(|u| u.epoch == e.epoch).collect();
            let batches: Vec<SweepBatchInfo> = in_flight
                .iter()
                .filter(|b| b.epoch == e.epoch && b.kind != BatchKind::Payout)
                .map(sweep_info)
                .collect();
            let is_current = e.epoch == in_force.epoch;
            if !is_current && mine.is_empty() && batches.is_empty() {
                continue;
            }
            let until = fs.epochs.get(i + 1).map(|n| n.from_height);
            let Ok(wallet) = chain.wallet(e) else { continue };
            wallets.push(EpochHoldingsInfo {
                epoch: e.epoch,
                in_force: is_current,
                from_height: e.from_height,
                until_height: until,
                deposit_window_ends: until.map(|u| Height(u.get().saturating_add(window).saturating_sub(1))),
                address: wallet.address(network).to_string(),
                utxos: mine.len(),
                amount: mine.iter().map(|u| u.amount).sum(),
                refresh_due: mine
                    .iter()
                    .filter(|u| ledger::sweep::refresh_due(chain, u.btc_block.height, anchor))
                    .count(),
                batches,
            });
        }
        let sweep_complete = wallets.iter().all(|w| w.in_force || (w.utxos == 0 && w.batches.is_empty()));
        let pending = fs.pending.as_ref().map(|p| PendingChangeInfo {
            epoch: p.epoch,
            activation_height: p.from_height,
            peg_threshold: p.peg_threshold,
            validators: validator_infos(p),
            descriptor: chain.wallet(p).map(|w| w.descriptor().to_string()).unwrap_or_default(),
        });
        Ok(FederationView {
            epoch: in_force.epoch,
            epoch_from_height: in_force.from_height,
            validators: validator_infos(in_force),
            pending,
            wallets,
            sweep_complete,
            emergency: chain.genesis().emergency.as_ref().map(|e| EmergencyInfo {
                threshold: e.threshold,
                keys: e.keys.clone(),
                delay_blocks: e.delay,
                refresh_margin_blocks: chain.params().refresh_margin,
            }),
        })
    }
}
