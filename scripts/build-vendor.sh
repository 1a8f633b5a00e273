#!/usr/bin/env bash
# Builds the Monaco and xterm.js bundles into the given directory, unless the same sources
# were already built there (the stamp is a hash of the lockfile and the build inputs).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

out="${1:?usage: build-vendor.sh <out-dir>}"
stamp_want=$(cat "$ROOT/vendor/package-lock.json" "$ROOT/vendor/build.mjs" "$ROOT"/vendor/src/* | sha256sum | cut -d' ' -f1)
if [[ -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$stamp_want" ]]; then
  exit 0
fi
say "bundling Monaco and xterm.js"
node "$ROOT/vendor/build.mjs" "$out"
echo "$stamp_want" >"$out/.stamp"
