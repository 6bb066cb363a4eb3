#!/usr/bin/env bash
# `npm run browser -- alice [URL]`: open Chromium as a demo user, signed in with Kerberos.
# Gets the user's ticket (kinit with the realm's demo password) into a private cache, seeds a
# fresh profile so Chromium offers Negotiate (and delegates) to localhost, and opens the app.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
USER_NAME="${1:-alice}"
DIR="${FORWARDABLE_REALM_DIR:-$REPO/tmp/realm}"
[[ -f "$DIR/realm.env" ]] || { echo "browser: no realm in $DIR: run npm run demo first" >&2; exit 1; }
# shellcheck disable=SC1091
source "$DIR/realm.env"
URL="${2:-$FORWARDABLE_URL}"
var="FORWARDABLE_PASSWORD_${USER_NAME^^}"
[[ -n "${!var:-}" ]] || { echo "browser: $USER_NAME is not a demo user (alice, bob, carol, dbadmin)" >&2; exit 2; }
profile="$(mktemp -d /tmp/fw-browser-"$USER_NAME".XXXXXX)"
trap 'rm -rf "$profile"' EXIT
export KRB5CCNAME="FILE:$profile/ccache"
printf '%s\n' "${!var}" | kinit "$USER_NAME@$FORWARDABLE_REALM" >/dev/null
# A fresh profile refuses the first Negotiate unless Local State says it has seen one (KERBEROS-NOTES.md).
cat >"$profile/Local State" <<JSON
{"net":{"received_http_auth_negotiate_headers":true},"auth":{"server_allowlist":"localhost","negotiate_delegate_whitelist":"localhost"}}
JSON
flags=(--user-data-dir="$profile" --auth-server-allowlist=localhost --no-first-run --disable-background-networking --disable-sync)
[[ $EUID -eq 0 ]] && flags+=(--no-sandbox)
if [[ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]]; then
  # No screen: take a screenshot instead, to show that the sign-on works.
  out="$REPO/tmp/browser-$USER_NAME.png"
  chromium --headless --disable-gpu "${flags[@]}" --window-size=1280,800 --virtual-time-budget=5000 --screenshot="$out" "$URL" 2>/dev/null
  echo "browser: no display; screenshot of $URL as $USER_NAME in $out" >&2
else
  chromium "${flags[@]}" "$URL"
fi
kdestroy 2>/dev/null || true
