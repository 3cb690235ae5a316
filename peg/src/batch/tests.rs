//! Tests of the batch builder: sizes against signed transactions, determinism, change, bumps, limits.

use super::*;
use crate::deposit::tweak_secret;
use crate::signing::{finalize, sign_input};
use crate::test_fixtures::{coin, federation, sat, secrets};
use bitcoin::consensus::encode::serialize;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{WPubkeyHash, WScriptHash};

const GENESIS: [u8; 32] = [0x47; 32];

fn wpkh(i: u32) -> ScriptBuf {
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(&i.to_be_bytes());
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(h))
}

fn wpkh_payouts(n: u32, each: u64) -> Vec<Payout> {
    (0..n).map(|i| Payout { script_pubkey: wpkh(i), amount: sat(each) }).collect()
}

fn rate(sat_vb: u64) -> FeeRate {
    FeeRate::from_sat_per_vb(sat_vb).expect("rate")
}

fn plan(fed: &Federation, coins: &[BatchInput], payouts: &[Payout], r: FeeRate) -> Result<BatchPlan, BatchError> {
    plan_batch(fed, GENESIS, coins, payouts, r, BatchLimits::STANDARD, &fed.script_pubkey())
}

/// Signs every input with the first `k` keys (tweaked where the input needs it) and finalizes.
fn sign(fed: &Federation, plan: &BatchPlan) -> Transaction {
    let secp = Secp256k1::new();
    let mut psbt = plan.psbt(fed, GENESIS).expect("psbt");
    for (i, input) in plan.inputs.iter().enumerate() {
        for sk in &secrets(fed.keys().len() as u8)[..fed.threshold()] {
            let key = match input.tweak {
                None => *sk,
                Some(r) => tweak_secret(&secp, sk, GENESIS, r).expect("tweak"),
            };
            sign_input(&secp, &mut psbt, i, &key).expect("sign");
        }
    }
    finalize(&secp, psbt).expect("k signatures finalize")
}

/// The signed transaction is never larger than the bound, the bound is tight, and the fee pays the rate.
fn check_signed(fed: &Federation, plan: &BatchPlan, r: FeeRate) -> Transaction {
    let tx = sign(fed, plan);
    let real = tx.vsize() as u64;
    assert!(real <= plan.vbytes, "real {real} vB above the bound {}", plan.vbytes);
    // Each signature is at most 1 byte (low R), rarely 2, below the 73 bytes of the bound.
    let signatures = (plan.inputs.len() * fed.threshold()) as u64;
    assert!(plan.vbytes - real <= 1 + signatures.div_ceil(2), "bound {} vs real {real}", plan.vbytes);
    assert!(plan.fee >= r.fee_vb(real).expect("fee"), "fee {} below {r} on {real} vB", plan.fee);
    let have: u64 = plan.inputs.iter().map(|i| i.amount.to_sat()).sum();
    let out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    assert_eq!(sat(have - out), plan.fee);
    assert_eq!(tx.compute_txid(), plan.tx.compute_txid(), "signing does not change the txid");
    tx
}

#[test]
fn shape_of_the_unsigned_transaction() {
    let fed = federation(3, 4);
    let p = plan(&fed, &[coin(1, 1_000_000, None)], &wpkh_payouts(2, 10_000), rate(2)).expect("plan");
    assert_eq!(p.tx.version, Version::TWO);
    assert_eq!(p.tx.lock_time, LockTime::ZERO);
    assert!(p
        .tx
        .input
        .iter()
        .all(|i| i.sequence == Sequence(0xFFFF_FFFD) && i.witness.is_empty() && i.script_sig.is_empty()));
    assert_eq!(p.payouts, 2);
    assert_eq!(p.tx.output.len(), 3);
    assert_eq!(p.tx.output[..2].iter().map(|o| o.script_pubkey.clone()).collect::<Vec<_>>(), vec![wpkh(0), wpkh(1)]);
    assert_eq!(p.tx.output[2], TxOut { value: p.change.expect("change"), script_pubkey: fed.script_pubkey() });
    assert_eq!(p.fee, sat(1_000_000 - 20_000) - p.change.expect("change"));
    assert_eq!(p.fee, rate(2).fee_vb(p.vbytes).expect("fee"));
}

