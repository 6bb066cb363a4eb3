/**
 * The in-memory session store keeps no expired session (swept, not only dropped when looked up),
 * and indexes sessions by principal for the per-user cap; the one role mapping keeps realms apart.
 * (Sign-in, the cap and logout against the real KDC are in apps/api/src/hardening/sessions.spec.ts.)
 */
import { databaseRoleOf } from './credential-lease';
import { CredentialVault } from './credential-vault';
import { ApiException } from './errors';
import { MemorySessionStore, SessionData } from './session-store';

function session(principal: string, createdAt: number, expiresAt: number): SessionData {
  return { principal, user: principal.split('@')[0], delegation: 'password', mode: 'constrained', groups: [], isAdmin: false, createdAt, expiresAt };
}

describe('MemorySessionStore', () => {
  const stores: MemorySessionStore[] = [];
  afterEach(async () => Promise.all(stores.splice(0).map((s) => s.close())));
  const newStore = (sweepMs?: number) => {
    const s = new MemorySessionStore(sweepMs);
    stores.push(s);
    return s;
  };

  it('sweeps expired sessions nobody looks up again, so memory stays bounded', async () => {
    const store = newStore(25);
    const now = Date.now();
    for (let i = 0; i < 5000; i++) await store.set(`gone-${i}`, session(`u${i % 50}@R`, now, now + 40));
    await store.set('live', session('alice@R', now, now + 60_000));
    expect(store.size).toBe(5001);
    // Regression: expired entries stayed in the Map for ever unless their id was asked for.
    const end = Date.now() + 5000;
    while (store.size > 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(store.size).toBe(1);
    expect(await store.idsOf('u1@R')).toEqual([]);
    expect(await store.get('live')).not.toBeNull();
  });

  it('lists a principal\'s live sessions oldest first, and forgets deleted and expired ones', async () => {
    const store = newStore();
    const now = Date.now();
    await store.set('b', session('carol@R', now - 10, now + 60_000));
    await store.set('a', session('carol@R', now - 20, now + 60_000));
    await store.set('c', session('carol@R', now - 5, now + 60_000));
    await store.set('x', session('dave@R', now, now + 60_000));
    await store.set('old', session('carol@R', now - 30, now - 1));
    expect(await store.idsOf('carol@R')).toEqual(['a', 'b', 'c']);
    await store.delete('b');
    expect(await store.idsOf('carol@R')).toEqual(['a', 'c']);
    expect(store.sweep()).toBe(1);
    expect(await store.idsOf('dave@R')).toEqual(['x']);
  });
});

describe('databaseRoleOf (the one principal → role mapping)', () => {
  it('maps the home realm to the bare name and another allowed realm to name@REALM: two realms never fold into one role', () => {
    expect(databaseRoleOf('dbadmin@A.TEST', ['A.TEST', 'B.TEST'])).toBe('dbadmin');
    // Regression: with two allowed realms, dbadmin@B.TEST became the admin role dbadmin.
    expect(databaseRoleOf('dbadmin@B.TEST', ['A.TEST', 'B.TEST'])).toBe('dbadmin@B.TEST');
  });

  it('usernameCase lower (FORWARDABLE_USERNAME_CASE) lower-cases the name, never the realm; exact keeps it', () => {
    expect(databaseRoleOf('Alice@A.TEST', ['A.TEST', 'B.TEST'], 'lower')).toBe('alice');
    expect(databaseRoleOf('ALICE@A.TEST', ['A.TEST'], 'lower')).toBe(databaseRoleOf('alice@A.TEST', ['A.TEST'], 'lower'));
    expect(databaseRoleOf('DbAdmin@B.TEST', ['A.TEST', 'B.TEST'], 'lower')).toBe('dbadmin@B.TEST');
    expect(databaseRoleOf('Alice@A.TEST', ['A.TEST'])).toBe('Alice');
    expect(databaseRoleOf('Alice@A.TEST', ['A.TEST'], 'exact')).toBe('Alice');
    // The realm is still checked as written: realms are case-sensitive.
    expect(() => databaseRoleOf('alice@a.test', ['A.TEST'], 'lower')).toThrow(ApiException);
  });

  it('an unknown usernameCase is refused when the module starts (the vault is made), naming the allowed values', () => {
    const options = { keytab: '/nonexistent', servicePrincipal: 'HTTP/web@A.TEST', usernameCase: 'upper' as never };
    expect(() => new CredentialVault(options)).toThrow(/usernameCase \(FORWARDABLE_USERNAME_CASE\) must be one of exact, lower, not "upper"/);
    expect(new CredentialVault({ ...options, usernameCase: 'lower' }).usernameCase).toBe('lower');
    expect(new CredentialVault({ ...options, usernameCase: undefined }).usernameCase).toBe('exact');
  });

  it('refuses other realms, services and enterprise names with a 403 that says what to do', () => {
    for (const p of ['alice@C.TEST', 'HTTP/web@A.TEST', 'alice\\@a.test@A.TEST', '@A.TEST', 'alice']) {
      const err = (() => {
        try {
          databaseRoleOf(p, ['A.TEST']);
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toBeInstanceOf(ApiException);
      expect({ p, status: (err as ApiException).status, code: (err as ApiException).code }).toEqual({ p, status: 403, code: 'REALM_REFUSED' });
    }
  });
});
