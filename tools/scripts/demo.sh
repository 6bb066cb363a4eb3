#!/usr/bin/env bash
# `npm run demo`: installs what is missing, builds, starts a throwaway realm (KDC, PostgreSQL)
# in tmp/realm and tells you how to sign in as alice or bob.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false

bash tools/scripts/setup.sh
npx nx run-many -t build --outputStyle=static >/dev/null
# The demo realm uses the LDAP KDB so constrained delegation (S4U2proxy) works too.
bash tools/realm/realm.sh up --dir tmp/realm --kdb ldap --port-base 17500
eval "$(bash tools/realm/realm.sh env --dir tmp/realm)"

cat <<EOT

Forwardable demo realm $FORWARDABLE_REALM is running (KDC $FORWARDABLE_KDC, PostgreSQL localhost:$FORWARDABLE_PG_PORT).

Sign in as alice (password: $FORWARDABLE_PASSWORD_ALICE) or bob (password: $FORWARDABLE_PASSWORD_BOB):

  source $FORWARDABLE_REALM_DIR/realm.env
  kinit alice                        # then: klist
  psql -U alice -c 'select session_user'   # PostgreSQL as alice, with her ticket and no password

The web app will listen on $FORWARDABLE_URL once the API's sign-on lands.
Stop everything with: npm run realm -- down
EOT