#[test]
fn size_bound_matches_signed_transactions_with_plain_and_tweaked_inputs() {
    let fed = federation(3, 4);
    let payouts = vec![
        Payout { script_pubkey: wpkh(1), amount: sat(50_000) },
        Payout { script_pubkey: ScriptBuf::new_p2wsh(&WScriptHash::from_byte_array([9; 32])), amount: sat(60_000) },
        Payout { script_pubkey: fed.deposit_script_pubkey(GENESIS, [3; 32]).expect("spk"), amount: sat(1_000) },
    ];
    // Each round needs one more input; inputs alternate between tweaked and untweaked.
    for n in 1..=4u32 {
        let coins: Vec<BatchInput> =
            (0..n).map(|i| coin(i, 120_000 / u64::from(n) + 1_000, (i % 2 == 0).then_some([i as u8; 32]))).collect();
        let p = plan(&fed, &coins, &payouts, rate(7)).expect("plan");
        assert_eq!(p.inputs.len(), n as usize);
        check_signed(&fed, &p, rate(7));
    }
    // Other thresholds, up to the largest (20 keys: k and n are pushed as numbers, not OP_k).
    for (k, n) in [(1, 1), (5, 7), (20, 20)] {
        let fed = federation(k, n);
        let p =
            plan(&fed, &[coin(1, 500_000, Some([2; 32])), coin(2, 500_000, None)], &payouts, rate(3)).expect("plan");
        let coins = [coin(1, 100_000, Some([2; 32])), coin(2, 100_000, None)];
        let both = plan(&fed, &coins, &payouts, rate(3)).expect("plan");
        assert_eq!((p.inputs.len(), both.inputs.len()), (1, 2));
        check_signed(&fed, &p, rate(3));
        check_signed(&fed, &both, rate(3));
    }
    // Fractional rate: the fee is rounded up, never down.
    let r = FeeRate::from_sat_per_kwu(1_111);
    let p = plan(&fed, &[coin(1, 500_000, Some([5; 32]))], &payouts, r).expect("plan");
    check_signed(&fed, &p, r);
}

#[test]
fn vbytes_for_one_ten_and_a_hundred_p2wpkh_payouts() {
    // One 3-of-4 input (525 WU), P2WSH change (43 bytes), n P2WPKH payouts (31 bytes):
    // 4 * (8 + 1 + 1) + 2 + 525 + 4 * (31 n + 43) = 739 + 124 n WU.
    let fed = federation(3, 4);
    let mut figures = vec![];
    for (n, want) in [(1u32, 216u64), (10, 495), (100, 3_285)] {
        let p = plan(&fed, &[coin(1, 100_000_000, None)], &wpkh_payouts(n, 10_000), rate(1)).expect("plan");
        assert!(p.change.is_some());
        assert_eq!(p.vbytes, want, "{n} payouts");
        check_signed(&fed, &p, rate(1));
        figures.push((n, p.vbytes));
    }
    println!("3-of-4, 1 input, change, P2WPKH payouts (n, vbytes): {figures:?}");
}

#[test]
fn marginal_payout_costs_one_output() {
    let fed = federation(3, 4);
    let coins = [coin(1, 100_000_000, None)];
    let p100 = plan(&fed, &coins, &wpkh_payouts(100, 10_000), rate(5)).expect("plan");
    let p99 = plan(&fed, &coins, &wpkh_payouts(99, 10_000), rate(5)).expect("plan");
    assert_eq!(output_vbytes(&wpkh(0)), 31);
    assert_eq!(p100.vbytes - p99.vbytes, output_vbytes(&wpkh(0)));
    assert_eq!(p100.fee - p99.fee, sat(5 * 31));
    for (spk, vb) in [
        (ScriptBuf::new_p2wsh(&WScriptHash::all_zeros()), 43),
        (ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::all_zeros()), 34),
        (ScriptBuf::new_p2sh(&bitcoin::ScriptHash::all_zeros()), 32),
    ] {
        assert_eq!(output_vbytes(&spk), vb);
    }
}

