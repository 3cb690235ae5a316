//! Commit certificate verification for 4, 7 and 16 validators: one ed25519 batch versus one signature at a
//! time. The ratio of the two lines per size is what batching buys.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use primitives::{BlockId, GenesisHash, Hash32, Height, Keypair, Round, ValidatorIndex};
use sidechain_consensus::{CommitCertificate, ValidatorSet};

const G: GenesisHash = GenesisHash(Hash32([1; 32]));

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("certificate");
    for n in [4usize, 7, 16] {
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_secret([i as u8 + 1; 32])).collect();
        let set = ValidatorSet::equal_power(keys.iter().map(|k| k.public()).collect()).expect("distinct keys");
        let mut cert = CommitCertificate {
            height: Height(5),
            round: Round(0),
            value: BlockId(Hash32([7; 32])),
            signatures: vec![],
        };
        let quorum = n * 2 / 3 + 1;
        for (i, k) in keys.iter().enumerate().take(quorum) {
            let idx = ValidatorIndex(i as u16);
            cert.signatures.push((idx, cert.precommit(idx).sign(k, &G).signature));
        }
        cert.verify(&set, &G, Height(5)).expect("a quorum certificate verifies");
        group.bench_with_input(BenchmarkId::new("batch", n), &n, |b, _| {
            b.iter(|| cert.verify(&set, &G, Height(5)).expect("verifies"))
        });
        group.bench_with_input(BenchmarkId::new("one_by_one", n), &n, |b, _| {
            b.iter(|| cert.verify_one_by_one(&set, &G, Height(5)).expect("verifies"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
