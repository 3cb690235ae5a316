//! The consensus core must stay pure: no async runtime, no database, no network stack, no bitcoind client
//! among its normal (non-dev) dependencies. This test reads the real dependency tree.

use std::process::Command;

#[test]
fn cargo_tree_has_no_io_crates() {
    // The runtime value first: a test binary reused from a clone at another path must read this tree.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let manifest = format!("{dir}/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--manifest-path",
            &manifest,
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
        for banned in ["tokio", "rocksdb", "librocksdb", "libp2p", "bitcoincore-rpc", "sidechain-bitcoind-client"] {
            assert!(!line.starts_with(banned), "consensus depends on {banned}: {line}");
        }
    }
}
