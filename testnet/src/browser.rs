//! Headless Chromium driven over the DevTools protocol, for the dashboard's browser tests.
//!
//! Why our own small client: the protocol is JSON over one WebSocket (`{id, method, params}` calls,
//! `{id, result}` answers, `{method, params}` events), and the few calls the tests need (open a page,
//! evaluate an expression, take a screenshot, collect console errors) fit in this file over the
//! WebSocket crate the workspace already has, where a full CDP crate would add a large generated API.
//!
//! The browser runs as Debian's `chromium` (`$CHROMIUM` overrides), headless, without the sandbox (tests
//! run as root), with a fresh user-data directory that is deleted afterwards, and with DevTools on a port
//! the browser picks (it writes it to `DevToolsActivePort`). [`Browser`] kills and reaps the process when
//! dropped, so a failing test leaves no browser behind.

use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::TokioAsyncReadCompatExt;

/// Why the browser could not be driven.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// No chromium binary.
    #[error("cannot start {path}: {source} (install Debian's chromium: scripts/setup does)")]
    Spawn {
        /// The binary tried.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// DevTools did not come up in time.
    #[error("chromium did not open its DevTools port within {0:?}")]
    NoDevTools(Duration),
    /// The WebSocket failed.
    #[error("devtools connection: {0}")]
    Connection(String),
    /// A DevTools call answered an error.
    #[error("devtools {method} failed: {error}")]
    Call {
        /// The method.
        method: String,
        /// The error object.
        error: Value,
    },
    /// Evaluated JavaScript threw.
    #[error("javascript threw: {0}")]
    Script(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
}

/// The chromium binary: `$CHROMIUM` or `chromium` on `PATH`.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("chromium"))
}

/// Whether a chromium binary can be started here.
pub fn chromium_available() -> bool {
    Command::new(chromium_path())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A running headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    outgoing: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_id: std::sync::atomic::AtomicU64,
    session: String,
    /// Console errors, uncaught exceptions and failed loads the page reported, in order.
    errors: Arc<Mutex<Vec<String>>>,
}

impl Browser {
    /// Starts chromium and opens a blank page of `width` x `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Result<Browser, BrowserError> {
        let profile = tempfile::tempdir().map_err(|source| BrowserError::Spawn { path: "tempdir".into(), source })?;
        let path = chromium_path();
        let child = Command::new(&path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-crash-reporter",
                "--disable-breakpad",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                &format!("--window-size={width},{height}"),
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so the renderer and helper processes die with it.
            .process_group(0)
            .spawn()
            .map_err(|source| BrowserError::Spawn { path: path.clone(), source })?;
        // From here on `guard` kills the child if setting up fails.
        let mut guard = ChildGuard(Some(child));
        let bound = Duration::from_secs(30);
        let ws_path = wait_devtools(profile.path(), bound).await?;
        let (port, resource) = ws_path;
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| BrowserError::Connection(e.to_string()))?;
        let host = format!("127.0.0.1:{port}");
        let mut client = soketto::handshake::Client::new(stream.compat(), &host, &resource);
        match client.handshake().await.map_err(|e| BrowserError::Connection(e.to_string()))? {
            soketto::handshake::ServerResponse::Accepted { .. } => {}
            other => return Err(BrowserError::Connection(format!("handshake refused: {other:?}"))),
        }
        let mut builder = client.into_builder();
        builder.set_max_message_size(256 * 1024 * 1024);
        let (mut sender, mut receiver) = builder.finish();

