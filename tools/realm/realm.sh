#!/usr/bin/env bash
# tools/realm: a throwaway Kerberos realm (MIT KDC, optional slapd for the LDAP KDB) and a
# PostgreSQL 15 cluster that trusts it through GSSAPI, all on 127.0.0.1, in one directory,
# started and stopped by PID. Used by the demo, by every integration test and by CI.
#
#   npm run realm -- up     [--dir D] [--kdb db2|ldap] [--realm R] [--port-base N] [--app-port N] [--pg-tls]
#                                          --pg-tls: PostgreSQL also offers TLS (throwaway CA, server
#                                          certificate for localhost) with "hostssl ... gss" lines
#                                          --pg-standby: also a hot standby of PostgreSQL (streaming
#                                          replication) on port base+5, same keytab and pg_hba
#   npm run realm -- up --kdc samba-ad [--delegation both|unconstrained|constrained] [--dir D] ...
#                                          a Samba AD DC instead of MIT (root; tools/realm/samba-ad.sh)
#   npm run realm -- down   [--dir D]      stop our daemons (by PID) and delete the directory
#   npm run realm -- status [--dir D]      exit 0 when every daemon of the realm is running
#   npm run realm -- env    [--dir D]      print `export` lines for `eval "$(npm run -s realm -- env)"`
#   npm run realm -- add-users --password P [--no-role] NAME...   more users (load tests, demos);
#                                          a mixed-case NAME (Dana) is the principal Dana@REALM with the
#                                          role dana, as FORWARDABLE_USERNAME_CASE=lower maps it
#   up ... --krb-caseins-users             PostgreSQL compares the principal and the role name ignoring
#                                          case (krb_caseins_users = on), as a FORWARDABLE_USERNAME_CASE
#                                          =lower deployment needs
#
# Nothing under /etc is read or written: every tool is pointed at the directory through
# KRB5_CONFIG, KRB5_KDC_PROFILE and KRB5RCACHEDIR (see shared/KERBEROS-NOTES.md).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PG_BIN="${FORWARDABLE_PG_BIN:-/usr/lib/postgresql/15/bin}"
DEBIAN_PACKAGES=(krb5-kdc krb5-admin-server krb5-kdc-ldap krb5-user libkrb5-dev slapd ldap-utils libsasl2-modules-gssapi-mit postgresql-15 postgresql-client-15 curl util-linux)

die() { echo "realm: $*" >&2; exit 1; }
say() { [[ -n "${QUIET:-}" ]] || echo "realm: $*" >&2; }

usage() {
  sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------- arguments
CMD="${1:-}"; [[ -n "$CMD" ]] || usage; shift
DIR="${FORWARDABLE_REALM_DIR:-$REPO/tmp/realm}"
KDB="" REALM="" PORT_BASE="" AD_DELEGATION_ARG="" APP_PORT_ARG="" ALLOW_INSTALL=1 NEW_PASSWORD="" WITH_ROLE=1 NAMES=() PG_TLS=0 PG_STANDBY=0 PG_CASEINS=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --password) NEW_PASSWORD="$2"; shift 2 ;;
    --no-role) WITH_ROLE=0; shift ;;
    --dir) DIR="$2"; shift 2 ;;
    --kdb) KDB="$2"; shift 2 ;;
    # The KDC flavour: MIT (with --kdb) or a Samba AD DC, recorded as the realm's "kdb" samba-ad.
    --kdc) case "$2" in mit) ;; samba-ad) KDB=samba-ad ;; *) die "--kdc must be mit or samba-ad, not '$2'" ;; esac; shift 2 ;;
    --delegation) AD_DELEGATION_ARG="$2"; shift 2 ;;
    --realm) REALM="$2"; shift 2 ;;
    --port-base) PORT_BASE="$2"; shift 2 ;;
    --app-port) APP_PORT_ARG="$2"; shift 2 ;;
    --no-install) ALLOW_INSTALL=0; shift ;;
    --pg-tls) PG_TLS=1; shift ;;
    --pg-standby) PG_STANDBY=1; shift ;;
    --krb-caseins-users) PG_CASEINS=1; shift ;;
    -q|--quiet) QUIET=1; shift ;;
    -h|--help) usage ;;
    -*) die "unknown argument '$1' (see --help)" ;;
    *) [[ "$CMD" == add-users ]] || die "unknown argument '$1' (see --help)"; NAMES+=("$1"); shift ;;
  esac
done
mkdir -p "$(dirname "$DIR")"
DIR="$(cd "$(dirname "$DIR")" && pwd)/$(basename "$DIR")"
LOCK="$DIR.lock"
# When the checkout is not reachable by the daemons' user the realm lives under /tmp and DIR is
# a link to it (prepare_dir); every path the daemons see must be the real one.
LINK=""
if [[ -L "$DIR" ]]; then
  if [[ -e "$DIR" ]]; then LINK="$DIR"; DIR="$(readlink -f "$DIR")"; else rm -f "$DIR"; fi
fi
STATE="$DIR/realm.state"

# Settings survive in realm.state so that down/status/env need no flags and a second `up`
# with different flags is refused instead of silently mixing two realms.
load_state() { [[ -f "$STATE" ]] && source "$STATE"; }
if [[ -f "$STATE" ]]; then
  want_kdb="$KDB" want_realm="$REALM" want_base="$PORT_BASE"
  load_state
  for pair in "kdb:$want_kdb:$S_KDB" "realm:$want_realm:$S_REALM" "port-base:$want_base:$S_PORT_BASE" "delegation:$AD_DELEGATION_ARG:${S_AD_DELEGATION:-}"; do
    IFS=: read -r name want have <<<"$pair"
    if [[ -n "$want" && "$want" != "$have" ]]; then
      die "the realm in $DIR was created with --$name $have; run 'npm run realm -- down --dir $DIR' first or choose another --dir"
    fi
  done
  KDB="$S_KDB" REALM="$S_REALM" PORT_BASE="$S_PORT_BASE"
  if [[ "$PG_STANDBY" == 1 && "${S_PG_STANDBY:-0}" != 1 && "$CMD" == up ]]; then
    die "the realm in $DIR was created without --pg-standby; run 'npm run realm -- down --dir $DIR' first or choose another --dir"
  fi
  PG_STANDBY="${S_PG_STANDBY:-0}"
