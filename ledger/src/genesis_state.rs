//! The state at height 0: [`Chain::genesis_state`] writes the initial accounts, the chain meta, the peg
//! totals and the genesis federation epoch.
//!
//! Why apart from `genesis.rs`: the genesis document and [`Chain`] sit low (everything reads the parameters),
//! but the first state is written with the records of higher modules (the federation state, the peg totals).
//! Inside `genesis.rs` it made the genesis depend on the federation and the federation on the genesis.

use crate::federation::FederationState;
use crate::genesis::Chain;
use crate::peg_records::PegTotals;
use crate::state::{build_write_set, Account, ChainMeta, StateError, StateKey, WriteSet};
use jmt::storage::TreeReader;
use primitives::{canonical_bytes, Height};

impl Chain {
    /// The state at genesis (version 0) as a write set over an empty store: the initial accounts and
    /// the chain meta (height 0, genesis time, genesis anchor).
    pub fn genesis_state<R: TreeReader>(&self, empty: &R) -> Result<WriteSet, StateError> {
        let meta = ChainMeta {
            height: Height(0),
            time_ms: self.genesis().genesis_time_ms,
            btc_anchor: self.genesis().btc_anchor,
        };
        let mut changes: Vec<(StateKey, Option<Vec<u8>>)> = self
            .genesis()
            .initial_accounts
            .iter()
            .map(|a| {
                let acct = Account { balance: a.balance, nonce: 0 };
                (StateKey::Account(a.account), Some(canonical_bytes(&acct)))
            })
            .collect();
        changes.push((StateKey::ChainMeta, Some(canonical_bytes(&meta))));
        changes.push((StateKey::PegTotals, Some(canonical_bytes(&genesis_totals(self)))));
        changes.push((StateKey::Federation, Some(canonical_bytes(&FederationState::genesis(self)))));
        changes.sort_by_key(|c| c.0);
        build_write_set(empty, 0, changes)
    }
}

/// The peg totals of a genesis: its initial balances are the whole supply; nothing is held yet.
pub(crate) fn genesis_totals(chain: &Chain) -> PegTotals {
    PegTotals { supply: chain.genesis_supply(), ..PegTotals::default() }
}
