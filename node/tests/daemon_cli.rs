//! What an operator sees when something is wrong at start-up: a missing genesis, a bad config, a port in
//! use, a datadir already in use, fault switches without the opt-in. Each is a non-zero exit with one clear
//! line naming the problem, never a panic; and `--help` reads well.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testnet::bitcoind::free_port;

fn sidechaind() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sidechaind"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A datadir with a key and a one-validator genesis (this node).
fn prepared() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let datadir = dir.path().join("node");
    let out = sidechaind().args(["init", "--datadir"]).arg(&datadir).output().expect("init runs");
    assert!(out.status.success(), "init: {}", text(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("init prints JSON");
    let validator = format!(
        "{}:{}:/ip4/127.0.0.1/tcp/1",
        info["consensus_key"].as_str().expect("key"),
        info["peg_key"].as_str().expect("peg key")
    );
    let out = sidechaind()
        .args(["genesis", "--chain-id", "cli-test", "--validator", &validator, "--out"])
        .arg(datadir.join("genesis.json"))
        .output()
        .expect("genesis runs");
    assert!(out.status.success(), "genesis: {}", text(&out));
    (dir, datadir)
}

fn run(datadir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let rpc = format!("127.0.0.1:{}", free_port().expect("port"));
    let p2p = format!("/ip4/127.0.0.1/tcp/{}", free_port().expect("port"));
    let mut cmd = sidechaind();
    cmd.args(["run", "--datadir"]).arg(datadir).args(["--rpc-bind", &rpc, "--p2p-listen", &p2p]).args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child =
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sidechaind did not exit on a start-up error within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn assert_fails_with(out: &Output, needle: &str) {
    let t = text(out);
    assert!(!out.status.success(), "expected failure mentioning {needle:?}, got success: {t}");
    assert!(t.contains(needle), "expected {needle:?} in: {t}");
    assert!(!t.contains("panicked"), "a start-up error must not panic: {t}");
}

#[test]
fn help_lists_the_commands_and_run_flags() {
    let out = sidechaind().arg("--help").output().expect("help");
    assert!(out.status.success());
    for cmd in ["init", "genesis", "run"] {
        assert!(text(&out).contains(cmd), "--help lists {cmd}");
    }
    let out = sidechaind().args(["run", "--help"]).output().expect("run help");
    for flag in ["--datadir", "--genesis", "--bootstrap", "--rpc-bind", "--metrics-bind", "SIDECHAIND_DATADIR"] {
        assert!(text(&out).contains(flag), "run --help mentions {flag}");
    }
}

#[test]
fn missing_genesis_is_a_clear_error() {
    let (_dir, datadir) = prepared();
    std::fs::remove_file(datadir.join("genesis.json")).expect("rm");
    assert_fails_with(&run(&datadir, &[], &[]), "file not found (make one with `sidechaind genesis`)");
}

#[test]
fn a_bad_config_is_a_clear_error() {
    let (_dir, datadir) = prepared();
    std::fs::write(datadir.join("sidechaind.toml"), "[p2p]\nlisten_on = \"x\"\n").expect("write");
    assert_fails_with(&run(&datadir, &[], &[]), "unknown field `listen_on`");
    std::fs::write(datadir.join("sidechaind.toml"), "[rpc\n").expect("write");
    assert_fails_with(&run(&datadir, &[], &[]), "is invalid");
    std::fs::remove_file(datadir.join("sidechaind.toml")).expect("rm");
    assert_fails_with(&run(&datadir, &["--bootstrap", "not-a-multiaddr"], &[]), "is not a valid address");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let (_dir, datadir) = prepared();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    assert_fails_with(&run(&datadir, &["--metrics-bind", &addr], &[]), "cannot listen for metrics");
}

#[test]
fn fault_switches_need_the_opt_in() {
    let (_dir, datadir) = prepared();
    std::fs::write(datadir.join("sidechaind.toml"), "[fault]\nprecommit_nil = true\n").expect("write");
    assert_fails_with(&run(&datadir, &[], &[]), "SIDECHAIND_ALLOW_FAULTS=1");
}

#[test]
fn a_datadir_in_use_is_a_clear_error() {
    let (_dir, datadir) = prepared();
    let rpc = format!("127.0.0.1:{}", free_port().expect("port"));
    let mut first = sidechaind()
        .args(["run", "--datadir"])
        .arg(&datadir)
        .args(["--rpc-bind", &rpc])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("first node");
    // The first node holds the lock once its cookie exists (it opens the database before serving RPC).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !datadir.join(".cookie").exists() {
        assert!(Instant::now() < deadline, "first node did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run(&datadir, &[], &[]);
    let _ = first.kill();
    let _ = first.wait();
    assert_fails_with(&out, "is in use by another sidechaind");
}

#[test]
fn sigterm_stops_the_node_cleanly_and_it_restarts_where_it_was() {
    let (_dir, datadir) = prepared();
    let start = || {
        let rpc = format!("127.0.0.1:{}", free_port().expect("port"));
        sidechaind()
            .args(["run", "--datadir"])
            .arg(&datadir)
            .args(["--rpc-bind", &rpc])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("node")
    };
    let node = start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !datadir.join(".cookie").exists() {
        assert!(Instant::now() < deadline, "node did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Command::new("kill").args(["-TERM", &node.id().to_string()]).status().expect("kill runs");
    assert!(sent.success());
    let out = node.wait_with_output().expect("exit");
    let log = text(&out);
    assert!(out.status.success(), "SIGTERM should end with status 0: {log}");
    assert!(log.contains("SIGTERM: shutting down") && log.contains("sidechaind stopped"), "{log}");
    // It starts again on the same datadir (lock released, database consistent).
    let _ = std::fs::remove_file(datadir.join(".cookie"));
    let mut again = start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !datadir.join(".cookie").exists() {
        assert!(again.try_wait().expect("wait").is_none(), "restart failed");
        assert!(Instant::now() < deadline, "node did not restart");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = again.kill();
    let _ = again.wait();
}
