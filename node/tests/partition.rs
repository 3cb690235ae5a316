//! Issue 9, scenario 2: a 2|2 network partition of four validator processes, made by dropping their
//! libp2p links (the `[fault] partition_file` switch; the transport drops and refuses the listed peers).
//! Neither side has 2f+1, so no block is committed and nothing forks while cut; healed, the links come
//! back and the chain moves again. Ends with the scenario runner's checks.

use rpc::client::SidechainApiClient;
use std::time::{Duration, Instant};
use testnet::federation::{Federation, FederationConfig};
use testnet::scenario::{Checks, Scenario};

async fn heights(fed: &Federation) -> Vec<u64> {
    let mut out = Vec::new();
    for n in &fed.nodes {
        out.push(n.height().await.expect("height"));
    }
    out
}

/// Polls until every node sees exactly the peers of its own side (bounded).
async fn wait_links(fed: &Federation, sides: &[&[usize]], bound: Duration) {
    let deadline = Instant::now() + bound;
    loop {
        let mut ok = true;
        let mut last = String::new();
        for side in sides {
            for &i in *side {
                let peers = fed.nodes[i].client().expect("client").get_peer_info().await.expect("peers");
                let mut ids: Vec<String> = peers.into_iter().map(|p| p.peer_id).collect();
                ids.sort();
                let mut want: Vec<String> =
                    side.iter().filter(|&&j| j != i).map(|&j| fed.nodes[j].peer_id.clone()).collect();
                want.sort();
                if ids != want {
                    ok = false;
                    last = format!("{} sees {} peers, wants {}", fed.nodes[i].name, ids.len(), want.len());
                }
            }
        }
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "links not as wanted within {bound:?}: {last}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_2_partition_commits_nothing_and_forks_nothing_and_heals() {
    let scenario = Scenario::begin("partition_2_2");
    let mut fed = Federation::start(FederationConfig {
        validators: 4,
        full_nodes: 0,
        partition_switch: true,
        ..Default::default()
    })
    .expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(60)).await.expect("blocks before the partition");

    fed.partition(&[&[0, 1], &[2, 3]]).expect("partition");
    wait_links(&fed, &[&[0, 1], &[2, 3]], Duration::from_secs(20)).await;
    // Measured once every link is down (blocks come every ~100 ms until then).
    let cut_at = heights(&fed).await.into_iter().max().unwrap_or(0);
    let cut_done = Instant::now();

    // While cut: a decision already gathered before the cut may still land (at most one height past
    // the highest tip seen when cutting); after that, nothing, on either side, over several rounds.
    let settled = Instant::now() + Duration::from_secs(2);
    let watch_until = settled + Duration::from_secs(6);
    let mut stuck = Vec::new();
    while Instant::now() < watch_until {
        let now = heights(&fed).await;
        assert!(now.iter().all(|&h| h <= cut_at + 1), "a block beyond {} while partitioned: {now:?}", cut_at + 1);
        if Instant::now() >= settled {
            if stuck.is_empty() {
                stuck = now;
            } else {
                assert_eq!(now, stuck, "no block without a quorum");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Each side is stuck where Tendermint says it must be: without 2f+1 prevotes or precommits of any kind
    // a round cannot end, so the height being decided is the one after its tip.
    for (i, &h) in stuck.iter().enumerate() {
        let s = fed.nodes[i].client().expect("client").get_consensus_state().await.expect("consensus state");
        assert_eq!(
            s.height.get(),
            h + 1,
            "{} decides the height after its tip ({:?} cut off): {s:?}",
            fed.nodes[i].name,
            cut_done.elapsed()
        );
    }
    // Whatever each side has, it is the same chain (no fork while cut).
    let common = stuck.iter().copied().min().unwrap_or(0);
    for h in 1..=common {
        let reference = fed.nodes[0].client().expect("client").get_block_hash(primitives::Height(h)).await;
        for i in 1..4 {
            let got = fed.nodes[i].client().expect("client").get_block_hash(primitives::Height(h)).await;
            assert_eq!(got.expect("hash"), *reference.as_ref().expect("hash"), "fork at height {h}");
        }
    }

    // Healed: links come back and progress resumes.
    fed.heal().expect("heal");
    let healed = Instant::now();
    wait_links(&fed, &[&[0, 1, 2, 3]], Duration::from_secs(20)).await;
    let top = stuck.iter().copied().max().unwrap_or(0);
    fed.wait_height(&[0, 1, 2, 3], top + 3, Duration::from_secs(60)).await.expect("progress resumes after healing");
    println!("partition_2_2: 3 blocks {:.1} s after healing", healed.elapsed().as_secs_f64());

    scenario.finish(&mut fed, Checks::default()).await.expect("closing checks");
}
