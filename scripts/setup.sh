#!/usr/bin/env bash
# Installs whatever the project needs and is missing; fast when everything is present.
#
#   scripts/setup.sh          what building, running and testing need
#   scripts/setup.sh --run    only what building and running the app need (`./x run`): no
#                             Chromium, PostgreSQL, fuzzer, VM, manifest or API-contract tools
#   scripts/setup.sh --dev    also cargo-leptos, for `cargo leptos watch` (a ~35 min compile)
#
# Every tool comes from a package registry (Debian, crates.io, npm); nothing downloads a
# binary from anywhere else. docs/development.md explains each choice.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

want_dev=false
want_tests=true
case "${1:-}" in
  --dev) want_dev=true ;;
  --run) want_tests=false ;;
esac

# --- Debian packages -------------------------------------------------------------------
apt_missing=()
command -v bwrap >/dev/null || apt_missing+=(bubblewrap)
command -v node >/dev/null || apt_missing+=(nodejs)
command -v npm >/dev/null || apt_missing+=(npm)
if $want_tests; then
  [[ -x /usr/bin/chromium ]] || apt_missing+=(chromium)
  command -v pg_ctlcluster >/dev/null || apt_missing+=(postgresql)
fi
[[ -x /usr/bin/python3 ]] || apt_missing+=(python3)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || apt_missing+=(python3-venv)
# An editor in the sandboxes' terminals (bound in from /usr), and the program whose
# terminal queries the end-to-end tests replay.
command -v vim >/dev/null || apt_missing+=(vim)
# The cgroup v2 VM tests (scripts/vm-test.sh), where this machine can run a VM guest.
if $want_tests && [[ -e /dev/kvm ]]; then
  command -v qemu-system-x86_64 >/dev/null || apt_missing+=(qemu-system-x86)
  [[ -x /bin/busybox ]] && /bin/busybox --list | grep -qx switch_root || apt_missing+=(busybox-static)
