#!/usr/bin/env bash
# Inherited folder grants: recursive CTE vs closure table on 10,000 folders, both measured in the
# same run on the same PostgreSQL (bench/rls-inheritance.sql). Uses the PostgreSQL of a realm from
# tools/realm: the one at --dir, or a throwaway one started here and stopped on exit.
#   bash bench/rls-inheritance.sh [--dir tmp/realms/test-db2]
# A benchmark: it prints numbers and ratios and never fails on timing.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
DIR=""
if [[ "${1:-}" == "--dir" ]]; then DIR="$2"; fi
OWN=""
if [[ -z "$DIR" ]]; then
  DIR="$REPO/tmp/realms/bench-inheritance"
  OWN=1
  bash tools/realm/realm.sh up --quiet --dir "$DIR" --kdb db2 --port-base "${FORWARDABLE_TEST_PORT_BASE:-19200}" >/dev/null
  trap 'bash tools/realm/realm.sh down --quiet --dir "$DIR"' EXIT
fi
# shellcheck disable=SC1091
source "$DIR/realm.env"
DB="bench_inheritance_$$"
psql_su() {
  local args=(env -u PGHOSTADDR psql -X -q -v ON_ERROR_STOP=1 -h "$FORWARDABLE_PG_SOCKET_DIR" -p "$FORWARDABLE_PG_PORT" "$@")
  if [[ "$(id -u)" == 0 ]]; then runuser -u "$FORWARDABLE_PG_SUPERUSER" -- "${args[@]}"; else "${args[@]}"; fi
}
psql_su -d postgres -c "CREATE DATABASE $DB"
cleanup_db() { psql_su -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null || true; }
if [[ -n "$OWN" ]]; then trap 'cleanup_db; bash tools/realm/realm.sh down --quiet --dir "$DIR"' EXIT; else trap cleanup_db EXIT; fi
echo "PostgreSQL $(psql_su -d "$DB" -At -c 'SHOW server_version'), $(nproc) cores, $(date -u +%FT%TZ)"
psql_su -d "$DB" -f "$REPO/bench/rls-inheritance.sql"
