#!/usr/bin/env node
// npm run bench [suite...]: the project's benchmarks. Each suite writes JSON under bench/results/.
// Suites: startup (npm run serve -> green Health page in Chromium, cold and warm sandbox);
// backup (full backup, per codec in BENCH_CODECS (default "zstd:3,gzip:6"), vs pg_dump -Fd -j2 -Z6 vs raw COPY on the machine's PostgreSQL; BENCH_PG_URL, BENCH_SCALE=200 ≈ 2 GB);
// incremental (1% of rows changed: incremental vs full, on an embedded PostgreSQL with wal_level=logical; BENCH_INC_SCALE=50);
// restore (restore into an empty database vs pg_restore -j2 from a pg_dump -Fd made in the same run; BENCH_SCALE=200);
// backup and restore measure BENCH_SHAPE=sandbox (default, BENCH_SCALE) or indexed (bench/shapes.ts: 45 Prisma-like tables,
// text ids, 2-4 indexes each, TOASTed jsonb/text; BENCH_INDEXED_MB=1000 of table data), written to <suite>-indexed.json;
// metrics (collector overhead at 1 s, a 7-day history query, the 7-day chart and an hour of live updates in Chromium);
// alerts (500 rules over 50 series per tick, threshold crossing to webhook received, a 30-day backtest; BENCH_ALERT_*).
// replay (point-in-time restore across a chain with 1 M changes: changes/s of replay, exact at the stop point, the median of BENCH_REPLAY_ROUNDS=3 restores of one chain; BENCH_REPLAY_CHANGES).
// catalog (1,000 sets in s3rver: backups list cold and warm, in the console and the CLI, and the restore points; BENCH_CATALOG_SETS).
// errors (SDK cost per captureError, ingest events/s into PostgreSQL for 60 s (ERRORS_BENCH_SECONDS) with RSS start/max/end/slope, the Errors list over 100,000 events in core and in Chromium).
// incidents (the timeline of a 24-hour window with 10,000 entries, the PDF export of that report; BENCH_INCIDENTS_RUNS).
// soak (an incremental every BENCH_SOAK_INTERVAL_S=60 for BENCH_SOAK_MINUTES=30 under the traffic simulator at BENCH_SOAK_TPS=20,
//   embedded PostgreSQL at BENCH_SOAK_SCALE=20: duration vs interval, RPO, RSS every second, the chain restored at the end;
//   half an hour by default, so it runs only when named).
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { startup } from './startup.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
// The backup suites are TypeScript built with the CLI (npm run build), so they run the real core code.
const built = () => createRequire(import.meta.url)(join(root, 'out', 'host', 'bench.js'))
const builtRestore = () => createRequire(import.meta.url)(join(root, 'out', 'host', 'bench-restore.js'))
const suites = {
  startup,
  backup: (o) => built().backupBench(o),
  incremental: () => built().incrementalBench(),
  restore: (o) => builtRestore().restoreBench(o),
  metrics: (o) => createRequire(import.meta.url)(join(root, 'out', 'host', 'bench-metrics.js')).metricsBench(o),
  alerts: () => createRequire(import.meta.url)(join(root, 'out', 'host', 'bench-alerts.js')).alertsBench(),
  errors: (o) => createRequire(import.meta.url)(join(root, 'out', 'host', 'bench-errors.js')).errorsBench(o),
  replay: () => createRequire(import.meta.url)(join(root, 'out', 'host', 'bench-replay.js')).replayBench(),
  incidents: () => createRequire(import.meta.url)(join(root, 'out', 'host', 'bench-incidents.js')).incidentsBench(),
  catalog: (o) => createRequire(import.meta.url)(join(root, 'out', 'host', 'bench-catalog.js')).catalogBench(o),
  soak: () => createRequire(import.meta.url)(join(root, 'out', 'host', 'bench-soak.js')).soakBench(),
}
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const onlyWhenNamed = new Set(['soak'])
const names = wanted.length ? wanted : Object.keys(suites).filter((n) => !onlyWhenNamed.has(n))
mkdirSync(join(root, 'bench', 'results'), { recursive: true })
for (const name of names) {
  if (!suites[name]) {
    console.error(`Unknown suite "${name}": choose from ${Object.keys(suites).join(', ')}.`)
    process.exit(64)
  }
  console.log(`\n== ${name} ==`)
  const result = await suites[name]({ root })
  // A suite that measured another shape than the default (result.shape.name, e.g. BENCH_SHAPE=indexed) writes <suite>-<shape>.json.
  const shape = result?.shape?.name && result.shape.name !== 'sandbox' ? `-${result.shape.name}` : ''
  const file = join(root, 'bench', 'results', `${name}${shape}.json`)
  writeFileSync(file, JSON.stringify({ suite: name, at: new Date().toISOString(), machine: machine(), ...result }, null, 2) + '\n')
  console.log(JSON.stringify(result, null, 2))
  console.log(`written to ${file}`)
}

function machine() {
  return { node: process.version, platform: process.platform, arch: process.arch }
}
