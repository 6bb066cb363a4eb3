/**
 * The dependency audit that `npm test` runs (tools/scripts/audit.cjs): how it judges npm's report,
 * and that the real run ends with one clear verdict, also when the registry cannot be asked.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '../..');
// A plain CommonJS script (it runs before anything is built), loaded by its path.
const audit = require(join(root, 'tools/scripts/audit.cjs')) as {
  classify(report: unknown, exceptions: unknown[], now?: Date): { ran: boolean; reason?: string; blocking?: { package: string }[]; documented?: { package: string }[]; other?: number };
  checkExceptions(list: unknown): string[];
};

const report = (vulnerabilities: Record<string, unknown>) => ({ auditReportVersion: 2, vulnerabilities, metadata: {} });
const vuln = (severity: string, url = 'https://github.com/advisories/GHSA-aaaa-bbbb-cccc') => ({
  severity,
  via: [{ source: 1, title: 'Prototype pollution', url, severity }],
});

describe('dependency audit (tools/scripts/audit.cjs)', () => {
  it('blocks high and critical findings, and lets low and moderate ones through', () => {
    const r = audit.classify(report({ a: vuln('high'), b: vuln('critical'), c: vuln('moderate'), d: vuln('low') }), []);
    expect(r.ran).toBe(true);
    expect(r.blocking?.map((f) => f.package)).toEqual(['a', 'b']);
    expect(r.other).toBe(2);
  });

  it('honours a documented exception for its package and advisory until it expires', () => {
    const exception = { package: 'a', advisory: 'GHSA-aaaa-bbbb-cccc', reason: 'only reachable through the CLI, which the API never loads', expires: '2030-01-01' };
    const ok = audit.classify(report({ a: vuln('high') }), [exception], new Date('2029-06-01'));
    expect(ok.blocking).toEqual([]);
    expect(ok.documented?.map((f) => f.package)).toEqual(['a']);
    expect(audit.classify(report({ a: vuln('high') }), [exception], new Date('2030-01-02')).blocking?.map((f) => f.package)).toEqual(['a']);
    // Another advisory in the same package is not covered.
    expect(audit.classify(report({ a: vuln('high', 'https://github.com/advisories/GHSA-zzzz-zzzz-zzzz') }), [exception], new Date('2029-06-01')).blocking).toHaveLength(1);
  });

  it('requires every exception to name the package, say why and expire', () => {
    expect(audit.checkExceptions(JSON.parse(readFileSync(join(root, 'tools/scripts/audit-exceptions.json'), 'utf8')))).toEqual([]);
    expect(audit.checkExceptions([{ package: 'a' }])).toEqual([
      'entry 0: "reason" must say why the finding does not apply (20 characters or more)',
      'entry 0: "expires" (YYYY-MM-DD) is required: exceptions are re-reviewed',
    ]);
  });

  it('says the audit did not run when npm gives an error instead of a report (never a silent pass)', () => {
    const r = audit.classify({ message: '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk' }, []);
    expect(r).toEqual({ ran: false, reason: '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk' });
    expect(audit.classify({ error: { code: 'ENOTFOUND', summary: 'getaddrinfo ENOTFOUND registry.npmjs.org' } }, []).ran).toBe(false);
  });

  it('ends a real run with one verdict line and the matching exit code', () => {
    const r = spawnSync(process.execPath, [join(root, 'tools/scripts/audit.cjs')], { cwd: root, encoding: 'utf8', timeout: 150_000 });
    const verdict = r.stdout.trim().split('\n').pop() ?? '';
    const expected: Record<number, RegExp> = {
      0: /^npm audit: no undocumented high\/critical findings/,
      1: /^npm audit: \d+ high\/critical finding\(s\) without an exception/,
      2: /^npm audit: NOT RUN: .+ No dependency was checked/,
    };
    expect(Object.keys(expected)).toContain(String(r.status));
    expect(verdict).toMatch(expected[r.status as number]);
  });
});
