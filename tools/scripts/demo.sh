#!/usr/bin/env bash
# `npm run demo`: installs what is missing, builds, starts a throwaway realm (KDC + LDAP with
# constrained delegation, PostgreSQL), the API serving the SPA on http://localhost:8080 (PORT to
# change), seeds demo files, and tells you how to sign in as alice or bob. Ctrl-C stops everything.
#   npm run demo -- --detach    leave it running in the background
#   npm run demo -- --stop      stop a detached demo
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
DIR="$REPO/tmp/realm"
DETACH=0
case "${1:-}" in
  --detach) DETACH=1 ;;
  --stop)
    [[ -f "$DIR/realm.env" ]] && bash tools/scripts/stack.sh down --dir "$DIR"
    bash tools/realm/realm.sh down --dir "$DIR"
    exit 0 ;;
  "") ;;
  *) echo "usage: npm run demo [-- --detach | --stop]" >&2; exit 2 ;;
esac

bash tools/scripts/setup.sh
echo "demo: building the API, the SPA and the GSSAPI addon" >&2
npx nx run-many -t build --outputStyle=static >"$REPO/tmp/demo-build.log" 2>&1 || { tail -n 30 "$REPO/tmp/demo-build.log" >&2; exit 1; }
# The demo realm uses the LDAP KDB, so constrained delegation (S4U2proxy) works with any browser.
bash tools/realm/realm.sh up --dir "$DIR" --kdb ldap --port-base 17500 --app-port "${PORT:-8080}"
bash tools/scripts/stack.sh up --dir "$DIR" --delegation constrained --seed
# shellcheck disable=SC1091
source "$DIR/realm.env"

cat <<EOT

  Forwardable is running: $FORWARDABLE_URL

  Sign in as alice (password $FORWARDABLE_PASSWORD_ALICE) or bob (password $FORWARDABLE_PASSWORD_BOB):

  * With Kerberos (the real thing): the realm's settings are in $DIR/realm.env
      eval "\$(npm run -s realm -- env)"; kinit alice; curl --negotiate -u : ${FORWARDABLE_URL}api/auth/me
      npm run browser -- alice        # Chromium with a fresh profile, Negotiate on, alice's ticket
    The banner says "You are signed in as alice — Kerberos, constrained delegation".
    (Your own browser: allow localhost for Negotiate: Chrome --auth-server-allowlist=localhost,
    Firefox network.negotiate-auth.trusted-uris = localhost.)

  * Without a ticket: open $FORWARDABLE_URL and use the password form.

  alice has a folder "Team plans" with roadmap.md shared with bob and salaries.txt for her eyes
  only; bob has notes.txt. PostgreSQL row-level security decides who sees what.
  Admin (setup wizard): dbadmin, password $FORWARDABLE_PASSWORD_DBADMIN.
  PostgreSQL as alice: psql -U alice -c 'select session_user'   (after kinit alice)

EOT

if [[ $DETACH -eq 1 || ! -t 0 ]]; then
  echo "demo: running in the background; stop it with: npm run demo -- --stop" >&2
  exit 0
fi
stop() {
  echo "demo: stopping" >&2
  bash tools/scripts/stack.sh down --dir "$DIR" || true
  bash tools/realm/realm.sh down --dir "$DIR" || true
}
trap 'stop; exit 0' INT TERM
echo "demo: press Ctrl-C to stop" >&2
pid="$(cat "$DIR/app/api.pid")"
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
echo "demo: the API stopped; see $DIR/app/api.log" >&2
stop
