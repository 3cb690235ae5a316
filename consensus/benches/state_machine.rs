//! Messages handled per second by the core (signatures already verified, as the host does before input).
//!
//! One iteration is one full height seen by validator 0 of 7: the proposal, its validity verdict, six
//! prevotes and six precommits from the others, ending in a decision. "observer" runs the core without a
//! key (pure bookkeeping and rules); "validator" also signs its own prevote and precommit.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use primitives::{BlockId, GenesisHash, Hash32, Height, Keypair, Round, ValidatorIndex};
use sidechain_consensus::{Config, Consensus, Input, Output, Proposal, ValidatorSet, Vote, VoteKind};

const G: GenesisHash = GenesisHash(Hash32([1; 32]));

fn height_inputs(keys: &[Keypair], set: &ValidatorSet) -> Vec<Input> {
    let h = Height(1);
    let proposer = set.proposer(h, Round(0));
    let value = BlockId(Hash32([42; 32]));
    let mut inputs = vec![
        Input::Proposal(
            Proposal { height: h, round: Round(0), value, pol_round: None, proposer }
                .sign(&keys[proposer.as_usize()], &G),
        ),
        Input::ProposalValidity { height: h, value, valid: true },
    ];
    for kind in [VoteKind::Prevote, VoteKind::Precommit] {
        for (i, k) in keys.iter().enumerate().skip(1) {
            let v = Vote { kind, height: h, round: Round(0), value: Some(value), validator: ValidatorIndex(i as u16) };
            inputs.push(Input::Vote(v.sign(k, &G)));
        }
    }
    inputs
}

fn bench(c: &mut Criterion) {
    let keys: Vec<Keypair> = (0..7u8).map(|i| Keypair::from_secret([i + 1; 32])).collect();
    let set = ValidatorSet::equal_power(keys.iter().map(|k| k.public()).collect()).expect("distinct keys");
    let inputs = height_inputs(&keys, &set);
    let messages = inputs.len() as u64 - 1; // the validity verdict is not a message
    let mut group = c.benchmark_group("handle");
    group.throughput(Throughput::Elements(messages));
    for (name, key) in [("observer", None), ("validator", Some(keys[0].clone()))] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mut core = Consensus::new(Config::default(), G, key.clone());
                    let _ = core.handle(Input::NewHeight { height: Height(1), validators: set.clone() });
                    (core, inputs.clone())
                },
                |(mut core, inputs)| {
                    let mut decided = false;
                    for input in inputs {
                        decided |= core.handle(input).iter().any(|o| matches!(o, Output::Decide { .. }));
                    }
                    assert!(decided);
                    core
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
