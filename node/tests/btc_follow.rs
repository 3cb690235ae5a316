//! The bitcoind follower against a real regtest bitcoind: registration churn and a pile of pending claims
//! (both anyone can send) must not keep the snapshot behind bitcoind's best. What is asserted is the order
//! of the work, not its speed: the chain facts of every poll are published before more than
//! `NEW_CLAIMS_PER_POLL` new claims per poll have been checked, so a flood of claims can never hold them back.

use bitcoin::hashes::Hash as _;
use node::bitcoin::{BitcoindAuth, BitcoindClient};
use node::btc_follow::{follow, BtcSnapshot, FollowConfig, NEW_CLAIMS_PER_POLL};
use node::pegin::{PegClaim, Registry};
use primitives::{AccountId, Height};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testnet::Bitcoind;
use tokio::sync::watch;

fn account(i: u32) -> AccountId {
    ledger::testkit::user_key(i).public().account_id()
}

/// Waits (bounded) for a snapshot that `done` accepts.
async fn wait_for(
    rx: &mut watch::Receiver<BtcSnapshot>,
    bound: Duration,
    done: impl Fn(&BtcSnapshot) -> bool,
) -> Option<BtcSnapshot> {
    let start = Instant::now();
    loop {
        {
            let s = rx.borrow_and_update();
            if done(&s) {
                return Some(s.clone());
            }
        }
        if tokio::time::timeout(bound.saturating_sub(start.elapsed()), rx.changed()).await.is_err() {
            return None;
        }
    }
}

fn verdicts(s: &BtcSnapshot) -> usize {
    s.claims.len() + s.rejected_claims.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_and_claims_do_not_keep_the_snapshot_behind_bitcoinds_best() {
    let btc = Bitcoind::start().expect("bitcoind starts");
    btc.mine(10).expect("mine"); // heights 0..=10
    let (url, user, password) = btc.rpc_credentials();
    let client = Arc::new(BitcoindClient::new(url, BitcoindAuth::UserPass { user, password }).expect("client"));
    let chain = ledger::Chain::new(ledger::testkit::genesis(4, 0, bitcoin::Amount::ZERO)).expect("genesis");
    let fs = ledger::FederationState::genesis(&chain);
    let accounts: Vec<AccountId> = (0..50).map(account).collect();
    let registry = Registry::new(&chain, &fs, Height(1), &accounts);
    // Many pending claims, each naming a real block (so each check fetches it) and a transaction not in it:
    // all are rejected, one check each.
    let at = client.block_hash(5).expect("block 5");
    let pending: Vec<PegClaim> = (0..200u32)
        .map(|n| PegClaim {
            outpoint: ledger::BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n as u8; 32]), vout: n },
            recipient: account(n),
            btc_block: at,
        })
        .collect();
    let (_anchor_tx, anchor) = watch::channel(0u32);
    let (registry_tx, registry_rx) = watch::channel(Arc::new(registry.clone()));
    let (_claims_tx, claims) = watch::channel(pending);
    let (_versions_tx, batch_versions) = watch::channel(Vec::new());
    let cfg = FollowConfig {
        anchor,
        registry: registry_rx,
        claims,
        batch_versions,
        max_step: 10,
        chain: chain.clone(),
        // Polls only when something changes: each registry change below is exactly one poll.
        interval: Duration::from_secs(3600),
    };
    let mut rx = follow(client, cfg);
    let first = wait_for(&mut rx, Duration::from_secs(60), |s| s.best == Some(10) && s.deposits.len() == 10)
        .await
        .expect("the first snapshot covers the window");
    assert!(
        verdicts(&first) <= NEW_CLAIMS_PER_POLL,
        "the chain facts went out before the claims were worked through ({} verdicts)",
        verdicts(&first)
    );

    // Registrations and a new BTC block each round: the snapshot follows at once, with the claims still
    // being worked through a bounded batch per poll.
    let mut reg = registry;
    for round in 0..3u32 {
        btc.mine(1).expect("mine");
        let best = 11 + round;
        reg.add(&chain, &(1_000 + round * 10..1_010 + round * 10).map(account).collect::<Vec<_>>());
        let version = reg.version;
        registry_tx.send(Arc::new(reg.clone())).expect("follower alive");
        let snap =
            wait_for(&mut rx, Duration::from_secs(30), |s| s.best == Some(best) && s.registry_version == version)
                .await
                .expect("the snapshot reached bitcoind's best with the new registrations");
        assert_eq!(snap.deposits.len(), 10, "the window is still fully indexed");
        assert!(
            verdicts(&snap) < 200,
            "round {round}: the snapshot did not wait for all 200 claims ({} verdicts)",
            verdicts(&snap)
        );
    }
    // And the claims are being worked through (bounded per poll), their verdicts published.
    let checked = wait_for(&mut rx, Duration::from_secs(60), |s| s.rejected_claims.len() >= NEW_CLAIMS_PER_POLL).await;
    assert!(checked.is_some(), "claim verdicts are published");
}
