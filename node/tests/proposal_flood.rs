//! Finding 3 of the adversarial review, end to end: one Byzantine validator of four floods signed junk
//! proposals (64 every status tick, for every round it proposes at the height being decided and the next).
//! Before the fix the shared proposal cap filled with its junk, the honest proposers' blocks were not kept,
//! and the chain stopped at the next height. Now proposals are kept per (height, round, proposer): the
//! chain keeps committing, the same blocks everywhere.

use std::time::{Duration, Instant};
use testnet::federation::{Federation, FederationConfig};
use testnet::scenario::{Checks, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_validator_flooding_junk_proposals_does_not_stop_the_chain() {
    let scenario = Scenario::begin("proposal_flood");
    let mut fed = Federation::start(FederationConfig {
        validators: 4,
        full_nodes: 0,
        node_toml: vec![(3, "[fault]\nflood_proposals = true".into())],
        env: vec![("RUST_LOG".into(), "info,libp2p=warn".into()), ("SIDECHAIND_ALLOW_FAULTS".into(), "1".into())],
        ..Default::default()
    })
    .expect("federation starts");
    let honest = [0, 1, 2];
    fed.wait_height(&honest, 1, Duration::from_secs(60)).await.expect("first blocks");
    let floods =
        |fed: &Federation| fed.nodes[3].process.log_tail(100_000).matches("FAULT: flooding junk proposals").count();
    // Twice: each time wait for more floods (every status tick, 2 s), then for heights past them.
    for step in 0..2 {
        let before = floods(&fed);
        let deadline = Instant::now() + Duration::from_secs(30);
        while floods(&fed) < before + 3 {
            assert!(Instant::now() < deadline, "validator 3 stopped flooding: {}", fed.nodes[3].process.log_tail(20));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut start = 0;
        for &i in &honest {
            start = start.max(fed.nodes[i].height().await.expect("height"));
        }
        fed.wait_height(&honest, start + 20, Duration::from_secs(120))
            .await
            .unwrap_or_else(|e| panic!("step {step}: the chain stopped at {start} under the flood: {e}"));
    }
    // The flooder signs several blocks for its own slots: evidence against it is expected, against
    // nobody else.
    let checks = Checks { honest_validators: Some(vec![0, 1, 2]), ..Default::default() };
    scenario.finish(&mut fed, checks).await.expect("closing checks");
}
