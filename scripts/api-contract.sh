#!/usr/bin/env bash
# The API contract, against a live server (the built binary, PostgreSQL, the local sandbox):
#   1. api-contract/reach.py: a request for every (operation, error code) pair the generated
#      OpenAPI document lists, each answering that code with a body matching the document —
#      the database cut off for `unavailable`;
#   2. Schemathesis (PyPI, pinned in api-contract/requirements.txt) generating requests from
#      the document: no 5xx, every status, content type, header and body as documented, and
#      data the schema rules out refused.
# CODEPOD_CONTRACT_EXAMPLES (default 30) bounds Schemathesis's examples per operation;
# `bench/run.sh contract` runs it with more.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

bin="${CODEPOD_BIN:-$CARGO_TARGET_DIR/debug/codepod}"
venv="$ROOT/api-contract/.venv"
[[ -x "$bin" ]] || die "no server binary at $bin (cargo build -p server --bin codepod)"
[[ -x "$venv/bin/schemathesis" ]] || die "no Schemathesis in $venv (scripts/setup.sh installs it)"
examples="${CODEPOD_CONTRACT_EXAMPLES:-30}"

# A database and a role of the server's own, so that cutting the role off touches nothing
# else on the cluster.
read -r pg_port < <(pg_lsclusters --no-header | awk '{print $3; exit}')
as_postgres() {
  if [[ $(id -un) == postgres ]]; then "$@"; elif [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
admin=(psql -p "$pg_port" -X -q -t -A -v ON_ERROR_STOP=1 -d postgres)
role=codepod_contract
db="codepod_contract_$$"
as_postgres "${admin[@]}" -c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1 || true
for old in $(as_postgres "${admin[@]}" -c "SELECT datname FROM pg_database WHERE datname LIKE 'codepod\_contract\_%'"); do
  as_postgres "${admin[@]}" -c "DROP DATABASE IF EXISTS \"$old\" WITH (FORCE)" >/dev/null
done
as_postgres "${admin[@]}" -c "DROP ROLE IF EXISTS $role" >/dev/null
as_postgres "${admin[@]}" -c "CREATE ROLE $role LOGIN PASSWORD '$role'"
as_postgres "${admin[@]}" -c "CREATE DATABASE $db OWNER $role"

port=$((20000 + RANDOM % 20000))
data=$(mktemp -d)
log="$data/server.log"
cleanup() {
  [[ -n "${server:-}" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  as_postgres "${admin[@]}" -c "ALTER ROLE $role CONNECTION LIMIT -1" >/dev/null 2>&1 || true
  as_postgres "${admin[@]}" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  as_postgres "${admin[@]}" -c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT

export CONTRACT_MAX_FILE_SIZE=65536 CONTRACT_MAX_FILES=12 CONTRACT_MAX_WORKSPACES=4
export CONTRACT_LOGIN_FAILURES=5 CONTRACT_SIGNUPS_PER_IP=20
CODEPOD_LISTEN="127.0.0.1:$port" \
  CODEPOD_METRICS_LISTEN=127.0.0.1:0 \
  CODEPOD_DATA_DIR="$data" \
  CODEPOD_SITE_DIR="${CODEPOD_SITE_DIR:-$SITE_DIR}" \
  CODEPOD_DATABASE_URL="postgres://$role:$role@127.0.0.1:$pg_port/$db" \
  CODEPOD_TRUSTED_PROXIES=127.0.0.1 \
  CODEPOD_LOG=warn \
  CODEPOD_MAX_FILE_SIZE="$CONTRACT_MAX_FILE_SIZE" \
  CODEPOD_MAX_FILES_PER_WORKSPACE="$CONTRACT_MAX_FILES" \
  CODEPOD_MAX_WORKSPACES_PER_USER="$CONTRACT_MAX_WORKSPACES" \
  CODEPOD_LOGIN_FAILURES_PER_ACCOUNT="$CONTRACT_LOGIN_FAILURES" \
  CODEPOD_SIGNUPS_PER_IP="$CONTRACT_SIGNUPS_PER_IP" \
  CODEPOD_MAX_SANDBOXES_PER_USER=1 \
  "$bin" >"$log" 2>&1 &
server=$!
url="http://127.0.0.1:$port"
for _ in $(seq 60); do
  curl -fs "$url/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; die "the server did not start"; }
  sleep 0.5
done
curl -fs "$url/healthz" >/dev/null || { cat "$log" >&2; die "the server is not answering"; }

say "API contract: every documented error code, reached"
admin_cmd="psql -p $pg_port -X -q -t -A -v ON_ERROR_STOP=1 -d postgres"
if [[ $(id -un) != postgres ]]; then
  if [[ $(id -u) -eq 0 ]]; then admin_cmd="runuser -u postgres -- $admin_cmd"; else admin_cmd="sudo -u postgres $admin_cmd"; fi
fi
if ! CONTRACT_URL="$url" CONTRACT_DB_ROLE="$role" CONTRACT_PSQL_ADMIN="$admin_cmd" \
  "$venv/bin/python" "$ROOT/api-contract/reach.py"; then
  tail -40 "$log" >&2
  die "API contract: documented error codes not reached as documented"
fi

# Schemathesis signs in as a user of its own, and does not sign out (that would end its
# session halfway); reach.py covers sign-out.
cookie_jar="$data/jar"
curl -fs -c "$cookie_jar" -H 'content-type: application/json' -H 'x-forwarded-for: 10.200.0.1' \
  -d '{"username":"schemathesis","email":"st@example.org","password":"correct horse battery"}' \
  "$url/api/users/register" >/dev/null
session=$(awk '$6 == "codepod_session" { print $7 }' "$cookie_jar")
[[ -n "$session" ]] || die "no session for Schemathesis"
workspace=$(curl -fs -b "$cookie_jar" -H 'content-type: application/json' -d '{"name":"fuzzed"}' \
  "$url/api/workspaces/create" | sed -E 's/.*"id":"([^"]+)".*/\1/')
doomed=$(curl -fs -b "$cookie_jar" -H 'content-type: application/json' -d '{"name":"doomed"}' \
  "$url/api/workspaces/create" | sed -E 's/.*"id":"([^"]+)".*/\1/')

# One worker: with two threads, Debian's Python 3.11.2 sometimes fails inside Hypothesis's
# `ast.parse` ("AST constructor recursion depth mismatch", CPython gh-106905, a race in the
# AST validator's depth counter fixed in 3.11.5) — a runtime error of the tool, not an
# answer that breaks the document; a CI run met it once.
say "API contract: Schemathesis ($examples examples per operation)"
cd "$data"
if ! CONTRACT_SESSION="$session" CONTRACT_WORKSPACE="$workspace" CONTRACT_DOOMED="$doomed" \
  "$venv/bin/schemathesis" --no-color --config-file "$ROOT/api-contract/schemathesis.toml" \
  run "$url/api/openapi.json" \
  --url "$url" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,ignored_auth \
  --exclude-operation-id users_logout \
  --max-examples "$examples" \
  --seed 1 \
  --workers 1; then
  tail -40 "$log" >&2
  die "API contract: Schemathesis found answers that break the document"
fi
say "API contract: passed"
