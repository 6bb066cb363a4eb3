/**
 * Group SIDs from a Microsoft PAC (MS-PAC): the `urn:mspac:logon-info` name attribute MIT exposes
 * after an accept holds the PAC_LOGON_INFO buffer, a KERB_VALIDATION_INFO structure in NDR type
 * serialization (MS-RPCE 2.2.6). Only what group membership needs is read: the logon domain SID,
 * the group RIDs, the extra SIDs and the resource groups. Every read is bounds-checked; a buffer
 * that does not parse is refused whole (callers then fall back to a directory lookup).
 */

/** The PAC logon info did not parse; the message says where. */
export class PacParseError extends Error {
  readonly code = 'ERR_GSS_PAC_INVALID';
  constructor(message: string) {
    super(`PAC logon info is malformed: ${message}`);
    this.name = 'PacParseError';
  }
}

/** What the PAC says about the user's identity and groups. */
export interface PacLogonInfo {
  /** The user's own SID (logon domain SID + user RID). */
  userSid: string;
  /** SID of the user's primary group. */
  primaryGroupSid: string;
  /** Every group SID in the PAC, without duplicates: domain groups, extra SIDs, resource groups. */
  groupSids: string[];
  /** The user's account name (EffectiveName), as the KDC put it in the PAC. */
  accountName: string;
  /** The NetBIOS name of the logon domain. */
  domainName: string;
}

/** Refuse absurd counts before allocating: a PAC in a 64 KiB token cannot hold more. */
const MAX_COUNT = 8192;
/** NDR pointers in this structure are referents: 0 means null. */
type Ptr = number;

