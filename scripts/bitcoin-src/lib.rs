//! Empty: this manifest exists only so `cargo fetch` downloads Bitcoin Core source.
