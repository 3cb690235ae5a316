//! Request-response: round trips, size caps on both sides, and both nodes working after a cap is hit.

mod common;

use common::*;
use sidechain_net::{NetError, NetEvent, NetHandle};
use tokio::sync::mpsc;

/// Answers every request: `big` gets a 4 KiB response, anything else is echoed.
fn serve(mut events: mpsc::Receiver<NetEvent>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let NetEvent::Request { data, respond, .. } = ev {
                let answer = if data == b"big" { vec![1u8; 4096] } else { data };
                let _ = respond.send(answer);
            }
        }
    })
}

async fn score_of(handle: &NetHandle, peer: sidechain_net::PeerId) -> i64 {
    handle.peers().await.unwrap().iter().find(|p| p.peer_id == peer).map(|p| p.score).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_round_trip_and_size_caps() {
    init_tracing();
    // B reads requests of at most 1 KiB; A reads responses of at most 1 KiB.
    let b = node_with(vec![], |c| c.max_request_bytes = 1024).await;
    let mut a = node_with(vec![b.addr.clone()], |c| c.max_response_bytes = 1024).await;
    connected_to(&mut a, b.id).await;
    let Node { handle: b_handle, events: b_events, id: b_id, .. } = b;
    let _b_server = serve(b_events);
    let Node { handle: a_handle, events: a_events, id: a_id, .. } = a;
    let _a_server = serve(a_events);

    assert_eq!(a_handle.request(b_id, b"hello".to_vec()).await.unwrap(), b"hello");

    // Oversized response: B sends 4 KiB, A's codec refuses it.
    let err = a_handle.request(b_id, b"big".to_vec()).await.unwrap_err();
    assert!(matches!(err, NetError::Request { peer, .. } if peer == b_id), "{err}");
    assert!(score_of(&a_handle, b_id).await < 0, "b scored down at a for an oversized response");

    // Oversized request for B's cap (within A's): B's codec refuses it, A sees an error.
    let err = a_handle.request(b_id, vec![0u8; 4096]).await.unwrap_err();
    assert!(matches!(err, NetError::Request { .. }), "{err}");
    // B notices on its own schedule; poll.
    until_peers(&b_handle, "a scored down at b for an oversized request", |p| {
        p.iter().any(|i| i.peer_id == a_id && i.score < 0)
    })
    .await;

    // Over A's own cap: refused locally, nothing sent.
    let err = a_handle.request(b_id, vec![0u8; 2 * sidechain_net::MIB]).await.unwrap_err();
    assert!(matches!(err, NetError::TooLarge { what: "request", .. }), "{err}");

    // Both keep working, in both directions.
    assert_eq!(a_handle.request(b_id, b"again".to_vec()).await.unwrap(), b"again");
    assert_eq!(b_handle.request(a_id, b"back".to_vec()).await.unwrap(), b"back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_to_unknown_peer_fails_fast() {
    init_tracing();
    let a = node(vec![]).await;
    let stranger = sidechain_net::PeerId::random();
    let err = a.handle.request(stranger, b"anyone?".to_vec()).await.unwrap_err();
    assert!(matches!(err, NetError::Request { peer, .. } if peer == stranger), "{err}");
}