#[test]
fn shuffled_candidates_give_the_same_bytes() {
    let fed = federation(3, 4);
    // Equal amounts exercise the outpoint tie-break.
    let coins: Vec<BatchInput> =
        (0..40).map(|i| coin(i, 20_000 + u64::from(i % 5) * 1_000, (i % 3 == 0).then_some([i as u8; 32]))).collect();
    let payouts = wpkh_payouts(12, 30_000);
    let reference = plan(&fed, &coins, &payouts, rate(3)).expect("plan");
    let bytes = serialize(&reference.tx);
    for seed in 1..=20u64 {
        let mut shuffled = coins.clone();
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let p = plan(&fed, &shuffled, &payouts, rate(3)).expect("plan");
        assert_eq!(serialize(&p.tx), bytes, "seed {seed}");
        assert_eq!(p, reference, "seed {seed}");
    }
    // Largest first, ties by outpoint.
    let amounts: Vec<u64> = reference.inputs.iter().map(|i| i.amount.to_sat()).collect();
    assert!(amounts.windows(2).all(|w| w[0] >= w[1]), "{amounts:?}");
    assert!(reference.inputs.windows(2).all(|w| w[0].amount > w[1].amount || w[0].outpoint < w[1].outpoint));
}

#[test]
fn change_boundary() {
    let fed = federation(3, 4);
    let payouts = wpkh_payouts(1, 100_000);
    let r = rate(10);
    let dust = fed.script_pubkey().minimal_non_dust();
    assert_eq!(dust, sat(330));
    // The fee with a change output: 1 input, payout and change.
    let with = plan(&fed, &[coin(1, 1_000_000, None)], &payouts, r).expect("plan");
    let fee_with = with.fee;
    // Inputs that leave exactly the dust limit as change: a change output.
    let exact = plan(&fed, &[coin(1, 100_000 + fee_with.to_sat() + dust.to_sat(), None)], &payouts, r).expect("plan");
    assert_eq!(exact.change, Some(dust));
    assert_eq!(exact.fee, fee_with);
    assert_eq!(exact.tx.output.len(), 2);
    // One sat less: no change, the remainder is fee, priced on the smaller size.
    let below =
        plan(&fed, &[coin(1, 100_000 + fee_with.to_sat() + dust.to_sat() - 1, None)], &payouts, r).expect("plan");
    assert_eq!(below.change, None);
    assert_eq!(below.tx.output.len(), 1);
    assert_eq!(below.vbytes, exact.vbytes - output_vbytes(&fed.script_pubkey()));
    assert_eq!(below.fee, fee_with + dust - sat(1));
    check_signed(&fed, &below, r);
    // Just enough for the fee without change: accepted, no change.
    let fee_without = r.fee_vb(below.vbytes).expect("fee");
    let tight = plan(&fed, &[coin(1, 100_000 + fee_without.to_sat(), None)], &payouts, r).expect("plan");
    assert_eq!((tight.change, tight.fee), (None, fee_without));
    // One sat short of that: insufficient.
    let short = plan(&fed, &[coin(1, 100_000 + fee_without.to_sat() - 1, None)], &payouts, r);
    assert_eq!(
        short,
        Err(BatchError::InsufficientFunds { have: sat(99_999) + fee_without, need: sat(100_000) + fee_without })
    );
}

#[test]
fn insufficient_funds_and_input_limit() {
    let fed = federation(3, 4);
    let payouts = wpkh_payouts(1, 100_000);
    let err = plan(&fed, &[coin(1, 50_000, None), coin(2, 40_000, None)], &payouts, rate(1)).expect_err("short");
    assert!(matches!(err, BatchError::InsufficientFunds { have, .. } if have == sat(90_000)), "{err}");
    assert_eq!(
        plan(&fed, &[], &payouts, rate(1)),
        Err(BatchError::InsufficientFunds {
            have: Amount::ZERO,
            // No input yet: 4 + 4 + 1 + 1 + 31 (one P2WPKH output) bytes and the 2 WU marker = 166 WU = 42 vB.
            need: sat(100_000 + 42)
        })
    );
    // Ten coins of 11 000 would do, but only three may be spent.
    let coins: Vec<BatchInput> = (0..10).map(|i| coin(i, 11_000, None)).collect();
    let limits = BatchLimits { max_inputs: 3, max_outputs: 10 };
    let small = wpkh_payouts(1, 50_000);
    let err = plan_batch(&fed, GENESIS, &coins, &small, rate(1), limits, &fed.script_pubkey()).expect_err("cap");
    assert!(matches!(err, BatchError::InsufficientFunds { have, .. } if have == sat(33_000)), "{err}");
    let ok = plan_batch(&fed, GENESIS, &coins, &small, rate(1), BatchLimits::STANDARD, &fed.script_pubkey())
        .expect("enough without the cap");
    assert_eq!(ok.inputs.len(), 5);
}

