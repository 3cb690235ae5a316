//! Shared helpers for the integration tests: start nodes on loopback, wait for events with a bound.
#![allow(dead_code)]

use std::time::Duration;

use sidechain_net::{Backoff, Keypair, Multiaddr, NetConfig, NetEvent, NetHandle, Network, PeerId, Started};
use tokio::sync::mpsc;

/// The topic the tests gossip on.
pub const TOPIC: &str = "votes";

/// Upper bound for anything that should happen "soon" on loopback.
pub const BOUND: Duration = Duration::from_secs(15);

/// How long to watch for something that must not happen (several heartbeats).
pub const QUIET: Duration = Duration::from_millis(800);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

pub struct Node {
    pub handle: NetHandle,
    pub events: mpsc::Receiver<NetEvent>,
    pub id: PeerId,
    pub addr: Multiaddr,
    pub keypair: Keypair,
}

/// A config tuned for fast tests: short heartbeat and re-dial backoff, one topic.
pub fn test_config(keypair: Keypair, listen: Multiaddr, bootstrap: Vec<Multiaddr>) -> NetConfig {
    let mut cfg = NetConfig::new(keypair, listen);
    cfg.bootstrap = bootstrap;
    cfg.topics = vec![TOPIC.to_owned()];
    cfg.heartbeat = Duration::from_millis(100);
    cfg.redial = Backoff { min: Duration::from_millis(100), max: Duration::from_secs(1) };
    cfg.request_timeout = Duration::from_secs(5);
    cfg
}

pub async fn start(cfg: NetConfig) -> Node {
    let keypair = cfg.keypair.clone();
    let Started { handle, events, local_peer_id, listen_addrs } = Network::start(cfg).await.expect("network starts");
    Node { handle, events, id: local_peer_id, addr: listen_addrs[0].clone(), keypair }
}

/// Starts a node on an ephemeral loopback port with `bootstrap` peers and a config tweak.
pub async fn node_with(bootstrap: Vec<Multiaddr>, tweak: impl FnOnce(&mut NetConfig)) -> Node {
    let mut cfg = test_config(Keypair::generate_ed25519(), "/ip4/127.0.0.1/tcp/0".parse().unwrap(), bootstrap);
    tweak(&mut cfg);
    start(cfg).await
}

pub async fn node(bootstrap: Vec<Multiaddr>) -> Node {
    node_with(bootstrap, |_| {}).await
}

/// Waits (bounded) for the first event `f` maps to `Some`, discarding the others.
pub async fn wait_for<T>(
    events: &mut mpsc::Receiver<NetEvent>,
    what: &str,
    mut f: impl FnMut(NetEvent) -> Option<T>,
) -> T {
    let fut = async {
        loop {
            let ev = events.recv().await.expect("event channel open");
            if let Some(t) = f(ev) {
                return t;
            }
        }
    };
    tokio::time::timeout(BOUND, fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Asserts that during `QUIET` no event matches `f`.
pub async fn assert_quiet(events: &mut mpsc::Receiver<NetEvent>, what: &str, mut f: impl FnMut(&NetEvent) -> bool) {
    let fut = async {
        while let Some(ev) = events.recv().await {
            if f(&ev) {
                panic!("unexpected {what}: {ev:?}");
            }
        }
    };
    let _ = tokio::time::timeout(QUIET, fut).await;
}

pub async fn connected_to(node: &mut Node, peer: PeerId) {
    wait_for(&mut node.events, "peer connected", |ev| match ev {
        NetEvent::PeerConnected(p, _) if p == peer => Some(()),
        _ => None,
    })
    .await
}

/// Polls `handle.peers()` until `pred` holds.
pub async fn until_peers(handle: &NetHandle, what: &str, pred: impl Fn(&[sidechain_net::PeerInfo]) -> bool) {
    let fut = async {
        loop {
            if pred(&handle.peers().await.expect("network running")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(BOUND, fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Publishes, retrying (bounded) while gossipsub does not yet know a subscribed peer.
pub async fn publish(handle: &NetHandle, data: &[u8]) {
    let fut = async {
        loop {
            match handle.publish(TOPIC, data.to_vec()).await {
                Ok(_) => return,
                Err(sidechain_net::NetError::Publish { .. }) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("publish failed: {e}"),
            }
        }
    };
    tokio::time::timeout(BOUND, fut).await.expect("timed out publishing")
}

/// Waits (bounded) for a gossip with exactly `data`; returns (msg_id, source).
pub async fn gossip(node: &mut Node, data: &[u8]) -> (sidechain_net::MessageId, PeerId) {
    wait_for(&mut node.events, "gossip", |ev| match ev {
        NetEvent::Gossip { msg_id, source, data: d, .. } if d == data => Some((msg_id, source)),
        _ => None,
    })
    .await
}
