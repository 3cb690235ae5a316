//! Secrets on disk (the RPC cookie, wallet keys): created readable by their owner only, from the
//! operating system's random generator.
//!
//! Why here: the mode must be set when the file is created, not after (a `chmod` after writing leaves a
//! window in which another user can open it). Public because the wallet crate keeps its keys the same way.

use rand_core::{OsRng, RngCore};
use std::io::Write;
use std::path::Path;

/// `N` bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng.fill_bytes(&mut out);
    out
}

/// Writes `bytes` to `path` as a file only its owner can read or write (0600 on Unix). With
/// `create_new` an existing file is an `AlreadyExists` error and is left untouched; otherwise it is
/// truncated (and keeps its mode, so callers replace secrets by writing a new file and renaming it).
pub fn write_private(path: &Path, bytes: &[u8], create_new: bool) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if create_new {
        opts.create_new(true);
    } else {
        opts.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
