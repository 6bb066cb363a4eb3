#!/usr/bin/env bash
# The whole Forwardable stack on a realm from tools/realm: schema migrated by dbadmin (with a
# ticket, no password stored), the built API serving the built SPA, demo data seeded.
#
#   tools/scripts/stack.sh up   --dir REALM_DIR [--delegation constrained|unconstrained] [--port N] [--seed]
#   tools/scripts/stack.sh down --dir REALM_DIR
#
# Expects `npx nx run-many -t build` to have run (dist/apps/api, dist/apps/web).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
CMD="${1:-}"; shift || true
DIR="" DELEGATION="" PORT="" SEED=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    --delegation) DELEGATION="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --seed) SEED=1; shift ;;
    *) echo "stack: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$DIR" && -f "$DIR/realm.env" ]] || { echo "stack: --dir must name a running realm (npm run realm -- up --dir ...)" >&2; exit 2; }
# shellcheck disable=SC1091
source "$DIR/realm.env"
RUN="$FORWARDABLE_REALM_DIR/app"
mkdir -p "$RUN"
PORT="${PORT:-$FORWARDABLE_PORT}"
DELEGATION="${DELEGATION:-$([[ "$FORWARDABLE_KDB" == db2 ]] && echo unconstrained || echo constrained)}"

stop_api() {
  if [[ -f "$RUN/api.pid" ]]; then
    local pid; pid="$(cat "$RUN/api.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/api.pid"
  fi
}

# A ticket for dbadmin in a private cache of its own, destroyed right after use.
with_ticket() {
  local user="$1"; shift
  local var="FORWARDABLE_PASSWORD_${user^^}"
  local cc; cc="$(mktemp -d)/ccache"
  printf '%s\n' "${!var}" | KRB5CCNAME="FILE:$cc" kinit "$user@$FORWARDABLE_REALM" >/dev/null
  KRB5CCNAME="FILE:$cc" "$@"; local rc=$?
  KRB5CCNAME="FILE:$cc" kdestroy 2>/dev/null || true
  rm -rf "$(dirname "$cc")"
  return $rc
}

case "$CMD" in
  up)
    stop_api
    # Migrations run as the database owner, over GSSAPI with the owner's own ticket.
    with_ticket dbadmin env TS_NODE_PROJECT=libs/api/db/tsconfig.lib.json \
      node -r ts-node/register/transpile-only -r tsconfig-paths/register libs/api/db/src/migrate-cli.ts
    [[ -f dist/apps/api/main.js ]] || { echo "stack: dist/apps/api/main.js missing: run npx nx run-many -t build" >&2; exit 1; }
    web="$REPO/dist/apps/web/browser"; [[ -d "$web" ]] || web=""
    env FORWARDABLE_KEYTAB="$FORWARDABLE_HTTP_KEYTAB" \
        FORWARDABLE_KRB5_CONFIG="$KRB5_CONFIG" \
        FORWARDABLE_RCACHE_DIR="$KRB5RCACHEDIR" \
        FORWARDABLE_DELEGATION="$DELEGATION" \
        FORWARDABLE_PORT="$PORT" \
        FORWARDABLE_ADMINS="${FORWARDABLE_ADMINS:-$([[ "$FORWARDABLE_KDB" == ldap ]] || echo dbadmin)}" \
        FORWARDABLE_WEB_DIR="$web" \
        nohup node dist/apps/api/main.js >"$RUN/api.log" 2>&1 &
    echo $! >"$RUN/api.pid"
    for _ in $(seq 1 100); do
      curl -fsS "http://127.0.0.1:$PORT/api/health" >/dev/null 2>&1 && break
      kill -0 "$(cat "$RUN/api.pid")" 2>/dev/null || { tail -n 20 "$RUN/api.log" >&2; echo "stack: the API exited" >&2; exit 1; }
      sleep 0.2
    done
    curl -fsS "http://127.0.0.1:$PORT/api/health" >/dev/null || { tail -n 20 "$RUN/api.log" >&2; echo "stack: the API did not answer" >&2; exit 1; }
    [[ $SEED -eq 1 ]] && node tools/scripts/seed-demo.mjs "http://localhost:$PORT" "$FORWARDABLE_PASSWORD_ALICE" "$FORWARDABLE_PASSWORD_BOB"
    echo "stack: API (pid $(cat "$RUN/api.pid"), $DELEGATION delegation) on http://localhost:$PORT/ ; log $RUN/api.log" >&2
    ;;
  down) stop_api ;;
  *) echo "usage: stack.sh up|down --dir REALM_DIR" >&2; exit 2 ;;
esac
