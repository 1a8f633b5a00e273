#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup, services, format, lints (ssr and hydrate),
# unit and integration tests against the real server, then end-to-end tests in Chromium.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$ROOT/scripts/setup.sh"
CODEPOD_TEST_POSTGRES_URL=$("$ROOT/scripts/services.sh" | tail -1)
export CODEPOD_TEST_POSTGRES_URL

cd "$ROOT"
say "cargo fmt --check"
cargo fmt --all --check

say "clippy (ssr: server and everything it links)"
cargo clippy --workspace --exclude frontend --all-targets --locked -- -D warnings
say "clippy (hydrate: the wasm bundle)"
cargo clippy -p frontend -p app --features app/hydrate --target wasm32-unknown-unknown --locked -- -D warnings

# The manifest tests render k8s/ with the kubectl setup provided.
CODEPOD_KUBECTL=$(kubectl_bin)
export CODEPOD_KUBECTL

say "unit and integration tests"
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
cargo test --workspace --exclude frontend --locked 2>&1 | tee "$log_dir/cargo.log"
cargo_passed=$(awk '/^test result: ok\./ { sum += $4 } END { print sum + 0 }' "$log_dir/cargo.log")

"$ROOT/scripts/k8s-check.sh"

# Every decoder of untrusted bytes, fuzzed for a bounded time from the committed corpus.
"$ROOT/scripts/fuzz.sh" 2>&1 | tee "$log_dir/fuzz.log"
fuzz_passed=$(awk '/^fuzz: [0-9]+ targets, no crash/ { print $2 }' "$log_dir/fuzz.log" | tail -1)

# The containment tests again, on a cgroup v2 kernel in a VM guest (where /dev/kvm exists).
"$ROOT/scripts/vm-test.sh" 2>&1 | tee "$log_dir/vm.log"
vm_passed=$(awk '/cgroup v2 guest: [0-9]+ tests passed/ { print $(NF-2) }' "$log_dir/vm.log" | tail -1)

"$ROOT/scripts/build.sh"

# The API against its generated OpenAPI document: every documented error code reached, then
# Schemathesis.
"$ROOT/scripts/api-contract.sh" 2>&1 | tee "$log_dir/contract.log"
contract_passed=$(awk '/^reach: [0-9]+ of/ { print $2 }' "$log_dir/contract.log" | tail -1)

say "end-to-end tests in Chromium"
rm -rf "$ROOT/end2end/artifacts"
mkdir -p "$ROOT/end2end/artifacts"
cd "$ROOT/end2end"
CODEPOD_BIN="$CARGO_TARGET_DIR/debug/codepod" CODEPOD_SITE_DIR="$SITE_DIR" \
  npx --no-install playwright test 2>&1 | tee "$log_dir/e2e.log"
e2e_passed=$(awk '/^ +[0-9]+ passed/ { print $1 }' "$log_dir/e2e.log" | tail -1)
say "screenshots in end2end/artifacts/"
# One plain summary line for CI (cargo's own last line is a doc-test run with 0 tests).
echo "all: $((cargo_passed + ${fuzz_passed:-0} + ${vm_passed:-0} + ${contract_passed:-0} + ${e2e_passed:-0})) passed, 0 failed"
