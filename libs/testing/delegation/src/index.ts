/**
 * Real delegated credentials for tests: a user's ticket (from `kinit`) is used by a client
 * context to the web service, and the service's acceptor receives the delegated credential,
 * exactly as the API does for a browser. Nothing is faked: the KDC issues every ticket.
 */
import { AcceptorContext, acquireServiceCredential, configureKerberos, Credential, InitiatorContext } from '@forwardable/gssapi';
import { kinit, RealmEnv, RealmUser } from '@forwardable/testing/realm';

/** `forwarded`: the client forwards its TGT (db2 or ldap); `proxy`: S4U2proxy (ldap only). */
export type DelegationMode = 'forwarded' | 'proxy';

/**
 * Point this process's Kerberos library at the realm (read when each krb5 context starts).
 * Through the binding, because Jest's `process.env` is a copy the C library never sees.
 * Call it between operations, not while any runs.
 */
export function useRealm(realm: RealmEnv): void {
  configureKerberos({ krb5Config: realm.krb5Config, replayCacheDir: realm.rcacheDir });
}

/**
 * Sign `user` in to `HTTP/localhost` the way a browser does and return what the service receives.
 * Call {@link useRealm} first (once; it cannot change while operations run). The caller disposes
 * the credential.
 */
export async function delegatedCredential(realm: RealmEnv, user: RealmUser | string, mode: DelegationMode, password?: string): Promise<Credential> {
  const tgt = kinit(realm, user as RealmUser, [], password);
  const own = await Credential.fromCache(tgt.name, 'password');
  const service = await acquireServiceCredential({
    keytab: realm.httpKeytab,
    principal: `HTTP/localhost@${realm.realm}`,
    usage: mode === 'proxy' ? 'both' : 'accept',
  });
  const client = new InitiatorContext({ credential: own, target: 'HTTP@localhost', mutual: true, delegate: mode === 'forwarded', mech: 'spnego' });
  const acceptor = new AcceptorContext(service, { krb5Only: true });
  try {
    let out = await client.step(null);
    for (;;) {
      if (!out.token) throw new Error('the client produced no token');
      const res = await acceptor.step(out.token);
      if (res.complete) {
        if (!res.delegated) throw new Error(`no delegated credential for ${user} (${mode})`);
        return res.delegated;
      }
      out = await client.step(res.token);
    }
  } finally {
    acceptor.dispose();
    client.dispose();
    service.dispose();
    own.dispose();
    tgt.destroy();
  }
}
