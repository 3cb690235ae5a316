//! Issue 9, scenario 1: a validator killed at chosen points of its work and restarted from its disk:
//! with its precommit signed and in the WAL but not sent, right after sending it, just before and just
//! after the atomic write of a decided block (the `[fault] crash_point` switch aborts the process there,
//! as a kill -9 would), and by kill -9 from outside aimed at each step of a round. Each time it comes back,
//! catches up, and no node ever holds evidence against it (it never signs two different votes); the
//! runner's closing checks follow. The lock kept across a kill is `federation_processes`'s test.

use rpc::client::SidechainApiClient;
use std::time::{Duration, Instant};
use testnet::federation::{Federation, FederationConfig};
use testnet::process::{Health, Stopped};
use testnet::scenario::{Checks, Scenario};

const VICTIM: usize = 1;

fn crash_toml(point: &str, height: u64) -> String {
    format!("[fault]\ncrash_point = \"{point}\"\ncrash_height = {height}\n")
}

/// Waits (bounded) until the victim exits by itself, and checks it died where it was told to.
fn wait_crash(fed: &mut Federation, point: &str) {
    let node = &mut fed.nodes[VICTIM];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match node.process.health() {
            Health::Running => {}
            Health::Stopped(Stopped::Exited(_)) => break,
            other => panic!("{} is {other:?}, expected it to crash at {point}", node.name),
        }
        assert!(Instant::now() < deadline, "{} did not reach crash point {point}", node.name);
        std::thread::sleep(Duration::from_millis(50));
    }
    let tail = node.process.log_tail(40);
    assert!(tail.contains("crash point reached"), "{} died elsewhere than {point}:\n{tail}", node.name);
}

async fn tip(fed: &Federation) -> u64 {
    let mut top = 0;
    for (i, n) in fed.nodes.iter().enumerate() {
        if i != VICTIM {
            top = top.max(n.height().await.unwrap_or(0));
        }
    }
    top
}

async fn assert_no_evidence_against_victim(fed: &Federation, after: &str) {
    for (i, n) in fed.nodes.iter().enumerate() {
        if i == VICTIM {
            continue;
        }
        let ev = n.client().expect("client").get_evidence().await.expect("evidence");
        assert!(
            ev.iter().all(|e| e.offender.get() as usize != VICTIM),
            "{} holds evidence against the victim after {after}: {ev:?}",
            n.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_killed_at_each_crash_point_restarts_catches_up_and_never_double_signs() {
    let scenario = Scenario::begin("crash_points");
    let mut fed = Federation::start(FederationConfig {
        validators: 4,
        full_nodes: 0,
        node_toml: vec![(VICTIM, crash_toml("precommit_persisted", 3))],
        env: vec![("RUST_LOG".into(), "info,libp2p=warn".into()), ("SIDECHAIND_ALLOW_FAULTS".into(), "1".into())],
        ..Default::default()
    })
    .expect("federation starts");
    let datadir = fed.nodes[VICTIM].datadir.clone();
    let points = ["precommit_persisted", "precommit_sent", "before_commit_write", "after_commit_write"];
    for (k, point) in points.iter().enumerate() {
        wait_crash(&mut fed, point);
        // The closing checks would call this a crash: the test owns it, so it restarts it below.
        let seen = testnet::scenario::processes_alive(&mut fed);
        assert!(matches!(seen, Err(testnet::scenario::ScenarioError::Crashed { .. })), "{seen:?}");
        // The others go on without it; then it restarts, armed for the next point a few heights on.
        let h = tip(&fed).await;
        fed.wait_height(&[0, 2, 3], h + 1, Duration::from_secs(60)).await.expect("three validators go on");
        let next = match points.get(k + 1) {
            Some(p) => crash_toml(p, tip(&fed).await + 3),
            None => String::new(),
        };
        fed.write_config(&datadir, &next).expect("config");
        fed.nodes[VICTIM].process.restart().expect("restart");
        let h = tip(&fed).await;
        if next.is_empty() {
            fed.wait_height(&[VICTIM], h, Duration::from_secs(60)).await.expect("the victim catches up");
        }
        assert_no_evidence_against_victim(&fed, point).await;
    }

    // kill -9 from outside, aimed at each step of a round: the RPC is polled as fast as it answers and the
    // kill follows the first answer in that step (on an idle chain most of a height is the proposer's
    // wait, so without aiming every kill lands in `propose`). Where it lands is printed; if a step is never
    // seen within the bound the kill goes ahead anyway, since what is checked is the restart.
    for aim in ["prevote", "precommit", "propose"] {
        let c = fed.nodes[VICTIM].client().expect("client");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = String::new();
        while Instant::now() < deadline {
            if let Ok(s) = c.get_consensus_state().await {
                seen = format!("height {} round {} {}", s.height, s.round, s.step);
                if s.step == aim {
                    break;
                }
            }
        }
        fed.nodes[VICTIM].process.kill9();
        println!("crash_points: kill -9 aimed at {aim}, last seen in {seen}");
        fed.nodes[VICTIM].process.restart().expect("restart");
        let h = tip(&fed).await;
        fed.wait_height(&[VICTIM], h + 1, Duration::from_secs(60)).await.expect("the victim catches up");
        assert_no_evidence_against_victim(&fed, &format!("kill -9 in {seen}")).await;
    }

    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}