class Reader {
  constructor(private readonly buf: Buffer, public pos = 0) {}
  private need(n: number, what: string) {
    if (this.pos + n > this.buf.length) throw new PacParseError(`${what} runs past the end (${this.buf.length} bytes)`);
  }
  align(n: number) {
    this.pos = Math.ceil(this.pos / n) * n;
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf.readUInt8(this.pos++);
  }
  u16(what: string): number {
    this.align(2);
    this.need(2, what);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.align(4);
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  skip(n: number, what: string) {
    this.need(n, what);
    this.pos += n;
  }
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  count(what: string, max = MAX_COUNT): number {
    const n = this.u32(what);
    if (n > max) throw new PacParseError(`${what} is ${n}, more than ${max}`);
    return n;
  }
}

interface UnicodeString {
  length: number;
  ptr: Ptr;
}

function unicodeStringHeader(r: Reader, what: string): UnicodeString {
  const length = r.u16(`${what}.Length`);
  r.u16(`${what}.MaximumLength`);
  const ptr = r.u32(`${what}.Buffer`);
  if (length % 2) throw new PacParseError(`${what}.Length ${length} is odd`);
  return { length, ptr };
}

/** The deferred body of an RPC_UNICODE_STRING: a conformant varying array of UTF-16 units. */
function unicodeStringBody(r: Reader, s: UnicodeString, what: string): string {
  if (!s.ptr) return '';
  const max = r.count(`${what} max count`);
  const offset = r.u32(`${what} offset`);
  const actual = r.count(`${what} actual count`);
  if (offset !== 0 || actual > max || actual * 2 !== s.length) throw new PacParseError(`${what} counts disagree (max ${max}, offset ${offset}, actual ${actual}, length ${s.length})`);
  return r.bytes(actual * 2, what).toString('utf16le');
}

/** A conformant RPC_SID: max count, revision, sub-authority count, authority (big-endian), sub-authorities. */
function sid(r: Reader, what: string): string {
  const max = r.count(`${what} max count`, 15);
  const revision = r.u8(`${what}.Revision`);
  const n = r.u8(`${what}.SubAuthorityCount`);
  if (revision !== 1 || n !== max) throw new PacParseError(`${what} has revision ${revision} and ${n} sub-authorities (max count ${max})`);
  const authority = r.bytes(6, `${what}.IdentifierAuthority`).readUIntBE(0, 6);
  const subs: number[] = [];
  for (let i = 0; i < n; i++) subs.push(r.u32(`${what}.SubAuthority[${i}]`));
  return `S-1-${authority}${subs.map((s) => `-${s}`).join('')}`;
}

function groupRids(r: Reader, count: number, what: string): number[] {
  const max = r.count(`${what} max count`);
  if (max !== count) throw new PacParseError(`${what} has ${max} entries, the header says ${count}`);
  const rids: number[] = [];
  for (let i = 0; i < count; i++) {
    rids.push(r.u32(`${what}[${i}].RelativeId`));
    r.u32(`${what}[${i}].Attributes`);
  }
  return rids;
}

/**
 * Parse a PAC_LOGON_INFO buffer (the value of the `urn:mspac:logon-info` name attribute).
 * @throws PacParseError (code `ERR_GSS_PAC_INVALID`) when the buffer is truncated, its counts
 *   disagree, or a count is beyond what a real PAC holds.
 */
export function parsePacLogonInfo(buf: Buffer): PacLogonInfo {
  if (!Buffer.isBuffer(buf)) throw new PacParseError('expected a Buffer');
  const r = new Reader(buf);
  // MS-RPCE 2.2.6.1 common type header: version 1, little-endian (0x10), header length 8.
  const version = r.u8('header version');
  const endian = r.u8('header endianness');
  const headerLength = r.u16('header length');
  if (version !== 1 || endian !== 0x10 || headerLength !== 8) throw new PacParseError(`unsupported NDR type serialization header (version ${version}, endianness 0x${endian.toString(16)}, length ${headerLength})`);
  r.skip(4, 'header filler');
  const objectLength = r.u32('private header object length');
  r.skip(4, 'private header filler');
  if (16 + objectLength > buf.length) throw new PacParseError(`object length ${objectLength} exceeds the buffer`);
  if (!r.u32('top-level referent')) throw new PacParseError('null KERB_VALIDATION_INFO');

  r.skip(6 * 8, 'logon times');
  const names = ['EffectiveName', 'FullName', 'LogonScript', 'ProfilePath', 'HomeDirectory', 'HomeDirectoryDrive'].map((n) => unicodeStringHeader(r, n));
  r.u16('LogonCount');
  r.u16('BadPasswordCount');
  const userId = r.u32('UserId');
  const primaryGroupId = r.u32('PrimaryGroupId');
  const groupCount = r.count('GroupCount');
  const groupIdsPtr = r.u32('GroupIds');
  r.u32('UserFlags');
  r.skip(16, 'UserSessionKey');
  const logonServer = unicodeStringHeader(r, 'LogonServer');
  const logonDomainName = unicodeStringHeader(r, 'LogonDomainName');
  const logonDomainIdPtr = r.u32('LogonDomainId');
  r.skip(8, 'Reserved1');
  r.u32('UserAccountControl');
  r.u32('SubAuthStatus');
  r.skip(16, 'last logon times');
  r.u32('FailedILogonCount');
  r.u32('Reserved3');
  const sidCount = r.count('SidCount');
  const extraSidsPtr = r.u32('ExtraSids');
  const resourceDomainPtr = r.u32('ResourceGroupDomainSid');
  const resourceCount = r.count('ResourceGroupCount');
  const resourceIdsPtr = r.u32('ResourceGroupIds');

  // Deferred pointer data, in the order the pointers appeared (NDR).
  const [accountName] = names.map((n, i) => unicodeStringBody(r, n, ['EffectiveName', 'FullName', 'LogonScript', 'ProfilePath', 'HomeDirectory', 'HomeDirectoryDrive'][i]));
  const rids = groupIdsPtr ? groupRids(r, groupCount, 'GroupIds') : [];
  if (!groupIdsPtr && groupCount) throw new PacParseError(`GroupCount is ${groupCount} but GroupIds is null`);
  unicodeStringBody(r, logonServer, 'LogonServer');
  const domainName = unicodeStringBody(r, logonDomainName, 'LogonDomainName');
  if (!logonDomainIdPtr) throw new PacParseError('LogonDomainId is null');
  const domainSid = sid(r, 'LogonDomainId');
  const extra: string[] = [];
  if (extraSidsPtr) {
    const max = r.count('ExtraSids max count');
    if (max !== sidCount) throw new PacParseError(`ExtraSids has ${max} entries, SidCount says ${sidCount}`);
    const ptrs: Ptr[] = [];
    for (let i = 0; i < sidCount; i++) {
      ptrs.push(r.u32(`ExtraSids[${i}].Sid`));
      r.u32(`ExtraSids[${i}].Attributes`);
    }
    for (const [i, p] of ptrs.entries()) if (p) extra.push(sid(r, `ExtraSids[${i}].Sid`));
  } else if (sidCount) throw new PacParseError(`SidCount is ${sidCount} but ExtraSids is null`);
  const resource: string[] = [];
  if (resourceDomainPtr) {
    const resourceDomain = sid(r, 'ResourceGroupDomainSid');
    if (resourceIdsPtr) for (const rid of groupRids(r, resourceCount, 'ResourceGroupIds')) resource.push(`${resourceDomain}-${rid}`);
  }
  const primaryGroupSid = `${domainSid}-${primaryGroupId}`;
  const groupSids = [...new Set([primaryGroupSid, ...rids.map((rid) => `${domainSid}-${rid}`), ...extra, ...resource])];
  return { userSid: `${domainSid}-${userId}`, primaryGroupSid, groupSids, accountName, domainName };
}

/** A SID string (`S-1-5-21-...`) in its binary form, as directories store `objectSid`. */
export function sidToBuffer(sidString: string): Buffer {
  const m = /^S-1-(\d+)((?:-\d+){0,15})$/.exec(sidString);
  if (!m) throw new RangeError(`"${sidString}" is not a SID (S-1-<authority>-<sub-authority>...)`);
  const subs = m[2] ? m[2].slice(1).split('-').map(Number) : [];
  const authority = Number(m[1]);
  if (!Number.isSafeInteger(authority) || authority >= 2 ** 48 || subs.some((s) => s > 0xffffffff)) throw new RangeError(`"${sidString}" has a value out of range`);
  const b = Buffer.alloc(8 + 4 * subs.length);
  b[0] = 1;
  b[1] = subs.length;
  b.writeUIntBE(authority, 2, 6);
  subs.forEach((s, i) => b.writeUInt32LE(s, 8 + 4 * i));
  return b;
}

/** The string form (`S-1-5-21-...`) of a binary SID, as directories return `objectSid`. */
export function sidFromBuffer(b: Buffer): string {
  if (!Buffer.isBuffer(b) || b.length < 8 || b[0] !== 1 || b.length !== 8 + 4 * b[1]) throw new RangeError('not a binary SID (revision 1, 8 + 4 x sub-authority count bytes)');
  const subs: number[] = [];
  for (let i = 0; i < b[1]; i++) subs.push(b.readUInt32LE(8 + 4 * i));
  return `S-1-${b.readUIntBE(2, 6)}${subs.map((s) => `-${s}`).join('')}`;
}
