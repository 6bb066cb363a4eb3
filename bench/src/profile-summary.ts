/**
 * Where a server's CPU time went, from a V8 `.cpuprofile` (BENCH_ONLY=overhead with
 * BENCH_CPU_PROFILE_DIR, or `node --cpu-prof`): self time by module (npm package, Node internals,
 * our code, GC) and by function, and inclusive time of the functions that matter most.
 *
 *   TS_NODE_PROJECT=bench/tsconfig.json node -r ts-node/register/transpile-only bench/src/profile-summary.ts <file> [--top 30] [--requests N]
 *
 * With `--requests` (the 2xx answers of the profiled cell) times are also given per request, in µs.
 * A `.heapprofile` (BENCH_HEAP_PROFILE=1) is summarised as bytes allocated by module and function.
 */
import { readFileSync } from 'node:fs';

interface Frame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: Frame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** The module a function belongs to: an npm package, a Node internal area, our code, or V8 itself. */
export function moduleOf(f: Frame): string {
  const url = f.url;
  if (!url) return f.functionName.startsWith('(') ? f.functionName : `(native) ${f.functionName || 'anonymous'}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return url.split('/').slice(0, 3).join('/');
  const ours = /\/(libs\/[^/]+(?:\/[^/]+)?|apps\/[^/]+|bench)\//.exec(url);
  if (ours) return ours[1];
  if (/dist\/apps\/api\/main\.js$/.test(url)) return 'dist/apps/api/main.js';
  return url;
}

const keyOf = (f: Frame) => `${f.functionName || '(anonymous)'} ${moduleOf(f)}:${f.lineNumber + 1}`;

/** Self and inclusive milliseconds by module and by function. */
export function summarise(p: Profile) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfModule = new Map<string, number>();
  const selfFn = new Map<string, number>();
  const inclFn = new Map<string, number>();
  const inclModule = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    // A sample's time is the gap to the next one (V8 records the delta before each sample).
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const leaf = byId.get(p.samples[i]);
    if (!leaf) continue;
    total += dt;
    const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + dt);
    add(selfModule, moduleOf(leaf.callFrame));
    add(selfFn, keyOf(leaf.callFrame));
    // Inclusive: each function (and module) once per sample, however deep the recursion.
    const seenFn = new Set<string>();
    const seenMod = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      const k = keyOf(f);
      const m = moduleOf(f);
      if (!seenFn.has(k)) {
        seenFn.add(k);
        add(inclFn, k);
      }
      if (!seenMod.has(m)) {
        seenMod.add(m);
        add(inclModule, m);
      }
    }
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { totalMs: total, selfModule: sorted(selfModule), selfFn: sorted(selfFn), inclFn: sorted(inclFn), inclModule: sorted(inclModule) };
}

interface HeapNode { callFrame: Frame; selfSize: number; children: HeapNode[] }

/** Bytes allocated by module and by function (self), from a sampling heap profile (`.heapprofile`). */
export function summariseHeap(head: HeapNode) {
  const byModule = new Map<string, number>();
  const byFn = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode) => {
    if (n.selfSize) {
      total += n.selfSize;
      byModule.set(moduleOf(n.callFrame), (byModule.get(moduleOf(n.callFrame)) ?? 0) + n.selfSize);
      byFn.set(keyOf(n.callFrame), (byFn.get(keyOf(n.callFrame)) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c);
  };
  walk(head);
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { total, byModule: sorted(byModule), byFn: sorted(byFn) };
}

function main() {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
  if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [--top 30] [--requests N]');
  const opt = (name: string, d: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : d);
  const top = opt('--top', 30);
  const requests = opt('--requests', 0);
  if (file.endsWith('.heapprofile')) {
    const h = summariseHeap((JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }).head);
    const kb = (b: number) => `${(b / 1024).toFixed(0).padStart(9)} KiB ${((b / h.total) * 100).toFixed(1).padStart(5)} %${requests ? ` ${(b / requests / 1024).toFixed(2).padStart(8)} KiB/req` : ''}`;
    const out = [`${file}: ${(h.total / 1048576).toFixed(1)} MiB allocated (sampled)`, '', 'allocated by module'];
    for (const [k, v] of h.byModule.slice(0, top)) out.push(`${kb(v)}  ${k}`);
    out.push('', 'allocated by function');
    for (const [k, v] of h.byFn.slice(0, top)) out.push(`${kb(v)}  ${k}`);
    process.stdout.write(out.join('\n') + '\n');
    return;
  }
  const s = summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile);
  const busy = s.totalMs - (s.selfModule.find(([k]) => k === '(idle)')?.[1] ?? 0);
  const fmt = (ms: number) => `${ms.toFixed(1).padStart(9)} ms ${((ms / busy) * 100).toFixed(1).padStart(5)} %${requests ? ` ${((ms * 1000) / requests).toFixed(1).padStart(8)} µs/req` : ''}`;
  const out: string[] = [`${file}: ${s.totalMs.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms busy (not idle)${requests ? `, ${requests} requests: ${((busy * 1000) / requests).toFixed(1)} µs CPU per request` : ''}`];
  const section = (title: string, rows: [string, number][]) => {
    out.push('', title);
    for (const [k, v] of rows.slice(0, top)) out.push(`${fmt(v)}  ${k}`);
  };
  section('self time by module', s.selfModule);
  section('inclusive time by module', s.inclModule);
  section('self time by function', s.selfFn);
  section('inclusive time by function', s.inclFn);
  process.stdout.write(out.join('\n') + '\n');
}

if (require.main === module) main();
