#!/usr/bin/env node
/**
 * API reports of the published packages (API Extractor): `libs/<pkg>/<pkg>.api.md` is the public
 * surface of each package as its users see it (the built .d.ts in dist/libs). Checked in, so a
 * change to a public signature shows up in review.
 *
 *   node tools/packaging/api-report.mjs            check: fails when a report is out of date
 *   node tools/packaging/api-report.mjs --local    update the reports after a deliberate change
 *   ... [--only <pkg>]
 *
 * Also writes the doc model (dist/api-model/*.api.json) that `nx run packaging:docs` renders.
 * Needs the packages built: `npx nx run-many -t build -p gssapi pg-gssapi rls nest`.
 */
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Extractor, ExtractorConfig } = require('@microsoft/api-extractor');
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PACKAGES = ['gssapi', 'pg-gssapi', 'rls', 'nest'];

const args = process.argv.slice(2);
const local = args.includes('--local');
const only = args.includes('--only') ? [args[args.indexOf('--only') + 1]] : PACKAGES;

// The packages as a user's node_modules holds them, so one package's types are *external* to
// another's report (as they are once published), not folded into it.
const modules = join(root, 'tmp/api-extractor/node_modules/@forwardable');
rmSync(modules, { recursive: true, force: true });
mkdirSync(modules, { recursive: true });
for (const p of PACKAGES) {
  const dist = join(root, 'dist/libs', p);
  if (!existsSync(join(dist, 'src/index.d.ts'))) {
    console.error(`${dist} is not built: run 'npx nx run-many -t build -p ${PACKAGES.join(' ')}'`);
    process.exit(2);
  }
  cpSync(dist, join(modules, p), { recursive: true, filter: (f) => !f.endsWith('.map') });
}

let failed = 0;
for (const p of only) {
  const config = ExtractorConfig.loadFileAndPrepare(join(root, 'libs', p, 'api-extractor.json'));
  const messages = [];
  const result = Extractor.invoke(config, {
    localBuild: local,
    showVerboseMessages: false,
    messageCallback: (m) => {
      if (m.logLevel === 'error' || m.logLevel === 'warning') messages.push(m.formatMessageWithLocation(root));
      m.handled = true;
    },
  });
  const report = `libs/${p}/${p}.api.md`;
  if (result.succeeded && !result.apiReportChanged) {
    console.log(`OK ${p}: ${report} matches the public API`);
  } else if (result.succeeded && local) {
    console.log(`UPDATED ${p}: ${report} (review and commit it)`);
  } else {
    failed++;
    console.error(
      result.apiReportChanged
        ? `CHANGED ${p}: the public API differs from ${report}. If the change is deliberate, run 'node tools/packaging/api-report.mjs --local' and commit the report; the difference is in tmp/api-extractor/${p}/${p}.api.md.`
        : `FAILED ${p}: ${result.errorCount} error(s)`,
    );
  }
  for (const m of messages) console.error(`  ${m}`);
}
process.exit(failed ? 1 : 0);
