/**
 * What GSSAPI transport encryption of the PostgreSQL link costs (#17), as ratios measured in the
 * same run: the same user's credential, the same server, encrypted (`gssencmode=require`) against
 * plain (`disable`, which the bench realm alone allows through a `hostnogssenc` line), with the
 * two modes interleaved so that machine noise hits both alike. Reports; never fails on timing.
 *
 * With a password role and a TLS server (the bench realm: `--pg-tls`, role `bench_app`), it also
 * times the cold connect that a password-based deployment pays for an encrypted link, SCRAM over
 * verified TLS, against Kerberos with GSSAPI encryption, interleaved the same way.
 *
 * Standalone (any realm whose pg_hba also has a `hostnogssenc ... gss` line):
 * `BENCH_ENCRYPTION_ONLY=1 KRB5CCNAME=... FORWARDABLE_PG_*=... node -r ts-node/register/transpile-only
 *  -r tsconfig-paths/register bench/src/encryption.ts`
 */
import { readFileSync } from 'node:fs';
import { Client } from 'pg';
import { Credential } from '@forwardable/gssapi';
import { gssapiClientConfig, type GssapiConnectionTarget, type GssEncMode, type GssapiStream } from '@forwardable/pg-gssapi';
import { ms, summarize } from './common';

type Summary = ReturnType<typeof summarize>;
export interface EncryptionCost {
  iterations: number;
  gssenc: { connect: Summary; listing: Summary; read1MB: Summary };
  plain: { connect: Summary; listing: Summary; read1MB: Summary };
  /** encrypted / plain, p50. */
  ratio: { connect: number; listing: number; read1MB: number };
  /** Cold connect, Kerberos + GSSAPI encryption against SCRAM + verified TLS (when a password role and a CA were given). */
  versusScramTls?: { gssenc: Summary; scramTls: Summary; ratio: number };
}

/** A password role and the server's CA, for the SCRAM + TLS baseline. */
export interface ScramTlsBaseline {
  user: string;
  password: string;
  /** PEM file of the CA that signed the server's certificate (verify-full). */
  caFile: string;
}

const READ_1MB = `SELECT repeat('x', 1048576) AS blob`;

async function connectAs(credential: Credential, pg: GssapiConnectionTarget, mode: GssEncMode): Promise<{ client: Client; protection: string }> {
  let stream: GssapiStream | null = null;
  // sslmode disable: the plain baseline must not pay an SSLRequest round trip (the default prefer would ask).
  const client = new Client({ ...gssapiClientConfig(credential, { ...pg, gssencmode: mode, sslmode: 'disable' }, { onConnection: (s) => (stream = s) }), application_name: 'bench-gssenc' } as never);
  await client.connect();
  return { client, protection: (stream as GssapiStream | null)?.protection ?? 'none' };
}

/**
 * Cold connect, a warm listing query and a warm 1 MB read, `iterations` times each per mode.
 * @param listingSql - the per-user listing the API runs (RLS decides the rows).
 */
export async function encryptionCost(
  credential: Credential,
  pg: GssapiConnectionTarget,
  listingSql: string,
  iterations: number,
  scramTls?: ScramTlsBaseline,
): Promise<EncryptionCost> {
  const modes = ['require', 'disable'] as const;
  const samples = Object.fromEntries(modes.map((m) => [m, { connect: [] as number[], listing: [] as number[], read1MB: [] as number[] }]));
  const warm: Record<string, Client> = {};
  for (const m of modes) {
    const c = await connectAs(credential, pg, m);
    // Measuring the wrong thing would be worse than not measuring: check each link is what it claims.
    if (c.protection !== (m === 'require' ? 'gssenc' : 'none')) throw new Error(`bench: gssencmode=${m} gave a ${c.protection} link`);
    warm[m] = c.client;
  }
  try {
    for (let i = 0; i < iterations + 5; i++) {
      const record = i >= 5; // the first few warm code paths up
      for (const m of i % 2 ? [...modes].reverse() : modes) {
        const t0 = process.hrtime.bigint();
        const { client } = await connectAs(credential, pg, m);
        const t1 = process.hrtime.bigint();
        await client.end();
        const t2 = process.hrtime.bigint();
        await warm[m].query(listingSql);
        const t3 = process.hrtime.bigint();
        const r = await warm[m].query(READ_1MB);
        const t4 = process.hrtime.bigint();
        if (r.rows[0].blob.length !== 1048576) throw new Error('bench: the 1 MB read came back short');
        if (!record) continue;
        samples[m].connect.push(ms(t0, t1));
        samples[m].listing.push(ms(t2, t3));
        samples[m].read1MB.push(ms(t3, t4));
      }
    }
  } finally {
    await Promise.all(Object.values(warm).map((c) => c.end().catch(() => undefined)));
  }
  const versusScramTls = scramTls ? await coldConnectVersusScramTls(credential, pg, iterations, scramTls) : undefined;
  const sum = (m: GssEncMode) => ({ connect: summarize(samples[m].connect), listing: summarize(samples[m].listing), read1MB: summarize(samples[m].read1MB) });
  const gssenc = sum('require');
  const plain = sum('disable');
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    iterations,
    gssenc,
    plain,
    ratio: { connect: r2(gssenc.connect.p50 / plain.connect.p50), listing: r2(gssenc.listing.p50 / plain.listing.p50), read1MB: r2(gssenc.read1MB.p50 / plain.read1MB.p50) },
    versusScramTls,
  };
}

