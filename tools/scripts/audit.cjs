#!/usr/bin/env node
/**
 * Dependency audit for `npm test`: `npm audit --omit=dev` (the packages that ship with the API),
 * failing on any high or critical finding that is not documented in audit-exceptions.json.
 *
 * Exit codes: 0 clean (or every finding documented), 1 undocumented high/critical findings or an
 * invalid exceptions file, 2 the audit could not run (registry or its audit endpoint unreachable):
 * nothing was checked, and the output says so in one line starting with "npm audit: NOT RUN".
 */
'use strict';
const { spawnSync } = require('node:child_process');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');

const EXCEPTIONS = join(__dirname, 'audit-exceptions.json');
const BLOCKING = new Set(['high', 'critical']);

/**
 * Validate the exceptions file's entries: each names a package, says why, and expires.
 * @returns problems, one per line (empty when valid).
 */
function checkExceptions(list) {
  if (!Array.isArray(list)) return ['the file must hold a JSON array'];
  const problems = [];
  list.forEach((e, i) => {
    if (!e || typeof e.package !== 'string' || !e.package) problems.push(`entry ${i}: "package" is required`);
    if (!e || typeof e.reason !== 'string' || e.reason.trim().length < 20) problems.push(`entry ${i}: "reason" must say why the finding does not apply (20 characters or more)`);
    if (!e || !/^\d{4}-\d{2}-\d{2}$/.test(String(e.expires))) problems.push(`entry ${i}: "expires" (YYYY-MM-DD) is required: exceptions are re-reviewed`);
  });
  return problems;
}

/**
 * Sort `npm audit --json` output (report version 2) into blocking findings, documented ones and
 * the rest. An exception applies to its package (and, when it names one, to that advisory) until
 * it expires.
 * @param report - the parsed JSON npm printed.
 * @param exceptions - entries of audit-exceptions.json.
 * @param now - today (for expiry).
 * @returns `{ ran: false, reason }` when npm reported an error instead of a report.
 */
function classify(report, exceptions, now = new Date()) {
  if (!report || typeof report !== 'object' || !report.vulnerabilities) {
    const reason = report && (report.message || (report.error && (report.error.summary || report.error.code))) || 'npm printed no audit report';
    return { ran: false, reason: String(reason) };
  }
  const blocking = [];
  const documented = [];
  let other = 0;
  for (const [name, v] of Object.entries(report.vulnerabilities)) {
    if (!BLOCKING.has(v.severity)) {
      other++;
      continue;
    }
    const advisories = (v.via || []).filter((x) => typeof x === 'object').map((x) => String(x.url || x.source || ''));
    const finding = { package: name, severity: v.severity, advisories, title: (v.via || []).filter((x) => typeof x === 'object').map((x) => x.title).join('; ') || `via ${(v.via || []).join(', ')}` };
    const exception = exceptions.find(
      (e) => e.package === name && (!e.advisory || advisories.some((a) => a.endsWith(e.advisory))) && new Date(`${e.expires}T23:59:59Z`) >= now,
    );
    if (exception) documented.push({ ...finding, reason: exception.reason, expires: exception.expires });
    else blocking.push(finding);
  }
  return { ran: true, blocking, documented, other };
}

function main() {
  let exceptions;
  try {
    exceptions = JSON.parse(readFileSync(EXCEPTIONS, 'utf8'));
  } catch (e) {
    console.error(`npm audit: cannot read ${EXCEPTIONS}: ${e.message}`);
    return 1;
  }
  const problems = checkExceptions(exceptions);
  if (problems.length) {
    console.error(`npm audit: ${EXCEPTIONS} is invalid:\n  ${problems.join('\n  ')}`);
    return 1;
  }
  const r = spawnSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  let report = null;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    report = { message: r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop() || `npm exited ${r.status} without a report` };
  }
  const result = classify(report, exceptions);
  if (!result.ran) {
    console.log(
      `npm audit: NOT RUN: ${result.reason}. No dependency was checked. Run 'npm audit --omit=dev' where the registry's ` +
        'audit endpoint is reachable; FORWARDABLE_AUDIT_REQUIRED=1 makes this a failure of npm test.',
    );
    return 2;
  }
  for (const f of result.documented) console.log(`npm audit: documented ${f.severity} in ${f.package} (until ${f.expires}): ${f.reason}`);
  for (const f of result.blocking) console.log(`npm audit: ${f.severity.toUpperCase()} in ${f.package}: ${f.title} ${f.advisories.join(' ')}`);
  if (result.blocking.length) {
    console.log(`npm audit: ${result.blocking.length} high/critical finding(s) without an exception: upgrade, or document each in ${EXCEPTIONS}`);
    return 1;
  }
  console.log(`npm audit: no undocumented high/critical findings in production dependencies (${result.documented.length} documented, ${result.other} below high)`);
  return 0;
}

module.exports = { classify, checkExceptions };
if (require.main === module) process.exitCode = main();
