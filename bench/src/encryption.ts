/**
 * What GSSAPI transport encryption of the PostgreSQL link costs (#17), as ratios measured in the
 * same run: the same user's credential, the same server, encrypted (`gssencmode=require`) against
 * plain (`disable`, which the bench realm alone allows through a `hostnogssenc` line), with the
 * two modes interleaved so that machine noise hits both alike. Reports; never fails on timing.
 *
 * Standalone (any realm whose pg_hba also has a `hostnogssenc ... gss` line):
 * `BENCH_ENCRYPTION_ONLY=1 KRB5CCNAME=... FORWARDABLE_PG_*=... node -r ts-node/register/transpile-only
 *  -r tsconfig-paths/register bench/src/encryption.ts`
 */
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
export async function encryptionCost(credential: Credential, pg: GssapiConnectionTarget, listingSql: string, iterations: number): Promise<EncryptionCost> {
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
  const sum = (m: GssEncMode) => ({ connect: summarize(samples[m].connect), listing: summarize(samples[m].listing), read1MB: summarize(samples[m].read1MB) });
  const gssenc = sum('require');
  const plain = sum('disable');
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    iterations,
    gssenc,
    plain,
    ratio: { connect: r2(gssenc.connect.p50 / plain.connect.p50), listing: r2(gssenc.listing.p50 / plain.listing.p50), read1MB: r2(gssenc.read1MB.p50 / plain.read1MB.p50) },
  };
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
  ];
}

if (require.main === module && process.env.BENCH_ENCRYPTION_ONLY) {
  void (async () => {
    const e = process.env;
    const credential = await Credential.fromCache(e.KRB5CCNAME as string, 'password');
    const pg = { host: e.FORWARDABLE_PG_HOST as string, hostaddr: e.FORWARDABLE_PG_HOSTADDR, port: Number(e.FORWARDABLE_PG_PORT), database: e.FORWARDABLE_PG_DATABASE as string };
    const r = await encryptionCost(credential, pg, e.BENCH_LISTING_SQL ?? 'SELECT 1', Number(e.BENCH_ENCRYPTION_ITERATIONS ?? 50));
    credential.dispose();
    process.stdout.write(`${encryptionTable(r).join('\n')}\n`);
  })().catch((err: Error) => {
    console.error(`bench: ${err.message}`);
    process.exit(1);
  });
}
