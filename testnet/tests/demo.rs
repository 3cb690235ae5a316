//! The demo `scripts/testnet --exit` runs, as a test: a user's transfer through the real CLI reaches every
//! node of a real federation, balances and state roots agree, and the CLI's JSON output parses.

use std::time::Duration;
use testnet::demo::{self, DemoOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_transfer_reaches_every_node_through_the_cli() {
    let opts = DemoOptions::default();
    let work = tempfile::tempdir().expect("tempdir");
    let (fed, report) = demo::run(&opts, work.path()).await.expect("demo runs");
    assert_eq!(report.nodes.len(), 5, "4 validators and a full node");
    for (name, _, _, alice, bob) in &report.nodes {
        assert_eq!(*bob, opts.transfer_sats, "{name}");
        assert!(*alice < opts.alice_sats - opts.transfer_sats, "{name}: alice paid amount and fee");
    }
    assert!(report.tx_height >= 1 && report.commit_wall < Duration::from_secs(60));
    assert!(report.ok_line().starts_with("demo ok: 5 nodes agree"), "{}", report.ok_line());
    drop(fed);
}
