/**
 * Preload (`node --require bench/src/cpu-profile.cjs`, via NODE_OPTIONS) for `BENCH_ONLY=overhead`
 * with `BENCH_CPU_PROFILE_DIR` set: a CPU profile of exactly one load cell of the server under
 * test. SIGWINCH toggles it: the first starts the V8 sampling profiler, the next stops it and
 * writes `<dir>/<label>-<pid>-<n>.cpuprofile` (read it with bench/src/profile-summary.ts), and
 * `<…>.gc.json`: garbage collections meanwhile, count and ms by kind (minor = scavenge, major =
 * mark-compact, incremental marking, weak callbacks).
 *
 * Why a signal and not `node --cpu-prof`: that writes its profile only on a normal exit, and the
 * API ends by SIGTERM through Nest's shutdown hooks, which re-raise the signal. Why SIGWINCH:
 * Nest's shutdown hooks listen to SIGUSR2 (and SIGUSR1 starts the inspector); SIGWINCH is ignored
 * by default, so a stray one changes nothing.
 */
'use strict';
const { Session } = require('node:inspector');
const { mkdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { PerformanceObserver, constants } = require('node:perf_hooks');

const GC_KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir) {
  const label = process.env.BENCH_CPU_PROFILE_LABEL || 'server';
  const session = new Session();
  session.connect();
  let running = false;
  let n = 0;
  let gc = {};
  const heap = process.env.BENCH_HEAP_PROFILE === '1';
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = GC_KINDS[e.detail?.kind] ?? String(e.detail?.kind);
      const k = (gc[kind] ??= { count: 0, ms: 0 });
      k.count++;
      k.ms += e.duration;
    }
  });
  process.on('SIGWINCH', () => {
    if (!running) {
      running = true;
      gc = {};
      observer.observe({ entryTypes: ['gc'] });
      // Allocation sampling too (BENCH_HEAP_PROFILE=1), counting what GC already collected: where the garbage comes from.
      if (heap) session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      // 250 µs: enough samples in a 5 s cell, little distortion of the server's own work.
      session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: 250 }, () => session.post('Profiler.start')));
      return;
    }
    running = false;
    observer.disconnect();
    const collected = gc;
    session.post('Profiler.stop', (err, result) => {
      if (err) return void process.stderr.write(`cpu-profile: ${err.message}\n`);
      mkdirSync(dir, { recursive: true });
      const base = join(dir, `${label}-${process.pid}-${n++}`);
      writeFileSync(`${base}.cpuprofile`, JSON.stringify(result.profile));
      writeFileSync(`${base}.gc.json`, JSON.stringify(collected, null, 1));
    });
    if (heap) {
      session.post('HeapProfiler.stopSampling', (err, result) => {
        if (!err) writeFileSync(join(dir, `${label}-${process.pid}-${n - 1}.heapprofile`), JSON.stringify(result.profile));
      });
    }
  });
}
