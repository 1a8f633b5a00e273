#!/usr/bin/env bash
# Starts the local services the tests need, if they are not running, and prepares them:
# PostgreSQL (Debian's cluster) with a `codepod_test` role that may create databases — the
# tests make a fresh database per test and this script drops the ones earlier runs left.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v pg_lsclusters >/dev/null || die "PostgreSQL is not installed (scripts/setup.sh installs it)"
read -r pg_version pg_cluster pg_port pg_status < <(pg_lsclusters --no-header | awk '{print $1, $2, $3, $4; exit}') || true
[[ -n "${pg_version:-}" ]] || die "no PostgreSQL cluster exists (pg_createcluster)"
if [[ "${pg_status:-}" != online* ]]; then
  say "starting PostgreSQL $pg_version/$pg_cluster"
  pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$pg_cluster" start
fi

# As the postgres OS user over the local socket (peer auth works on a stock Debian install,
# trust on this project's machines), so no password needs to be known.
as_postgres() {
  if [[ $(id -un) == postgres ]]; then "$@"; elif [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
psql_admin() { as_postgres psql -p "$pg_port" -X -q -t -A -v ON_ERROR_STOP=1 -d postgres "$@"; }

for _ in $(seq 30); do psql_admin -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
if [[ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'codepod_test'")" != 1 ]]; then
  say "creating the codepod_test PostgreSQL role"
  psql_admin -c "CREATE ROLE codepod_test LOGIN CREATEDB PASSWORD 'codepod_test'"
fi
for db in $(psql_admin -c "SELECT datname FROM pg_database WHERE datname LIKE 'codepod\_test\_%'"); do
  psql_admin -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null
done
echo "postgres://codepod_test:codepod_test@127.0.0.1:$pg_port/postgres"
