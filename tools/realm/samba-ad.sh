# shellcheck shell=bash
# tools/realm/samba-ad.sh: the `--kdc samba-ad` flavour of the throwaway realm, sourced by realm.sh.
#
# A Samba 4 Active Directory domain controller (Debian's packages), provisioned into the realm
# directory and run in the foreground under the tool's control, inside a network namespace the
# tool creates. Why a namespace: Samba's Kerberos ports can move but its LDAP ports (389, 636,
# 3268, 3269) cannot, and they must not collide with anything on the host or with a second AD
# realm. In its own namespace Samba binds its standard ports on a veth address that only exists
# between the two ends of the pair; the host reaches the KDC at that address. Names and addresses
# are derived from the realm directory, so two AD realms coexist; `down` removes both.
#
# Samba runs as root (an AD DC does not support anything else), confined to its namespace and
# its directory. PostgreSQL stays on the host's loopback, run by the unprivileged daemon user like
# the MIT realms, and trusts the postgres keytab exported from AD.
#
# Accounts (facts in shared/KERBEROS-NOTES.md): the demo users with the realm's random passwords;
# service accounts svc-http (SPN and userPrincipalName HTTP/localhost), svc-pg (postgres/localhost),
# svc-other (other/localhost: a target nobody may delegate to) and svc-rbcd (rbcd/localhost, which
# postgres lists in msDS-AllowedToActOnBehalfOfOtherIdentity: resource-based constrained delegation,
# which Samba 4.17's KDC does not honour). Service accounts get AES keys only
# (msDS-SupportedEncryptionTypes = 24), or AD issues RC4 tickets and exports an RC4-only keytab.
#
# The directory is set up as a deployment should run it (docs/deploy.md): the DC has its
# ldap/<fqdn> SPN, serves ldaps:// with a certificate from a throwaway CA of the realm (for the
# DC's name and its namespace address), and takes SASL binds without signing only over TLS
# (ldap server require strong auth = allow_sasl_over_tls). Exported as FORWARDABLE_AD_LDAPS_URL,
# FORWARDABLE_AD_LDAP_CA_FILE, FORWARDABLE_AD_LDAP_SASL_SERVICE and FORWARDABLE_AD_BASE_DN.
#
# Samba 4.17 does not enforce MaxValRange (the Default Query Policy's lDAPAdminLimits): its
# ranged_results module only answers requests that name a range (member;range=0-9), and a plain
# `member` comes back whole. Tests of AD's ranged retrieval therefore ask for small windows
# themselves; a Windows DC also starts ranges unasked past 1500 values.

SAMBA_PACKAGES=(samba samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldb-tools iproute2)

# userAccountControl bits (MS-ADTS 2.2.16).
UF_NORMAL_ACCOUNT=512
UF_DONT_EXPIRE_PASSWD=65536
UF_TRUSTED_FOR_DELEGATION=524288

