/**
 * The PAC as the acceptor sees it, from real KDCs: Samba AD (full logon info, group SIDs) and MIT
 * 1.20 (a PAC without logon info), then the parser against every truncation and many corruptions
 * of the real AD buffer.
 */
import { AcceptorContext, acquireServiceCredential, AcceptResult, Credential, InitiatorContext, pacLogonInfo, PacParseError, parsePacLogonInfo, sidFromBuffer, sidToBuffer } from '../index';
import { handshake, RealmEnv, RealmKdb, useRealm, userCredential } from '../testing/realm';
import { runWithRealm } from '@forwardable/testing/realm';

async function acceptAs(realm: RealmEnv, user: 'alice' | 'bob'): Promise<AcceptResult> {
  const service: Credential = await acquireServiceCredential({ keytab: realm.httpKeytab, principal: `HTTP/localhost@${realm.realm}`, usage: 'accept' });
  const u = await userCredential(realm, user);
  const client = new InitiatorContext({ credential: u.cred, target: 'HTTP@localhost', mech: 'spnego' });
  const acceptor = new AcceptorContext(service);
  try {
    return (await handshake(client, acceptor)).accepted;
  } finally {
    client.dispose();
    acceptor.dispose();
    u.dispose();
    service.dispose();
  }
}

/** objectSid of an AD object, read from the DC's own database with ldbsearch. */
function objectSid(realm: RealmEnv, filter: string): string {
  const r = runWithRealm(realm, 'ldbsearch', ['-H', `${realm.dir}/samba/private/sam.ldb`, filter, 'objectSid']);
  const m = /^objectSid: (S-1-[\d-]+)$/m.exec(r.stdout);
  if (!m) throw new Error(`no objectSid for ${filter}: ${r.stderr}`);
  return m[1];
}

describe('PAC logon info from a Samba AD DC', () => {
  let realm: RealmEnv;
  let accepted: AcceptResult;

  beforeAll(async () => {
    realm = useRealm('samba-ad' as RealmKdb);
    const conf = realm.vars.FORWARDABLE_AD_SMB_CONF;
    runWithRealm(realm, 'samba-tool', ['group', 'add', 'pac-readers', '-s', conf]);
    runWithRealm(realm, 'samba-tool', ['group', 'addmembers', 'pac-readers', 'alice', '-s', conf]);
    accepted = await acceptAs(realm, 'alice');
  });

  it('exposes the PAC as authenticated urn:mspac: attributes of the accepted name', () => {
    const names = accepted.nameAttributes.map((a) => a.name);
    expect(names).toEqual(expect.arrayContaining(['urn:mspac:logon-info', 'urn:mspac:client-info', 'urn:mspac:server-checksum']));
    const logon = accepted.nameAttributes.find((a) => a.name === 'urn:mspac:logon-info');
    expect(logon?.authenticated).toBe(true);
    expect(logon?.values).toHaveLength(1);
  });

  it("reads the user's SID and group SIDs, which match the directory's objectSids", () => {
    const info = pacLogonInfo(accepted);
    expect(info).not.toBeNull();
    expect(info?.accountName).toBe('alice');
    expect(info?.domainName).toBe('ADTEST');
    expect(info?.userSid).toBe(objectSid(realm, '(sAMAccountName=alice)'));
    expect(info?.primaryGroupSid).toBe(objectSid(realm, '(cn=Domain Users)'));
    expect(info?.groupSids).toEqual(expect.arrayContaining([objectSid(realm, '(cn=pac-readers)'), objectSid(realm, '(cn=Domain Users)')]));
    expect(info?.groupSids).not.toContain(objectSid(realm, '(cn=Domain Admins)'));
  });

  it('refuses every truncation of the real buffer with PacParseError; a corrupted byte either still parses or fails with PacParseError, never anything else', () => {
    const buf = accepted.nameAttributes.find((a) => a.name === 'urn:mspac:logon-info')?.values[0] as Buffer;
    for (let n = 0; n < buf.length; n++) {
      let err: unknown;
      try {
        parsePacLogonInfo(Buffer.from(buf.subarray(0, n)));
      } catch (e) {
        err = e;
      }
      expect({ n, typed: err instanceof PacParseError }).toEqual({ n, typed: true });
    }
    let parsedDifferently = 0;
    for (let i = 0; i < buf.length; i++) {
      for (const v of [0x00, 0xff, 0x7f]) {
        const bad = Buffer.from(buf);
        bad[i] = v;
        try {
          parsePacLogonInfo(bad);
          parsedDifferently++;
        } catch (e) {
          expect({ i, v, typed: e instanceof PacParseError }).toEqual({ i, v, typed: true });
        }
      }
    }
    expect(parsedDifferently).toBeGreaterThan(0);
  });
});

describe('PAC from an MIT 1.20 KDC', () => {
  it('has a PAC (client info and checksums) but no logon info: no SIDs, the directory decides', async () => {
    const realm = useRealm('ldap');
    const accepted = await acceptAs(realm, 'alice');
    const names = accepted.nameAttributes.map((a) => a.name);
    expect(names).toEqual(expect.arrayContaining(['urn:mspac:client-info', 'urn:mspac:server-checksum', 'urn:mspac:privsvr-checksum']));
    expect(names).not.toContain('urn:mspac:logon-info');
    expect(pacLogonInfo(accepted)).toBeNull();
  });
});

describe('SID conversions', () => {
  it('round-trips string and binary SIDs and refuses malformed ones', () => {
    for (const s of ['S-1-5-21-897542178-1626278638-3257026624-1110', 'S-1-18-1', 'S-1-5-32-544', 'S-1-1-0']) expect(sidFromBuffer(sidToBuffer(s))).toBe(s);
    expect(sidToBuffer('S-1-5-32-544').toString('hex')).toBe('01020000000000052000000020020000');
    for (const bad of ['S-2-5', 'S-1-5-4294967296', 's-1-5', 'S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16']) expect(() => sidToBuffer(bad)).toThrow(RangeError);
    expect(() => sidFromBuffer(Buffer.from([1, 2, 0, 0]))).toThrow(RangeError);
  });
});
