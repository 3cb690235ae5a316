//! `getbitcoinview` for `sidechaind`: what this node's bitcoind shows, read from the follower's latest
//! snapshot ([`ServiceHandle::btc_snapshot`]) and the state at the tip, never from a call to bitcoind (an
//! RPC answer must not wait on a slow bitcoind).
//!
//! A deposit is "in flight" when the snapshot's scan of the BTC blocks above the anchor shows it paying a
//! registered deposit script and the ledger has no record of it yet; its confirmations count on this
//! bitcoind's best height. It leaves the list in the block that mints it.

use crate::service::ServiceHandle;
use ledger::{Snapshot, StateReader};
use rpc::backend::BackendError;
use rpc::types::{ledger_outpoint, BitcoinViewInfo, BitcoindState, DepositInFlight};

fn storage<E: std::error::Error + Send + Sync + 'static>(e: E) -> BackendError {
    BackendError::storage(e)
}

/// The view at the tip.
pub fn bitcoin_view(handle: &ServiceHandle) -> Result<BitcoinViewInfo, BackendError> {
    let chain = handle.chain();
    let state = Snapshot::new(&**handle.store(), handle.status().height.get());
    let anchor = state.chain_meta().map_err(storage)?.map(|m| m.btc_anchor).unwrap_or(chain.genesis().btc_anchor);
    let anchor_height = anchor.height.get();
    let required = chain.params().pegin_confirmations;
    let Some(snap) = handle.btc_snapshot() else {
        return Ok(BitcoinViewInfo::without_bitcoind(anchor_height, required));
    };
    let Some(best) = snap.best else {
        return Ok(BitcoinViewInfo {
            bitcoind: BitcoindState::Unreachable,
            ..BitcoinViewInfo::without_bitcoind(anchor_height, required)
        });
    };
    let mut deposits = Vec::new();
    for (height, block) in &snap.deposits {
        for d in &block.scan.deposits {
            if state.get_pegin(&ledger_outpoint(&d.outpoint)).map_err(storage)?.is_some() {
                continue;
            }
            deposits.push(DepositInFlight {
                outpoint: d.outpoint.to_string(),
                recipient: primitives::AccountId(primitives::Hash32(d.recipient)),
                amount: d.amount,
                btc_height: *height,
                btc_block_hash: block.hash.to_string(),
                confirmations: best.saturating_sub(*height).saturating_add(1),
            });
        }
    }
    Ok(BitcoinViewInfo {
        bitcoind: BitcoindState::Ok,
        best_height: Some(best),
        anchor_height,
        lag_blocks: Some(best.saturating_sub(anchor_height)),
        confirmations_required: required,
        deposits,
    })
}
