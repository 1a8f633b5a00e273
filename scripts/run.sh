#!/usr/bin/env bash
# Sets up what is missing, builds, and runs Codepod at http://127.0.0.1:3000 with the
# zero-configuration defaults (SQLite in ./data, local bubblewrap sandboxes). Any CODEPOD_*
# variable in the environment still applies.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# Sets up what running needs while the release server builds (scripts/build.sh).
"$ROOT/scripts/build.sh" --setup --release
cd "$ROOT"
export CODEPOD_SITE_DIR="${CODEPOD_SITE_DIR:-$SITE_DIR}"
say "Codepod at http://${CODEPOD_LISTEN:-127.0.0.1:3000} (Ctrl-C stops it)"
exec "$CARGO_TARGET_DIR/release/codepod" "$@"
