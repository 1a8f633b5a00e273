#!/usr/bin/env bash
# Starts the local services the tests need, if they are not running: PostgreSQL (Debian's
# cluster; the Postgres store tests use a fresh database per run).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if command -v pg_lsclusters >/dev/null; then
  read -r pg_version pg_cluster pg_status < <(pg_lsclusters --no-header | awk '{print $1, $2, $4; exit}') || true
  if [[ -n "${pg_version:-}" && "${pg_status:-}" != online* ]]; then
    say "starting PostgreSQL $pg_version/$pg_cluster"
    pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$pg_cluster" start
  fi
fi
