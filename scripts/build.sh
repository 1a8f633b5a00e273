#!/usr/bin/env bash
# Builds the `codepod` server and the site it serves, the same steps `cargo leptos build`
# takes, with only cargo, wasm-bindgen and wasm-opt (so CI needs no cargo-leptos):
#
#   1. the server binary (ssr) and the agent -> $CARGO_TARGET_DIR/<profile>/codepod, codepod-agent
#      (debug by default, as the tests use them; release with --release, as `./x run` serves)
#   2. the hydrate wasm, through wasm-bindgen (and wasm-opt for --release)
#   3. content-hashed names, hash.txt beside the server binary (as cargo-leptos writes it)
#   4. brotli + gzip twins of the js, wasm and css
#   5. public/ copied into the site root, vendor bundles under /vendor
#
#   scripts/build.sh [--setup] [--release] [--site-only]
#
# --setup first installs what building and running need (scripts/setup.sh --run).
# The server's build is the longest step and needs only cargo. With --release it runs in the
# background from the start, while setup (downloads, and compiling wasm-bindgen-cli on a new
# machine) and the site build (the wasm's single-threaded LTO, wasm-bindgen, wasm-opt, the
# vendor bundles) fill the gaps it leaves on two cores.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

release=false
site_only=false
setup=false
for arg in "$@"; do
  case "$arg" in
    --setup) setup=true ;;
    --release) release=true ;;
    --site-only) site_only=true ;;
    *) die "unknown option $arg" ;;
  esac
done

# The test suite builds (and shares) debug binaries; --release optimises what a user runs
# (`./x run`, the benchmarks): the server and agent, and the wasm they download.
server_profile=()
if $release; then
  server_profile=(--release)
  wasm_profile=(--profile wasm-release)
  wasm_dir="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release"
else
  wasm_profile=()
  wasm_dir="$CARGO_TARGET_DIR/wasm32-unknown-unknown/debug"
fi

build_server() {
  cargo build -p server --bin codepod -p agent --bin codepod-agent "${server_profile[@]}"
}
server_pid=
if $release && ! $site_only; then
  # Another profile's directory than the wasm's, so cargo does not make the two wait.
  server_log="$CARGO_TARGET_DIR/server-build.log"
  mkdir -p "$CARGO_TARGET_DIR"
  say "building the server and the sandbox agent in the background (log: $server_log)"
  build_server >"$server_log" 2>&1 &
  server_pid=$!
  trap 'kill "$server_pid" 2>/dev/null || true' EXIT
fi
if $setup; then
  "$ROOT/scripts/setup.sh" --run
fi
if ! $site_only && [[ -z "$server_pid" ]]; then
  say "building the server and the sandbox agent"
  build_server
fi

say "building the hydrate bundle"
cargo build -p frontend --lib --target wasm32-unknown-unknown "${wasm_profile[@]}"

stage="$SITE_DIR/.pkg-stage"
rm -rf "$stage"
mkdir -p "$stage"
wasm-bindgen --target web --no-typescript --out-dir "$stage" --out-name codepod "$wasm_dir/frontend.wasm"
mv "$stage/codepod_bg.wasm" "$stage/codepod.wasm"
if $release; then
  say "optimising the wasm with wasm-opt"
  optimise_wasm "$stage/codepod.wasm" "$stage/codepod.opt.wasm"
  mv "$stage/codepod.opt.wasm" "$stage/codepod.wasm"
fi
# The vendor bundles first: their icons' stylesheet goes into the app's.
"$ROOT/scripts/build-vendor.sh" "$SITE_DIR/vendor"
cat "$ROOT"/style/*.css "$SITE_DIR/vendor/icons.css" >"$stage/codepod.css"

# Content hashes: the names change when the bytes do, so browsers may cache them forever.
short_hash() { sha256sum "$1" | cut -c1-16; }
js_hash=$(short_hash "$stage/codepod.js")
wasm_hash=$(short_hash "$stage/codepod.wasm")
css_hash=$(short_hash "$stage/codepod.css")
mv "$stage/codepod.js" "$stage/codepod.$js_hash.js"
mv "$stage/codepod.wasm" "$stage/codepod.$wasm_hash.wasm"
mv "$stage/codepod.css" "$stage/codepod.$css_hash.css"
node "$ROOT/scripts/precompress.mjs" "$stage"

rm -rf "$SITE_DIR/pkg"
mv "$stage" "$SITE_DIR/pkg"
# One site for both builds: each server binary finds the names beside itself.
for dir in "$CARGO_TARGET_DIR/debug" "$CARGO_TARGET_DIR/release"; do
  mkdir -p "$dir"
  printf 'js: %s\nwasm: %s\ncss: %s\n' "$js_hash" "$wasm_hash" "$css_hash" >"$dir/hash.txt.new"
  mv "$dir/hash.txt.new" "$dir/hash.txt"
done

cp -R "$ROOT/public/." "$SITE_DIR/"

wasm_file="$SITE_DIR/pkg/codepod.$wasm_hash.wasm"
say "site ready in $SITE_DIR: wasm $(stat -c %s "$wasm_file") B raw, $(stat -c %s "$wasm_file.br") B brotli"

if [[ -n "$server_pid" ]]; then
  say "waiting for the server build"
  if ! wait "$server_pid"; then
    trap - EXIT
    tail -n 40 "$server_log" >&2
    die "the server build failed (whole log: $server_log)"
  fi
  trap - EXIT
  say "server and sandbox agent built"
fi