        let pending: Pending = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let (outgoing, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = rx.recv().await {
                if sender.send_text_owned(text).await.is_err() || sender.flush().await.is_err() {
                    break;
                }
            }
        });
        let (p, errs) = (pending.clone(), errors.clone());
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                buf.clear();
                if receiver.receive_data(&mut buf).await.is_err() {
                    break;
                }
                let Ok(msg) = serde_json::from_slice::<Value>(&buf) else { continue };
                if let Some(id) = msg["id"].as_u64() {
                    if let Some(tx) = lock(&p).remove(&id) {
                        let _ = tx.send(msg);
                    }
                } else if let Some(e) = page_error(&msg) {
                    lock(&errs).push(e);
                }
            }
        });

        let mut browser = Browser {
            child: guard.0.take().ok_or_else(|| BrowserError::Connection("child gone".into()))?,
            _profile: profile,
            outgoing,
            pending,
            next_id: 1.into(),
            session: String::new(),
            errors,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" })).await?;
        let target_id = target["targetId"].clone();
        let attached = browser.call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true })).await?;
        browser.session = attached["sessionId"].as_str().unwrap_or_default().to_string();
        for m in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(m, json!({})).await?;
        }
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
            )
            .await?;
        Ok(browser)
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, BrowserError> {
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        self.outgoing.send(msg.to_string()).map_err(|e| BrowserError::Connection(e.to_string()))?;
        let reply = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .map_err(|_| BrowserError::Connection(format!("{method}: no answer in 60 s")))?
            .map_err(|_| BrowserError::Connection(format!("{method}: connection closed")))?;
        if !reply["error"].is_null() {
            return Err(BrowserError::Call { method: method.to_string(), error: reply["error"].clone() });
        }
        Ok(reply["result"].clone())
    }

    /// Opens `url` in the page (returns once navigation started; wait for content by polling).
    pub async fn navigate(&self, url: &str) -> Result<(), BrowserError> {
        let r = self.call("Page.navigate", json!({ "url": url })).await?;
        match r["errorText"].as_str() {
            Some(e) if !e.is_empty() => Err(BrowserError::Script(format!("navigating to {url}: {e}"))),
            _ => Ok(()),
        }
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its JSON value.
    pub async fn eval(&self, expression: &str) -> Result<Value, BrowserError> {
        let r = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }))
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(BrowserError::Script(
                ex["exception"]["description"].as_str().unwrap_or(&ex.to_string()).to_string(),
            ));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `expression` every 100 ms until it returns a truthy value, at most `bound`; returns it. An
    /// expression that throws (the page is still loading) counts as not yet.
    pub async fn wait_for(&self, what: &str, expression: &str, bound: Duration) -> Result<Value, BrowserError> {
        let deadline = Instant::now() + bound;
        loop {
            let last = match self.eval(expression).await {
                Ok(v) if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) => return Ok(v),
                Ok(v) => v.to_string(),
                Err(BrowserError::Script(e)) => e,
                Err(e) => return Err(e),
            };
            if Instant::now() >= deadline {
                return Err(BrowserError::Script(format!(
                    "timed out after {bound:?} waiting for {what} (last: {last})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the whole page to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<(), BrowserError> {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap_or_default())
            .map_err(|e| BrowserError::Connection(format!("screenshot is not base64: {e}")))?;
        std::fs::write(path, png).map_err(|source| BrowserError::Write { path: path.to_path_buf(), source })
    }

    /// What the page reported as errors so far (console errors, uncaught exceptions, failed loads).
    pub fn errors(&self) -> Vec<String> {
        lock(&self.errors).clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Kills chromium's whole process group (it was started as the group's leader) and reaps the leader.
fn kill_group(child: &mut Child) {
    if let Ok(pgid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills the child unless taken.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            kill_group(&mut c);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `(port, /devtools/browser/<id>)` once chromium wrote `DevToolsActivePort`.
async fn wait_devtools(profile: &Path, bound: Duration) -> Result<(u16, String), BrowserError> {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + bound;
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next().and_then(|p| p.trim().parse().ok()), lines.next()) {
                return Ok((port, path.trim().to_string()));
            }
        }
        if Instant::now() >= deadline {
            return Err(BrowserError::NoDevTools(bound));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The error an event reports, if it is one: `console.error`, an uncaught exception, or a browser log
/// entry at level error (failed loads, CSP violations).
fn page_error(msg: &Value) -> Option<String> {
    let p = &msg["params"];
    match msg["method"].as_str()? {
        "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
            let args: Vec<String> = p["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a["value"].as_str().map(String::from).unwrap_or_else(|| a["description"].to_string()))
                .collect();
            Some(format!("console.error: {}", args.join(" ")))
        }
        "Runtime.exceptionThrown" => Some(format!(
            "uncaught: {}",
            p["exceptionDetails"]["exception"]["description"].as_str().unwrap_or(&p["exceptionDetails"].to_string())
        )),
        "Log.entryAdded" if p["entry"]["level"] == "error" => {
            Some(format!("log: {} {}", p["entry"]["text"], p["entry"]["url"].as_str().unwrap_or_default()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_errors_are_recognised() {
        let console = json!({ "method": "Runtime.consoleAPICalled", "params": { "type": "error", "args": [{ "value": "boom" }] } });
        assert_eq!(page_error(&console).unwrap(), "console.error: boom");
        let log = json!({ "method": "Runtime.consoleAPICalled", "params": { "type": "log", "args": [] } });
        assert_eq!(page_error(&log), None);
        let failed = json!({ "method": "Log.entryAdded", "params": { "entry": { "level": "error", "text": "401", "url": "/x" } } });
        assert!(page_error(&failed).unwrap().contains("401"));
        assert_eq!(page_error(&json!({ "id": 3, "result": {} })), None);
    }
}
