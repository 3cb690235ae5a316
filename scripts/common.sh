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
