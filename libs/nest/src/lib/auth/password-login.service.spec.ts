/**
 * Which principals the password form asks the KDC for (the sign-in itself, against the real KDC,
 * is in apps/api/src/app/auth.e2e.spec.ts and username-case.e2e.spec.ts).
 */
import { PasswordLoginService } from './password-login.service';

describe('PasswordLoginService.principalsFor', () => {
  const options = { keytab: '/nonexistent/http.keytab', servicePrincipal: 'HTTP/web@A.TEST' };

  it('tries the lower-cased name first, then the name as typed (a mixed-case MIT principal), each once', () => {
    const s = new PasswordLoginService(options);
    expect(s.principalsFor('Dana')).toEqual(['dana@A.TEST', 'Dana@A.TEST']);
    expect(s.principalsFor(' Dana@A.TEST ')).toEqual(['dana@A.TEST', 'Dana@A.TEST']);
    expect(s.principalsFor('dana')).toEqual(['dana@A.TEST']);
    expect(s.principalFor('Dana')).toBe('dana@A.TEST');
  });

  it('with caseInsensitive off, only the name as typed', () => {
    expect(new PasswordLoginService({ ...options, passwordLogin: { caseInsensitive: false } }).principalsFor('Dana')).toEqual(['Dana@A.TEST']);
  });

  it('refuses another realm and impossible names before asking the KDC', () => {
    const s = new PasswordLoginService(options);
    expect(() => s.principalsFor('dana@B.TEST')).toThrow(/wrong user name or password/);
    expect(() => s.principalsFor('da na')).toThrow(/characters a Kerberos user name cannot have/);
  });
});
