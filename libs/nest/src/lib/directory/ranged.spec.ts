/**
 * The parser of AD's ranged attribute descriptions ([MS-ADTS] 3.1.1.3.1.3.3) and the reading of
 * one reply as ldapts hands it over (which adds every requested description the server did not
 * return, with no values). The follow-up requests run against the real Samba AD DC in
 * ad-ldap-gssapi.spec.ts.
 */
import { firstRangeDescription, parseAttributeRange, rangedValues } from './ranged';

describe('parseAttributeRange', () => {
  it('parses a closed range, an open one, any case, and a range after another option', () => {
    expect(parseAttributeRange('member;range=0-1499')).toEqual({ attribute: 'member', start: 0, end: 1499 });
    expect(parseAttributeRange('member;range=1500-*')).toEqual({ attribute: 'member', start: 1500, end: '*' });
    expect(parseAttributeRange('Member;Range=10-19')).toEqual({ attribute: 'Member', start: 10, end: 19 });
    expect(parseAttributeRange('userCertificate;binary;range=0-4')).toEqual({ attribute: 'userCertificate', start: 0, end: 4 });
  });

  it('refuses what is not a well-formed range: no option, a reversed or negative range, junk, a missing attribute', () => {
    expect(parseAttributeRange('member')).toBeUndefined();
    expect(parseAttributeRange('member;binary')).toBeUndefined();
    expect(parseAttributeRange('member;range=20-10')).toBeUndefined();
    expect(parseAttributeRange('member;range=-1-5')).toBeUndefined();
    expect(parseAttributeRange('member;range=0-')).toBeUndefined();
    expect(parseAttributeRange('member;range=a-b')).toBeUndefined();
    expect(parseAttributeRange('member;range=0-1;x')).toEqual({ attribute: 'member', start: 0, end: 1 });
    expect(parseAttributeRange(';range=0-1')).toBeUndefined();
    expect(parseAttributeRange('member;range=99999999999999999999-*')).toBeUndefined();
  });
});

describe('rangedValues', () => {
  it('a plain attribute is complete (OpenLDAP, or AD under MaxValRange)', () => {
    expect(rangedValues({ dn: 'cn=g', member: ['a', 'b'] }, 'member')).toEqual({ values: ['a', 'b'] });
    expect(rangedValues({ dn: 'cn=g', member: 'a' }, 'member')).toEqual({ values: ['a'] });
    expect(rangedValues({ dn: 'cn=g' }, 'member')).toEqual({ values: [] });
  });

  it('a closed range asks for more from the value after its end; an open one is the last', () => {
    // What AD sends for a plain `member` request on a group past MaxValRange: an empty plain key
    // (added by ldapts for the requested name) and the first range.
    expect(rangedValues({ dn: 'cn=g', member: [], 'member;range=0-2': ['a', 'b', 'c'] }, 'member')).toEqual({ values: ['a', 'b', 'c'], next: 3 });
    expect(rangedValues({ dn: 'cn=g', 'member;range=3-*': ['d'] }, 'member', 3)).toEqual({ values: ['d'] });
  });

  it('believes the server\'s reply over the empty key ldapts adds for the requested description', () => {
    // Asked for 10-19, the server had only 12 values: it answers 10-* and ldapts adds 10-19: [].
    expect(rangedValues({ dn: 'cn=g', 'member;range=10-19': [], 'member;range=10-*': ['k', 'l'] }, 'member', 10)).toEqual({ values: ['k', 'l'] });
    // Nothing past the end: an empty open range is the end, not a request for more.
    expect(rangedValues({ dn: 'cn=g', 'member;range=12-19': [], 'member;range=12-*': [] }, 'member', 12)).toEqual({ values: [] });
    // An empty closed range would never advance: it ends the reading instead of looping.
    expect(rangedValues({ dn: 'cn=g', 'member;range=12-19': [] }, 'member', 12)).toEqual({ values: [] });
  });

  it('ignores other attributes and ranges that start elsewhere', () => {
    const entry = { dn: 'cn=g', 'uniqueMember;range=0-1': ['x', 'y'], 'member;range=0-*': ['a'], 'member;range=5-9': ['stale'] };
    expect(rangedValues(entry, 'member')).toEqual({ values: ['a'] });
    expect(rangedValues(entry, 'uniqueMember')).toEqual({ values: ['x', 'y'], next: 2 });
  });
});

describe('firstRangeDescription', () => {
  it('asks plainly by default and for the first window with a step', () => {
    expect(firstRangeDescription('member')).toBe('member');
    expect(firstRangeDescription('member', 10)).toBe('member;range=0-9');
  });
});