/**
 * Cold connect to a ready session: Kerberos (a context with the user's service ticket) with GSSAPI
 * encryption, against SCRAM-SHA-256 inside TLS verified against the CA (verify-full), interleaved.
 * Each SCRAM+TLS link is checked to be TLS (pg_stat_ssl) once, so the baseline is what it claims.
 */
async function coldConnectVersusScramTls(credential: Credential, pg: GssapiConnectionTarget, iterations: number, b: ScramTlsBaseline) {
  const ca = readFileSync(b.caFile, 'utf8');
  const scram = () =>
    new Client({ host: pg.hostaddr ?? pg.host, port: pg.port, database: pg.database, user: b.user, password: b.password, ssl: { ca, servername: pg.host }, application_name: 'bench-scram-tls' });
  const probe = scram();
  await probe.connect();
  try {
    const { rows } = await probe.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    if (rows[0]?.ssl !== true) throw new Error('bench: the SCRAM baseline connection is not on TLS (start the realm with --pg-tls)');
  } finally {
    await probe.end();
  }
  const samples = { gssenc: [] as number[], scramTls: [] as number[] };
  for (let i = 0; i < iterations + 5; i++) {
    const order = i % 2 ? (['scramTls', 'gssenc'] as const) : (['gssenc', 'scramTls'] as const);
    for (const which of order) {
      const t0 = process.hrtime.bigint();
      const client = which === 'gssenc' ? (await connectAs(credential, pg, 'require')).client : scram();
      if (which === 'scramTls') await client.connect();
      const t1 = process.hrtime.bigint();
      await client.end();
      if (i >= 5) samples[which].push(ms(t0, t1));
    }
  }
  const gssenc = summarize(samples.gssenc);
  const scramTls = summarize(samples.scramTls);
  return { gssenc, scramTls, ratio: Math.round((gssenc.p50 / scramTls.p50) * 100) / 100 };
}

/** The bench README's table for {@link encryptionCost}. */
export function encryptionTable(e: EncryptionCost): string[] {
  const f = (x: number) => x.toFixed(2);
  const row = (label: string, k: 'connect' | 'listing' | 'read1MB') =>
    `| ${label} | ${f(e.gssenc[k].p50)} / ${f(e.gssenc[k].p99)} | ${f(e.plain[k].p50)} / ${f(e.plain[k].p99)} | ${f(e.ratio[k])}× |`;
  return [
    `### GSSAPI encryption of the PostgreSQL link (${e.iterations} iterations per mode, interleaved, ms p50 / p99)`,
    '',
    '| operation | encrypted (gssencmode=require) | plain (disable) | ratio p50 |',
    '|---|---|---|---|',
    row('cold connect (context + start-up)', 'connect'),
    row('listing query (warm connection)', 'listing'),
    row('1 MB read (warm connection)', 'read1MB'),
    ...(e.versusScramTls
      ? [
          '',
          `| cold connect, ms p50 / p99 | Kerberos + GSSAPI encryption | SCRAM + TLS (verify-full) | ratio p50 |`,
          '|---|---|---|---|',
          `| new connection | ${f(e.versusScramTls.gssenc.p50)} / ${f(e.versusScramTls.gssenc.p99)} | ${f(e.versusScramTls.scramTls.p50)} / ${f(e.versusScramTls.scramTls.p99)} | ${f(e.versusScramTls.ratio)}× |`,
        ]
      : []),
  ];
}

if (require.main === module && process.env.BENCH_ENCRYPTION_ONLY) {
  void (async () => {
    const e = process.env;
    const credential = await Credential.fromCache(e.KRB5CCNAME as string, 'password');
    const pg = { host: e.FORWARDABLE_PG_HOST as string, hostaddr: e.FORWARDABLE_PG_HOSTADDR, port: Number(e.FORWARDABLE_PG_PORT), database: e.FORWARDABLE_PG_DATABASE as string };
    const scramTls = e.BENCH_APP_PASSWORD && e.FORWARDABLE_PG_SSLROOTCERT ? { user: 'bench_app', password: e.BENCH_APP_PASSWORD, caFile: e.FORWARDABLE_PG_SSLROOTCERT } : undefined;
    const r = await encryptionCost(credential, pg, e.BENCH_LISTING_SQL ?? 'SELECT 1', Number(e.BENCH_ENCRYPTION_ITERATIONS ?? 50), scramTls);
    credential.dispose();
    process.stdout.write(`${encryptionTable(r).join('\n')}\n`);
  })().catch((err: Error) => {
    console.error(`bench: ${err.message}`);
    process.exit(1);
  });
}
