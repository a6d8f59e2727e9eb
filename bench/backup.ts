// Full backup vs pg_dump -Fd -j2 vs raw COPY, on the machine's PostgreSQL (15 here), same run.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { runCli } from './cli'
import { to as copyTo } from 'pg-copy-streams'
import { DEFAULT_COMPRESSION, parseCompression } from '../src/core/backup/compression'
import { defaultParallelism, STABLE_SESSION } from '../src/core/backup/full'
import { qname } from '../src/core/db/sql'
import { USER_SCHEMAS } from '../src/core/backup/schema-capture'
import { base, benchSource, ensureBenchDatabase, q, seedSandboxOnce } from './shapes'

/** The ceiling: COPY TO STDOUT of every table over two connections, 64 MB ctid chunks, output discarded. */
async function rawCopy(url: string): Promise<{ bytes: number; seconds: number }> {
  const meta = await q(
    url,
    `SELECT n.nspname AS schema, c.relname AS name, (pg_relation_size(c.oid) / 8192)::int AS pages
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND c.relnamespace IN (${USER_SCHEMAS})`,
  )
  const per = 8192
  const tasks: string[] = []
  for (const t of meta)
    for (let p = 0; p <= t.pages; p += per)
      tasks.push(`COPY (SELECT * FROM ${qname(t.schema, t.name)} WHERE ctid >= '(${p},0)'::tid AND ctid < '(${p + per},0)'::tid) TO STDOUT`)
  let bytes = 0
  const t0 = performance.now()
  await Promise.all(
    [0, 1].map(async () => {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      await c.query(STABLE_SESSION)
      for (let sql = tasks.shift(); sql; sql = tasks.shift())
        for await (const chunk of c.query(copyTo(sql))) bytes += (chunk as Buffer).length
      await c.end()
    }),
  )
  return { bytes, seconds: (performance.now() - t0) / 1000 }
}

function pgDump(url: string): { seconds: number; version: string; bytesOnDisk: number } {
  const version = spawnSync('pg_dump', ['--version'], { encoding: 'utf8' }).stdout.trim()
  const dir = mkdtempSync(join(tmpdir(), 'bench-pgdump-'))
  const out = join(dir, 'dump')
  const u = new URL(url)
  const t0 = performance.now()
  // Arguments only, no password on the command line (trust auth locally; PGPASSWORD by environment otherwise).
  const r = spawnSync(
    'pg_dump',
    ['-Fd', '-j2', '-Z6', '-f', out, '-h', u.hostname, '-p', u.port || '5432', '-U', u.username, u.pathname.slice(1)],
    {
      env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) },
      encoding: 'utf8',
    },
  )
  const seconds = (performance.now() - t0) / 1000
  if (r.status !== 0) throw new Error(`pg_dump failed: ${r.stderr}`)
  const du = spawnSync('du', ['-sb', out], { encoding: 'utf8' }).stdout.split('\t')[0]
  rmSync(dir, { recursive: true, force: true })
  return { seconds, version, bytesOnDisk: Number(du) }
}

/** Our full backup in its own process, as the CLI runs it, so its peak RSS is its own. */
async function ours(
  root: string,
  url: string,
  extraEnv: Record<string, string> = {},
): Promise<{ seconds: number; maxRssMB: number; result: Record<string, number> }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-ours-'))
  try {
    const r = await runCli(join(root, 'out/host/cli.js'), ['backup', 'full', '--json'], {
      DATABASE_URL: url,
      LOCAL_BACKUP_PATH: dir,
      OPS_DATA_DIR: dir,
      BACKUP_COMPRESSION: DEFAULT_COMPRESSION,
      BACKUP_PARALLELISM: process.env.BENCH_OURS_PARALLELISM ?? String(defaultParallelism()),
      ...extraEnv,
    })
    return { seconds: r.seconds, maxRssMB: r.maxRssMB, result: r.out.result as Record<string, number> }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Busy CPU-seconds of the whole machine (all processes, the database server included) from /proc/stat. */
export function machineBusy(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    const [user, nice, system, , , irq, softirq, steal] = f
    return (user + nice + system + irq + softirq + steal) / 100
  } catch {
    return NaN
  }
}
export async function withCpu<T>(fn: () => Promise<T> | T): Promise<T & { machineCpuS: number }> {
  const b = machineBusy()
  const r = await fn()
  return Object.assign(r as object, { machineCpuS: Math.round((machineBusy() - b) * 10) / 10 }) as T & { machineCpuS: number }
}

