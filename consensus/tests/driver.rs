//! Driver-level tests through the public `handle(Input) -> Vec<Output>` interface: a happy path over a
//! synchronous in-memory network, persist-before-broadcast, restore after a crash, evidence once,
//! far-future and next-height messages.
#![allow(clippy::needless_range_loop)] // validator indices double as key indices

use primitives::{BlockId, GenesisHash, Hash32, Height, Keypair, Round, ValidatorIndex};
use sidechain_consensus::{
    Config, Consensus, Equivocation, Input, Message, Output, Step, TimeoutStep, ValidatorSet, Vote, VoteKind, WalEntry,
};
use std::collections::VecDeque;

const G: GenesisHash = GenesisHash(Hash32([7; 32]));

fn keys(n: u8) -> Vec<Keypair> {
    (0..n).map(|i| Keypair::from_secret([i + 1; 32])).collect()
}

fn set(keys: &[Keypair]) -> ValidatorSet {
    ValidatorSet::equal_power(keys.iter().map(|k| k.public()).collect()).unwrap()
}

fn block(h: u64, r: u32) -> BlockId {
    BlockId(primitives::tagged_hash("test/block", &[&h.to_le_bytes(), &r.to_le_bytes()]))
}

/// Runs `n` validators over a lossless, instant network until each decided `heights` heights.
/// Checks on the way that every broadcast own message was persisted first.
fn run_perfect(n: u8, heights: u64) -> Vec<Vec<BlockId>> {
    let ks = keys(n);
    let vs = set(&ks);
    let mut nodes: Vec<Consensus> = ks.iter().map(|k| Consensus::new(Config::default(), G, Some(k.clone()))).collect();
    let mut decided = vec![Vec::new(); n as usize];
    let mut queue: VecDeque<(usize, Input)> = VecDeque::new();
    for i in 0..nodes.len() {
        queue.push_back((i, Input::NewHeight { height: Height(1), validators: vs.clone() }));
    }
    let mut steps = 0;
    while let Some((i, input)) = queue.pop_front() {
        steps += 1;
        assert!(steps < 100_000, "no progress");
        let outs = nodes[i].handle(input);
        let mut persisted = Vec::new();
        for o in outs {
            match o {
                Output::Persist(e) => persisted.push(e),
                Output::Broadcast(m) => {
                    let own = match m {
                        Message::Proposal(p) => WalEntry::Proposal(p),
                        Message::Vote(v) => WalEntry::Vote(v),
                    };
                    assert!(persisted.contains(&own), "broadcast before persist: {m:?}");
                    for j in 0..nodes.len() {
                        if j != i {
                            let inp = match m {
                                Message::Proposal(p) => Input::Proposal(p),
                                Message::Vote(v) => Input::Vote(v),
                            };
                            queue.push_back((j, inp));
                        }
                    }
                }
                Output::RequestValue { height, round } => {
                    queue.push_back((i, Input::ProposeValue { height, round, value: block(height.0, round.0) }))
                }
                Output::RequestValidity { height, value } => {
                    queue.push_back((i, Input::ProposalValidity { height, value, valid: true }))
                }
                Output::Decide { height, value, certificate } => {
                    certificate.verify(&vs, &G, height).unwrap();
                    decided[i].push(value);
                    if height.0 < heights {
                        queue.push_back((i, Input::NewHeight { height: height.next(), validators: vs.clone() }));
                    }
                }
                Output::ScheduleTimeout { .. } => {}
                Output::Evidence(e) => panic!("unexpected evidence {e:?}"),
            }
        }
    }
    decided
}

#[test]
fn four_and_seven_validators_decide_the_same_blocks_in_round_zero() {
    for n in [4, 7] {
        let d = run_perfect(n, 5);
        for (i, di) in d.iter().enumerate() {
            assert_eq!(di.len(), 5, "node {i}");
            assert_eq!(di, &d[0]);
        }
        assert_eq!(d[0][0], block(1, 0));
    }
}

fn start(node: &mut Consensus, vs: &ValidatorSet) -> Vec<Output> {
    node.handle(Input::NewHeight { height: Height(1), validators: vs.clone() })
}

fn vote(k: &Keypair, i: u16, kind: VoteKind, round: u32, value: Option<BlockId>) -> Input {
    Input::Vote(Vote { kind, height: Height(1), round: Round(round), value, validator: ValidatorIndex(i) }.sign(k, &G))
}

