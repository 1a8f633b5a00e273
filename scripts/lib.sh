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

# Dependencies Codepod builds with a patch (patches/<name>.patch says why): the crate as
# crates.io publishes it (from cargo's cache, fetched there first if need be), checked
# against its SHA-256, patched into vendor/crates/<name>, which Cargo.toml's
# [patch.crates-io] names. Cargo cannot read the workspace without them, so every script
# makes them first (this file does, below); fast when they are already there.
patched_crate() {
  local name="$1" version="$2" sha256="$3"
  local patch="$ROOT/patches/$name.patch" dir="$ROOT/vendor/crates/$name"
  local stamp
  stamp="$name $version $(sha256sum <"$patch" | cut -d' ' -f1)"
  [[ "$(cat "$dir/.patched" 2>/dev/null)" == "$stamp" ]] && return 0
  mkdir -p "$ROOT/vendor/crates"
  (
    flock 9
    [[ "$(cat "$dir/.patched" 2>/dev/null)" == "$stamp" ]] && exit 0
    say "patching $name $version (patches/$name.patch)"
    local tmp crate
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -n 1 || true)
    if [[ -z "$crate" ]]; then
      # Into cargo's cache, by cargo (which checks it against the registry's index).
      mkdir -p "$tmp/fetch/src"
      touch "$tmp/fetch/src/lib.rs"
      printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n%s = "=%s"\n\n[workspace]\n' \
        "$name" "$version" >"$tmp/fetch/Cargo.toml"
      (cd "$tmp/fetch" && cargo fetch --quiet) || die "could not download $name $version from crates.io"
      crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name-$version.crate" | head -n 1)
    fi
    echo "$sha256  $crate" | sha256sum --check --quiet >/dev/null \
      || die "$name-$version.crate does not have the checksum Codepod expects"
    tar -xzf "$crate" -C "$tmp"
    # Outside any git repository, so that paths in the patch are the crate's.
    GIT_CEILING_DIRECTORIES="$tmp" git -C "$tmp/$name-$version" apply -p1 "$patch" \
      || die "patches/$name.patch does not apply to $name $version"
    echo "$stamp" >"$tmp/$name-$version/.patched"
    rm -rf "$dir"
    mv "$tmp/$name-$version" "$dir"
  ) 9>"$ROOT/vendor/crates/.lock"
}

patched_crate tachys 0.2.19 e47e2220bb9d2a3be976a22a0fb7685a0b84499bb11ea5cb3bbc82907675ac68