const mbps = (bytes: number, s: number) => Math.round((bytes / 1e6 / s) * 10) / 10

export async function backupBench({ root }: { root: string }) {
  // BENCH_SHAPE: sandbox (BENCH_SCALE, and a quarter of it for the peak RSS by size) or indexed (BENCH_INDEXED_MB;
  // no smaller database is made for it: the peak-RSS-by-size and parallelism-8 runs are skipped).
  const { url: big, shape } = await benchSource()
  const small = shape.name === 'sandbox' ? await ensureBenchDatabase(Math.max(1, Math.round(Number(shape.scale) / 4))) : null
  const server = (await q(big, `SELECT current_setting('server_version') AS v, pg_database_size(current_database()) AS size`))[0]
  await q(base, 'CHECKPOINT')

  // The codecs our backup runs with, each in every round: BENCH_CODECS (comma-separated BACKUP_COMPRESSION values),
  // the default codec and gzip-6 unless set.
  const codecs = (process.env.BENCH_CODECS ?? `${DEFAULT_COMPRESSION},gzip:6`)
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean)
  for (const c of codecs) parseCompression(c) // a bad value fails here, before anything runs
  // Alternate the tools, five rounds, and report medians: one run on a shared 2-core machine varies by ±15%.
  const rounds = Number(process.env.BENCH_ROUNDS ?? 5)
  const raws: { bytes: number; seconds: number; machineCpuS: number }[] = []
  const dumps: (ReturnType<typeof pgDump> & { machineCpuS: number })[] = []
  const mines = new Map<string, (Awaited<ReturnType<typeof ours>> & { machineCpuS: number })[]>(codecs.map((c) => [c, []]))
  for (let i = 0; i < rounds; i++) {
    raws.push(await withCpu(() => rawCopy(big)))
    dumps.push(await withCpu(() => pgDump(big)))
    for (const c of codecs) mines.get(c)!.push(await withCpu(() => ours(root, big, { BACKUP_COMPRESSION: c })))
    process.stderr.write(
      `round ${i + 1}: raw ${raws[i].seconds.toFixed(1)} s, pg_dump ${dumps[i].seconds.toFixed(1)} s, ${codecs.map((c) => `ours ${c} ${mines.get(c)![i].seconds.toFixed(1)} s`).join(', ')}\n`,
    )
  }
  const med = <T>(xs: T[], key: (x: T) => number): T => [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)]
  const raw = med(raws, (x) => x.seconds)
  const dump = med(dumps, (x) => x.seconds)
  const first = codecs[0]
  const mine = med(mines.get(first)!, (x) => x.seconds)
  const mineSmall = small && (await ours(root, small, { BACKUP_COMPRESSION: first }))
  // The most connections the default gives (one per core, at most 8), each compressing off the main thread.
  const mineWide = small && (await ours(root, small, { BACKUP_COMPRESSION: first, BACKUP_PARALLELISM: '8' }))
  const tableBytes = mine.result.rawBytes
  const byCodec = Object.fromEntries(
    codecs.map((c) => {
      const runs = mines.get(c)!
      const m = med(runs, (x) => x.seconds)
      const cpu = med(runs, (x) => x.machineCpuS).machineCpuS
      return [
        `examforgeOps_${c.replace(/\W/g, '')}_defaultParallelism`,
        {
          compression: c,
          seconds: round(m.seconds),
          mbPerS: mbps(tableBytes, m.seconds),
          storedBytes: m.result.storedBytes,
          storedVsPgDump: round(m.result.storedBytes / dump.bytesOnDisk),
          peakRssMB: m.maxRssMB,
          ratioVsPgDump: round(dump.seconds / m.seconds),
          ratioOfCeiling: round(raw.seconds / m.seconds),
          cpuRatioPgDumpOverOurs: round(med(dumps, (d) => d.machineCpuS).machineCpuS / cpu),
          allSeconds: runs.map((r) => round(r.seconds)),
          machineCpuSeconds: runs.map((r) => r.machineCpuS),
        },
      ]
    }),
  )
  return {
    shape,
    parallelism: defaultParallelism(),
    what: 'full backup of the same database, one after another on one server: MB/s of table data (COPY text bytes) per second of wall time',
    server: `PostgreSQL ${server.v}`,
    databaseBytes: Number(server.size),
    tableDataBytes: tableBytes,
    rows: mine.result.rows,
    codecs,
    rawCopy2Connections: { seconds: round(raw.seconds), mbPerS: mbps(raw.bytes, raw.seconds) },
    pgDumpFd_j2_Z6: {
      version: dump.version,
      seconds: round(dump.seconds),
      mbPerS: mbps(tableBytes, dump.seconds),
      bytesOnDisk: dump.bytesOnDisk,
    },
    ...byCodec,
    rounds,
    allSeconds: {
      rawCopy: raws.map((r) => round(r.seconds)),
      pgDump: dumps.map((d) => round(d.seconds)),
    },
    // Whole-machine busy CPU-seconds per run (the database server included): steadier than wall time on a shared 2-core machine.
    machineCpuSeconds: { pgDump: dumps.map((d) => d.machineCpuS) },
    // The first codec's (the default's unless BENCH_CODECS says otherwise):
    ratioVsPgDump: round(dump.seconds / mine.seconds),
    ratioOfCeiling: round(raw.seconds / mine.seconds),
    ...(mineSmall && mineWide
      ? {
          peakRssAtParallelism8: { compression: first, tableDataBytes: mineWide.result.rawBytes, peakRssMB: mineWide.maxRssMB },
          peakRssBySize: [
            { compression: first, tableDataBytes: mineSmall.result.rawBytes, peakRssMB: mineSmall.maxRssMB },
            { compression: first, tableDataBytes: tableBytes, peakRssMB: mine.maxRssMB },
          ],
        }
      : {
          peakRssBySize: [{ compression: first, tableDataBytes: tableBytes, peakRssMB: mine.maxRssMB }],
          peakRssNote: `shape ${shape.name}: measured at this size only (no quarter-size database, no parallelism-8 run)`,
        }),
  }
}
const round = (n: number) => Math.round(n * 100) / 100

