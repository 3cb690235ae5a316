//! The consensus core must stay pure: no async runtime, no database, no network stack, no bitcoind client
//! among its normal (non-dev) dependencies. This test reads the real dependency tree.

use std::process::Command;

#[test]
fn cargo_tree_has_no_io_crates() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--manifest-path",
            manifest,
            "-p",
            "sidechain-consensus",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .output()
        .expect("cargo tree runs");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(tree.contains("sidechain-consensus"), "unexpected tree: {tree}");
    for line in tree.lines() {
        for banned in ["tokio", "rocksdb", "librocksdb", "libp2p", "bitcoincore-rpc"] {
            assert!(!line.starts_with(banned), "consensus depends on {banned}: {line}");
        }
    }
}
