//! The demo `scripts/testnet --exit` runs, as a test: a user with only BTC pegs in through the real CLI
//! (deposit paid on regtest, N confirmations mined, minted exactly once), then pays a second user; every
//! node of a real federation agrees on balances, state roots and the reserve, and the CLI's JSON parses;
//! the second user pegs out to a BTC address and is paid exactly, once, by a key-path spend of the
//! federation's taproot outputs.

use std::time::Duration;
use testnet::demo::{self, DemoOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_pegin_transfer_and_pegout_reach_every_node_through_the_cli() {
    let opts = DemoOptions::default();
    let work = tempfile::tempdir().expect("tempdir");
    let (fed, report) = demo::run(&opts, work.path()).await.expect("demo runs");
    assert_eq!(report.nodes.len(), 5, "4 validators and a full node");
    let p = &report.pegin;
    assert_eq!(p.credited + p.fee, opts.deposit, "minted deposit - fee");
    assert!(p.minted_at >= p.confirmed_at && p.btc_height > 0, "{p:?}");
    assert_eq!(p.stages.last().map(|s| s.starts_with("minted")), Some(true), "{:?}", p.stages);
    let alice = opts.deposit - p.fee - opts.transfer - report.tx_fee;
    for (name, _, _, a, b) in &report.nodes {
        assert_eq!((*a, *b), (alice.to_sat(), opts.transfer.to_sat()), "{name}");
    }
    assert!(report.reserve.reserve_ok && report.reserve.btc_held == opts.deposit, "{:?}", report.reserve);
    assert!(report.tx_height > p.minted_at && report.commit_wall < Duration::from_secs(60));
    assert!(report.ok_line().starts_with("demo ok: 5 nodes agree"), "{}", report.ok_line());
    // Bob's peg-out: paid exactly on Bitcoin, nothing owed, the federation holds exactly the supply.
    let o = &report.pegout;
    assert_eq!(o.received, opts.pegout, "{o:?}");
    assert_eq!(o.stages.last().map(|s| s.starts_with("final")), Some(true), "{:?}", o.stages);
    assert!(o.broadcast_at >= o.burned_at && o.btc_height > p.btc_height, "{o:?}");
    let r = report.reserve_after_pegout;
    // Beyond the genesis allocation (Alice's registration fee), the federation holds exactly the supply.
    let genesis = ledger::Params::default().registration_fee;
    assert!(r.reserve_ok && r.btc_held + genesis == r.supply, "{r:?}");
    assert_eq!(r.btc_held, opts.deposit - opts.pegout - o.btc_fee);
    // Taproot custody: the peg-in fee is one key-path input (58 vB at 2 sat/vB) and the batch spends by key
    // path, one 64-byte signature an input.
    assert!(opts.taproot);
    assert_eq!(p.fee, bitcoin::Amount::from_sat(116));
    let raw: String = fed.bitcoinds[0].call("getrawtransaction", &[serde_json::json!(o.btc_txid)]).expect("batch");
    let tx: bitcoin::Transaction =
        bitcoin::consensus::deserialize(&hex::decode(raw).expect("hex")).expect("a transaction");
    assert!(tx.input.iter().all(|i| i.witness.len() == 1 && i.witness.iter().all(|w| w.len() == 64)), "{tx:?}");
    drop(fed);
}
