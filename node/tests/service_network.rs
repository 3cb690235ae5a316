//! Four validators and a full node as services in one process: real libp2p sockets on loopback, real
//! RocksDB in temporary datadirs. They must produce blocks, commit a transfer everywhere with one state
//! root, and a full node must sync and follow. (Separate processes with kill -9 are in `testnet`.)

use bitcoin::Amount;
use ledger::{Genesis, GenesisValidator, InitialAccount, Params, UserTx, UserTxKind};
use node::keys::NodeKeys;
use node::mempool::MempoolError;
use node::service::{self, CommandError, NodeStatus, ServiceConfig, ServiceHandle};
use primitives::{Height, Keypair};
use std::time::Duration;
use tokio::sync::oneshot;

fn fast_consensus() -> consensus::Config {
    consensus::Config {
        propose_ms: 800,
        propose_delta_ms: 200,
        prevote_ms: 400,
        prevote_delta_ms: 200,
        precommit_ms: 400,
        precommit_delta_ms: 200,
        ..Default::default()
    }
}

fn user() -> Keypair {
    Keypair::from_secret([42; 32])
}

fn genesis(keys: &[NodeKeys]) -> Genesis {
    Genesis {
        chain_id: "service-test".into(),
        genesis_time_ms: 1_700_000_000_000,
        btc_anchor: Default::default(),
        validators: keys
            .iter()
            .map(|k| GenesisValidator {
                consensus_key: k.consensus_public(),
                peg_key: k.peg_public(),
                p2p_addr: "/ip4/127.0.0.1/tcp/0".into(),
                power: 1,
            })
            .collect(),
        params: Params::default(),
        emergency: None,
        initial_accounts: vec![InitialAccount {
            account: user().public().account_id(),
            balance: Amount::from_sat(1_000_000),
        }],
        custody: Default::default(),
    }
}

struct Running {
    handle: ServiceHandle,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), service::ServiceError>>,
    _dir: tempfile::TempDir,
}

async fn start_node(keys: NodeKeys, g: &Genesis, bootstrap: Vec<net::Multiaddr>) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ServiceConfig {
        datadir: dir.path().to_path_buf(),
        genesis: g.clone(),
        keys,
        p2p_listen: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
        bootstrap,
        consensus: fast_consensus(),
        mempool: Default::default(),
        status_interval: Duration::from_millis(500),
        max_future_block_ms: 30_000,
        faults: Default::default(),
        bitcoind: None,
        btc_poll_interval: std::time::Duration::from_millis(200),
        fee_rate_floor_sat_vb: 0,
        history: node::chain::HistoryIndex::On,
    };
    let (svc, handle) = service::start(cfg).await.expect("service starts");
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(svc.run(async move {
        let _ = rx.await;
    }));
    Running { handle, stop: Some(stop), task, _dir: dir }
}

fn addr_of(s: &NodeStatus) -> net::Multiaddr {
    format!("{}/p2p/{}", s.listen_addrs[0], s.peer_id).parse().expect("multiaddr")
}

async fn wait_for<F: Fn(&NodeStatus) -> bool>(what: &str, h: &ServiceHandle, bound: Duration, cond: F) {
    let mut rx = h.watch();
    let res = tokio::time::timeout(bound, async {
        loop {
            if cond(&rx.borrow_and_update()) {
                return;
            }
            if rx.changed().await.is_err() {
                panic!("service stopped while waiting for {what}");
            }
        }
    })
    .await;
    if res.is_err() {
        panic!("timed out after {bound:?} waiting for {what}; status {:?}", h.status());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_commit_a_transfer_and_a_late_full_node_syncs() {
    let keys: Vec<NodeKeys> = (0..4).map(|i| NodeKeys::from_seed(format!("v{i}").as_bytes())).collect();
    let g = genesis(&keys);
    let mut nodes: Vec<Running> = Vec::new();
    for k in &keys {
        let boot: Vec<_> = nodes.iter().map(|n| addr_of(&n.handle.status())).collect();
        nodes.push(start_node(k.clone(), &g, boot).await);
    }
    for n in &nodes {
        wait_for("height 3", &n.handle, Duration::from_secs(60), |s| s.height >= Height(3)).await;
    }

    // A transfer submitted to one validator is committed, and everybody agrees on the result.
    let to = Keypair::from_secret([7; 32]).public().account_id();
    let tx = UserTx {
        signer: user().public(),
        nonce: 0,
        fee: Amount::from_sat(100),
        kind: UserTxKind::Transfer { to, amount: Amount::from_sat(5_000) },
    }
    .sign(&user(), nodes[0].handle.chain().genesis_hash());
    nodes[1].handle.submit_tx(tx.clone()).await.expect("mempool accepts");
    let again = nodes[1].handle.submit_tx(tx).await.expect_err("duplicate refused");
    assert!(matches!(again, CommandError::Mempool(MempoolError::Duplicate(_))), "{again}");
    for n in &nodes {
        let h = &n.handle;
        tokio::time::timeout(Duration::from_secs(60), async {
            while h.account(&to).expect("read").balance != Amount::from_sat(5_000) {
                let mut rx = h.watch();
                let _ = rx.changed().await;
            }
        })
        .await
        .expect("transfer committed on every validator");
    }

    // A full node (key not in the genesis) started late syncs from genesis and then follows.
    let tip_before = nodes[0].handle.status().height;
    let boot: Vec<_> = nodes.iter().map(|n| addr_of(&n.handle.status())).collect();
    let full = start_node(NodeKeys::from_seed(b"full"), &g, boot).await;
    assert_eq!(full.handle.status().validator_index, None);
    wait_for("full node synced", &full.handle, Duration::from_secs(60), |s| s.height >= tip_before).await;
    let target = full.handle.status().height.next().next();
    wait_for("full node follows", &full.handle, Duration::from_secs(60), |s| s.height >= target).await;
    assert_eq!(full.handle.account(&to).expect("read").balance, Amount::from_sat(5_000));

    // Same block hash at a common height on every node.
    let common = full.handle.status().height;
    for n in &nodes {
        wait_for("common height", &n.handle, Duration::from_secs(30), |s| s.height >= common).await;
    }
    let hash_at = |h: &ServiceHandle| h.store().block(common).expect("read").expect("present");
    let reference = hash_at(&full.handle);
    for n in &nodes {
        assert_eq!(hash_at(&n.handle), reference, "same block at height {common}");
    }

    for mut n in nodes.into_iter().chain(std::iter::once(full)) {
        if let Some(s) = n.stop.take() {
            let _ = s.send(());
        }
        n.task.await.expect("join").expect("clean stop");
    }
}
