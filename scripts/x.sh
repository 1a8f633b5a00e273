#!/usr/bin/env bash
# Dispatcher behind ./x; see ./x for the commands.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

cmd="${1:-help}"
shift || true
case "$cmd" in
  setup) exec "$ROOT/scripts/setup.sh" "$@" ;;
  build) exec "$ROOT/scripts/build.sh" --setup "$@" ;;
  run) exec "$ROOT/scripts/run.sh" "$@" ;;
  test) exec "$ROOT/scripts/test.sh" "$@" ;;
  dev)
    "$ROOT/scripts/setup.sh" --dev
    "$ROOT/scripts/build-vendor.sh" "$ROOT/target/site/vendor"
    # cargo-leptos builds the server and the wasm; the sandbox agent is ours to build.
    (cd "$ROOT" && cargo build -p agent --bin codepod-agent)
    cd "$ROOT" && exec cargo leptos watch "$@"
    ;;
  bench) exec "$ROOT/bench/run.sh" "$@" ;;
  help|-h|--help) sed -n '2,12p' "$ROOT/x" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$cmd' (try ./x help)" ;;
esac
