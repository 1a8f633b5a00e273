#!/usr/bin/env bash
# Benchmarks for docs/benchmarks.md. Prints p50/p99 and throughput; never asserts a timing.
#
#   bench/run.sh            everything below
#   bench/run.sh bundle     size of the release hydrate bundle (raw / gzip / brotli)
#   bench/run.sh ssr        SSR page throughput and latency under load (wrk)
#   bench/run.sh api        /api/files/write and sign-in latency, SQLite and Postgres
#   bench/run.sh sandbox    sandbox start → prompt, echo through the agent, idle footprint;
#                           CODEPOD_BENCH_BASELINE=<another build's release dir> runs that
#                           build's sandbox bench and this one's in turn, twice, in one run
#   bench/run.sh terminal   the terminal WebSocket vs JupyterLab's terminal (jupyter_server +
#                           terminado from PyPI in bench/.venv), same client for both
#   bench/run.sh browser    keypress → glyph in Chromium (xterm.js render included); the IDE
#                           page's LCP and time until the editor is usable
#   bench/run.sh lsp        the Python language server: ty over stdio vs through the agent
#                           (bench/lsp.py), then in Chromium: editor ready → first pandas
#                           completion, keypress `.` → list, a request on the IDE socket
#   bench/run.sh packages   pip install of a 5 MB wheel in a sandbox through the package index:
#                           first (download) and cached, vs pip on the host from the same
#                           local upstream (the test wheels, served by python3 -m http.server)
#   bench/run.sh plots      plt.show() in the sandbox → the figure loaded in the Plots pane
#                           (Chromium, end2end/bench/plots.spec.js)
#   bench/run.sh sync       save → visible in the sandbox; terminal change → tree event
#   bench/run.sh fuzz       the fuzz targets for CODEPOD_FUZZ_SECONDS each (default 600;
#                           ./x test runs them 30 s each)
#   bench/run.sh contract   the API contract with CODEPOD_CONTRACT_EXAMPLES Schemathesis
#                           examples per operation (default 1000; ./x test runs 30)
#   bench/run.sh floor      a minimal Leptos app (bench/leptos-floor) built as the hydrate
#                           bundle is: what the framework costs before Codepod's own code
#   bench/run.sh kube       the kube runtime's exec hop (through the tests' fake API server)
#                           against the agent's Unix socket: connect, echo, output, memory
#
# Needs a release site (`./x build --release`); builds a release server itself.
# terminal: CODEPOD_BENCH_SERVER=path/to/codepod measures another build's server (its agent
# beside it) with the same client; CODEPOD_BENCH_ARGS="--only load" runs only the typists,
# "--only echo" only the bare PTY and one typist; "--no-ack" has Codepod's client not
# acknowledge output (no browser flow-control window).
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

what="${1:-all}"

machine() {
  echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
  echo "kernel: $(uname -r); rustc: $(rustc --version | cut -d' ' -f2)"
}

kib() { awk -v bytes="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", bytes / 1024 }'; }

floor() {
  local dir="$ROOT/bench/leptos-floor" out="$CARGO_TARGET_DIR/leptos-floor"
  say "building the minimal Leptos app (bench/leptos-floor) as the hydrate bundle is built"
  (cd "$dir" && CARGO_TARGET_DIR="$out" cargo build --release --locked --quiet --target wasm32-unknown-unknown)
  rm -rf "$out/pkg"
  wasm-bindgen --target web --no-typescript --out-dir "$out/pkg" "$out/wasm32-unknown-unknown/release/leptos_floor.wasm"
  optimise_wasm "$out/pkg/leptos_floor_bg.wasm" "$out/pkg/floor.wasm"
  rm "$out/pkg/leptos_floor_bg.wasm"
  node "$ROOT/scripts/precompress.mjs" "$out/pkg"
  echo "minimal Leptos app: $(stat -c %s "$out/pkg/floor.wasm") B raw, $(kib "$out/pkg/floor.wasm.br") KiB brotli"
}