fi
KDB="${KDB:-db2}"
REALM="${REALM:-$([[ "$KDB" == samba-ad ]] && echo AD.TEST || echo FORWARDABLE.TEST)}"
AD_DELEGATION="${AD_DELEGATION_ARG:-${S_AD_DELEGATION:-both}}"
PORT_BASE="${PORT_BASE:-17500}"
[[ "$KDB" == db2 || "$KDB" == ldap || "$KDB" == samba-ad ]] || die "--kdb must be db2 or ldap (or --kdc samba-ad), not '$KDB'"
[[ "$AD_DELEGATION" =~ ^(both|unconstrained|constrained)$ ]] || die "--delegation must be both, unconstrained or constrained"
[[ -z "$AD_DELEGATION_ARG" || "$KDB" == samba-ad ]] || die "--delegation is for --kdc samba-ad (MIT: --kdb db2 forwards TGTs, --kdb ldap also allows S4U2proxy)"
[[ "$REALM" =~ ^[A-Z0-9][A-Z0-9.-]*$ ]] || die "--realm must be upper-case letters, digits, dots and dashes, not '$REALM'"
[[ "$PORT_BASE" =~ ^[0-9]+$ && "$PORT_BASE" -ge 1024 && "$PORT_BASE" -le 65500 ]] || die "--port-base must be a number from 1024 to 65500"

KDC_PORT=$((PORT_BASE + 0))
# shellcheck source=tools/realm/samba-ad.sh
source "$HERE/samba-ad.sh"
if [[ "$KDB" == samba-ad ]]; then
  ad_names
  KDC_PORT=88; KDC_ADDR="$AD_NS_IP:88"
else
  KDC_ADDR="127.0.0.1:$KDC_PORT"
fi
LDAP_PORT=$((PORT_BASE + 1))
PG_PORT=$((PORT_BASE + 2))
# --pg-standby: the hot standby's port (+3 is the app's, +4 the bench server's: bench/src/main.ts).
PG_STANDBY_PORT=$((PORT_BASE + 5))
APP_PORT="${APP_PORT_ARG:-${S_APP_PORT:-$((PORT_BASE + 3))}}"
[[ "$APP_PORT" =~ ^[0-9]+$ && "$APP_PORT" -ge 1024 && "$APP_PORT" -le 65535 ]] || die "--app-port must be a number from 1024 to 65535"
LDAP_SUFFIX="dc=$(echo "$REALM" | tr 'A-Z' 'a-z' | sed 's/\./,dc=/g')"
LDAP_ADMIN_DN="cn=admin,$LDAP_SUFFIX"
KRB_CONTAINER="cn=krbContainer,$LDAP_SUFFIX"
USERS=(alice bob carol dbadmin)

# Daemons never run as root: as root we run them as a system user of our own.
if [[ $EUID -eq 0 ]]; then
  RUN_AS="${FORWARDABLE_REALM_USER:-forwardable}"
else
  RUN_AS="$(id -un)"
fi
# fd 9 holds the realm's lock: daemons must not inherit it, or the lock outlives this script.
as_user() {
  if [[ $EUID -eq 0 ]]; then runuser -u "$RUN_AS" -- env "$@" 9>&-; else env "$@" 9>&-; fi
}
krb_env() {
  echo "KRB5_CONFIG=$DIR/krb5.conf" "KRB5_KDC_PROFILE=$DIR/kdc/kdc.conf" "KRB5RCACHEDIR=$DIR/rcache" \
    "KRB5CCNAME=FILE:$DIR/run/realm-tool.ccache"
}

# ---------------------------------------------------------------- packages
missing_packages() {
  local p missing=()
  # Callers may ask for more in one go (setup.sh: Chromium, Redis for the tests).
  local want=("${DEBIAN_PACKAGES[@]}")
  [[ "$KDB" == samba-ad || -n "${FORWARDABLE_WITH_SAMBA:-}" ]] && want+=("${SAMBA_PACKAGES[@]}")
  for p in "${want[@]}" ${FORWARDABLE_EXTRA_PACKAGES:-}; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

ensure_packages() {
  local missing; missing="$(missing_packages)"
  [[ -z "$missing" ]] && return 0
  local line="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $missing"
  if [[ $EUID -ne 0 || $ALLOW_INSTALL -eq 0 ]]; then
    die "missing Debian packages; run as root: $line"
  fi
  say "installing Debian packages: $missing"
  # policy-rc.d keeps the packages' own system daemons (slapd on 389, krb5kdc on /etc) from starting.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >$policy; chmod +x $policy; created_policy=1; fi
  (
    set +e
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
    rc=$?
    [[ $created_policy -eq 1 ]] && rm -f $policy
    exit $rc
  ) || die "apt-get failed; run: $line"
}

ensure_user() {
  [[ $EUID -eq 0 ]] || return 0
  id -u "$RUN_AS" >/dev/null 2>&1 && return 0
  say "creating system user $RUN_AS to run the realm's daemons"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_AS"
}

# ---------------------------------------------------------------- helpers
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port="$1" what="$2" log="$3" i
  for i in $(seq 1 100); do port_busy "$port" && return 0; sleep 0.1; done
  echo "---- last lines of $log ----" >&2; tail -n 20 "$log" >&2 || true
  die "$what did not start listening on 127.0.0.1:$port within 10 s"
}

