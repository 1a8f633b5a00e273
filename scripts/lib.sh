# Shared helpers for the scripts in this folder. Sourced, not executed.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# cargo-leptos sets this for every build; setting it everywhere keeps our builds and
# `cargo leptos` sharing one cache, and names the files under /pkg `codepod.*`.
export LEPTOS_OUTPUT_NAME=codepod
export PATH="$HOME/.cargo/bin:$ROOT/vendor/node_modules/.bin:$PATH"
SITE_DIR="$CARGO_TARGET_DIR/site"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# `wasm-opt -Oz` from $1 to $2, keeping the features rustc's wasm32 output uses by default
# (wasm-opt must be told). The site's build and the bundle benchmarks optimise the same way.
optimise_wasm() {
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    -o "$2" "$1"
}

# Runs a command and prints how long it took, for docs/benchmarks.md.
timed() {
  local label="$1"; shift
  local start end
  start=$(date +%s)
  "$@"
  end=$(date +%s)
  say "$label took $((end - start)) s"
}

# The kubectl that renders k8s/: the machine's, or the one setup unpacked.
kubectl_bin() {
  if command -v kubectl >/dev/null; then
    command -v kubectl
  else
    echo "$ROOT/k8s/.tools/bin/kubectl"
  fi
}