bundle() {
  local hash wasm js css
  hash="$CARGO_TARGET_DIR/debug/hash.txt"
  [[ -f "$hash" ]] || die "no site built; run ./x build --release"
  wasm="$SITE_DIR/pkg/codepod.$(awk '/^wasm:/ {print $2}' "$hash").wasm"
  js="$SITE_DIR/pkg/codepod.$(awk '/^js:/ {print $2}' "$hash").js"
  css="$SITE_DIR/pkg/codepod.$(awk '/^css:/ {print $2}' "$hash").css"
  printf '%-8s %10s %10s %10s\n' file raw gzip brotli
  for file in "$wasm" "$js" "$css"; do
    printf '%-8s %8sKiB %8sKiB %8sKiB\n' "${file##*.}" "$(kib "$file")" "$(kib "$file.gz")" "$(kib "$file.br")"
  done
  if [[ -f "$SITE_DIR/vendor/manifest.json" ]]; then
    echo "vendor (loaded separately, not in the wasm):"
    for file in $(node -e 'for (const f of Object.values(require(process.argv[1]))) console.log(f)' "$SITE_DIR/vendor/manifest.json"); do
      printf '  %-32s %8sKiB raw %8sKiB brotli\n' "$file" \
        "$(kib "$SITE_DIR/vendor/$file")" "$(kib "$SITE_DIR/vendor/$file.br")"
    done
  fi
  # What each page makes a browser download of wasm on its first load, as the release server
  # renders it (the pages name the bundle they hydrate with; a plain form names none).
  say "building a release server"
  cargo build --release -p server --bin codepod --quiet
  local port=3198 data pid
  data=$(mktemp -d)
  CODEPOD_LISTEN=127.0.0.1:$port CODEPOD_METRICS_LISTEN=127.0.0.1:0 CODEPOD_DATA_DIR="$data" CODEPOD_SITE_DIR="$SITE_DIR" CODEPOD_LOG=warn \
    "$CARGO_TARGET_DIR/release/codepod" &
  pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  echo "first-load wasm per page (brotli):"
  for page in /signin /signup; do
    local names total=0
    names=$(curl -fs "http://127.0.0.1:$port$page" | grep -o '/pkg/[^"]*\.wasm' | sort -u || true)
    for name in $names; do total=$((total + $(stat -c %s "$SITE_DIR$name.br"))); done
    printf '  %-10s %8s KiB  %s\n' "$page" "$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1024 }')" "${names:-(no wasm named by the page)}"
  done
  printf '  %-10s %8s KiB  %s\n' "signed in" "$(kib "$wasm.br")" "${wasm#"$SITE_DIR"} (/ and /w/{id}; /account and the 404 page, like these two, have none)"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}

ssr() {
  command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
  say "building a release server"
  cargo build --release -p server --bin codepod --quiet
  cp "$CARGO_TARGET_DIR/debug/hash.txt" "$CARGO_TARGET_DIR/release/hash.txt"
  local port=3199
  pid=
  data=
  data=$(mktemp -d)
  CODEPOD_LISTEN=127.0.0.1:$port CODEPOD_METRICS_LISTEN=127.0.0.1:0 CODEPOD_DATA_DIR="$data" CODEPOD_SITE_DIR="$SITE_DIR" CODEPOD_LOG=warn \
    "$CARGO_TARGET_DIR/release/codepod" &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  for connections in 1 32; do
    local threads=$((connections < 2 ? connections : 2))
    echo "GET / with $connections connection(s), $threads wrk thread(s), 15 s (server and wrk share the 2 cores):"
    wrk -t"$threads" -c"$connections" -d15s --latency "http://127.0.0.1:$port/" |
      awk '/Requests\/sec/ {print "  requests/s " $2} / 50%/ {print "  p50 " $2} / 99%/ {print "  p99 " $2}'
  done
}

api() {
  say "building the API benchmark (release)"
  cargo build --release -p codepod-bench --bin api --quiet
  CODEPOD_TEST_POSTGRES_URL="${CODEPOD_TEST_POSTGRES_URL:-$("$ROOT/scripts/services.sh" | tail -1)}" \
    "$CARGO_TARGET_DIR/release/api"
}

sandbox() {
  say "building the sandbox benchmark and the agent (release)"
  cargo build --release -p agent -p codepod-bench --bin sandbox --bin codepod-agent --quiet
  local baseline="${CODEPOD_BENCH_BASELINE:-}"
  if [[ -z "$baseline" ]]; then
    "$CARGO_TARGET_DIR/release/sandbox"
    return
  fi
  # The other build's bench uses the agent beside it; the two alternate, so that whatever
  # else the machine does weighs on both.
  [[ -x "$baseline/sandbox" && -x "$baseline/codepod-agent" ]] || die "no sandbox bench and agent in $baseline"
  for round in 1 2; do
    echo "--- before: $baseline (round $round)"
    "$baseline/sandbox"
    echo "--- after: this build (round $round)"
    "$CARGO_TARGET_DIR/release/sandbox"
  done
}

kube() {
  say "building the kube benchmark and the agent (release)"
  cargo build --release -p agent -p codepod-bench --bin kube --bin codepod-agent --quiet
  "$CARGO_TARGET_DIR/release/kube"
}

