//! Peer management: bans past the score threshold, and bootstrap peers re-dialed after a restart.

mod common;

use common::*;
use sidechain_net::{NetEvent, Network};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_penalized_past_threshold_is_disconnected_and_refused() {
    init_tracing();
    let mut b = node(vec![]).await;
    // A keeps re-dialing B (bootstrap): the ban must hold against that.
    let mut a = node(vec![b.addr.clone()]).await;
    connected_to(&mut b, a.id).await;

    // Default scoring: 25 points per penalty, ban at 100.
    for _ in 0..3 {
        b.handle.penalize(a.id, "test misbehaviour").unwrap();
    }
    until_peers(&b.handle, "a penalized to -75", |p| p.iter().any(|i| i.peer_id == a.id && i.score == -75)).await;
    b.handle.penalize(a.id, "test misbehaviour").unwrap();
    wait_for(&mut b.events, "a disconnected at b", |ev| match ev {
        NetEvent::PeerDisconnected(p) if p == a.id => Some(()),
        _ => None,
    })
    .await;
    wait_for(&mut a.events, "b disconnected at a", |ev| match ev {
        NetEvent::PeerDisconnected(p) if p == b.id => Some(()),
        _ => None,
    })
    .await;
    assert_quiet(
        &mut b.events,
        "banned peer reconnecting",
        |ev| matches!(ev, NetEvent::PeerConnected(p, _) if *p == a.id),
    )
    .await;
    assert!(b.handle.peers().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_bootstrap_peer_is_redialed() {
    init_tracing();
    let b = node(vec![]).await;
    let mut a = node(vec![b.addr.clone()]).await;
    connected_to(&mut a, b.id).await;

    let (b_keypair, b_addr, b_id) = (b.keypair.clone(), b.addr.clone(), b.id);
    b.handle.shutdown().await;
    drop(b);
    wait_for(&mut a.events, "b gone", |ev| match ev {
        NetEvent::PeerDisconnected(p) if p == b_id => Some(()),
        _ => None,
    })
    .await;

    // Same identity, same port; A must find it again on its own.
    let cfg = test_config(b_keypair, b_addr.clone(), vec![]);
    let mut b2 = start_retrying(cfg).await;
    assert_eq!(b2.addr, b_addr);
    connected_to(&mut a, b_id).await;
    connected_to(&mut b2, a.id).await;
    // The new connection carries traffic.
    let mut b2_events = b2.events;
    tokio::spawn(async move {
        while let Some(ev) = b2_events.recv().await {
            if let NetEvent::Request { respond, .. } = ev {
                let _ = respond.send(b"back".to_vec());
            }
        }
    });
    assert_eq!(a.handle.request(b_id, b"up?".to_vec()).await.unwrap(), b"back");
}

/// Binding the old port can race the old listener's teardown; retry (bounded).
async fn start_retrying(cfg: sidechain_net::NetConfig) -> Node {
    let fut = async {
        loop {
            match Network::start(cfg.clone()).await {
                Ok(s) => {
                    return Node {
                        handle: s.handle,
                        events: s.events,
                        id: s.local_peer_id,
                        addr: s.listen_addrs[0].clone(),
                        keypair: cfg.keypair.clone(),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "restart failed, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    };
    tokio::time::timeout(BOUND, fut).await.expect("restart on the same port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_peer_is_dropped_and_refused_until_the_isolation_is_lifted() {
    init_tracing();
    let mut b = node(vec![]).await;
    let mut c = node(vec![]).await;
    // A keeps re-dialing both (bootstrap): the isolation must hold against that, and only against B.
    let a = node(vec![b.addr.clone(), c.addr.clone()]).await;
    connected_to(&mut b, a.id).await;
    connected_to(&mut c, a.id).await;
    until_peers(&a.handle, "a connected to b and c", |p| p.len() == 2).await;

    a.handle.set_isolated([b.id].into_iter().collect()).unwrap();
    wait_for(&mut b.events, "a's link dropped at b", |ev| match ev {
        NetEvent::PeerDisconnected(p) if p == a.id => Some(()),
        _ => None,
    })
    .await;
    assert_quiet(
        &mut b.events,
        "isolated peer reconnecting",
        |ev| matches!(ev, NetEvent::PeerConnected(p, _) if *p == a.id),
    )
    .await;
    // B dialing A is refused by A (the handshake may complete before A drops it): the link does not stay.
    b.handle.dial(a.addr.clone()).unwrap();
    tokio::time::sleep(QUIET).await;
    until_peers(&b.handle, "b not linked to a", |p| p.iter().all(|i| i.peer_id != a.id)).await;
    let peers: Vec<_> = a.handle.peers().await.unwrap().into_iter().map(|p| p.peer_id).collect();
    assert_eq!(peers, vec![c.id], "only the link to b is cut");
    assert_quiet(&mut c.events, "c's link to a", |ev| matches!(ev, NetEvent::PeerDisconnected(p) if *p == a.id)).await;

    // Lifted: A re-dials B right away (no backoff built up while cut off).
    a.handle.set_isolated(Default::default()).unwrap();
    connected_to(&mut b, a.id).await;
    until_peers(&a.handle, "a connected to b and c again", |p| p.len() == 2).await;
}