# Names and addresses of the namespace, unique per realm directory; set by ad_names.
ad_names() {
  # A live realm keeps the names recorded at `up`: DIR may be a link then and the real path
  # later (prepare_dir), and a name hashed from the other would leave the namespace behind.
  if [[ -n "${S_AD_NETNS:-}" ]]; then
    AD_NETNS="$S_AD_NETNS" AD_VETH_HOST="$S_AD_VETH_HOST" AD_VETH_NS="$S_AD_VETH_NS"
    AD_HOST_IP="$S_AD_HOST_IP" AD_NS_IP="$S_AD_NS_IP"
    return 0
  fi
  local h; h="$(printf '%s' "$DIR" | sha1sum | cut -c1-8)"
  AD_NETNS="forwardable-$h"
  AD_VETH_HOST="fwh$h"
  AD_VETH_NS="fwn$h"
  # A /30 of 10.251.0.0/16 picked by the same hash; an address already on the host moves it on.
  local n=$((16#${h:0:4} % 16384)) i base
  for ((i = 0; i < 16384; i++)); do
    base=$(((n + i) % 16384 * 4))
    AD_HOST_IP="10.251.$((base / 256)).$((base % 256 + 1))"
    AD_NS_IP="10.251.$((base / 256)).$((base % 256 + 2))"
    # On `up` only: a live realm keeps the addresses recorded in its state.
    [[ -n "${S_AD_NS_IP:-}" ]] && { AD_HOST_IP="$S_AD_HOST_IP"; AD_NS_IP="$S_AD_NS_IP"; return 0; }
    ip -o -4 addr show 2>/dev/null | grep -Eq " (${AD_HOST_IP//./\\.}|${AD_NS_IP//./\\.})/" || return 0
  done
  die "no free /30 in 10.251.0.0/16 for the AD realm's network namespace"
}

ad_require_root() {
  [[ $EUID -eq 0 ]] || die "--kdc samba-ad needs root: Samba's LDAP ports cannot move, so the tool runs it in a network namespace of its own (ip netns). Run as root, or use --kdc mit"
  command -v ip >/dev/null || die "the 'ip' command is missing: apt-get install iproute2"
}

ad_smb_conf() { echo "$DIR/samba/etc/smb.conf"; }

# Every samba-tool call names our own smb.conf, or it reads (and provision copies) /etc/samba/smb.conf.
ad_tool() { samba-tool "$@" -s "$(ad_smb_conf)" >>"$DIR/log/samba-tool.log" 2>&1 || { tail -n 20 "$DIR/log/samba-tool.log" >&2; die "samba-tool $1 $2 failed (log: $DIR/log/samba-tool.log)"; }; }

ad_base_dn() { echo "DC=$(echo "$REALM" | tr 'A-Z' 'a-z' | sed 's/\./,DC=/g')"; }

ad_netns_up() {
  ip netns list | grep -q "^$AD_NETNS\b" || ip netns add "$AD_NETNS"
  if ! ip link show "$AD_VETH_HOST" >/dev/null 2>&1; then
    ip link add "$AD_VETH_HOST" type veth peer name "$AD_VETH_NS"
    ip link set "$AD_VETH_NS" netns "$AD_NETNS"
    ip addr add "$AD_HOST_IP/30" dev "$AD_VETH_HOST"
    ip -n "$AD_NETNS" addr add "$AD_NS_IP/30" dev "$AD_VETH_NS"
  fi
  ip link set "$AD_VETH_HOST" up
  ip -n "$AD_NETNS" link set lo up
  ip -n "$AD_NETNS" link set "$AD_VETH_NS" up
}

ad_netns_down() {
  ip link del "$AD_VETH_HOST" 2>/dev/null || true
  ip netns del "$AD_NETNS" 2>/dev/null || true
}

ad_provision() {
  local netbios; netbios="$(echo "${REALM//./}" | cut -c1-15)"
  mkdir -p "$DIR/samba/run" "$DIR/samba/ncalrpc"
  : >"$DIR/samba/empty.conf"
  # Everything Samba writes stays in the realm directory: pid and socket directories included,
  # or a second DC (and the machine's own Samba, if any) would collide on /run/samba.
  samba-tool domain provision -s "$DIR/samba/empty.conf" --targetdir="$DIR/samba" \
    --realm="$REALM" --domain="$netbios" --host-name=fwdc --server-role=dc --dns-backend=NONE \
    --adminpass="$AD_ADMIN_PASSWORD" \
    --option="interfaces=lo $AD_VETH_NS" --option="bind interfaces only=yes" \
    --option="pid directory=$DIR/samba/run" --option="ncalrpc dir=$DIR/samba/ncalrpc" \
    --option="log file=$DIR/log/samba.log" --option="log level=1" \
    >>"$DIR/log/samba-provision.log" 2>&1 \
    || { tail -n 20 "$DIR/log/samba-provision.log" >&2; die "samba-tool domain provision failed (log: $DIR/log/samba-provision.log)"; }
  # Only the KDC and LDAP: no SMB file service, NetBIOS, DNS, replication or winbind.
  sed -i 's/^\([[:space:]]*server services =\).*/\1 kdc, ldap/' "$(ad_smb_conf)"
  # What a production DC should be set to for Forwardable (docs/deploy.md): binds over TLS only
  # (ldaps://, our certificate below), and there a SASL/GSSAPI bind without a security layer is
  # allowed. Plain ldap:// still takes SASL binds that sign or seal, which Forwardable does not do,
  # and no simple binds (Samba's default, "yes", would refuse our unsealed GSSAPI bind even over TLS).
  ad_tls
  printf '\t%s\n' "ldap server require strong auth = allow_sasl_over_tls" "tls enabled = yes" \
    "tls keyfile = $DIR/samba/private/fw-tls/dc.key" "tls certfile = $DIR/samba/private/fw-tls/dc.crt" \
    "tls cafile = $DIR/tls/ad-ca.crt" >"$DIR/samba/fw-global.conf"
  sed -i "/^[[:space:]]*server services =/r $DIR/samba/fw-global.conf" "$(ad_smb_conf)"
}

# The DC's fully qualified name: provision's --host-name and the realm's DNS domain.
ad_dc_fqdn() { echo "fwdc.$(echo "$REALM" | tr 'A-Z' 'a-z')"; }

# A throwaway CA and the DC's LDAPS certificate, for the DC's name and for the address the host
# reaches it at (there is no DNS for the name here: clients use the address, and the SASL service
# name ldap@<fqdn> separately). Samba wants its key owned by root, mode 0600; the CA certificate is
# public and is what FORWARDABLE_LDAP_CA_FILE points at.
ad_tls() {
  local t="$DIR/tls" k="$DIR/samba/private/fw-tls" fqdn; fqdn="$(ad_dc_fqdn)"
  mkdir -p "$t" "$k"; chmod 0755 "$t"; chmod 0700 "$k"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Forwardable throwaway AD CA $REALM" \
    -keyout "$k/ca.key" -out "$t/ad-ca.crt" >>"$DIR/log/tls.log" 2>&1 || die "openssl: AD CA failed (see $DIR/log/tls.log)"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$fqdn" -keyout "$k/dc.key" -out "$k/dc.csr" >>"$DIR/log/tls.log" 2>&1 \
    || die "openssl: DC key failed (see $DIR/log/tls.log)"
  printf 'subjectAltName = DNS:%s, IP:%s\nextendedKeyUsage = serverAuth\n' "$fqdn" "$AD_NS_IP" >"$k/dc.ext"
  openssl x509 -req -in "$k/dc.csr" -CA "$t/ad-ca.crt" -CAkey "$k/ca.key" -CAcreateserial -days 30 \
    -extfile "$k/dc.ext" -out "$k/dc.crt" >>"$DIR/log/tls.log" 2>&1 || die "openssl: DC certificate failed (see $DIR/log/tls.log)"
  chmod 0600 "$k"/*; chmod 0644 "$t/ad-ca.crt"
}

ad_create_accounts() {
  local u var base; base="$(ad_base_dn)"
  # The demo users get the same kind of random passwords as the MIT realms; AD's complexity rule
  # would refuse some of them, and ages would lock the throwaway accounts.
  ad_tool domain passwordsettings set --complexity=off --min-pwd-length=8 --min-pwd-age=0 --max-pwd-age=0
  # The password goes in as --newpassword=VALUE: a random one may begin with '-', which
  # `user create NAME PASSWORD` would take for an option.
  for u in "${USERS[@]}"; do
    var="PW_${u^^}"
    ad_tool user create "$u" --random-password
    ad_tool user setpassword "$u" --newpassword="${!var}"
  done
  for u in svc-http svc-pg svc-other svc-rbcd; do ad_tool user create "$u" --random-password; done
  # One ldbmodify for the service accounts' names, keys and delegation. userPrincipalName =
  # HTTP/localhost lets the web service get its own TGT from its keytab (S4U2proxy needs it;
  # without it: "Client 'HTTP/localhost@REALM' not found").
  local http_uac=$((UF_NORMAL_ACCOUNT + UF_DONT_EXPIRE_PASSWD))
  [[ "$AD_DELEGATION" == constrained ]] || http_uac=$((http_uac + UF_TRUSTED_FOR_DELEGATION))
  {
    ad_service_ldif svc-http HTTP/localhost "$http_uac"
    if [[ "$AD_DELEGATION" != unconstrained ]]; then
      printf -- '-\nadd: msDS-AllowedToDelegateTo\nmsDS-AllowedToDelegateTo: postgres/localhost\n'
    fi
    echo
    ad_service_ldif svc-pg postgres/localhost $((UF_NORMAL_ACCOUNT + UF_DONT_EXPIRE_PASSWD)); echo
    ad_service_ldif svc-other other/localhost $((UF_NORMAL_ACCOUNT + UF_DONT_EXPIRE_PASSWD)); echo
    ad_service_ldif svc-rbcd rbcd/localhost $((UF_NORMAL_ACCOUNT + UF_DONT_EXPIRE_PASSWD)); echo
  } >"$DIR/samba/accounts.ldif"
  ldbmodify -H "$DIR/samba/private/sam.ldb" "$DIR/samba/accounts.ldif" >>"$DIR/log/samba-tool.log" 2>&1 \
    || { tail -n 20 "$DIR/log/samba-tool.log" >&2; die "ldbmodify of the service accounts failed"; }
  # The DC's own LDAP service principal, ldap/<fqdn>: a Windows DC registers it when promoted;
  # Samba's provision leaves it to samba_spnupdate, which runs from the DNS update service this
  # realm does not start. The LDAP server accepts tickets for any SPN of the DC account.
  samba-tool spn list 'FWDC$' -s "$(ad_smb_conf)" 2>/dev/null | grep -qi "^[[:space:]]*ldap/$(ad_dc_fqdn)\$" \
    || ad_tool spn add "ldap/$(ad_dc_fqdn)" 'FWDC$'
  # RBCD: postgres names svc-rbcd as allowed to act on behalf of users (a security descriptor).
  ad_tool delegation add-principal svc-pg svc-rbcd
  # Each keytab exported once, like the MIT realms'.
  ad_tool domain exportkeytab "$DIR/keytabs/http.keytab" --principal=HTTP/localhost
  ad_tool domain exportkeytab "$DIR/keytabs/postgres.keytab" --principal=postgres/localhost
  ad_tool domain exportkeytab "$DIR/keytabs/other.keytab" --principal=other/localhost
  ad_tool domain exportkeytab "$DIR/keytabs/rbcd.keytab" --principal=rbcd/localhost
  chown "$RUN_AS" "$DIR"/keytabs/*.keytab
}

# LDIF that gives service account $1 the SPN and userPrincipalName $2, AES keys only and
# userAccountControl $3 (the caller may append more modifications).
ad_service_ldif() {
  cat <<EOF
dn: CN=$1,CN=Users,$(ad_base_dn)
changetype: modify
replace: servicePrincipalName
servicePrincipalName: $2
-
replace: userPrincipalName
userPrincipalName: $2@$REALM
-
replace: msDS-SupportedEncryptionTypes
msDS-SupportedEncryptionTypes: 24
-
replace: userAccountControl
userAccountControl: $3
EOF
}

ad_start() {
  ad_netns_up
  # -F: foreground (no fork), so the PID we record is Samba's; -M single: one process, not a
  # prefork pool per service, on a machine that runs the whole test suite.
  nohup ip netns exec "$AD_NETNS" samba -F --no-process-group -M single -s "$(ad_smb_conf)" \
    </dev/null >>"$DIR/log/samba.stdout" 2>&1 9>&- &
  echo $! >"$DIR/run/samba.pid"
  local i
  for i in $(seq 1 150); do
    (exec 3<>"/dev/tcp/$AD_NS_IP/88") 2>/dev/null && return 0
    kill -0 "$(cat "$DIR/run/samba.pid")" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$DIR/log/samba.stdout" "$DIR/log/samba.log" >&2 2>/dev/null || true
  die "Samba's KDC did not answer on $AD_NS_IP:88 within 15 s (log: $DIR/log/samba.log)"
}

ad_stop() {
  stop_pid "$DIR/run/samba.pid" samba
  ad_netns_down
}

ad_up() {
  ad_netns_up
  ad_provision
  ad_create_accounts
  chmod 0600 "$DIR"/keytabs/*.keytab
  ad_start
}