pid_alive() { local f="$1"; [[ -f "$f" ]] && kill -0 "$(head -n1 "$f")" 2>/dev/null; }

random_secret() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }

stop_pid() {
  local f="$1" name="$2" pid i
  [[ -f "$f" ]] || return 0
  pid="$(head -n1 "$f")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then say "$name ($pid) ignored TERM; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$f"
}

daemons() {
  if [[ "$KDB" == samba-ad ]]; then echo "samba $DIR/run/samba.pid"; else echo "krb5kdc $DIR/run/krb5kdc.pid"; fi
  [[ "$KDB" == ldap ]] && echo "slapd $DIR/run/slapd.pid"
  echo "postgres $DIR/pg/data/postmaster.pid"
  [[ "$PG_STANDBY" == 1 ]] && echo "postgres-standby $DIR/pg/standby/postmaster.pid"
  return 0
}

all_running() {
  local name f
  while read -r name f; do pid_alive "$f" || return 1; done < <(daemons)
}

# ---------------------------------------------------------------- configuration files
write_krb5_conf() {
  cat >"$DIR/krb5.conf" <<EOF
# Client profile of the throwaway realm $REALM (tools/realm). Point KRB5_CONFIG here.
[libdefaults]
    default_realm = $REALM
    dns_lookup_realm = false
    dns_lookup_kdc = false
    dns_canonicalize_hostname = false
    rdns = false
    forwardable = true
    udp_preference_limit = 1
    ticket_lifetime = 10h
    renew_lifetime = 7d

[realms]
    $REALM = {
        kdc = $KDC_ADDR
        admin_server = $KDC_ADDR
    }

[domain_realm]
    localhost = $REALM
    .localhost = $REALM
EOF
}

write_kdc_conf() {
  local dbline
  if [[ "$KDB" == db2 ]]; then
    dbline="database_name = $DIR/kdc/principal"
  else
    dbline="database_module = ldapconf"
  fi
  cat >"$DIR/kdc/kdc.conf" <<EOF
[kdcdefaults]
    kdc_listen = 127.0.0.1:$KDC_PORT
    kdc_tcp_listen = 127.0.0.1:$KDC_PORT

[realms]
    $REALM = {
        $dbline
        key_stash_file = $DIR/kdc/stash
        acl_file = $DIR/kdc/kadm5.acl
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
        max_life = 10h
        max_renewable_life = 7d
    }

[dbmodules]
    ldapconf = {
        db_library = kldap
        ldap_servers = ldap://127.0.0.1:$LDAP_PORT
        ldap_kerberos_container_dn = $KRB_CONTAINER
        ldap_kdc_dn = $LDAP_ADMIN_DN
        ldap_kadmind_dn = $LDAP_ADMIN_DN
        ldap_service_password_file = $DIR/kdc/ldap.stash
        ldap_conns_per_server = 5
    }

[logging]
    kdc = FILE:$DIR/log/krb5kdc.log
    admin_server = FILE:$DIR/log/kadmin.log
    default = FILE:$DIR/log/krb5lib.log
EOF
  : >"$DIR/kdc/kadm5.acl"
}

# ---------------------------------------------------------------- slapd (LDAP KDB)
start_slapd() {
  mkdir -p "$DIR/ldap/db"
  if [[ ! -f "$DIR/ldap/kerberos.schema" ]]; then
    zcat /usr/share/doc/krb5-kdc-ldap/kerberos.schema.gz >"$DIR/ldap/kerberos.schema"
  fi
  cat >"$DIR/ldap/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include $DIR/ldap/kerberos.schema
pidfile $DIR/run/slapd.pid
argsfile $DIR/run/slapd.args
# SASL/GSSAPI binds (the API's keytab, an operator's ticket): the service is ldap/localhost, its
# key in keytabs/ldap.keytab (KRB5_KTNAME below). No password-based SASL mechanisms.
sasl-host localhost
sasl-secprops noanonymous,noplain
# The API's service principal reads groups as the reader entry; other Kerberos users stay
# uid=<name>,cn=gssapi,cn=auth (authenticated, so "users" in the ACL below).
authz-regexp "^uid=http/localhost(,cn=[^,]+)?,cn=gssapi,cn=auth\$" "cn=forwardable-reader,$LDAP_SUFFIX"
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 268435456
suffix "$LDAP_SUFFIX"
rootdn "$LDAP_ADMIN_DN"
rootpw $LDAP_ADMIN_PASSWORD
directory $DIR/ldap/db
index objectClass eq
index krbPrincipalName eq,pres,sub
index member eq
# The KDB lives here, keys included: nobody but the rootdn (the KDC and the realm tool) may read
# the Kerberos container. Bound users may read the rest (groups), anonymous may only bind.
access to dn.subtree="$KRB_CONTAINER"
  by * none
access to *
  by users read
  by anonymous auth
  by * none
EOF
  chown -R "$RUN_AS" "$DIR/ldap" "$DIR/run" "$DIR/log" 2>/dev/null || true
  chmod 0600 "$DIR/ldap/slapd.conf"
  as_user KRB5_KTNAME="FILE:$DIR/keytabs/ldap.keytab" KRB5_CONFIG="$DIR/krb5.conf" KRB5RCACHEDIR="$DIR/rcache" \
    slapd -f "$DIR/ldap/slapd.conf" -h "ldap://127.0.0.1:$LDAP_PORT/" >>"$DIR/log/slapd.log" 2>&1 \
    || { tail -n 20 "$DIR/log/slapd.log" >&2; die "slapd failed to start (log: $DIR/log/slapd.log)"; }
  wait_port "$LDAP_PORT" slapd "$DIR/log/slapd.log"
}

