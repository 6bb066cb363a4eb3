import { statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { GssUsageError, GssUsageCode } from './errors';
import { loadNative } from './load';

/** Options of {@link configureKerberos}; `null` unsets a variable, `undefined` leaves it alone. */
export interface KerberosConfig {
  /** The krb5.conf profile (realm, KDC addresses): `KRB5_CONFIG`. Absolute path of an existing file. */
  krb5Config?: string | null;
  /** Where the replay cache lives: `KRB5RCACHEDIR`. Absolute path of an existing directory. */
  replayCacheDir?: string | null;
}

function check(value: string | null | undefined, what: string, dir: boolean): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'string' || !isAbsolute(value)) throw new GssUsageError('ERR_GSS_INVALID_ARG', `${what} must be an absolute path`);
  const st = statSync(value, { throwIfNoEntry: false });
  if (!st || (dir ? !st.isDirectory() : !st.isFile())) {
    throw new GssUsageError('ERR_GSS_INVALID_ARG', `${what} ${value} is not an existing ${dir ? 'directory' : 'file'}`);
  }
}

/**
 * Point libkrb5 at the machine's Kerberos profile and replay cache directory: the C
 * environment variables `KRB5_CONFIG` and `KRB5RCACHEDIR`, which libkrb5 reads whenever it
 * creates a context. They are process-wide (this is the machine profile, not a credential), so
 * call this once at startup, before any other function of this library: it throws
 * `GssUsageError` (`ERR_GSS_OPERATIONS_PENDING`) while an operation runs.
 *
 * Needed where `process.env` is not the C environment (Jest gives each test file a copy);
 * elsewhere setting `process.env` before the first call is equivalent.
 */
export function configureKerberos(config: KerberosConfig): void {
  if (typeof config !== 'object' || config === null) throw new GssUsageError('ERR_GSS_INVALID_ARG', 'config must be an object');
  check(config.krb5Config, 'krb5Config', false);
  check(config.replayCacheDir, 'replayCacheDir', true);
  const native = loadNative();
  const apply = (name: string, value: string | null | undefined) => {
    if (value === undefined) return;
    try {
      native.setKerberosEnv(name, value);
    } catch (e) {
      const err = e as { code?: string; message?: string };
      throw new GssUsageError((err.code ?? 'ERR_GSS_INVALID_ARG') as GssUsageCode, String(err.message));
    }
    if (value === null) delete process.env[name];
    else process.env[name] = value;
  };
  apply('KRB5_CONFIG', config.krb5Config);
  apply('KRB5RCACHEDIR', config.replayCacheDir);
}
