//! `sidechaind ceremony` end to end with the real binary: four validators run the FROST key generation over
//! files (round 1, round 2, finish), all four end with the same group key, anyone's `verify` of the
//! transcript gives it too, and any three key shares sign a BIP340 signature for it. Tampered files,
//! strangers and repeated steps are refused with a clear error.

use bitcoin::hashes::Hash;
use bitcoin::key::TapTweak;
use bitcoin::secp256k1::{rand::thread_rng, Message, Secp256k1};
use bitcoin::TapSighash;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sidechaind(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sidechaind")).args(args).output().expect("sidechaind runs")
}

fn ok(out: &Output, what: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn err(out: &Output) -> String {
    assert!(!out.status.success(), "expected a refusal: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn four_validators_make_one_frost_key_over_files_and_anyone_can_check_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let datadirs: Vec<PathBuf> = (0..4).map(|i| dir.path().join(format!("v{i}"))).collect();
    let mut peg_keys = Vec::new();
    for (i, d) in datadirs.iter().enumerate() {
        let info = ok(&sidechaind(&["init", "--datadir", s(d), "--insecure-seed", &format!("ceremony-{i}")]), "init");
        peg_keys.push(info["peg_key"].as_str().expect("peg key").to_string());
    }
    let mut setup: Vec<String> = vec!["--threshold".into(), "3".into()];
    for k in &peg_keys {
        setup.push("--peg-key".into());
        setup.push(k.clone());
    }
    let with_setup = |head: &[&str], tail: &[&str]| -> Output {
        let mut args: Vec<&str> = head.to_vec();
        args.extend(setup.iter().map(String::as_str));
        args.extend_from_slice(tail);
        sidechaind(&args)
    };

    // Round 1.
    let round1: Vec<PathBuf> = (0..4).map(|i| dir.path().join(format!("round1-{i}.json"))).collect();
    for (d, out) in datadirs.iter().zip(&round1) {
        ok(&with_setup(&["ceremony", "round1", "--datadir", s(d)], &["--out", s(out)]), "round1");
    }
    assert!(
        err(&with_setup(&["ceremony", "round1", "--datadir", s(&datadirs[0])], &["--out", "/dev/null"]))
            .contains("ceremony.secret"),
        "a second round 1 would overwrite the kept secret"
    );
    let r1_args: Vec<String> = round1.iter().flat_map(|p| ["--round1".to_string(), s(p).to_string()]).collect();
    let r1: Vec<&str> = r1_args.iter().map(String::as_str).collect();

    // A tampered round-1 file (another package under validator 2's signature) is refused.
    let tampered = dir.path().join("tampered.json");
    let mut file: serde_json::Value = serde_json::from_slice(&std::fs::read(&round1[2]).expect("read")).expect("json");
    let other: serde_json::Value = serde_json::from_slice(&std::fs::read(&round1[3]).expect("read")).expect("json");
    file["package"] = other["package"].clone();
    std::fs::write(&tampered, serde_json::to_vec(&file).expect("json")).expect("write");
    let bad_r1 =
        ["--round1", s(&round1[0]), "--round1", s(&round1[1]), "--round1", s(&tampered), "--round1", s(&round1[3])];
    let refused = err(&with_setup(
        &["ceremony", "round2", "--datadir", s(&datadirs[0])],
        &[&bad_r1[..], &["--out-dir", s(dir.path())]].concat(),
    ));
    assert!(refused.contains("validator 2") && refused.contains("not signed"), "{refused}");

    // A package replayed under validator 0's index (its own from another ceremony) is refused by validator 0.
    let replay_dir = dir.path().join("replay");
    std::fs::create_dir(&replay_dir).expect("mkdir");
    let old = replay_dir.join("old-0.json");
    let elsewhere = same_key_elsewhere(dir.path(), &datadirs[0]);
    ok(&with_setup(&["ceremony", "round1", "--datadir", s(&elsewhere)], &["--out", s(&old)]), "round1 elsewhere");
    let replayed =
        ["--round1", s(&old), "--round1", s(&round1[1]), "--round1", s(&round1[2]), "--round1", s(&round1[3])];
    let refused = err(&with_setup(
        &["ceremony", "round2", "--datadir", s(&datadirs[0])],
        &[&replayed[..], &["--out-dir", s(&replay_dir)]].concat(),
    ));
    assert!(refused.contains("not its own"), "{refused}");

    // Round 2: each writes one encrypted file per other validator; all print the same ceremony id.
    let round2_dir = dir.path().join("round2");
    let mut ids = Vec::new();
    for d in &datadirs {
        let out = ok(
            &with_setup(
                &["ceremony", "round2", "--datadir", s(d)],
                &[&r1[..], &["--out-dir", s(&round2_dir)]].concat(),
            ),
            "round2",
        );
        ids.push(out["ceremony"].clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0] && id.is_string()), "{ids:?}");
    let mut round2: Vec<PathBuf> =
        std::fs::read_dir(&round2_dir).expect("dir").map(|e| e.expect("entry").path()).collect();
    round2.sort();
    assert_eq!(round2.len(), 12);
    let r2_args: Vec<String> = round2.iter().flat_map(|p| ["--round2".to_string(), s(p).to_string()]).collect();
    let r2: Vec<&str> = r2_args.iter().map(String::as_str).collect();

    // A stranger's datadir is refused: its peg key is not in the setup.
    let stranger = dir.path().join("stranger");
    ok(&sidechaind(&["init", "--datadir", s(&stranger), "--insecure-seed", "stranger"]), "init");
    assert!(err(&with_setup(&["ceremony", "round1", "--datadir", s(&stranger)], &["--out", "/dev/null"]))
        .contains("not one of"));

    // Finish: same group key everywhere, and the transcript verifies to it.
    let mut outcomes = Vec::new();
    for (i, d) in datadirs.iter().enumerate() {
        let transcript = dir.path().join(format!("transcript-{i}.json"));
        let out = ok(
            &with_setup(
                &["ceremony", "finish", "--datadir", s(d)],
                &[&r1[..], &r2[..], &["--transcript", s(&transcript)]].concat(),
            ),
            "finish",
        );
        outcomes.push(out);
        assert!(!d.join("ceremony.secret").exists(), "the ceremony secret is deleted");
    }
    assert!(outcomes.iter().all(|o| *o == outcomes[0]), "{outcomes:?}");
    let transcript = dir.path().join("transcript-3.json");
    let verified = ok(&with_setup(&["ceremony", "verify"], &["--transcript", s(&transcript)]), "verify");
    assert_eq!(verified, outcomes[0]);
    // Checked against the setup the checker expects: another threshold is another ceremony.
    let mut other_setup = setup.clone();
    other_setup[1] = "2".into();
    let mut args = vec!["ceremony", "verify"];
    args.extend(other_setup.iter().map(String::as_str));
    args.extend(["--transcript", s(&transcript)]);
    assert!(err(&sidechaind(&args)).contains("another threshold"));

    // The genesis takes the transcript of its own validators, in their order; the group is the ceremony's.
    let genesis = dir.path().join("genesis.json");
    let make_genesis = |order: &[usize], out: &Path| -> Output {
        let mut args: Vec<String> = vec!["genesis".into(), "--chain-id".into(), "taproot-1".into()];
        for &i in order {
            let consensus = node::keys::NodeKeys::load(&datadirs[i].join("node_key.json")).expect("keys");
            args.push("--validator".into());
            args.push(format!("{}:{}:/ip4/127.0.0.1/tcp/{}", consensus.consensus_public(), peg_keys[i], 4000 + i));
        }
        args.extend(["--taproot-transcript".into(), s(&transcript).into(), "--out".into(), s(out).into()]);
        sidechaind(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let made = make_genesis(&[0, 1, 2, 3], &genesis);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let g: ledger::Genesis = serde_json::from_slice(&std::fs::read(&genesis).expect("genesis")).expect("genesis json");
    let chain = ledger::Chain::new(g).expect("a valid taproot genesis");
    match chain.genesis_wallet().custody() {
        peg::Custody::Taproot { group_key } => assert_eq!(outcomes[0]["group_key"], group_key.to_string()),
        other => panic!("not taproot: {other:?}"),
    }
    let swapped = make_genesis(&[1, 0, 2, 3], &dir.path().join("swapped.json"));
    assert!(err(&swapped).contains("another threshold or set of peg keys"), "validators in another order");

    // Any three key shares sign for the group key (with no script tree: its BIP86 output key).
    let shares: Vec<_> = datadirs.iter().map(|d| node::ceremony::load_key_share(d).expect("key share")).collect();
    let group_key = shares[0].group_key().expect("key");
    assert_eq!(outcomes[0]["group_key"].as_str(), Some(group_key.to_string().as_str()));
    let sighash = TapSighash::from_byte_array([0x5a; 32]);
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for i in [0, 2, 3] {
        let (n, c) = shares[i].commit(&mut thread_rng());
        nonces.insert(i, n);
        commitments.insert(i, c);
    }
    let package = peg::frost::signing_package(&commitments, sighash).expect("package");
    let sig_shares: BTreeMap<_, _> =
        nonces.into_iter().map(|(i, n)| (i, shares[i].sign(&package, sighash, n, None).expect("share"))).collect();
    let signature = peg::frost::aggregate(shares[0].public(), &package, &sig_shares, None).expect("aggregate");
    let secp = Secp256k1::verification_only();
    let (output_key, _) = group_key.tap_tweak(&secp, None);
    secp.verify_schnorr(
        &signature.signature,
        &Message::from_digest(sighash.to_byte_array()),
        &output_key.to_x_only_public_key(),
    )
    .expect("a valid signature for the group");
    // The key share file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(datadirs[0].join("frost_key_share.json")).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// A fresh datadir holding `datadir`'s key: the same validator in another ceremony, whose round-1 package a
/// carrier could replay.
fn same_key_elsewhere(root: &Path, datadir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let copy = root.join("same-key-elsewhere");
    std::fs::create_dir(&copy).expect("mkdir");
    let key = copy.join("node_key.json");
    std::fs::copy(datadir.join("node_key.json"), &key).expect("copy key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    copy
}