#[test]
fn lock_is_persisted_before_the_precommit_and_survives_restart() {
    let ks = keys(4);
    let vs = set(&ks);
    // Validator 0 is not the proposer of (1, 0) (validator 1 is).
    let mut node = Consensus::new(Config::default(), G, Some(ks[0].clone()));
    let _ = start(&mut node, &vs);
    let v = block(1, 0);
    let p = sidechain_consensus::Proposal {
        height: Height(1),
        round: Round(0),
        value: v,
        pol_round: None,
        proposer: ValidatorIndex(1),
    }
    .sign(&ks[1], &G);
    let out = node.handle(Input::Proposal(p));
    assert!(out.contains(&Output::RequestValidity { height: Height(1), value: v }));
    let out = node.handle(Input::ProposalValidity { height: Height(1), value: v, valid: true });
    assert!(matches!(out.as_slice(), [Output::Persist(WalEntry::Vote(_)), Output::Broadcast(_)]));
    let mut wal: Vec<WalEntry> =
        out.iter().filter_map(|o| if let Output::Persist(e) = o { Some(*e) } else { None }).collect();
    let mut all = Vec::new();
    for i in 1..3 {
        all.extend(node.handle(vote(&ks[i], i as u16, VoteKind::Prevote, 0, Some(v))));
    }
    // L36: lock, valid, then the precommit, each persisted before the broadcast.
    let kinds: Vec<&str> = all
        .iter()
        .map(|o| match o {
            Output::Persist(WalEntry::Locked { .. }) => "lock",
            Output::Persist(WalEntry::Valid { .. }) => "valid",
            Output::Persist(WalEntry::Vote(_)) => "persist-vote",
            Output::Broadcast(_) => "broadcast",
            Output::ScheduleTimeout { .. } => "timeout",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["lock", "valid", "persist-vote", "broadcast"]);
    wal.extend(all.iter().filter_map(|o| if let Output::Persist(e) = o { Some(*e) } else { None }));
    assert_eq!(node.locked().map(|l| l.value), Some(v));

    // Crash; restart from the WAL only.
    let mut node = Consensus::new(Config::default(), G, Some(ks[0].clone()));
    let out = node.handle(Input::Restore { height: Height(1), validators: vs.clone(), wal: wal.clone() });
    assert_eq!(node.locked().map(|l| l.value), Some(v));
    assert_eq!(node.step(), Step::Precommit);
    // Re-sends exactly what it signed before, persists nothing new.
    assert!(out.iter().all(|o| matches!(o, Output::Broadcast(_))));
    assert_eq!(out.len(), 2);
    // A timeout of the old step cannot make it vote differently in round 0.
    let out = node.handle(Input::TimeoutElapsed(sidechain_consensus::Timeout {
        height: Height(1),
        round: Round(0),
        step: TimeoutStep::Prevote,
    }));
    assert!(out.is_empty());
    // Next round with a different proposal: locked, so it prevotes nil (L26).
    for i in 1..3 {
        let _ = node.handle(vote(&ks[i], i as u16, VoteKind::Precommit, 1, None));
    }
    assert_eq!(node.round(), Round(1));
    let w = block(1, 1);
    let p1 = sidechain_consensus::Proposal {
        height: Height(1),
        round: Round(1),
        value: w,
        pol_round: None,
        proposer: ValidatorIndex(2),
    }
    .sign(&ks[2], &G);
    let _ = node.handle(Input::Proposal(p1));
    let out = node.handle(Input::ProposalValidity { height: Height(1), value: w, valid: true });
    assert!(out.iter().any(
        |o| matches!(o, Output::Broadcast(Message::Vote(sv)) if sv.vote.value.is_none() && sv.vote.round == Round(1))
    ));
}

#[test]
fn equivocation_is_reported_once_and_far_future_is_ignored() {
    let ks = keys(4);
    let vs = set(&ks);
    let mut node = Consensus::new(Config::default(), G, Some(ks[0].clone()));
    let _ = start(&mut node, &vs);
    let a = node.handle(vote(&ks[2], 2, VoteKind::Prevote, 0, Some(block(9, 9))));
    assert!(a.is_empty());
    let b = node.handle(vote(&ks[2], 2, VoteKind::Prevote, 0, None));
    let ev: Vec<_> = b.iter().filter_map(|o| if let Output::Evidence(e) = o { Some(*e) } else { None }).collect();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].offender(), ValidatorIndex(2));
    assert!(matches!(ev[0], Equivocation::Votes(..)));
    ev[0].verify(&vs, &G).unwrap();
    let c = node.handle(vote(&ks[2], 2, VoteKind::Prevote, 0, Some(block(8, 8))));
    assert!(c.iter().all(|o| !matches!(o, Output::Evidence(_))));
    // Far-future heights: ignored, no round skip, nothing buffered.
    let far = Vote {
        kind: VoteKind::Prevote,
        height: Height(50),
        round: Round(9),
        value: None,
        validator: ValidatorIndex(1),
    };
    assert!(node.handle(Input::Vote(far.sign(&ks[1], &G))).is_empty());
    let far3 = Vote { validator: ValidatorIndex(3), ..far };
    assert!(node.handle(Input::Vote(far3.sign(&ks[3], &G))).is_empty());
    assert_eq!(node.round(), Round(0));
}