/**
 * Incremental after changing 1% of the rows vs the full it follows: stored size and time.
 * On an embedded PostgreSQL with wal_level=logical (the machine's server is left as it is).
 */
export async function incrementalBench() {
  const scale = Number(process.env.BENCH_INC_SCALE ?? 200)
  // A persistent cluster, seeded once (about 4 minutes at 2 GB) and reused by later runs.
  const dataDir = join(process.env.BENCH_DATA_DIR ?? join(tmpdir(), 'examforge-ops-bench'), `incremental-${scale}`)
  const { chmodSync, mkdirSync } = await import('node:fs')
  mkdirSync(dataDir, { recursive: true })
  chmodSync(dataDir, 0o755)
  const { startSandboxCluster } = await import('../src/core/sandbox/cluster')
  const { silentLogger } = await import('../src/core/log/logger')
  const { createOps } = await import('../src/core/ops')
  const { loadConfig } = await import('../src/core/config/config')
  const cluster = await startSandboxCluster({ dataDir, log: silentLogger })
  const c = new pg.Client({ connectionString: cluster.url })
  c.on('error', () => {})
  let ops: Awaited<ReturnType<typeof createOps>> | null = null
  try {
    await c.connect()
    await seedSandboxOnce(c, scale)
    ops = await createOps({
      config: loadConfig({
        // The full starts the chain the incremental follows.
        env: {
          DATABASE_URL: cluster.url,
          LOCAL_BACKUP_PATH: join(dataDir, 'backups'),
          BACKUP_COMPRESSION: 'gzip:6',
          BACKUP_INCREMENTAL: 'on',
        },
        dataDir,
      }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    const run = async (type: 'full' | 'incremental') => {
      const { jobId } = type === 'full' ? ops!.backups.startFull('bench') : ops!.backups.startIncremental('bench')
      const t0 = performance.now()
      const info = await ops!.jobs.wait(jobId)
      if (info.state !== 'succeeded') throw new Error(`${type} ${info.state}: ${info.error?.message}`)
      return {
        seconds: (performance.now() - t0) / 1000,
        result: info.result as {
          type: string
          storedBytes: number
          rows: number
          changes: unknown
          phasesMs: Record<string, number>
          durationMs: number
        },
      }
    }
    const full = await run('full')
    // Change 1% of the rows of every table (updates of every hundredth row).
    const { rows: total } = await c.query(`SELECT sum(n_live_tup)::bigint AS n FROM pg_stat_user_tables WHERE schemaname = 'public'`)
    let changed = 0
    for (const [table, key] of [
      ['users', 'id'],
      ['teams', 'id'],
      ['team_members', '"userId"'],
      ['subscriptions', 'id'],
      ['quizzes', 'id'],
      ['questions', 'id'],
      ['question_options', 'id'],
      ['quiz_responses', 'id'],
      ['question_responses', 'id'],
      ['"AuditEvent"', 'id'],
    ]) {
      const col =
        table === 'team_members'
          ? 'role'
          : table === '"AuditEvent"'
            ? '"eventType"'
            : table === 'question_options'
              ? 'label'
              : table === 'question_responses'
                ? '"isCorrect"'
                : table === 'questions'
                  ? 'prompt'
                  : table === 'quiz_responses'
                    ? 'score'
                    : table === 'subscriptions'
                      ? '"updatedAt"'
                      : table === 'quizzes'
                        ? 'title'
                        : table === 'teams'
                          ? 'name'
                          : '"displayName"'
      const expr =
        col === '"isCorrect"'
          ? 'NOT COALESCE("isCorrect", false)'
          : col === 'score'
            ? 'COALESCE(score, 0) + 1'
            : col === '"updatedAt"'
              ? 'now()'
              : `${col} || ' (changed)'`
      const r = await c.query(`UPDATE ${table} SET ${col} = ${expr} WHERE ${key} % 100 = 0`)
      changed += r.rowCount ?? 0
    }
    const inc = await run('incremental')
    return {
      what: 'incremental backup after updating 1% of the rows, against the full it follows (embedded PostgreSQL 17, wal_level=logical, gzip:6)',
      scale,
      rowsInDatabase: Number(total[0].n),
      rowsChanged: changed,
      full: { seconds: round(full.seconds), storedBytes: full.result.storedBytes },
      incremental: {
        type: inc.result.type,
        seconds: round(inc.seconds),
        inSetMs: inc.result.durationMs,
        phasesMs: inc.result.phasesMs,
        storedBytes: inc.result.storedBytes,
        changes: inc.result.changes,
      },
      sizeRatio: round(inc.result.storedBytes / full.result.storedBytes),
      timeRatio: round(inc.seconds / full.seconds),
      targets: { sizeRatioAtMost: 0.05, timeRatioAtMost: 0.1 },
    }
  } finally {
    await c.end().catch(() => {})
    const backups = ops?.config.localBackupPath
    await ops?.close()
    await cluster.stop()
    if (backups) rmSync(backups, { recursive: true, force: true }) // the cluster itself is kept for the next run
  }
}
export { ensureIndexedDatabase } from './shapes'
