#!/usr/bin/env bash
# Installs what the demo and the tests need and is not there yet: Debian packages (as root
# with apt-get; otherwise it prints the apt-get line to run) and the npm dependencies exactly
# as the lockfile pins them. Safe to run again: each step is skipped when already done.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"

log() { echo "setup: $*" >&2; }

# Debian packages: the realm tool knows its own list and installs them with apt-get (keeping the
# packages' own system daemons from starting). The tests add Debian's Chromium (driven by
# playwright-core; never a downloaded browser) and redis-server (started by the tests on their
# own port; the machine's Redis is never used) and docker-compose (to validate docker-compose.yml).
# The interoperability matrix adds Firefox ESR and the Samba AD DC packages (FORWARDABLE_WITH_SAMBA;
# their system daemons are kept from starting like the others').
FORWARDABLE_WITH_SAMBA=1 FORWARDABLE_EXTRA_PACKAGES="chromium redis-server docker-compose firefox-esr" bash tools/realm/realm.sh packages

# npm dependencies: `npm ci` when node_modules is missing or was installed from another lockfile.
stamp=node_modules/.forwardable-lockfile.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "installing npm dependencies from package-lock.json (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

# npm 11 skips dependencies' install scripts; the tests use the `kerberos` package as an
# independent Negotiate client, so build its addon from source here (node-gyp, Node's own headers).
if [[ ! -f node_modules/kerberos/build/Release/kerberos.node ]]; then
  log "building the kerberos test client (node-gyp)"
  npm_config_nodedir="${npm_config_nodedir:-$(dirname "$(dirname "$(command -v node)")")}" \
    npm rebuild kerberos --no-audit --no-fund --loglevel=error >/dev/null
fi

# Nx: never phone home, and keep the task cache inside this clone (nx.json cacheDirectory).
export NX_NO_CLOUD=true NX_SKIP_NX_CACHE="${CI:+true}"