ldap_admin() {
  local tool="$1"; shift
  "$tool" -x -H "ldap://127.0.0.1:$LDAP_PORT/" -D "$LDAP_ADMIN_DN" -w "$LDAP_ADMIN_PASSWORD" "$@"
}

create_ldap_kdb() {
  local dc="${LDAP_SUFFIX%%,*}"; dc="${dc#dc=}"
  ldap_admin ldapadd >/dev/null <<EOF
dn: $LDAP_SUFFIX
objectClass: top
objectClass: dcObject
objectClass: organization
o: $REALM
dc: $dc

dn: ou=groups,$LDAP_SUFFIX
objectClass: organizationalUnit
ou: groups
EOF
  as_user $(krb_env) kdb5_ldap_util -D "$LDAP_ADMIN_DN" -w "$LDAP_ADMIN_PASSWORD" -H "ldap://127.0.0.1:$LDAP_PORT/" \
    create -subtrees "$LDAP_SUFFIX" -r "$REALM" -s -P "$MASTER_PASSWORD" >>"$DIR/log/kdb.log" 2>&1 \
    || { tail -n 20 "$DIR/log/kdb.log" >&2; die "kdb5_ldap_util create failed"; }
  printf '%s\n%s\n' "$LDAP_ADMIN_PASSWORD" "$LDAP_ADMIN_PASSWORD" |
    as_user $(krb_env) kdb5_ldap_util -D "$LDAP_ADMIN_DN" -w "$LDAP_ADMIN_PASSWORD" -H "ldap://127.0.0.1:$LDAP_PORT/" \
      stashsrvpw -f "$DIR/kdc/ldap.stash" "$LDAP_ADMIN_DN" >>"$DIR/log/kdb.log" 2>&1 \
    || { tail -n 20 "$DIR/log/kdb.log" >&2; die "kdb5_ldap_util stashsrvpw failed"; }
}

principal_dn() {
  ldap_admin ldapsearch -LLL -o ldif-wrap=no -b "$KRB_CONTAINER" "(krbPrincipalName=$1)" dn | sed -n 's/^dn: //p' | head -n1
}

# S4U2proxy: the HTTP service may obtain tickets to postgres/localhost on a user's behalf,
# and to nothing else. MIT has no kadmin option for this attribute (KERBEROS-NOTES.md).
allow_constrained_delegation() {
  local svc dn
  for svc in HTTP/localhost s4u-probe/localhost; do
  dn="$(principal_dn "$svc@$REALM")"
  [[ -n "$dn" ]] || die "$svc@$REALM not found in LDAP"
  ldap_admin ldapmodify >/dev/null <<EOF
dn: $dn
changetype: modify
add: krbAllowedToDelegateTo
krbAllowedToDelegateTo: postgres/localhost@$REALM
EOF
  done
}

# The admin group the setup wizard requires; members are the principals' LDAP entries. A
# read-only account lets the API look groups up with a simple bind.
create_ldap_groups() {
  local dn; dn="$(principal_dn "dbadmin@$REALM")"
  ldap_admin ldapadd >/dev/null <<EOF
dn: cn=forwardable-reader,$LDAP_SUFFIX
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: forwardable-reader
userPassword: $LDAP_READER_PASSWORD

EOF
  ldap_admin ldapadd >/dev/null <<EOF
dn: cn=forwardable-admins,ou=groups,$LDAP_SUFFIX
objectClass: groupOfNames
cn: forwardable-admins
member: $dn

dn: cn=forwardable-users,ou=groups,$LDAP_SUFFIX
objectClass: groupOfNames
cn: forwardable-users
member: $(principal_dn "alice@$REALM")
member: $(principal_dn "bob@$REALM")
member: $(principal_dn "carol@$REALM")
member: $dn
EOF
}

# ---------------------------------------------------------------- KDC
kadmin() { as_user $(krb_env) kadmin.local -r "$REALM" -q "$1" >>"$DIR/log/kadmin-local.log" 2>&1 || { tail -n 5 "$DIR/log/kadmin-local.log" >&2; die "kadmin.local failed: ${1%% -pw *}"; }; }

create_principals() {
  local u var
  for u in "${USERS[@]}"; do
    var="PW_${u^^}"
    # Every principal gets its flags explicitly: an explicit flag skips default_principal_flags,
    # and mismatched preauth flags break S4U2proxy (KERBEROS-NOTES.md).
    kadmin "addprinc +requires_preauth -pw ${!var} $u"
  done
  kadmin "addprinc +requires_preauth +ok_as_delegate -randkey HTTP/localhost"
  kadmin "addprinc +requires_preauth -randkey postgres/localhost"
  # A service the HTTP principal is NOT allowed to delegate to: tests prove S4U2proxy to it fails.
  kadmin "addprinc +requires_preauth -randkey other/localhost"
  # Test-only probe for the KDC's constrained-delegation list: kvno can only drive S4U2proxy after
  # protocol transition (S4U2self), which HTTP/localhost must not be allowed. The probe may, and is
  # allowed to delegate to postgres/localhost only, like HTTP/localhost.
  if [[ "$KDB" == ldap ]]; then
    kadmin "addprinc +requires_preauth +ok_to_auth_as_delegate -randkey s4u-probe/localhost"
    kadmin "ktadd -k $DIR/keytabs/s4u-probe.keytab s4u-probe/localhost"
    # slapd's own key, for SASL/GSSAPI binds (no LDAP password for the API or the role tool).
    kadmin "addprinc +requires_preauth -randkey ldap/localhost"
    kadmin "ktadd -k $DIR/keytabs/ldap.keytab ldap/localhost"
  fi
  # ktadd re-randomises keys: each keytab is exported exactly once.
  kadmin "ktadd -k $DIR/keytabs/http.keytab HTTP/localhost"
  kadmin "ktadd -k $DIR/keytabs/postgres.keytab postgres/localhost"
  kadmin "ktadd -k $DIR/keytabs/other.keytab other/localhost"
}

