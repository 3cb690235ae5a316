//! Opening the node: the chain and its store, the consensus core, the network, the Bitcoin follower and
//! the peg components, wired to the channels the service's handle reads.

use super::consensus_host::ConsensusHost;
use super::handle::{NodeStatus, PegSummary, ServiceConfig, ServiceError, ServiceHandle};
use super::proposer::now_ms;
use super::state::State;
use super::sync::SyncDriver;
use crate::bridge::{BatchSigner, FollowerLinks, PegDuties};
use crate::chain::{ChainError, ChainState};
use crate::mempool::Mempool;
use crate::storage::{Store, StoreError};
use crate::wire::{TOPIC_CONSENSUS, TOPIC_STATUS, TOPIC_TXS};
use consensus::Consensus;
use ledger::{Chain, StateReader};
use net::{NetConfig, Network};
use primitives::Height;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Opens the chain, starts the network and returns the loop's state (its status published once) with the
/// service's handle.
pub async fn open(cfg: ServiceConfig) -> Result<(State, ServiceHandle), ServiceError> {
    let chain = Chain::new(cfg.genesis.clone())?;
    std::fs::create_dir_all(&cfg.datadir)
        .map_err(|source| ServiceError::Store(StoreError::CreateDir { path: cfg.datadir.clone(), source }))?;
    let store = std::sync::Arc::new(Store::open(&cfg.datadir.join("db"))?);
    let chain = ChainState::open_with(chain, store, cfg.history)?;
    let validator_index = chain.validators().index_of(&cfg.keys.consensus_public());
    let signing = crate::breaker::SigningGuard::open(chain.store())?;
    // Always the key: the core signs only at heights whose set holds it, so a node that joins the federation
    // later (or leaves it) needs no restart.
    let core = Consensus::new(cfg.consensus.clone(), *chain.chain().genesis_hash(), Some(cfg.keys.consensus.clone()));
    let vote_faults = crate::fault::VoteFaults {
        equivocate: cfg.faults.equivocate,
        precommit_nil: cfg.faults.precommit_nil,
        key: (crate::fault::ENABLED && (cfg.faults.equivocate || cfg.faults.precommit_nil))
            .then(|| (cfg.keys.consensus.clone(), *chain.chain().genesis_hash())),
    };

    let libp2p_key =
        net::Keypair::ed25519_from_bytes(cfg.keys.consensus.secret_bytes()).map_err(net::NetError::Identity)?;
    let mut net_cfg = NetConfig::new(libp2p_key, cfg.p2p_listen.clone());
    net_cfg.bootstrap = cfg.bootstrap.clone();
    net_cfg.topics = vec![TOPIC_CONSENSUS.into(), TOPIC_TXS.into(), TOPIC_STATUS.into()];
    // A proposal carries its block: gossip must fit the largest block (see the note in wire.rs).
    let block_max = chain.chain().params().block_max_bytes as usize;
    net_cfg.max_gossip_bytes = block_max + 64 * 1024;
    net_cfg.max_response_bytes = (block_max + 64 * 1024).max(16 * net::MIB);
    let started = Network::start(net_cfg).await?;
    if let Some(path) = &cfg.faults.partition_file {
        crate::fault::follow_partition_file(path.clone(), started.handle.clone());
    }

    let tip_anchor = chain.state().chain_meta().map_err(ChainError::from)?.map(|m| m.btc_anchor).unwrap_or_default();
    let (anchor_height, anchor_rx) = watch::channel(tip_anchor.height.get());
    let registry = crate::pegin::Registry::new(
        chain.chain(),
        chain.federation(),
        chain.tip().next(),
        &chain.store().registered_accounts()?,
    );
    let (registry, registry_rx) = watch::channel(std::sync::Arc::new(registry));
    let (claims, claims_rx) = watch::channel(Vec::new());
    let (batch_versions, batch_versions_rx) = watch::channel(Vec::new());
    // Every node with a bitcoind follows it: a full node may join the federation later.
    let btc = match &cfg.bitcoind {
        Some(client) => {
            let follow = crate::btc_follow::FollowConfig {
                anchor: anchor_rx,
                registry: registry_rx,
                claims: claims_rx,
                batch_versions: batch_versions_rx,
                max_step: chain.chain().params().max_anchor_step,
                chain: chain.chain().clone(),
                interval: cfg.btc_poll_interval,
            };
            Some(crate::btc_follow::follow(client.clone(), follow))
        }
        None => None,
    };
    let signed_batches = match &cfg.bitcoind {
        Some(client) => {
            let (tx, rx) = watch::channel(Vec::new());
            crate::btc_follow::rebroadcast(client.clone(), rx, Duration::from_secs(5));
            Some(tx)
        }
        None => None,
    };
    let crash = crate::fault::CrashConfig { point: cfg.faults.crash_point, from_height: cfg.faults.crash_height };
    let frost = frost_signer(&cfg, crash);
    let signer = BatchSigner::new(signing, &cfg.keys, signed_batches, batch_versions, crash, frost);
    let links = FollowerLinks { btc, anchor_height, registry, claims };
    let duties = PegDuties::new(
        cfg.keys.clone(),
        links,
        cfg.fee_rate_floor_sat_vb,
        crate::fault::ENABLED && cfg.faults.omit_mints,
    );
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
    let (blocks_tx, _) = tokio::sync::broadcast::channel(256);
    let (status_tx, status_rx) = watch::channel(NodeStatus::default());
    let mut service = State {
        mempool: Mempool::new(cfg.mempool),
        cfg,
        chain,
        host: ConsensusHost::new(core, vote_faults),
        sync: SyncDriver::new(started.handle.clone()),
        net: started.handle.clone(),
        blocks: blocks_tx.clone(),
        net_events: Some(started.events),
        commands: Some(cmd_rx),
        status: status_tx,
        peer_id: started.local_peer_id.to_string(),
        listen_addrs: started.listen_addrs.iter().map(ToString::to_string).collect(),
        validator_index,
        synced_blocks: 0,
        tip_committed_ms: now_ms(),
        flood_batches: 0,
        tip_committed_at: Instant::now(),
        wal_kept: None,
        alerts: (crate::alerts::AlertTracker::new(Default::default()), Height(u64::MAX), None),
        peg_summary: PegSummary::default(),
        fed_pool: crate::fed_pool::FedPool::default(),
        duties,
        signer,
    };
    service.peg_summary = service.duties.summary(&service.chain);
    service.publish_status();
    let handle = ServiceHandle {
        commands: cmd_tx,
        status: status_rx,
        store: service.chain.store().clone(),
        chain: service.chain.chain().clone(),
        net: started.handle,
        blocks: blocks_tx,
        btc: service.duties.snapshot_receiver(),
    };
    Ok((service, handle))
}

/// Taproot custody: this validator's key-path signing, from its key share (checked against the genesis
/// group) and a fresh nonce store. `None` on a wsh chain, for a node that is no genesis validator or has no
/// key share (it warns at start), or when the nonce store cannot be written (logged: it then must not commit).
fn frost_signer(cfg: &ServiceConfig, crash: crate::fault::CrashConfig) -> Option<crate::bridge::frost::FrostSigner> {
    let share = match crate::ceremony::genesis_key_share(&cfg.genesis, &cfg.keys.peg_public(), &cfg.datadir) {
        Ok(share) => share?,
        Err(e) => {
            tracing::error!(error = %e, "FROST key share unusable: this validator will not sign by key path");
            return None;
        }
    };
    match crate::bridge::frost::NonceStore::open(&cfg.datadir) {
        Ok((nonces, destroyed)) => {
            if destroyed > 0 {
                tracing::info!(destroyed, "destroyed unused FROST nonces of an earlier run");
            }
            Some(crate::bridge::frost::FrostSigner::new(share, &cfg.keys, nonces, crash))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot open the FROST nonce store: this validator will not sign by key path");
            None
        }
    }
}
