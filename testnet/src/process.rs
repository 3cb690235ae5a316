//! A child process owned by a test or the local testnet: its output goes to a log file, it can be
//! signalled (SIGTERM, SIGKILL, SIGSTOP/SIGCONT for partitions) and restarted with the same arguments,
//! and it is always reaped: dropping the handle stops it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A managed child process.
pub struct ManagedProcess {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// How it last stopped, when it is not running.
    stopped: Option<Stopped>,
}

/// Why a managed process is not running (see [`ManagedProcess::health`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Prepared but never started.
    NeverStarted,
    /// Killed or terminated by its owner (a fault scenario's kill -9, a clean stop).
    ByOwner,
    /// It exited by itself: a crash unless the owner expected it.
    Exited(std::process::ExitStatus),
}

/// Whether a managed process is running, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Running.
    Running,
    /// Not running.
    Stopped(Stopped),
}

impl ManagedProcess {
    /// Starts `program args` with stdout and stderr appended to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: Vec<String>,
        envs: Vec<(String, String)>,
        log: PathBuf,
    ) -> std::io::Result<Self> {
        let mut p = Self::prepare(name, program, args, envs, log);
        p.start()?;
        Ok(p)
    }

    /// Like [`ManagedProcess::spawn`] but not started yet: [`ManagedProcess::restart`] starts it.
    pub fn prepare(name: &str, program: &Path, args: Vec<String>, envs: Vec<(String, String)>, log: PathBuf) -> Self {
        ManagedProcess {
            name: name.to_string(),
            program: program.to_path_buf(),
            args,
            envs,
            log,
            child: None,
            stopped: Some(Stopped::NeverStarted),
        }
    }

    fn start(&mut self) -> std::io::Result<()> {
        let out = File::options().create(true).append(true).open(&self.log)?;
        let err = out.try_clone()?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        self.child = Some(child);
        self.stopped = None;
        Ok(())
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its output goes.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Its pid while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it is running (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        self.health() == Health::Running
    }

    /// Whether it is running, and if not, whether its owner stopped it or it exited by itself (reaps it if
    /// it exited, keeping the status).
    pub fn health(&mut self) -> Health {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => return Health::Running,
            Some(Ok(Some(status))) => self.stopped = Some(Stopped::Exited(status)),
            // try_wait failing on our own child: report it as gone, with no status to show.
            Some(Err(_)) => self.stopped = Some(Stopped::ByOwner),
            None => {}
        }
        self.child = None;
        Health::Stopped(self.stopped.unwrap_or(Stopped::ByOwner))
    }

    /// Its exit status if it exited on its own.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        match self.health() {
            Health::Stopped(Stopped::Exited(status)) => Some(status),
            _ => None,
        }
    }

    fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(pid as i32, sig);
            }
        }
    }

    /// kill -9, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.stopped = Some(Stopped::ByOwner);
        }
    }

    /// SIGTERM and wait up to `bound` for a clean exit; SIGKILL after that. Returns whether it exited
    /// by itself.
    pub fn terminate(&mut self, bound: Duration) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        self.stopped = Some(Stopped::ByOwner);
        // SAFETY: as above.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGCONT);
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Freezes it (SIGSTOP): its sockets stay open but it answers nothing, like a partitioned host.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Starts it again with the same arguments (after a kill or an exit).
    pub fn restart(&mut self) -> std::io::Result<()> {
        if self.is_running() {
            self.kill9();
        }
        self.start()
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, name: &str, script: &str) -> ManagedProcess {
        let args = vec!["-c".to_string(), script.to_string()];
        ManagedProcess::prepare(name, Path::new("/bin/sh"), args, Vec::new(), dir.join(format!("{name}.log")))
    }

    #[test]
    fn health_tells_the_owners_kill_from_a_crash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut never = sh(dir.path(), "never", "exit 0");
        assert_eq!(never.health(), Health::Stopped(Stopped::NeverStarted));

        let mut killed = sh(dir.path(), "killed", "sleep 30");
        killed.restart().expect("start");
        assert_eq!(killed.health(), Health::Running);
        killed.kill9();
        assert_eq!(killed.health(), Health::Stopped(Stopped::ByOwner));

        let mut crashing = sh(dir.path(), "crashing", "exit 3");
        crashing.restart().expect("start");
        crate::wait_until("the child exits", Duration::from_secs(10), || Ok(!crashing.is_running())).expect("exits");
        match crashing.health() {
            Health::Stopped(Stopped::Exited(status)) => assert_eq!(status.code(), Some(3)),
            other => panic!("an exit by itself is not {other:?}"),
        }
        // The status is kept, and a restart clears it.
        assert_eq!(crashing.exit_status().and_then(|s| s.code()), Some(3));
        crashing.restart().expect("start again");
        assert_ne!(crashing.health(), Health::Stopped(Stopped::ByOwner));
    }
}