start_kdc() {
  as_user $(krb_env) krb5kdc -r "$REALM" -P "$DIR/run/krb5kdc.pid" >>"$DIR/log/krb5kdc.stderr" 2>&1 \
    || { tail -n 20 "$DIR/log/krb5kdc.stderr" "$DIR/log/krb5kdc.log" >&2 || true; die "krb5kdc failed to start"; }
  wait_port "$KDC_PORT" krb5kdc "$DIR/log/krb5kdc.log"
  local i; for i in $(seq 1 50); do [[ -s "$DIR/run/krb5kdc.pid" ]] && break; sleep 0.1; done
}

# ---------------------------------------------------------------- PostgreSQL
# The superuser's way in is the private socket: drop any PGHOSTADDR a caller sourced from realm.env.
pg_env() { echo "-u PGHOSTADDR -u PGDATABASE -u PGUSER" "$(krb_env)" "PGHOST=$DIR/run" "PGPORT=$PG_PORT"; }

create_cluster() {
  as_user $(pg_env) "$PG_BIN/initdb" -D "$DIR/pg/data" -U "$RUN_AS" -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=reject >>"$DIR/log/initdb.log" 2>&1 \
    || { tail -n 20 "$DIR/log/initdb.log" >&2; die "initdb failed"; }
  cat >>"$DIR/pg/data/postgresql.conf" <<EOF

# tools/realm: loopback only, non-default port, Kerberos via the realm's own keytab.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DIR/run'
krb_server_keyfile = 'FILE:$DIR/keytabs/postgres.keytab'
max_connections = 300
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_connections = on
EOF
  # No password method anywhere: the bootstrap superuser (the OS user running the cluster) may
  # use the private socket with peer; everyone else comes over TCP with a Kerberos ticket, on a
  # GSSAPI-encrypted link only (hostgssenc: an unencrypted TCP connection matches no line).
  cat >"$DIR/pg/data/pg_hba.conf" <<EOF
# TYPE      DATABASE  USER        ADDRESS        METHOD
local       all       $RUN_AS     peer
hostgssenc  all       all         127.0.0.1/32   gss include_realm=0 krb_realm=$REALM
EOF
  [[ "$PG_TLS" == 1 ]] && create_pg_tls
  if [[ "$PG_STANDBY" == 1 ]]; then
    # The standby's replication connection: the cluster's own OS user over the private socket
    # (peer), so replication needs no password and no trust line; nobody else may replicate.
    echo "local       replication $RUN_AS   peer" >>"$DIR/pg/data/pg_hba.conf"
  fi
  # pg_ident cannot lower-case a name: this is PostgreSQL's one way to let the ticket of Dana@REALM
  # in as the role dana (it compares the principal's name and the role ignoring case).
  [[ "$PG_CASEINS" == 1 ]] && printf 'krb_caseins_users = on\n' >>"$DIR/pg/data/postgresql.conf"
  return 0
}

# --pg-standby: a hot standby fed by streaming replication from the realm's PostgreSQL. The base
# backup copies postgresql.conf and pg_hba.conf (hostgssenc ... gss), and krb_server_keyfile names
# the same keytab: postgres/localhost is one service principal whatever the port, so users connect
# to the standby with GSSAPI exactly as to the primary. -R writes standby.signal and the
# primary_conninfo of the replication connection (the private socket, peer, as above).
create_standby() {
  as_user $(pg_env) "$PG_BIN/pg_basebackup" -h "$DIR/run" -p "$PG_PORT" -U "$RUN_AS" -D "$DIR/pg/standby" \
    -R -X stream -c fast >>"$DIR/log/basebackup.log" 2>&1 \
    || { tail -n 20 "$DIR/log/basebackup.log" >&2; die "pg_basebackup for the standby failed"; }
  cat >>"$DIR/pg/standby/postgresql.conf" <<EOF

# tools/realm --pg-standby: the same cluster as a read-only hot standby on its own port.
port = $PG_STANDBY_PORT
hot_standby = on
EOF
}

start_standby() {
  as_user $(pg_env) "$PG_BIN/pg_ctl" -D "$DIR/pg/standby" -l "$DIR/log/postgresql-standby.log" -w -t 30 start >/dev/null \
    || { tail -n 20 "$DIR/log/postgresql-standby.log" >&2; die "the PostgreSQL standby failed to start"; }
}