#[test]
fn refuses_bad_requests() {
    let fed = federation(3, 4);
    let coins = [coin(1, 1_000_000, None)];
    let r = rate(1);
    assert_eq!(plan(&fed, &coins, &[], r), Err(BatchError::NoPayouts));
    let limits = BatchLimits { max_inputs: 10, max_outputs: 2 };
    assert_eq!(
        plan_batch(&fed, GENESIS, &coins, &wpkh_payouts(3, 1_000), r, limits, &fed.script_pubkey()),
        Err(BatchError::TooManyPayouts { count: 3, max: 2 })
    );
    let mut payouts = wpkh_payouts(3, 1_000);
    payouts[2].amount = sat(293);
    assert_eq!(
        plan(&fed, &coins, &payouts, r),
        Err(BatchError::DustPayout { index: 2, amount: sat(293), min: sat(294) })
    );
    payouts[2].amount = sat(294);
    assert!(plan(&fed, &coins, &payouts, r).is_ok());
    let op_return = Payout { script_pubkey: ScriptBuf::new_op_return([1u8; 4]), amount: Amount::ZERO };
    assert!(matches!(plan(&fed, &coins, &[op_return], r), Err(BatchError::DustPayout { index: 0, .. })));
    assert_eq!(
        plan(&fed, &[coin(1, 1_000, None), coin(2, 5, None), coin(1, 1_000, None)], &payouts, r),
        Err(BatchError::DuplicateCandidate(coin(1, 0, None).outpoint))
    );
    assert_eq!(plan(&fed, &[coin(7, 0, None)], &payouts, r), Err(BatchError::ZeroAmount(coin(7, 0, None).outpoint)));
    let whale = [coin(1, Amount::MAX_MONEY.to_sat(), None), coin(2, 1, None)];
    let huge = [Payout { script_pubkey: wpkh(0), amount: Amount::MAX_MONEY }];
    assert!(matches!(plan(&fed, &whale, &huge, r), Err(BatchError::AmountOverflow { .. })));
    assert!(matches!(plan(&fed, &[coin(1, u64::MAX, None)], &payouts, r), Err(BatchError::AmountOverflow { .. })));
    assert!(matches!(plan(&fed, &coins, &payouts, FeeRate::MAX), Err(BatchError::FeeOverflow { .. })));
}

#[test]
fn worst_case_size_stays_standard() {
    // The largest federation miniscript allows, every limit full, the longest payout scripts.
    let fed = federation(20, 20);
    let p2wsh = |i: u32| {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_be_bytes());
        ScriptBuf::new_p2wsh(&WScriptHash::from_byte_array(h))
    };
    let payouts: Vec<Payout> = (0..250).map(|i| Payout { script_pubkey: p2wsh(i), amount: sat(100_000) }).collect();
    let coins: Vec<BatchInput> = (0..100).map(|i| coin(i, 251_000, None)).collect();
    let p = plan(&fed, &coins, &payouts, rate(1)).expect("plan");
    assert_eq!((p.inputs.len(), p.tx.output.len()), (100, 251));
    assert_eq!(p.vbytes, 68_654);
    // 3-of-4, same limits.
    let fed = federation(3, 4);
    let coins: Vec<BatchInput> = (0..100).map(|i| coin(i, 250_300, None)).collect();
    let p = plan(&fed, &coins, &payouts, rate(1)).expect("plan");
    assert_eq!((p.inputs.len(), p.tx.output.len()), (100, 251));
    assert_eq!(p.vbytes, 23_929);
    // Limits set too high give an error, not an unrelayable transaction.
    let fed = federation(20, 20);
    let coins: Vec<BatchInput> = (0..200).map(|i| coin(i, 126_000, None)).collect();
    let limits = BatchLimits { max_inputs: 200, max_outputs: 250 };
    let err = plan_batch(&fed, GENESIS, &coins, &payouts, rate(1), limits, &fed.script_pubkey()).expect_err("big");
    assert!(matches!(err, BatchError::TooLarge { max: 100_000, .. }), "{err}");
}

