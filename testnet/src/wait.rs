//! Bounded polling: every e2e wait in this project goes through here, with a label and a bound, so a test
//! that hangs says what it was waiting for instead of sleeping a fixed time and hoping.

use std::time::{Duration, Instant};

/// The condition did not hold within the bound.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {after:?} waiting for {what}{}", last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
pub struct WaitError {
    /// What was awaited.
    pub what: String,
    /// The bound.
    pub after: Duration,
    /// The last error the condition returned, if any.
    pub last_error: Option<String>,
}

/// Polls `cond` every 50 ms until it returns `Ok(true)` or `bound` passes. Errors from `cond` are retried
/// (the thing may not be up yet) and the last one is reported on timeout.
pub fn wait_until<F>(what: &str, bound: Duration, mut cond: F) -> Result<(), WaitError>
where
    F: FnMut() -> Result<bool, Box<dyn std::error::Error + Send + Sync>>,
{
    let deadline = Instant::now() + bound;
    let mut last_error = None;
    loop {
        match cond() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_error = Some(e.to_string()),
        }
        if Instant::now() >= deadline {
            return Err(WaitError { what: what.to_string(), after: bound, last_error });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
