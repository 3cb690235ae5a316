//! The event loop's state, one struct every handler borrows from ([`super::start`] builds it), and the
//! effects every handler carries out the same way: publishing gossip, signing and sharing, admitting a
//! transaction, the test-only crash points.
//!
//! Why a file of its own, below the handlers: the loop (`service.rs`) hands events to handlers split by
//! concern (`commands`, `commit`, `status`), and each of them reaches this state and these effects. With the
//! state here, data flows one way (loop -> handlers -> state) and no file reaches back up to the loop.

use super::consensus_host::ConsensusHost;
use super::handle::{Command, NodeStatus, PegSummary, ServiceConfig};
use super::sync::SyncDriver;
use crate::bridge::{BatchSigner, PegDuties};
use crate::chain::ChainState;
use crate::mempool::{Mempool, MempoolError};
use crate::wire::{self, Frame, Gossip, TOPIC_TXS};
use ledger::SignedUserTx;
use net::{NetEvent, NetHandle};
use primitives::{Height, TxId, ValidatorIndex};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error};

/// The event loop's state: every component it owns, and what the status reports.
pub struct State {
    pub(super) cfg: ServiceConfig,
    pub(super) chain: ChainState,
    pub(super) host: ConsensusHost,
    /// The peer book, sync requests and serving (see [`super::sync`]).
    pub(super) sync: SyncDriver,
    pub(super) mempool: Mempool,
    pub(super) net: NetHandle,
    pub(super) blocks: tokio::sync::broadcast::Sender<ledger::Block>,
    pub(super) net_events: Option<mpsc::Receiver<NetEvent>>,
    pub(super) commands: Option<mpsc::Receiver<Command>>,
    pub(super) status: watch::Sender<NodeStatus>,
    /// This node's peer id and listen addresses, as the status shows them (formatted once: the status is
    /// rebuilt after every event, and base58 formatting showed in the profile).
    pub(super) peer_id: String,
    pub(super) listen_addrs: Vec<String>,
    pub(super) validator_index: Option<ValidatorIndex>,
    pub(super) synced_blocks: u64,
    pub(super) tip_committed_ms: u64,
    /// Test-only: junk proposals sent so far (`[fault] flood_proposals`), to make each batch new content.
    pub(super) flood_batches: u64,
    /// When the tip was committed here (monotonic).
    pub(super) tip_committed_at: Instant,
    /// The last block kept with the WAL (`Store::wal_keep_block`): a lock and a valid value usually name
    /// the block just kept, which need not be written again.
    pub(super) wal_kept: Option<primitives::BlockId>,
    /// The peg at the tip, for the status (see [`PegDuties::summary`]).
    pub(super) peg_summary: PegSummary,
    /// This validator's peg duties: anchor moves, mints, claims, objections (see [`crate::bridge`]).
    pub(super) duties: PegDuties,
    /// This validator's peg-out signing (see [`crate::bridge::signing`]).
    pub(super) signer: BatchSigner,
    /// Alerts, and the peg-out queue's wait at the tip (recomputed when the tip moves).
    pub(super) alerts: (crate::alerts::AlertTracker, Height, Option<ledger::pegout_wait::PegOutWait>),
    /// Signature shares and federation changes waiting for a block.
    pub(super) fed_pool: crate::fed_pool::FedPool,
}

impl State {
    /// Test-only: dies here if this is the configured crash point (see [`crate::fault::CrashPoint`]).
    pub(super) fn crash_point(&self, point: crate::fault::CrashPoint, height: Height) {
        crate::fault::maybe_crash(self.cfg.faults.crash_point, self.cfg.faults.crash_height, point, height.get());
    }

    pub(super) fn spawn_publish(&self, topic: &'static str, body: Gossip) {
        self.spawn_publish_frame(topic, Frame { resend: 0, body });
    }

    pub(super) fn spawn_publish_frame(&self, topic: &'static str, frame: Frame) {
        let data = wire::encode(&frame);
        let net = self.net.clone();
        tokio::spawn(async move {
            match net.publish(topic, data).await {
                Ok(_) => {}
                // Out already (ours or a peer's copy, within gossip's duplicate window): nothing to do.
                Err(net::NetError::Duplicate { .. }) => {}
                // With no peer subscribed yet publishing fails; consensus re-sends on later rounds.
                Err(e) => debug!(topic, error = %e, "publish failed"),
            }
        });
    }

    /// Signs what is ours to sign at the tip and hands new shares to the pool and the network. Our shares stay
    /// in our pool until a block has them, and we include them ourselves when we propose.
    /// Nothing while an operator has paused signing.
    pub(super) fn sign_and_share(&mut self) {
        let shares = self.signer.shares_to_sign(&self.chain);
        let state = self.chain.state();
        for share in shares {
            let tx = ledger::Tx::PegShare(share);
            match self.fed_pool.admit(self.chain.chain(), &state, tx.clone()) {
                Ok(true) => self.spawn_publish(TOPIC_TXS, Gossip::Fed(tx)),
                // Known already and gossiped when it was new (gossipsub drops a second identical message).
                Ok(false) => {}
                Err(e) => error!(error = %e, "our own signature share does not apply"),
            }
        }
        let frost = self.signer.frost_messages(&self.chain);
        let commitments = frost.iter().any(|(f, sent)| *sent == 0 && matches!(f.round, ledger::FrostRound::Commit(_)));
        for (message, resend) in frost {
            let tx = ledger::Tx::Frost(message);
            match self.fed_pool.admit(self.chain.chain(), &state, tx.clone()) {
                Ok(true) => self.spawn_publish(TOPIC_TXS, Gossip::Fed(tx)),
                // Not on chain yet a block later: out again as a new frame (gossip drops a repeated one), for
                // peers that refused it while a block behind or had no room.
                Ok(false) => self.spawn_publish_frame(TOPIC_TXS, Frame { resend, body: Gossip::Fed(tx) }),
                Err(e) => error!(error = %e, "our own FROST message does not apply"),
            }
        }
        self.signer.frost_sent(&self.chain, commitments);
    }

    /// Drops this validator's shares from the federation pool (signing paused); how many.
    pub(super) fn drop_own_shares(&mut self) -> usize {
        let state = self.chain.state();
        let (signer, chain) = (&self.signer, &self.chain);
        self.fed_pool.drop_shares(|s| signer.is_own_share(chain, &state, s))
    }

    pub(super) fn admit_tx(&mut self, tx: SignedUserTx) -> Result<TxId, MempoolError> {
        let state = self.chain.state();
        self.mempool.add(self.chain.chain(), &state, tx)
    }
}