terminal() {
  say "building the server, the agent and the terminal benchmark (release)"
  cargo build --release -p server -p agent -p codepod-bench --bin codepod --bin codepod-agent --bin terminal --quiet
  cp "$CARGO_TARGET_DIR/debug/hash.txt" "$CARGO_TARGET_DIR/release/hash.txt"
  local venv="$ROOT/bench/.venv"
  if ! cmp -s "$ROOT/bench/jupyter-requirements.txt" "$venv/requirements.txt"; then
    say "installing the peer (jupyter_server + terminado) into bench/.venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/bench/jupyter-requirements.txt"
    cp "$ROOT/bench/jupyter-requirements.txt" "$venv/requirements.txt"
  fi
  local port=3198 jport=8898 token
  token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  data=$(mktemp -d)
  jroot=$(mktemp -d)
  # CODEPOD_BENCH_SERVER: another build's `codepod` (with its `codepod-agent` beside it), to
  # compare builds with the same client.
  # One user with a workspace per typist: the per-user and per-server sandbox limits (and the
  # sign-up throttle) would refuse most of them.
  CODEPOD_LISTEN=127.0.0.1:$port CODEPOD_METRICS_LISTEN=127.0.0.1:0 CODEPOD_DATA_DIR="$data" CODEPOD_SITE_DIR="$SITE_DIR" CODEPOD_LOG=warn \
    CODEPOD_MAX_WORKSPACES_PER_USER=100 CODEPOD_MAX_SANDBOXES_PER_USER=100 CODEPOD_MAX_SANDBOXES=100 \
    CODEPOD_SIGNUPS_PER_IP=1000 \
    "${CODEPOD_BENCH_SERVER:-$CARGO_TARGET_DIR/release/codepod}" &
  pid=$!
  (cd "$jroot" && exec "$venv/bin/jupyter-server" --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=$jport \
    --IdentityProvider.token="$token" --allow-root --ServerApp.root_dir="$jroot" --ServerApp.log_level=WARN \
    --ServerApp.terminado_settings="{'shell_command': ['bash']}" >"$jroot/.server.log" 2>&1) &
  jpid=$!
  trap 'kill $pid $jpid 2>/dev/null || true; wait 2>/dev/null; rm -rf "$data" "$jroot"' EXIT
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  for _ in $(seq 300); do curl -fs "http://127.0.0.1:$jport/api/status?token=$token" >/dev/null && break; sleep 0.1; done
  "$CARGO_TARGET_DIR/release/terminal" --codepod "http://127.0.0.1:$port" \
    --jupyter "http://127.0.0.1:$jport" --token "$token" ${CODEPOD_BENCH_ARGS:-}
}

browser() {
  say "building a release server and agent"
  cargo build --release -p server -p agent --bin codepod --bin codepod-agent --quiet
  cp "$CARGO_TARGET_DIR/debug/hash.txt" "$CARGO_TARGET_DIR/release/hash.txt"
  (cd "$ROOT/end2end" && CODEPOD_BIN="$CARGO_TARGET_DIR/release/codepod" CODEPOD_SITE_DIR="$SITE_DIR" \
    npx --no-install playwright test -c bench.config.js --grep-invert "python language server|plt.show")
}

lsp() {
  say "building a release server and agent"
  cargo build --release -p server -p agent --bin codepod --bin codepod-agent --quiet
  cp "$CARGO_TARGET_DIR/debug/hash.txt" "$CARGO_TARGET_DIR/release/hash.txt"
  python3 "$ROOT/bench/lsp.py" "$CARGO_TARGET_DIR/release/codepod-agent" "${CODEPOD_PYTHON_ENV:-/opt/codepod/python}"
  (cd "$ROOT/end2end" && CODEPOD_BIN="$CARGO_TARGET_DIR/release/codepod" CODEPOD_SITE_DIR="$SITE_DIR" \
    npx --no-install playwright test -c bench.config.js python.spec.js)
}

packages() {
  say "building the packages benchmark and the agent (release)"
  cargo build --release -p agent -p codepod-bench --bin packages --bin codepod-agent --quiet
  local port=3198
  python3 "$ROOT/scripts/wheel-index.py" "${CODEPOD_TEST_WHEELS:-/opt/codepod/wheels}" "$port" >/dev/null &
  local server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  sleep 1
  CODEPOD_BENCH_INDEX="http://127.0.0.1:$port/simple/" "$CARGO_TARGET_DIR/release/packages"
}

plots() {
  say "building a release server and agent"
  cargo build --release -p server -p agent --bin codepod --bin codepod-agent --quiet
  cp "$CARGO_TARGET_DIR/debug/hash.txt" "$CARGO_TARGET_DIR/release/hash.txt"
  (cd "$ROOT/end2end" && CODEPOD_BIN="$CARGO_TARGET_DIR/release/codepod" CODEPOD_SITE_DIR="$SITE_DIR" \
    npx --no-install playwright test -c bench.config.js plots.spec.js)
}

sync() {
  say "building the sync benchmark and the agent (release)"
  cargo build --release -p agent -p codepod-bench --bin sync --bin codepod-agent --quiet
  "$CARGO_TARGET_DIR/release/sync"
}

machine
case "$what" in
  bundle) bundle ;;
  floor) floor ;;
  ssr) ssr ;;
  api) api ;;
  sandbox) sandbox ;;
  terminal) terminal ;;
  browser) browser ;;
  lsp) lsp ;;
  packages) packages ;;
  plots) plots ;;
  sync) sync ;;
  fuzz) CODEPOD_FUZZ_SECONDS="${CODEPOD_FUZZ_SECONDS:-600}" "$ROOT/scripts/fuzz.sh" ;;
  contract) CODEPOD_CONTRACT_EXAMPLES="${CODEPOD_CONTRACT_EXAMPLES:-1000}" "$ROOT/scripts/api-contract.sh" ;;
  kube) kube ;;
  all) bundle; floor; ssr; api; sandbox; terminal; browser; lsp; packages; plots; sync; kube ;;
  *) die "unknown benchmark $what" ;;
esac