#[test]
fn round_skip_on_f_plus_one_and_next_height_is_buffered() {
    let ks = keys(4);
    let vs = set(&ks);
    let mut node = Consensus::new(Config::default(), G, Some(ks[0].clone()));
    let _ = start(&mut node, &vs);
    let _ = node.handle(vote(&ks[1], 1, VoteKind::Prevote, 5, None));
    assert_eq!(node.round(), Round(0));
    let _ = node.handle(vote(&ks[2], 2, VoteKind::Precommit, 5, None));
    assert_eq!(node.round(), Round(5), "L55: f+1 = 2 of 4 in round 5");
    // Height 2 messages wait for height 2.
    let next = Vote {
        kind: VoteKind::Precommit,
        height: Height(2),
        round: Round(3),
        value: None,
        validator: ValidatorIndex(1),
    };
    assert!(node.handle(Input::Vote(next.sign(&ks[1], &G))).is_empty());
    let next2 = Vote { validator: ValidatorIndex(2), ..next };
    assert!(node.handle(Input::Vote(next2.sign(&ks[2], &G))).is_empty());
    let _ = node.handle(Input::NewHeight { height: Height(2), validators: vs.clone() });
    assert_eq!(node.height(), Height(2));
    assert_eq!(node.round(), Round(3), "buffered height-2 messages replayed");
}

#[test]
fn validity_minority_follows_the_certificate() {
    let ks = keys(4);
    let vs = set(&ks);
    let mut node = Consensus::new(Config::default(), G, Some(ks[0].clone()));
    let _ = start(&mut node, &vs);
    let v = block(1, 0);
    let p = sidechain_consensus::Proposal {
        height: Height(1),
        round: Round(0),
        value: v,
        pol_round: None,
        proposer: ValidatorIndex(1),
    }
    .sign(&ks[1], &G);
    let _ = node.handle(Input::Proposal(p));
    // Our bitcoind says no: prevote nil.
    let out = node.handle(Input::ProposalValidity { height: Height(1), value: v, valid: false });
    assert!(out.iter().any(|o| matches!(o, Output::Broadcast(Message::Vote(sv)) if sv.vote.value.is_none())));
    // The other three precommit it: we still decide it (L49), with a verifying certificate.
    let mut decided = None;
    for i in 1..4 {
        for o in node.handle(vote(&ks[i], i as u16, VoteKind::Precommit, 0, Some(v))) {
            if let Output::Decide { value, certificate, .. } = o {
                certificate.verify(&vs, &G, Height(1)).unwrap();
                decided = Some(value);
            }
        }
    }
    assert_eq!(decided, Some(v));
}

#[test]
fn equivocating_proposer_is_reported_once_and_non_proposers_are_ignored() {
    let ks = keys(4);
    let vs = set(&ks);
    let mut node = Consensus::new(Config::default(), G, Some(ks[0].clone()));
    let _ = start(&mut node, &vs);
    let prop = |value, signer: usize| {
        Input::Proposal(
            sidechain_consensus::Proposal {
                height: Height(1),
                round: Round(0),
                value,
                pol_round: None,
                proposer: ValidatorIndex(signer as u16),
            }
            .sign(&ks[signer], &G),
        )
    };
    // Validator 2 is not the proposer of round 0: ignored entirely.
    assert!(node.handle(prop(block(2, 2), 2)).is_empty());
    let a = node.handle(prop(block(1, 0), 1));
    assert!(a.iter().all(|o| !matches!(o, Output::Evidence(_))));
    let evidence =
        |out: &[Output]| out.iter().filter(|o| matches!(o, Output::Evidence(Equivocation::Proposals(..)))).count();
    assert_eq!(evidence(&node.handle(prop(block(1, 1), 1))), 1);
    assert_eq!(evidence(&node.handle(prop(block(1, 2), 1))), 0, "once per validator and round");
}
