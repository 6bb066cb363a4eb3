#!/usr/bin/env bash
# npm run bench: what Kerberos delegation costs, against the shared-pool alternatives, in one run.
#
# Starts its own throwaway realm (tmp/realms/bench, LDAP KDB = constrained delegation, ports
# 19100-19104, or BENCH_PORT_BASE, or FORWARDABLE_TEST_PORT_BASE + 900), the built API, a
# bench-only server for the baselines, drives HTTP load with autocannon, prints a table and writes tmp/bench/results.json. Everything it started is stopped
# on exit. It never fails on timing: it reports numbers and ratios.
#
#   BENCH_DURATION=5 (seconds per load cell)  BENCH_USERS="1 10 100 500"  BENCH_KEEP_REALM=1 (debug)
#   BENCH_SIGNED_IN=5000 (users made and signed in for the open-loop cells)  BENCH_RATE=200 (req/s)
#   BENCH_ONLY=scheduler (only the 500-user closed-loop read cell and the open-loop cells)
#   BENCH_ONLY=standby (only the read-replica cells: the realm gets a hot standby, --pg-standby)
#   BENCH_STANDBY_CAP=50 (users per host in the read-replica cells; connections twice that)
#   BENCH_ONLY=overhead (only (a) against (a') reads, BENCH_ROUNDS rounds; BENCH_CPU_PROFILE_DIR=dir
#   CPU-profiles each measured cell: summarise with bench/src/profile-summary.ts)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
DIR="$REPO/tmp/realms/bench"
# Several checkouts on one machine: each bench realm on its own ports (the test realms use the
# test port base up to +499).
if [[ -n "${BENCH_PORT_BASE:-}" ]]; then PORT_BASE=$BENCH_PORT_BASE
elif [[ -n "${FORWARDABLE_TEST_PORT_BASE:-}" ]]; then PORT_BASE=$((FORWARDABLE_TEST_PORT_BASE + 900))
else PORT_BASE=19100; fi
# The closed-loop cells use the first 500; the open-loop cells sign in BENCH_SIGNED_IN users.
NUSERS=$(( ${BENCH_SIGNED_IN:-5000} > 500 ? ${BENCH_SIGNED_IN:-5000} : 500 ))
# The read-replica cells use the first 500 only.
[[ "${BENCH_ONLY:-}" == standby ]] && NUSERS=500
# Only the read-replica cells run with a hot standby: the other cells stay comparable with earlier runs.
STANDBY_ARGS=()
[[ "${BENCH_ONLY:-}" == standby ]] && STANDBY_ARGS=(--pg-standby)
# The overhead cells use at most the first 500 (no open loop).
[[ "${BENCH_ONLY:-}" == overhead ]] && NUSERS=500
log() { echo "bench: $*" >&2; }

cleanup() {
  local rc=$?
  [[ -f "$DIR/realm.env" ]] && bash tools/scripts/stack.sh down --dir "$DIR" >/dev/null 2>&1 || true
  if [[ -z "${BENCH_KEEP_REALM:-}" && -f "$DIR/realm.env" ]]; then
    bash tools/realm/realm.sh down --dir "$DIR" >/dev/null 2>&1 || true
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
  log "setup (packages, npm ci when the lockfile changed) and build"
  bash tools/scripts/setup.sh
  NX_DAEMON=false NX_NO_CLOUD=true npx nx run-many -t build --outputStyle=static >"$REPO/tmp/bench-build.log" 2>&1 \
    || { tail -n 40 "$REPO/tmp/bench-build.log" >&2; log "build failed (log: tmp/bench-build.log)"; exit 1; }
fi

log "realm up ($DIR, ldap KDB, port base $PORT_BASE)"
# --pg-tls: the encryption cell also times SCRAM over TLS, what a password deployment pays for an encrypted link.
bash tools/realm/realm.sh up --dir "$DIR" --kdb ldap --port-base "$PORT_BASE" --pg-tls "${STANDBY_ARGS[@]}" >&2
# shellcheck disable=SC1091
source "$DIR/realm.env"

# Load-test users bu001..bu500: a principal each (one shared password, this realm only) and a
# PostgreSQL login role in forwardable_users.
# A kept realm (BENCH_KEEP_REALM) keeps its users: pass the same BENCH_USER_PASSWORD to reuse it.
export BENCH_USER_PASSWORD="${BENCH_USER_PASSWORD:-bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}"
mapfile -t USERS < <(for i in $(seq 1 "$NUSERS"); do printf 'bu%03d\n' "$i"; done)
# In batches: thousands of names on one command line exceed the kernel's argument limit.
for ((i = 0; i < ${#USERS[@]}; i += 500)); do
  bash tools/realm/realm.sh add-users --dir "$DIR" --password "$BENCH_USER_PASSWORD" "${USERS[@]:i:500}" >&2
done

log "schema migration + API (stack.sh)"
bash tools/scripts/stack.sh up --dir "$DIR" >&2

# Baselines only: a password role for the shared-pool back ends (b) and (c) and the SCRAM
# comparison. It exists in this throwaway realm only; Forwardable itself never has a password.
export BENCH_APP_PASSWORD="app-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
HBA="$FORWARDABLE_REALM_DIR/pg/data/pg_hba.conf"
# The encryption cell (bench/src/encryption.ts) compares encrypted with plain GSSAPI connections of
# the same user: the bench realm alone also accepts unencrypted Kerberos connections.
grep -q '^hostnogssenc ' "$HBA" || runuser -u "$FORWARDABLE_PG_SUPERUSER" -- sed -i 's/^hostgssenc\(.* gss include_realm.*\)$/&\nhostnogssenc\1/' "$HBA"
grep -q '^host all bench_app ' "$HBA" || runuser -u "$FORWARDABLE_PG_SUPERUSER" -- sed -i '/ gss include_realm/i host all bench_app 127.0.0.1/32 scram-sha-256' "$HBA"
psql_super() { runuser -u "$FORWARDABLE_PG_SUPERUSER" -- env -u PGHOSTADDR psql -X -q -v ON_ERROR_STOP=1 -h "$FORWARDABLE_PG_SOCKET_DIR" -p "$FORWARDABLE_PG_PORT" -d forwardable "$@"; }
log "baseline role, data set and the (c) schema copy (bench/setup.sql)"
psql_super -v app_password="$BENCH_APP_PASSWORD" -f bench/setup.sql >&2

export BENCH_USERS_LIST="${USERS[*]}"
log "driving the benchmark (bench/src/main.ts)"
TS_NODE_PROJECT=bench/tsconfig.json node --expose-gc -r ts-node/register/transpile-only -r tsconfig-paths/register bench/src/main.ts
