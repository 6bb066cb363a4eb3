import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { NativeBinding } from './native';

let cached: NativeBinding | undefined;

/**
 * Where the compiled addon may be: an explicit override (for bundles that copy the `.node`
 * file elsewhere), the node-gyp output relative to this file (source and compiled layouts),
 * and next to a bundle.
 */
function candidates(): string[] {
  const list: string[] = [];
  if (process.env['FORWARDABLE_GSSAPI_ADDON']) list.push(resolve(process.env['FORWARDABLE_GSSAPI_ADDON']));
  list.push(
    join(__dirname, '../../build/Release/gssapi.node'),
    join(__dirname, '../build/Release/gssapi.node'),
    join(__dirname, 'gssapi.node'),
    join(process.cwd(), 'libs/gssapi/build/Release/gssapi.node'),
  );
  return [...new Set(list)];
}

/**
 * Load the native binding once. `process.dlopen` instead of `require` keeps bundlers from
 * trying to resolve the file at build time (see shared/BUILD-NOTES.md).
 * @internal
 */
export function loadNative(): NativeBinding {
  if (cached) return cached;
  const tried: string[] = [];
  for (const file of candidates()) {
    if (!existsSync(file)) {
      tried.push(`${file} (missing)`);
      continue;
    }
    const mod = { exports: {} as NativeBinding };
    try {
      process.dlopen(mod, file);
    } catch (e) {
      tried.push(`${file} (${(e as Error).message})`);
      continue;
    }
    cached = mod.exports;
    return cached;
  }
  throw Object.assign(
    new Error(
      `the GSSAPI addon is not built: run 'npx nx run gssapi:build-native' (needs libkrb5-dev and a C++ compiler). Tried:\n  ${tried.join('\n  ')}`,
    ),
    { code: 'ERR_GSS_ADDON_NOT_FOUND' },
  );
}
