//! The mutator: turns one real encoding into a hostile variant of it.
//!
//! Why hand-written (about a hundred lines) rather than a crate: what we need is a deterministic,
//! corpus-driven byte mutator on the stable toolchain, replayable from `(seed, iteration)` alone.
//! `arbitrary` builds typed values from bytes (it does not mutate encodings), `proptest` generates and
//! shrinks strategies (no byte-level corpus mutation), `bolero` on stable without `cargo-bolero` feeds
//! unguided random bytes, and `libfuzzer-sys`/`cargo fuzz` need nightly. The mutations are the ones that
//! break decoders: bit flips, truncation, length-prefix inflation (a little-endian `u32`/`u64` replaced by a
//! huge or off-by-one value), splices of other seeds, inserted and deleted ranges, and tokens from the
//! target's dictionary (JSON and hex punctuation, multi-byte UTF-8).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Values a length or an amount is most likely mishandled at.
const INTERESTING_U32: [u32; 10] = [0, 1, 0x7f, 0xff, 0x100, 0xffff, 1 << 20, 1 << 24, 0x7fff_ffff, u32::MAX];
const INTERESTING_U64: [u64; 6] = [0, 1, 0x7fff_ffff_ffff_ffff, u64::MAX, 21_000_000 * 100_000_000, 1 << 32];

/// Tokens every target gets: multi-byte UTF-8 (string truncation at a byte index), JSON punctuation and
/// extreme numbers.
pub const DEFAULT_DICTIONARY: &[&[u8]] = &[
    "é".as_bytes(),
    "€".as_bytes(),
    "𝄞".as_bytes(),
    b"\"",
    b"\\u0000",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"-1",
    b"1e400",
    b"-0.0",
    b"18446744073709551616",
    b"0x",
    b" ",
];

/// One mutated input: a seed picked and changed by 1 to 4 mutations (or, rarely, raw random bytes).
pub fn mutate(rng: &mut ChaCha8Rng, seeds: &[Vec<u8>], dictionary: &[&[u8]]) -> Vec<u8> {
    if seeds.is_empty() || rng.gen_ratio(1, 50) {
        let len = rng.gen_range(0..64);
        return (0..len).map(|_| rng.gen()).collect();
    }
    let mut data = seeds[rng.gen_range(0..seeds.len())].clone();
    for _ in 0..rng.gen_range(1..=4) {
        mutate_once(rng, &mut data, seeds, dictionary);
    }
    data
}

fn pos(rng: &mut ChaCha8Rng, len: usize) -> usize {
    rng.gen_range(0..=len)
}

fn mutate_once(rng: &mut ChaCha8Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>], dictionary: &[&[u8]]) {
    let len = data.len();
    match rng.gen_range(0..10) {
        // A bit flip.
        0 | 1 if len > 0 => {
            let i = rng.gen_range(0..len);
            data[i] ^= 1 << rng.gen_range(0..8);
        }
        // A byte set to an edge value.
        2 if len > 0 => {
            let i = rng.gen_range(0..len);
            data[i] = [0, 1, 0x7f, 0x80, 0xff][rng.gen_range(0..5)];
        }
        // Truncation.
        3 if len > 0 => data.truncate(rng.gen_range(0..len)),
        // Length-prefix inflation: a u32 (borsh's length prefix) made huge or off by one.
        4 if len >= 4 => {
            let i = rng.gen_range(0..=len - 4);
            let old = u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            let new = match rng.gen_range(0..3) {
                0 => INTERESTING_U32[rng.gen_range(0..INTERESTING_U32.len())],
                1 => old.wrapping_add(1),
                _ => old.wrapping_sub(1),
            };
            data[i..i + 4].copy_from_slice(&new.to_le_bytes());
        }
        // A u64 (amounts, heights, nonces) set to an edge value.
        5 if len >= 8 => {
            let i = rng.gen_range(0..=len - 8);
            let v = INTERESTING_U64[rng.gen_range(0..INTERESTING_U64.len())];
            data[i..i + 8].copy_from_slice(&v.to_le_bytes());
        }
        // A splice: a range of any seed inserted or written over ours.
        6 => {
            let other = &seeds[rng.gen_range(0..seeds.len())];
            let a = pos(rng, other.len());
            let b = a + rng.gen_range(0..=(other.len() - a).min(256));
            let at = pos(rng, len);
            if rng.gen() {
                data.splice(at..at, other[a..b].iter().copied());
            } else {
                let end = (at + (b - a)).min(len);
                data.splice(at..end, other[a..b].iter().copied());
            }
        }
        // A range deleted or duplicated.
        7 if len > 0 => {
            let a = rng.gen_range(0..len);
            let b = a + rng.gen_range(1..=(len - a).min(64));
            if rng.gen() {
                data.drain(a..b);
            } else {
                let copy: Vec<u8> = data[a..b].to_vec();
                data.splice(b..b, copy);
            }
        }
        // A dictionary token inserted or written over ours.
        8 => {
            let extra: &[u8] = if !dictionary.is_empty() && rng.gen() {
                dictionary[rng.gen_range(0..dictionary.len())]
            } else {
                DEFAULT_DICTIONARY[rng.gen_range(0..DEFAULT_DICTIONARY.len())]
            };
            let at = pos(rng, len);
            let end = if rng.gen() { at } else { (at + extra.len()).min(len) };
            data.splice(at..end, extra.iter().copied());
        }
        // Random bytes inserted.
        _ => {
            let at = pos(rng, len);
            let n = rng.gen_range(1..=8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            data.splice(at..at, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn same_seed_same_inputs_and_every_mutation_shows_up() {
        let seeds = vec![(0u8..40).collect::<Vec<u8>>()];
        let run = |s| {
            let mut rng = ChaCha8Rng::seed_from_u64(s);
            (0..500).map(|_| mutate(&mut rng, &seeds, &[])).collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        assert!(a.iter().any(|d| d.len() < 40), "truncation or deletion");
        assert!(a.iter().any(|d| d.len() > 40), "insertion or splice");
        assert!(a.iter().any(|d| d.windows(4).any(|w| w == u32::MAX.to_le_bytes())), "length inflation");
        assert!(a.iter().any(|d| d.windows(2).any(|w| w == "é".as_bytes())), "dictionary");
    }
}
