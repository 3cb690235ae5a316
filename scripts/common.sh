# Sourced by the scripts: one cache outside the clone for the bitcoind build and the cargo target dir,
# so a second run (or a second clone) reuses them.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SIDECHAIN_CACHE="${SIDECHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fedpeg-sidechain}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SIDECHAIN_CACHE/target}"
mkdir -p "$SIDECHAIN_CACHE"
script_start=$(date +%s)
stage() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - script_start ))" "$*"; }
# Runs scripts/setup (quiet when everything is cached) and exports BITCOIND.
ensure_bitcoind() {
  local out
  out="$("$repo_root/scripts/setup" | tail -1)" || { echo "scripts/setup failed" >&2; return 1; }
  export "${out?}"
  echo "bitcoind: $BITCOIND"
}
# RocksDB's C++ is the longest part of a fresh build (about 10 minutes on 2 cores), and every cargo profile
# (dev for the tests, clippy's check, release for the daemon) used to compile it again. It is compiled once,
# optimised and without debug info, into the cache outside the clone, and every build links that archive
# (librocksdb-sys's ROCKSDB_LIB_DIR / ROCKSDB_STATIC; node/build.rs adds the C++ runtime it then needs).
# The key is the locked librocksdb-sys version and the workspace's rocksdb line (its features).
ensure_rocksdb() {
  local version key dir scratch archive
  version="$(grep -A1 '^name = "librocksdb-sys"' "$repo_root/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')"
  key="$( (grep '^rocksdb = ' "$repo_root/Cargo.toml" || echo unknown) | sha256sum | cut -c1-8)"
  dir="$SIDECHAIN_CACHE/rocksdb-$version-$key"
  mkdir -p "$dir"
  # One compile at a time across concurrent runs; the others wait, then find the archive.
  exec 9>"$dir/.lock"
  flock 9
  if [ ! -s "$dir/librocksdb.a" ]; then
    stage "RocksDB $version: compiling its C++ once into $dir"
    scratch="$(mktemp -d "$SIDECHAIN_CACHE/rocksdb-scratch.XXXXXX")"
    (cd "$repo_root" && env -u ROCKSDB_LIB_DIR -u ROCKSDB_STATIC -u CARGO_BUILD_TARGET CARGO_TARGET_DIR="$scratch" \
      cargo build --release --locked -p librocksdb-sys)
    archive="$(find "$scratch/release/build" -path '*/librocksdb-sys-*/out/librocksdb.a' -print -quit)"
    if [ -z "$archive" ]; then
      echo "ensure_rocksdb: the build finished but left no librocksdb.a under $scratch" >&2
      return 1
    fi
    cp "$archive" "$dir/librocksdb.a.$$" && mv "$dir/librocksdb.a.$$" "$dir/librocksdb.a"
    rm -rf "$scratch"
  fi
  flock -u 9
  exec 9>&-
  export ROCKSDB_LIB_DIR="$dir" ROCKSDB_STATIC=1
}