# --pg-tls: a throwaway CA and a server certificate for "localhost" only (no IP address, so a
# connection to 127.0.0.1 under verify-full meets a name mismatch), plus an unrelated second CA
# for wrong-CA tests. GSSAPI authentication inside TLS: "hostssl ... gss". hostgssenc stays first,
# so a client that can encrypt with GSSAPI still does.
create_pg_tls() {
  local t="$DIR/tls" d="$DIR/pg/data"
  mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Forwardable throwaway CA $REALM" \
    -keyout "$t/ca.key" -out "$t/ca.crt" >>"$DIR/log/tls.log" 2>&1 || die "openssl: CA failed (see $DIR/log/tls.log)"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Unrelated throwaway CA" \
    -keyout "$t/other-ca.key" -out "$t/other-ca.crt" >>"$DIR/log/tls.log" 2>&1 || die "openssl: second CA failed"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/server.key" -out "$t/server.csr" >>"$DIR/log/tls.log" 2>&1 \
    || die "openssl: server key failed"
  printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$t/server.ext"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial -days 30 \
    -extfile "$t/server.ext" -out "$d/server.crt" >>"$DIR/log/tls.log" 2>&1 || die "openssl: server certificate failed"
  rm -f "$t/ca.key" "$t/other-ca.key" "$t/server.csr"
  chown "$RUN_AS" "$d/server.key" "$d/server.crt"; chmod 0600 "$d/server.key"; chmod 0755 "$t"; chmod 0644 "$t"/*.crt
  cat >>"$d/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
EOF
  echo "hostssl     all       all         127.0.0.1/32   gss include_realm=0 krb_realm=$REALM" >>"$d/pg_hba.conf"
}

start_postgres() {
  as_user $(pg_env) "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/log/postgresql.log" -w -t 30 start >/dev/null \
    || { tail -n 20 "$DIR/log/postgresql.log" >&2; die "PostgreSQL failed to start"; }
}

psql_super() { as_user $(pg_env) psql -X -q -v ON_ERROR_STOP=1 -U "$RUN_AS" -d "${2:-postgres}" -c "$1" >/dev/null; }

create_roles() {
  local u
  for u in alice bob carol; do psql_super "CREATE ROLE $u LOGIN"; done
  # dbadmin owns the application database but is not a superuser: superusers bypass RLS.
  psql_super "CREATE ROLE dbadmin LOGIN CREATEROLE"
  # Every application user is in forwardable_users; the schema grants table privileges to it
  # and row-level security narrows them per row. dbadmin may add members.
  psql_super "CREATE ROLE forwardable_users NOLOGIN; GRANT forwardable_users TO alice, bob, carol; GRANT forwardable_users TO dbadmin WITH ADMIN OPTION"
  psql_super "CREATE DATABASE forwardable OWNER dbadmin"
  psql_super "REVOKE ALL ON DATABASE forwardable FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE forwardable TO alice, bob, carol" forwardable
}

# ---------------------------------------------------------------- env file
write_env() {
  local f="$DIR/realm.env"
  {
    echo "# Throwaway realm $REALM ($KDB KDB) from tools/realm. source this file, then: kinit alice"
    echo "export FORWARDABLE_REALM_DIR='$DIR'"
    echo "export FORWARDABLE_REALM='$REALM'"
    echo "export FORWARDABLE_KDB='$KDB'"
    echo "export KRB5_CONFIG='$DIR/krb5.conf'"
    echo "export KRB5RCACHEDIR='$DIR/rcache'"
    echo "export FORWARDABLE_KDC='$KDC_ADDR'"
    echo "export FORWARDABLE_HTTP_KEYTAB='$DIR/keytabs/http.keytab'"
    echo "export FORWARDABLE_POSTGRES_KEYTAB='$DIR/keytabs/postgres.keytab'"
    echo "export FORWARDABLE_OTHER_KEYTAB='$DIR/keytabs/other.keytab'"
    echo "export FORWARDABLE_SERVICE_PRINCIPAL='HTTP/localhost@$REALM'"
    echo "export FORWARDABLE_PG_HOST='localhost'"
    echo "export FORWARDABLE_PG_HOSTADDR='127.0.0.1'"
    echo "export FORWARDABLE_PG_PORT='$PG_PORT'"
    echo "export FORWARDABLE_PG_DATABASE='forwardable'"
    echo "export FORWARDABLE_PG_SOCKET_DIR='$DIR/run'"
    echo "export FORWARDABLE_PG_SUPERUSER='$RUN_AS'"
    # Not FORWARDABLE_PG_READ_HOSTS itself: whether an API reads from the standby is its caller's choice.
    [[ "$PG_STANDBY" == 1 ]] && echo "export FORWARDABLE_PG_STANDBY_PORT='$PG_STANDBY_PORT'"
    if [[ "$PG_TLS" == 1 ]]; then
      echo "export FORWARDABLE_PG_SSLROOTCERT='$DIR/tls/ca.crt'"
      echo "export FORWARDABLE_PG_OTHER_CA='$DIR/tls/other-ca.crt'"
    fi
    echo "export PGHOST='localhost'"
    echo "export PGHOSTADDR='127.0.0.1'"
    echo "export PGPORT='$PG_PORT'"
    echo "export PGDATABASE='forwardable'"
    echo "export FORWARDABLE_PORT='$APP_PORT'"
    echo "export FORWARDABLE_URL='http://localhost:$APP_PORT/'"
    if [[ "$KDB" == samba-ad ]]; then
      echo "export FORWARDABLE_AD_DELEGATION='$AD_DELEGATION'"
      echo "export FORWARDABLE_AD_NETNS='$AD_NETNS'"
      echo "export FORWARDABLE_AD_SMB_CONF='$(ad_smb_conf)'"
      echo "export FORWARDABLE_RBCD_KEYTAB='$DIR/keytabs/rbcd.keytab'"
      # The DC's directory as a deployment reaches it: ldaps:// with the realm's CA, a SASL/GSSAPI
      # bind to ldap/<dc fqdn>. Under FORWARDABLE_AD_* so the AD suites opt in to LDAP.
      echo "export FORWARDABLE_AD_LDAPS_URL='ldaps://$AD_NS_IP/'"
      echo "export FORWARDABLE_AD_LDAP_CA_FILE='$DIR/tls/ad-ca.crt'"
      echo "export FORWARDABLE_AD_LDAP_SASL_SERVICE='ldap@$(ad_dc_fqdn)'"
      echo "export FORWARDABLE_AD_BASE_DN='$(ad_base_dn)'"
    fi
    if [[ "$KDB" == ldap ]]; then
      echo "export FORWARDABLE_S4U_PROBE_KEYTAB='$DIR/keytabs/s4u-probe.keytab'"
      echo "export FORWARDABLE_LDAP_URL='ldap://127.0.0.1:$LDAP_PORT/'"
      echo "export FORWARDABLE_LDAP_BASE='$LDAP_SUFFIX'"
      echo "export FORWARDABLE_LDAP_GROUPS_BASE='ou=groups,$LDAP_SUFFIX'"
      echo "export FORWARDABLE_LDAP_SASL_SERVICE='ldap@localhost'"
      echo "export FORWARDABLE_LDAP_BIND_DN='cn=forwardable-reader,$LDAP_SUFFIX'"
      echo "export FORWARDABLE_LDAP_BIND_PASSWORD='${LDAP_READER_PASSWORD:-}'"
    fi
    local u var
    for u in "${USERS[@]}"; do var="PW_${u^^}"; echo "export FORWARDABLE_PASSWORD_${u^^}='${!var}'"; done
  } >"$f.tmp"
  chmod 0600 "$f.tmp"; mv "$f.tmp" "$f"
}

write_state() {
  {
    echo "S_KDB='$KDB'"; echo "S_REALM='$REALM'"; echo "S_PORT_BASE='$PORT_BASE'"; echo "S_APP_PORT='$APP_PORT'"
    echo "S_PG_STANDBY='$PG_STANDBY'"
    echo "MASTER_PASSWORD='$MASTER_PASSWORD'"; echo "LDAP_ADMIN_PASSWORD='$LDAP_ADMIN_PASSWORD'"
    echo "LDAP_READER_PASSWORD='${LDAP_READER_PASSWORD:-}'"
    if [[ "$KDB" == samba-ad ]]; then
      echo "S_AD_DELEGATION='$AD_DELEGATION'"; echo "S_AD_HOST_IP='$AD_HOST_IP'"; echo "S_AD_NS_IP='$AD_NS_IP'"
      echo "S_AD_NETNS='$AD_NETNS'"; echo "S_AD_VETH_HOST='$AD_VETH_HOST'"; echo "S_AD_VETH_NS='$AD_VETH_NS'"
      echo "AD_ADMIN_PASSWORD='${AD_ADMIN_PASSWORD:-}'"
    fi
    local u var; for u in "${USERS[@]}"; do var="PW_${u^^}"; echo "PW_${u^^}='${!var}'"; done
  } >"$STATE.tmp"
  chmod 0600 "$STATE.tmp"; mv "$STATE.tmp" "$STATE"
}

# ---------------------------------------------------------------- commands
# The daemons' user must be able to reach the directory; a checkout under /root is not
# traversable by it, so then the realm lives under /tmp and $DIR becomes a link to it.
prepare_dir() {
  [[ -e "$DIR" ]] && return 0
  local parent; parent="$(dirname "$DIR")"
  if [[ $EUID -eq 0 ]] && ! runuser -u "$RUN_AS" -- test -x "$parent" 2>/dev/null; then
    local real; real="$(mktemp -d /tmp/forwardable-realm.XXXXXXXX)"
    ln -s "$real" "$DIR"
    say "$parent is not reachable by $RUN_AS; the realm lives in $real"
    LINK="$DIR"; DIR="$real"; STATE="$DIR/realm.state"
  else
    mkdir -p "$DIR"
  fi
}

cmd_up() {
  ensure_packages
  ensure_user
  exec 9>"$LOCK"; flock 9
  load_state || true
  # The app port is only an address to advertise: changing it on a live realm rewrites the env file.
  if [[ -f "$STATE" && -n "$APP_PORT_ARG" && "$APP_PORT_ARG" != "${S_APP_PORT:-}" ]]; then write_state; write_env; fi
  if [[ -f "$STATE" ]] && all_running; then
    say "realm $REALM already running in $DIR"
    return 0
  fi
  if [[ -f "$STATE" ]]; then
    # Only the stopped ones: a test that stopped the KDC must find PostgreSQL (and its
    # connections) untouched when the KDC comes back.
    say "restarting the stopped daemons of $DIR"
    if [[ "$KDB" == ldap ]] && ! pid_alive "$DIR/run/slapd.pid"; then start_slapd; fi
    if [[ "$KDB" == samba-ad ]]; then
      pid_alive "$DIR/run/samba.pid" || ad_start
    elif ! pid_alive "$DIR/run/krb5kdc.pid"; then
      start_kdc
    fi
    if ! pid_alive "$DIR/pg/data/postmaster.pid"; then start_postgres; fi
    if [[ "$PG_STANDBY" == 1 ]] && ! pid_alive "$DIR/pg/standby/postmaster.pid"; then start_standby; fi
    say "realm $REALM ($KDB) is up again"
    return 0
  fi
  [[ "$KDB" == samba-ad ]] && ad_require_root
  local p
  for p in $([[ "$KDB" == samba-ad ]] || echo "$KDC_PORT") "$PG_PORT" $([[ "$KDB" == ldap ]] && echo "$LDAP_PORT") $([[ "$PG_STANDBY" == 1 ]] && echo "$PG_STANDBY_PORT"); do
    port_busy "$p" && die "port $p on 127.0.0.1 is in use; pick another --port-base"
  done
  local t0=$SECONDS
  prepare_dir
  # A half-built realm is worse than none: on any failure stop what started and remove it.
  trap 'rc=$?; if [[ $rc -ne 0 ]]; then say "up failed; removing the half-built realm in $DIR"; stop_all; rm -rf "$DIR"; [[ -n "$LINK" ]] && rm -f "$LINK"; fi' EXIT
  mkdir -p "$DIR"/{kdc,keytabs,pg,run,rcache,log,ldap}
  MASTER_PASSWORD="$(random_secret)"; LDAP_ADMIN_PASSWORD="$(random_secret)"; LDAP_READER_PASSWORD="$(random_secret)"
  local u; for u in "${USERS[@]}"; do printf -v "PW_${u^^}" '%s' "$(random_secret)"; done
  write_krb5_conf
  write_kdc_conf
  chmod 0755 "$DIR"; chown -R "$RUN_AS" "$DIR"/{kdc,keytabs,pg,run,rcache,log,ldap}
  chmod 0700 "$DIR"/{kdc,pg,ldap}; chmod 0700 "$DIR/rcache"
  if [[ "$KDB" == samba-ad ]]; then
    # Samba enforces AD complexity (3 of: upper, lower, digit, symbol): random base64 misses one
    # now and then, and provisioning failed ("does not meet the default quality standards").
    AD_ADMIN_PASSWORD="$(random_secret)Aa1-"
    mkdir -p "$DIR/samba"; chmod 0700 "$DIR/samba"
    ad_up
  elif [[ "$KDB" == ldap ]]; then
    start_slapd
    create_ldap_kdb
  else
    as_user $(krb_env) kdb5_util -r "$REALM" create -s -P "$MASTER_PASSWORD" >>"$DIR/log/kdb.log" 2>&1 \
      || { tail -n 20 "$DIR/log/kdb.log" >&2; die "kdb5_util create failed"; }
  fi
  if [[ "$KDB" != samba-ad ]]; then
    create_principals
    if [[ "$KDB" == ldap ]]; then allow_constrained_delegation; create_ldap_groups; fi
  fi
  # Keytabs: owned by the daemon user, readable by nobody else; root (tests, demo) reads anyway.
  chmod 0600 "$DIR"/keytabs/*.keytab
  chmod 0755 "$DIR/keytabs"
  [[ "$KDB" == samba-ad ]] || start_kdc
  create_cluster
  start_postgres
  create_roles
  if [[ "$PG_STANDBY" == 1 ]]; then create_standby; start_standby; fi
  write_state
  write_env
  trap - EXIT
  say "realm $REALM ($KDB KDB) up in $((SECONDS - t0)) s: KDC $KDC_ADDR, PostgreSQL localhost:$PG_PORT$([[ "$PG_STANDBY" == 1 ]] && echo " (hot standby localhost:$PG_STANDBY_PORT)"), dir $DIR"
}

stop_all() {
  local name f
  # PostgreSQL first (pg_ctl stops it cleanly; the standby before its primary), then the KDC, then its LDAP store.
  if pid_alive "$DIR/pg/standby/postmaster.pid"; then
    as_user $(pg_env) "$PG_BIN/pg_ctl" -D "$DIR/pg/standby" -m fast -w -t 20 stop >/dev/null 2>&1 || true
  fi
  if pid_alive "$DIR/pg/data/postmaster.pid"; then
    as_user $(pg_env) "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m fast -w -t 20 stop >/dev/null 2>&1 || true
  fi
  while read -r name f; do stop_pid "$f" "$name"; done < <(daemons)
  [[ "$KDB" == samba-ad ]] && ad_netns_down
  return 0
}

cmd_down() {
  if [[ ! -e "$DIR" ]]; then say "no realm in $DIR"; return 0; fi
  exec 9>"$LOCK"; flock 9
  [[ -f "$STATE" ]] && stop_all
  rm -rf "$DIR"; [[ -n "$LINK" ]] && rm -f "$LINK"
  # The lock may have been taken through the link or through the real path: remove both.
  rm -f "$LOCK" "$DIR.lock"
  say "realm in $DIR stopped and removed"
}

cmd_status() {
  [[ -f "$STATE" ]] || { echo "no realm in $DIR"; return 3; }
  local name f rc=0
  echo "realm $REALM ($KDB KDB) in $DIR"
  while read -r name f; do
    if pid_alive "$f"; then echo "  $name running, pid $(head -n1 "$f")"; else echo "  $name stopped"; rc=3; fi
  done < <(daemons)
  return $rc
}

# Extra users for load tests and demos: a principal each (same password) and, unless --no-role,
# a login role in forwardable_users. Users that already exist are left alone.
cmd_add_users() {
  [[ -f "$STATE" ]] && all_running || die "no running realm in $DIR; run 'npm run realm -- up' first"
  [[ ${#NAMES[@]} -gt 0 ]] || die "add-users needs at least one user name"
  [[ -n "$NEW_PASSWORD" ]] || die "add-users needs --password"
  exec 9>"$LOCK"; flock 9
  local n r cmds="" sql=""
  for n in "${NAMES[@]}"; do
    [[ "$n" =~ ^[A-Za-z][A-Za-z0-9_]{0,62}$ ]] || die "user names are letters, digits and _ (not '$n')"
    cmds+="addprinc +requires_preauth -pw $NEW_PASSWORD $n"$'\n'
    # The role is the lower-cased name (unquoted identifiers fold to lower case too).
    r="${n,,}"
    [[ $WITH_ROLE -eq 1 ]] && sql+="DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$r') THEN CREATE ROLE $r LOGIN IN ROLE forwardable_users; GRANT CONNECT, TEMPORARY ON DATABASE forwardable TO $r; END IF; END\$\$;"
  done
  # One kadmin.local for all: it reads its commands from standard input.
  printf '%s' "$cmds" | as_user $(krb_env) kadmin.local -r "$REALM" >>"$DIR/log/kadmin-local.log" 2>&1 || die "kadmin.local failed"
  [[ -z "$sql" ]] || psql_super "$sql"
  say "added ${#NAMES[@]} user(s) to $REALM"
}

cmd_env() {
  [[ -f "$DIR/realm.env" ]] || die "no realm in $DIR; run 'npm run realm -- up' first"
  grep '^export ' "$DIR/realm.env"
}

case "$CMD" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  add-users) cmd_add_users ;;
  packages) ensure_packages ;;
  *) usage ;;
esac