fi
if ((${#apt_missing[@]})); then
  say "installing Debian packages: ${apt_missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

# --- Rust ------------------------------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The CLI must be exactly the wasm-bindgen version in Cargo.lock, or the generated JS
# and the wasm disagree.
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")
[[ -n "$wb_version" ]] || die "cannot find wasm-bindgen in Cargo.lock"
if [[ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]]; then
  say "installing wasm-bindgen-cli $wb_version (about 3 minutes)"
  # Not --locked: its lockfile names a webpki-roots release the registry no longer serves.
  cargo install wasm-bindgen-cli --version "=$wb_version" --quiet
fi

# The fuzzer (scripts/fuzz.sh): cargo-afl builds AFL++ from the sources it ships, for
# this rustc, when it is installed. Its version is the `afl` crate's in fuzz/Cargo.toml.
afl_version=$(awk -F'"' '/^afl = / { sub(/^=/, "", $2); print $2 }' "$ROOT/fuzz/Cargo.toml")
if $want_tests && { [[ "$(cargo afl --version 2>/dev/null | awk '{print $2}')" != "$afl_version" ]] \
  || ! compgen -G "$HOME/.local/share/afl.rs/rustc-$(rustc --version | awk '{print $2}')-*/afl.rs-$afl_version/afl/bin/afl-fuzz" >/dev/null; }; then
  say "installing cargo-afl $afl_version with AFL++ (about 3 minutes)"
  cargo install cargo-afl --version "=$afl_version" --locked --force --quiet
fi

if $want_dev && [[ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "0.3.10" ]]; then
  say "installing cargo-leptos 0.3.10 (about 35 minutes on 2 cores)"
  # 0.3.10: 0.3.11's lockfile needs a newer rustc; 0.2.x links a too-old wasm-bindgen.
  # no_downloads: it must find wasm-bindgen and wasm-opt on PATH, never fetch them.
  cargo install cargo-leptos --version 0.3.10 --locked --features no_downloads --quiet
fi

# --- the sandboxes' Python ----------------------------------------------------------------
# A virtual environment of the system's python3 with numpy, pandas and scipy from PyPI,
# bound read-only into every sandbox at the same path. It sees the system's site-packages so
# that user site-packages work too: `pip install --user` in a sandbox with egress enabled
# installs into its home (a venv without them refuses --user).
python_env="${CODEPOD_PYTHON_ENV:-/opt/codepod/python}"
requirements="$ROOT/sandbox/python-requirements.txt"
want_py=$(cat "$requirements" <(/usr/bin/python3 --version) <(echo system-site-packages) | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$python_env/.codepod-stamp" 2>/dev/null)" != "$want_py" ]]; then
  say "installing the sandbox Python environment in $python_env (numpy, pandas, scipy, ty, ruff)"
  rm -rf "$python_env"
  mkdir -p "$(dirname "$python_env")"
  /usr/bin/python3 -m venv --system-site-packages "$python_env"
  "$python_env/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir -r "$requirements"
  echo "$want_py" >"$python_env/.codepod-stamp"
fi
# Codepod's matplotlib backend (MPLBACKEND=module://codepod_plots in every sandbox).
backend_dst=$(echo "$python_env"/lib/python3*/site-packages)/codepod_plots.py
if ! cmp -s "$ROOT/sandbox/python/codepod_plots.py" "$backend_dst"; then
  say "installing the plots backend into $python_env"
  install -m 0644 "$ROOT/sandbox/python/codepod_plots.py" "$backend_dst"
fi

# Wheels the tests serve from a local package index (server/tests/wheels.txt): the tests
# need no internet, so they are fetched here, from PyPI, for the sandboxes' Python.
wheels="${CODEPOD_TEST_WHEELS:-/opt/codepod/wheels}"
want_wheels=$(cat "$ROOT/server/tests/wheels.txt" | sha256sum | cut -d' ' -f1)
if $want_tests && [[ "$(cat "$wheels/.codepod-stamp" 2>/dev/null)" != "$want_wheels" ]]; then
  say "downloading the test wheels into $wheels"
  rm -rf "$wheels"
  mkdir -p "$wheels"
  "$python_env/bin/pip" download --quiet --disable-pip-version-check --no-cache-dir --no-deps \
    --only-binary=:all: --dest "$wheels" -r "$ROOT/server/tests/wheels.txt"
  echo "$want_wheels" >"$wheels/.codepod-stamp"
fi

# --- manifest checks (k8s/) ------------------------------------------------------------
# `kubectl kustomize` renders the overlays: the machine's kubectl if it has one, else
# Debian's kubernetes-client unpacked into k8s/.tools (not installed: it would clash with
# another kubectl package). kubernetes-validate (PyPI, pinned) checks them against the
# Kubernetes schemas it bundles, from a venv in k8s/.venv.
if $want_tests && ! command -v kubectl >/dev/null && [[ ! -x "$ROOT/k8s/.tools/bin/kubectl" ]]; then
  say "unpacking Debian's kubectl (kubernetes-client) into k8s/.tools"
  unpack=$(mktemp -d)
  if ! (cd "$unpack" && apt-get download kubernetes-client >/dev/null 2>&1); then
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    (cd "$unpack" && apt-get download kubernetes-client >/dev/null)
  fi
  dpkg -x "$unpack"/kubernetes-client_*.deb "$unpack/root"
  mkdir -p "$ROOT/k8s/.tools/bin"
  cp "$unpack/root/usr/bin/kubectl" "$ROOT/k8s/.tools/bin/kubectl"
  rm -rf "$unpack"
fi
# A venv in <dir>/.venv from <dir>/requirements.txt, made again when the file changed.
pinned_venv() {
  local dir="$ROOT/$1" what="$2"
  if ! cmp -s "$dir/requirements.txt" "$dir/.venv/requirements.txt"; then
    say "installing $what into $1/.venv"
    rm -rf "$dir/.venv"
    /usr/bin/python3 -m venv "$dir/.venv"
    "$dir/.venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir -r "$dir/requirements.txt"
    cp "$dir/requirements.txt" "$dir/.venv/requirements.txt"
  fi
}
if $want_tests; then
  pinned_venv k8s kubernetes-validate
fi

# --- API contract (scripts/api-contract.sh) ---------------------------------------------
# Schemathesis (PyPI, pinned with its dependencies) in api-contract/.venv.
if $want_tests; then
  pinned_venv api-contract Schemathesis
fi

# --- npm -------------------------------------------------------------------------------
# `npm ci` from each lockfile, skipped when node_modules already matches it.
npm_ci() {
  local dir="$1"
  local stamp="$dir/node_modules/.codepod-lock-sha"
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    say "npm ci in ${dir#"$ROOT"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
}
npm_ci "$ROOT/vendor"
if $want_tests; then
  npm_ci "$ROOT/end2end"
fi