#[test]
fn bump_spends_a_superset_and_pays_rule_4() {
    let fed = federation(3, 4);
    let payouts = wpkh_payouts(3, 100_000);
    let incr = rate(1);
    let coins = [coin(1, 200_000, Some([1; 32])), coin(2, 160_000, None), coin(3, 150_000, Some([3; 32]))];
    let first = plan(&fed, &coins, &payouts, rate(5)).expect("plan");
    assert_eq!(first.inputs.len(), 2);
    let spent: Vec<BatchInput> = first.inputs.clone();
    let rest: Vec<BatchInput> = coins.iter().filter(|c| !spent.contains(c)).copied().collect();

    // Enough change: same inputs, less change, more fee.
    let second = bump_batch(&fed, GENESIS, &first, &rest, rate(6), incr, BatchLimits::STANDARD, &fed.script_pubkey())
        .expect("bump");
    assert_eq!(second.inputs, first.inputs);
    assert_eq!(second.tx.output[..3], first.tx.output[..3]);
    assert!(second.fee >= first.fee + incr.fee_vb(second.vbytes).expect("fee"));
    check_signed(&fed, &second, rate(6));

    // A rate the change cannot pay: one more candidate, appended after the previous inputs.
    let third =
        bump_batch(&fed, GENESIS, &second, &coins, rate(200), incr, BatchLimits::STANDARD, &fed.script_pubkey())
            .expect("bump");
    assert_eq!(third.inputs[..2], second.inputs[..]);
    assert_eq!(third.inputs.len(), 3);
    assert!(third.fee >= second.fee + incr.fee_vb(third.vbytes).expect("fee"));
    assert!(
        u128::from(third.fee.to_sat()) * u128::from(second.vbytes)
            > u128::from(second.fee.to_sat()) * u128::from(third.vbytes)
    );
    check_signed(&fed, &third, rate(200));

    // Nothing left to add: an error, not a weaker replacement.
    let err = bump_batch(&fed, GENESIS, &third, &[], rate(2_000), incr, BatchLimits::STANDARD, &fed.script_pubkey())
        .expect_err("cannot pay");
    assert!(matches!(err, BatchError::InsufficientFunds { .. }), "{err}");
    // The same outpoint with another amount is a caller bug.
    let mut wrong = first.inputs[0];
    wrong.amount = sat(1);
    assert_eq!(
        bump_batch(&fed, GENESIS, &first, &[wrong], rate(6), incr, BatchLimits::STANDARD, &fed.script_pubkey()),
        Err(BatchError::CandidateMismatch(wrong.outpoint))
    );
    // Bumping deterministically: the candidates' order does not matter.
    let mut reversed = coins.to_vec();
    reversed.reverse();
    let again =
        bump_batch(&fed, GENESIS, &second, &reversed, rate(200), incr, BatchLimits::STANDARD, &fed.script_pubkey());
    assert_eq!(again, Ok(third));
}

