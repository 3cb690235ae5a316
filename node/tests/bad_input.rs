//! Issue 5's bad-input checks against real `sidechaind` processes: a hostile libp2p peer sends garbage,
//! oversized messages, forged votes, far-future heights and requests for unknown blocks; a user sends
//! transfers with a bad signature, a reused nonce and more than the balance. Each is refused with a clear
//! reason, every node keeps running and committing, and nothing stored changes.

use bitcoin::Amount;
use consensus::{Vote, VoteKind};
use ledger::{UserTx, UserTxKind};
use net::{NetConfig, NetEvent, Network, PeerId};
use node::wire::{self, Frame, Gossip, Request, Response, TOPIC_CONSENSUS, TOPIC_STATUS, TOPIC_TXS};
use primitives::{canonical_bytes, BlockId, GenesisHash, Hash32, Height, Keypair, Round, ValidatorIndex};
use rpc::client::SidechainApiClient;
use std::time::{Duration, Instant};
use testnet::federation::{Federation, FederationConfig};
use testnet::scenario::{Checks, Scenario};

fn user() -> Keypair {
    Keypair::from_secret([42; 32])
}

/// Publishes until some peer is subscribed to the topic (gossipsub refuses a publish with no peers).
async fn publish(net: &net::NetHandle, topic: &str, data: Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match net.publish(topic, data.clone()).await {
            Ok(_) => return,
            Err(e) => assert!(Instant::now() < deadline, "could not publish on {topic}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn frame(body: Gossip, resend: u32) -> Vec<u8> {
    wire::encode(&Frame { resend, body })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peer_and_bad_transfers_are_refused_and_nothing_changes() {
    let scenario = Scenario::begin("hostile_peer");
    let fed = Federation::start(FederationConfig {
        validators: 4,
        full_nodes: 0,
        initial_accounts: vec![(user().public().account_id().to_string(), 1_000_000)],
        ..Default::default()
    })
    .expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");
    let c0 = fed.nodes[0].client().expect("client");
    let info = c0.get_blockchain_info().await.expect("info");

    // --- Bad transfers over RPC: a clear reason each, and the account does not change. ---
    let before = c0.get_account(user().public().account_id(), None).await.expect("account");
    let to = Keypair::from_secret([7; 32]).public().account_id();
    let transfer = |nonce: u64, amount: u64| UserTx {
        signer: user().public(),
        nonce,
        fee: info.min_fee,
        kind: UserTxKind::Transfer { to, amount: Amount::from_sat(amount) },
    };
    let mut forged = transfer(0, 10).sign(&user(), &info.genesis_hash);
    forged.tx.nonce = 0;
    forged.tx.kind = UserTxKind::Transfer { to, amount: Amount::from_sat(999) };
    let too_much = transfer(0, 2_000_000).sign(&user(), &info.genesis_hash);
    let other_chain = transfer(0, 10).sign(&user(), &GenesisHash(Hash32([3; 32])));
    for (what, tx, expect) in [
        ("tampered amount", &forged, "signature"),
        ("signed for another chain", &other_chain, "signature"),
        ("more than the balance", &too_much, "balance"),
    ] {
        let err = c0.send_raw_transaction(hex::encode(canonical_bytes(tx))).await.expect_err(what);
        assert!(err.to_string().to_lowercase().contains(expect), "{what}: {err}");
    }
    let ok = transfer(0, 10).sign(&user(), &info.genesis_hash);
    c0.send_raw_transaction(hex::encode(canonical_bytes(&ok))).await.expect("a good transfer");
    let deadline = Instant::now() + Duration::from_secs(60);
    while c0.get_account(user().public().account_id(), None).await.expect("account").nonce == before.nonce {
        assert!(Instant::now() < deadline, "good transfer not committed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reused = transfer(0, 20).sign(&user(), &info.genesis_hash);
    let err = c0.send_raw_transaction(hex::encode(canonical_bytes(&reused))).await.expect_err("reused nonce");
    assert!(err.to_string().contains("nonce"), "reused nonce: {err}");
    let garbage = c0.send_raw_transaction("00ff11".into()).await.expect_err("garbage");
    assert!(garbage.to_string().contains("decode"), "garbage transaction: {garbage}");
    let after_user = c0.get_account(user().public().account_id(), None).await.expect("account");
    assert_eq!(after_user.balance, before.balance - Amount::from_sat(10) - info.min_fee, "only the good transfer");

    // --- A hostile peer on the p2p network. ---
    let key = net::Keypair::generate_ed25519();
    let mut cfg = NetConfig::new(key, "/ip4/127.0.0.1/tcp/0".parse().expect("addr"));
    let target: PeerId = fed.nodes[0].peer_id.parse().expect("peer id");
    cfg.bootstrap = vec![format!("/ip4/127.0.0.1/tcp/{}/p2p/{target}", fed.nodes[0].p2p_port).parse().expect("addr")];
    cfg.topics = vec![TOPIC_CONSENSUS.into(), TOPIC_TXS.into(), TOPIC_STATUS.into()];
    cfg.max_gossip_bytes = 16 * net::MIB;
    let started = Network::start(cfg).await.expect("attacker network");
    let attacker = started.handle.clone();
    let mut events = started.events;
    let (connected_tx, mut connected) = tokio::sync::mpsc::channel(4);
    let own = attacker.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                // Answer sync requests (provoked by the far-future vote) with garbage.
                NetEvent::Request { respond, .. } => {
                    let _ = respond.send(vec![0xde, 0xad, 0xbe, 0xef]);
                }
                NetEvent::Gossip { msg_id, source, .. } => {
                    let _ = own.report_validation(msg_id, source, net::Verdict::Ignore);
                }
                NetEvent::PeerConnected(p, _) => {
                    let _ = connected_tx.send(p).await;
                }
                NetEvent::PeerDisconnected(_) => {}
            }
        }
    });
    let peer = tokio::time::timeout(Duration::from_secs(30), connected.recv()).await.expect("connects").expect("peer");
    assert_eq!(peer, target);
    let me = started.local_peer_id.to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c0.get_peer_info().await.expect("peers").iter().any(|p| p.peer_id == me && p.score == 0) {
        assert!(Instant::now() < deadline, "the node does not list the new peer in good standing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Requests: an unknown block hash gets "not found"; garbage gets no answer and a penalty.
    let answer = attacker.request(target, wire::encode(&Request::GetBlock { hash: BlockId(Hash32([0xee; 32])) })).await;
    match wire::decode::<Response>(&answer.expect("an answer")) {
        Ok(Response::Block(None)) => {}
        other => panic!("unknown block: expected Block(None), got {other:?}"),
    }
    assert!(attacker.request(target, vec![0xff; 100]).await.is_err(), "garbage request answered");

    // Gossip: garbage, oversized, a forged vote, a far-future vote, a transfer with a bad signature.
    publish(&attacker, TOPIC_CONSENSUS, vec![0xab; 64]).await;
    publish(&attacker, TOPIC_CONSENSUS, vec![0xcd; 9 * net::MIB]).await;
    let tip = fed.nodes[0].height().await.expect("height");
    let forged_vote = Vote {
        kind: VoteKind::Prevote,
        height: Height(tip + 1),
        round: Round(0),
        value: Some(BlockId(Hash32([1; 32]))),
        validator: ValidatorIndex(0),
    }
    .sign(&Keypair::from_secret([9; 32]), &info.genesis_hash);
    publish(&attacker, TOPIC_CONSENSUS, frame(Gossip::Vote(forged_vote), 0)).await;
    let mut far = forged_vote;
    far.vote.height = Height(1_000_000);
    publish(&attacker, TOPIC_CONSENSUS, frame(Gossip::Vote(far), 0)).await;
    publish(&attacker, TOPIC_TXS, frame(Gossip::Tx(forged.clone()), 0)).await;
    publish(&attacker, TOPIC_STATUS, frame(Gossip::Status { height: Height(u64::MAX) }, 0)).await;

    // Sync requests all at once: past the peer's burst they are refused with `Busy` (nothing is read for
    // them), and a peer that keeps asking after refusals is scored down.
    let mut asks = tokio::task::JoinSet::new();
    for _ in 0..2 * node::sync_serve::BURST {
        let (net, req) = (attacker.clone(), wire::encode(&Request::GetBlocks { from: Height(1), max: 64 }));
        asks.spawn(async move { net.request(target, req).await });
    }
    let (mut served, mut busy) = (0, 0);
    while let Some(answer) = asks.join_next().await {
        match answer.expect("task").map(|a| wire::decode::<Response>(&a)) {
            Ok(Ok(Response::Blocks(_))) => served += 1,
            Ok(Ok(Response::Busy)) => busy += 1,
            other => panic!("a sync request got {other:?}"),
        }
    }
    println!("sync flood: {served} served, {busy} refused");
    assert!(busy > 0 && served <= node::sync_serve::BURST as usize + 8, "{served} served, {busy} refused");

    // Everyone keeps committing, on one chain, and the hostile peer is scored down or dropped.
    let h = fed.nodes[0].height().await.expect("height");
    fed.wait_height(&[0, 1, 2, 3], h + 3, Duration::from_secs(60)).await.expect("nodes keep committing");
    let reference = c0.get_block_hash(Height(h + 2)).await.expect("hash");
    for n in &fed.nodes {
        assert_eq!(n.client().expect("client").get_block_hash(Height(h + 2)).await.expect("hash"), reference);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let peers = c0.get_peer_info().await.expect("peers");
        match peers.iter().find(|p| p.peer_id == me) {
            None => break,
            Some(p) if p.score < 0 => break,
            Some(p) => assert!(Instant::now() < deadline, "hostile peer still in good standing: {p:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing the hostile peer sent changed state: the user's account is as the good transfer left it.
    let now_user = c0.get_account(user().public().account_id(), None).await.expect("account");
    assert_eq!((now_user.balance, now_user.nonce), (after_user.balance, after_user.nonce));
    assert!(c0.get_evidence().await.expect("evidence").is_empty(), "a forged vote is not evidence");
    let mut fed = fed;
    for n in &mut fed.nodes {
        assert!(n.process.is_running(), "{} stopped: {}", n.name, n.process.log_tail(20));
    }
    started.handle.shutdown().await;
    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}
