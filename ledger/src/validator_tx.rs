//! Validator transactions: what every kind shares (the signer is a validator, the transaction is for this
//! height, no fee) and where each kind goes: halt votes to [`crate::halt`], fee-rate votes to
//! [`crate::fee_rate`]. The signer is a member of the set in force (the state before the block).

use crate::btc_anchor::BtcAnchor;
use crate::error::TxError;
use crate::genesis::Chain;
use crate::overlay::{Overlay, Receipt};
use crate::state::{ChainMeta, StateReader};
use crate::tx::{SignedValidatorTx, ValidatorTxKind};
use bitcoin::Amount;

impl<S: StateReader> Overlay<'_, S> {
    /// A validator transaction (signature already checked): valid only at its own height, from a validator.
    pub(crate) fn apply_validator_tx(
        &mut self,
        chain: &Chain,
        signed: &SignedValidatorTx,
        meta: &ChainMeta,
        prev_anchor: &BtcAnchor,
    ) -> Result<Receipt, TxError> {
        let tx = &signed.tx;
        let n = crate::federation::federation_state(chain, self)?.in_force().validators.len();
        if tx.validator.as_usize() >= n {
            return Err(TxError::UnknownValidator { validator: tx.validator, validators: n });
        }
        if tx.height != meta.height {
            return Err(TxError::ValidatorTxWrongHeight { tx_height: tx.height, block: meta.height });
        }
        match &tx.kind {
            ValidatorTxKind::ReportReorg { .. } | ValidatorTxKind::ResumePeg { .. } => {
                self.apply_halt_vote(chain, tx, prev_anchor)?
            }
            ValidatorTxKind::FeeRateVote { sat_per_vb } => {
                self.apply_fee_rate_vote(tx.validator, tx.height, *sat_per_vb)?
            }
        }
        Ok(Receipt { txid: signed.txid(), sender: None, fee: Amount::ZERO })
    }
}