#[test]
fn bump_after_dust_change_still_pays_more_than_rule_4() {
    // The first version gave its dust change to the fee, so its fee is above its rate; a bump at only
    // `rate + incremental` must still add the increment on top of the previous fee.
    let fed = federation(3, 4);
    let payouts = wpkh_payouts(1, 100_000);
    let r = rate(10);
    let fee_with = plan(&fed, &[coin(1, 1_000_000, None)], &payouts, r).expect("plan").fee;
    let first = plan(&fed, &[coin(1, 100_000 + fee_with.to_sat() + 329, None)], &payouts, r).expect("plan");
    assert_eq!(first.change, None);
    let incr = rate(1);
    let coins = [coin(2, 40_000, None)];
    let bump = bump_batch(&fed, GENESIS, &first, &coins, rate(11), incr, BatchLimits::STANDARD, &fed.script_pubkey())
        .expect("bump");
    assert!(bump.fee >= first.fee + incr.fee_vb(bump.vbytes).expect("fee"), "{} vs {}", bump.fee, first.fee);
    check_signed(&fed, &bump, rate(11));
    // A previous plan that contradicts itself is refused.
    let mut broken = first.clone();
    broken.fee = sat(1);
    assert!(matches!(
        bump_batch(&fed, GENESIS, &broken, &coins, rate(11), incr, BatchLimits::STANDARD, &fed.script_pubkey()),
        Err(BatchError::InconsistentPlan(_))
    ));
    let mut twice = first.clone();
    twice.inputs.push(twice.inputs[0]);
    twice.tx.input.push(twice.tx.input[0].clone());
    twice.inputs[1].amount = Amount::ZERO; // the fee still adds up: only the duplicate is wrong
    assert_eq!(twice.psbt(&fed, GENESIS).map(|_| ()), Err(BatchError::InconsistentPlan("an input is spent twice")));
    let limits = BatchLimits { max_inputs: 0, max_outputs: 10 };
    assert_eq!(
        bump_batch(&fed, GENESIS, &first, &coins, rate(11), incr, limits, &fed.script_pubkey()),
        Err(BatchError::TooManyInputs { count: 1, max: 0 })
    );
}

#[test]
fn a_sweep_spends_every_input_into_one_output_of_the_new_wallet() {
    let old = federation(3, 4);
    let new = crate::Federation::new(2, old.keys()[..3].to_vec()).expect("valid");
    let coins = [coin(1, 40_000, Some([1; 32])), coin(2, 90_000, None), coin(3, 15_000, Some([2; 32]))];
    let sweep = plan_sweep(&old, GENESIS, &coins, rate(3), BatchLimits::STANDARD, &new.script_pubkey()).expect("sweep");
    assert_eq!(sweep.inputs.len(), 3, "every input, however small");
    assert_eq!(sweep.payouts, 0);
    assert_eq!(sweep.tx.output.len(), 1);
    assert_eq!(sweep.tx.output[0].script_pubkey, new.script_pubkey());
    assert_eq!(sweep.change, Some(sweep.tx.output[0].value));
    assert_eq!(sweep.fee + sweep.tx.output[0].value, sat(145_000));
    // Signed by the old wallet's keys, within the size it was priced on.
    let signed = sign(&old, &sweep);
    assert!(signed.vsize() as u64 <= sweep.vbytes);
    assert!(sweep.fee >= rate(3).fee_vb(signed.vsize() as u64).expect("fee"));
    // A bump of a sweep keeps its inputs and pays more.
    let incr = rate(1);
    let bump = bump_batch(&old, GENESIS, &sweep, &[], rate(6), incr, BatchLimits::STANDARD, &new.script_pubkey())
        .expect("bump");
    assert_eq!(bump.inputs, sweep.inputs);
    assert!(bump.fee > sweep.fee && bump.change < sweep.change);
    // Nothing to sweep, too many inputs, or dust left: clear errors.
    let to = new.script_pubkey();
    assert_eq!(plan_sweep(&old, GENESIS, &[], rate(3), BatchLimits::STANDARD, &to), Err(BatchError::NoPayouts));
    let tight = BatchLimits { max_inputs: 2, max_outputs: 10 };
    assert_eq!(
        plan_sweep(&old, GENESIS, &coins, rate(3), tight, &to),
        Err(BatchError::TooManyInputs { count: 3, max: 2 })
    );
    let dust = [coin(4, 700, None)];
    assert!(matches!(
        plan_sweep(&old, GENESIS, &dust, rate(3), BatchLimits::STANDARD, &to),
        Err(BatchError::InsufficientFunds { .. })
    ));
}

#[test]
fn a_lone_payout_batch_is_exactly_what_the_planner_builds_for_one_coin() {
    for (k, n) in [(1, 1), (3, 4), (5, 7)] {
        let fed = federation(k, n);
        let p = plan(&fed, &[coin(1, 1_000_000, None)], &wpkh_payouts(1, 10_000), rate(3)).expect("plan");
        assert!(p.change.is_some());
        let lone = lone_payout_vbytes(&fed, &wpkh(0), &fed.script_pubkey()).expect("size");
        assert_eq!(lone, p.vbytes, "{k}-of-{n}");
        assert_eq!(p.fee, rate(3).fee_vb(lone).expect("fee"));
    }
}
