// Soak: incrementals on a fixed schedule (every BENCH_SOAK_INTERVAL_S, default 60) for BENCH_SOAK_MINUTES (default 30)
// under the sandbox's traffic simulator at BENCH_SOAK_TPS (default 20 transactions/s), on an embedded PostgreSQL with
// wal_level=logical seeded once at BENCH_SOAK_SCALE (default 20). Per incremental: wall time, changes, stored bytes,
// phases and the RPO at its end; over the run: the worst RPO an operator saw, the write rate actually achieved, and
// this process's RSS every second. At the end the chain is restored to its newest point and compared with the source.
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { seedSandboxOnce } from './shapes'
import { startSandboxCluster } from '../src/core/sandbox/cluster'
import { startTrafficSimulator, type TrafficSimulator } from '../src/core/sandbox/traffic'
import { silentLogger, type Logger } from '../src/core/log/logger'
import { createOps } from '../src/core/ops'
import { loadConfig } from '../src/core/config/config'
import { DEFAULT_COMPRESSION } from '../src/core/backup/compression'
import type { BackupResult } from '../src/core/backup/service'

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d
const MB = 1024 * 1024
const median = (xs: number[]) => {
  if (!xs.length) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
/** Least-squares slope of y over x. */
const slope = (pts: { x: number; y: number }[]) => {
  if (pts.length < 2) return NaN
  const mx = pts.reduce((n, p) => n + p.x, 0) / pts.length
  const my = pts.reduce((n, p) => n + p.y, 0) / pts.length
  const sxx = pts.reduce((n, p) => n + (p.x - mx) ** 2, 0)
  return sxx ? pts.reduce((n, p) => n + (p.x - mx) * (p.y - my), 0) / sxx : NaN
}
const until = (at: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, at - Date.now())))

/** Rows and an order-independent hash of their text form, per table of the public schema. */
async function digest(c: pg.Client): Promise<Record<string, string>> {
  const { rows: tables } = await c.query<{ t: string }>(
    `SELECT format('%I.%I', schemaname, relname) AS t FROM pg_stat_user_tables WHERE schemaname = 'public' ORDER BY 1`,
  )
  const out: Record<string, string> = {}
  for (const { t } of tables) {
    const { rows } = await c.query(`SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(x::text, 7)), 0)::text AS d FROM ${t} x`)
    out[t] = rows[0].d
  }
  return out
}

/** Write counters of the database: commits (every transaction, reads included) and rows changed in the public schema. */
async function writeCounters(c: pg.Client) {
  await c.query('SELECT pg_stat_clear_snapshot()')
  const { rows } = await c.query(
    `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::bigint AS commits,
            (SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE schemaname = 'public')::bigint AS ins,
            (SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_user_tables WHERE schemaname = 'public')::bigint AS upd,
            (SELECT coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables WHERE schemaname = 'public')::bigint AS del,
            pg_database_size(current_database())::bigint AS size`,
  )
  const r = rows[0]
  return {
    at: Date.now(),
    commits: Number(r.commits),
    inserts: Number(r.ins),
    updates: Number(r.upd),
    deletes: Number(r.del),
    size: Number(r.size),
  }
}

interface IncrementalRun {
  k: number
  /** Seconds after t0 it was due (t0 + k·interval) and how late it started (the previous one still running). */
  dueAtS: number
  startedLateMs: number
  type: string
  seconds: number
  inSetMs: number
  shareOfInterval: number
  transactions: number
  rowsChanged: number
  inserts: number
  updates: number
  deletes: number
  storedBytes: number
  snapshotTime: string
  lastCommitTime: string | null
  /** At its end: now − its snapshot time (the newest moment a point-in-time restore reaches). */
  rpoAtEndS: number
  /** At its end: now − the newest commit it holds (the newest transaction actually saved). */
  newestCommitAgeAtEndS: number | null
  /** Just before it finished: now − the previous set's snapshot time (what the operator could restore to until then). */
  rpoJustBeforeS: number
  phasesMs: Record<string, number>
  note: string | null
}

export async function soakBench() {
  const scale = Number(process.env.BENCH_SOAK_SCALE ?? 20)
  const minutes = Number(process.env.BENCH_SOAK_MINUTES ?? 30)
  const intervalS = Number(process.env.BENCH_SOAK_INTERVAL_S ?? 60)
  const tps = Number(process.env.BENCH_SOAK_TPS ?? 20)
  const compression = process.env.BENCH_SOAK_COMPRESSION ?? DEFAULT_COMPRESSION
  // The simulator runs one tick at a time (a tick is skipped while the previous one runs): several of them, each at
  // a slower interval, reach the rate without one slow tick (during a backup) costing the others theirs.
  const simulators = Number(process.env.BENCH_SOAK_SIMULATORS ?? Math.max(1, Math.ceil(tps / 5)))
  const tickMs = Math.round((1000 * simulators) / tps)
  const count = Math.floor((minutes * 60) / intervalS)
  if (!(count >= 1) || !(tps > 0))
    throw new Error('BENCH_SOAK_MINUTES, BENCH_SOAK_INTERVAL_S and BENCH_SOAK_TPS must give at least one incremental')

  // The cluster is kept and reused (seeded once); the backups and the console's own data are this run's only.
  const dataDir = join(process.env.BENCH_DATA_DIR ?? join(tmpdir(), 'examforge-ops-bench'), `soak-${scale}`)
  mkdirSync(dataDir, { recursive: true })
  chmodSync(dataDir, 0o755)
  const runDir = mkdtempSync(join(tmpdir(), 'bench-soak-'))

  // This process's RSS every second (it runs the backups, the simulators and their pool; PostgreSQL is another process).
  const t00 = Date.now()
  const rss: { t: number; mb: number }[] = []
  let newestRestorable: number | null = null
  const rpoSamples: { t: number; s: number }[] = []
  const sample = () => {
    const now = Date.now()
    rss.push({ t: now, mb: process.memoryUsage().rss / MB })
    if (newestRestorable !== null) rpoSamples.push({ t: now, s: (now - newestRestorable) / 1000 })
  }
  sample()
  const sampler = setInterval(sample, 1000)
  sampler.unref()

  const cluster = await startSandboxCluster({ dataDir, log: silentLogger })
  const c = new pg.Client({ connectionString: cluster.url })
  c.on('error', () => {})
  const pool = new pg.Pool({ connectionString: cluster.url, max: simulators + 1 })
  pool.on('error', () => {})
  const sims: TrafficSimulator[] = []
  let simWarnings = 0
  let lastSimWarning: string | null = null
  const simLog: Logger = {
    ...silentLogger,
    warn: (m, f) => {
      simWarnings++
      lastSimWarning = `${m} ${JSON.stringify(f ?? {})}`
    },
    child: () => simLog,
  }
  const ticks = () => sims.reduce((n, s) => n + s.ticks, 0)
  let ops: Awaited<ReturnType<typeof createOps>> | null = null
  const restored: string[] = []
  try {
    await c.connect()
    await seedSandboxOnce(c, scale)
    // Slots of an earlier run whose backups are gone would hold WAL for ever in this kept cluster.
    await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active`)
    const { rows: server } = await c.query(
      `SELECT current_setting('server_version') AS v, (SELECT sum(n_live_tup) FROM pg_stat_user_tables WHERE schemaname = 'public')::bigint AS rows`,
    )

    ops = await createOps({
      config: loadConfig({
        env: {
          DATABASE_URL: cluster.url,
          LOCAL_BACKUP_PATH: join(runDir, 'backups'),
          BACKUP_COMPRESSION: compression,
          BACKUP_INCREMENTAL: 'on',
        },
        dataDir: join(runDir, 'ops'),
      }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    const backup = async (type: 'full' | 'incremental') => {
      const { jobId } = type === 'full' ? ops!.backups.startFull('bench') : ops!.backups.startIncremental('bench')
      const t = performance.now()
      const info = await ops!.jobs.wait(jobId)
      if (info.state !== 'succeeded') throw new Error(`${type} ${info.state}: ${info.error?.message}`)
      return { seconds: (performance.now() - t) / 1000, finishedAt: Date.now(), result: info.result as BackupResult }
    }

    // The traffic runs throughout: before the full, during every incremental, until the last one has finished.
    for (let i = 0; i < simulators; i++) sims.push(startTrafficSimulator(pool, simLog, { intervalMs: tickMs }))
    process.stderr.write(
      `soak: PostgreSQL ${server[0].v}, scale ${scale} (${server[0].rows} rows), ${simulators} simulator(s) every ${tickMs} ms (${tps} tx/s wanted), ` +
        `a full then ${count} incrementals every ${intervalS} s\n`,
    )
    const tFull = Date.now()
    const full = await backup('full')
    newestRestorable = new Date(full.result.snapshotTime).getTime()
    process.stderr.write(`full: ${round(full.seconds)} s, ${full.result.storedBytes} bytes stored\n`)

    // t0: the schedule's origin (incremental k is due at t0 + k·interval, whenever the previous one finished).
    sample() // the full's end, in its part of the RSS series
    const t0 = Date.now()
    const rssAtT0 = process.memoryUsage().rss / MB
    const ticks0 = ticks()
    const before = await writeCounters(c)
    const runs: IncrementalRun[] = []
    let prevSnapshot = newestRestorable
    for (let k = 1; k <= count; k++) {
      const due = t0 + k * intervalS * 1000
      await until(due)
      const startedLateMs = Math.max(0, Date.now() - due)
      const inc = await backup('incremental')
      const r = inc.result
      const snap = new Date(r.snapshotTime).getTime()
      const ch = r.changes
      const run: IncrementalRun = {
        k,
        dueAtS: k * intervalS,
        startedLateMs,
        type: r.type,
        seconds: round(inc.seconds, 3),
        inSetMs: r.durationMs,
        shareOfInterval: round(inc.seconds / intervalS, 4),
        transactions: ch?.transactions ?? 0,
        rowsChanged: ch ? ch.inserts + ch.updates + ch.deletes + ch.truncates : 0,
        inserts: ch?.inserts ?? 0,
        updates: ch?.updates ?? 0,
        deletes: ch?.deletes ?? 0,
        storedBytes: r.storedBytes,
        snapshotTime: r.snapshotTime,
        lastCommitTime: ch?.lastCommitTime ?? null,
        rpoAtEndS: round((inc.finishedAt - snap) / 1000, 3),
        newestCommitAgeAtEndS: ch?.lastCommitTime ? round((inc.finishedAt - new Date(ch.lastCommitTime).getTime()) / 1000, 3) : null,
        rpoJustBeforeS: round((inc.finishedAt - prevSnapshot) / 1000, 3),
        phasesMs: r.phasesMs,
        note: r.note,
      }
      newestRestorable = snap
      prevSnapshot = snap
      runs.push(run)
      process.stderr.write(
        `incremental ${k}/${count}: ${run.seconds} s (${round(run.shareOfInterval * 100, 1)} % of the interval), ${run.transactions} tx, ` +
          `${run.rowsChanged} rows, ${run.storedBytes} bytes, RPO at end ${run.rpoAtEndS} s, RSS ${Math.round(process.memoryUsage().rss / MB)} MB` +
          `${run.type !== 'incremental' ? ` — became a ${run.type}: ${run.note}` : ''}\n`,
      )
    }
    const tEnd = Date.now()
    const ticksEnd = ticks()
    const after = await writeCounters(c)
    const soakS = (tEnd - t0) / 1000
    const soakRss = rss.filter((s) => s.t >= t0 && s.t <= tEnd)
    const soakRpo = rpoSamples.filter((s) => s.t >= t0 && s.t <= tEnd)
    const rssSlopeMBPerMin = slope(soakRss.filter((s) => s.t >= t0 + 60_000).map((s) => ({ x: (s.t - t0) / 60_000, y: s.mb })))

    // Quiesce and close the chain: the source then stands still at the newest point, so a restore to it can be compared exactly.
    await Promise.all(sims.map((s) => s.stop()))
    const closing = await backup('incremental')
    const source = await digest(c)
    const points = await ops.restores.points()
    const offeredNewest = points.chains[0]?.to ?? null
    const restore = async (db: string, at: string) => {
      const { jobId } = await ops!.restores.start({ point: { time: at }, target: { kind: 'new', database: db } }, db, { actor: 'bench' })
      restored.push(db)
      const t = performance.now()
      const info = await ops!.jobs.wait(jobId)
      const seconds = (performance.now() - t) / 1000
      if (info.state !== 'succeeded') throw new Error(`restore to ${at} ${info.state}: ${info.error?.message}`)
      const r = info.result as { phasesMs: Record<string, number>; transactions: number; report: { ok: boolean } }
      const u = new URL(cluster.url)
      u.pathname = `/${db}`
      const rc = new pg.Client({ connectionString: u.toString() })
      await rc.connect()
      const d = await digest(rc)
      await rc.end()
      return { seconds: round(seconds), transactionsReplayed: r.transactions, checkOk: r.report.ok, phasesMs: r.phasesMs, digest: d }
    }
    // The newest point the soak itself reached (taken under load): the check must pass.
    const lastSoak = runs[runs.length - 1]
    const underLoad = await restore('soak_restore_last', lastSoak.snapshotTime)
    // The newest point of all (after the closing incremental): the check passes and every table equals the source.
    const newest = await restore('soak_restore_newest', offeredNewest ?? closing.result.snapshotTime)
    const exact = JSON.stringify(newest.digest) === JSON.stringify(source)
    process.stderr.write(
      `restore to the soak's last point: ${underLoad.seconds} s, check ${underLoad.checkOk}; to the newest point: ${newest.seconds} s, check ${newest.checkOk}, equal to the source: ${exact}\n`,
    )
    sample()
    clearInterval(sampler)
    const usage = process.resourceUsage()

    const durations = runs.map((r) => r.seconds)
    const maxDuration = Math.max(...durations)
    const slowest = runs.find((r) => r.seconds === maxDuration)!
    const writeTx = runs.reduce((n, r) => n + r.transactions, 0)
    const rowsInSets = runs.reduce((n, r) => n + r.rowsChanged, 0)
    const coveredS = (new Date(lastSoak.snapshotTime).getTime() - new Date(full.result.snapshotTime).getTime()) / 1000
    const rowsChanged = after.inserts - before.inserts + (after.updates - before.updates) + (after.deletes - before.deletes)
    const wholeMax = Math.max(...rss.map((s) => s.mb))
    const peak = (from: number, to: number) => round(Math.max(...rss.filter((s) => s.t >= from && s.t <= to).map((s) => s.mb)), 1)
    return {
      what:
        'incrementals on a fixed schedule (t0 + k·interval) under the sandbox traffic simulator; embedded PostgreSQL with wal_level=logical, ' +
        'local storage, one process running the backups, the simulators and their pool (PostgreSQL is a separate process, not counted in RSS). ' +
        'Shared 2-core machine: indicative',
      server: `PostgreSQL ${server[0].v}`,
      scale,
      rowsInDatabase: Number(server[0].rows),
      compression,
      intervalS,
      minutes,
      incrementals: count,
      traffic: {
        wantedTransactionsPerS: tps,
        simulators,
        tickMs,
        // Over the soak (t0 to the last incremental's end):
        simulatorTransactionsPerS: round((ticksEnd - ticks0) / soakS),
        /** Transactions the change stream held (write transactions of the followed tables) per second of the chain's span. */
        changeStreamTransactionsPerS: round(writeTx / coveredS),
        changeStreamRowsPerS: round(rowsInSets / coveredS),
        /** pg_stat_user_tables (public): inserted + updated + deleted rows. */
        rowsChangedPerS: round(rowsChanged / soakS),
        rowsChanged: {
          inserts: after.inserts - before.inserts,
          updates: after.updates - before.updates,
          deletes: after.deletes - before.deletes,
        },
        /** pg_stat_database.xact_commit: every committed transaction, the backups' and the bench's reads included. */
        allCommitsPerS: round((after.commits - before.commits) / soakS),
        simulatorWarnings: simWarnings,
        lastSimulatorWarning: lastSimWarning,
        databaseBytes: { atStart: before.size, atEnd: after.size },
      },
      full: { seconds: round(full.seconds), storedBytes: full.result.storedBytes, rows: full.result.rows, phasesMs: full.result.phasesMs },
      durationS: {
        median: round(median(durations), 3),
        max: round(maxDuration, 3),
        min: round(Math.min(...durations), 3),
        slowest: { k: slowest.k, phasesMs: slowest.phasesMs },
      },
      maxDurationShareOfInterval: round(maxDuration / intervalS, 4),
      medianPhasesMs: Object.fromEntries(
        [...new Set(runs.flatMap((r) => Object.keys(r.phasesMs)))].map((p) => [p, median(runs.map((r) => r.phasesMs[p] ?? 0))]),
      ),
      lateStarts: runs.filter((r) => r.startedLateMs > 1000).length,
      storedBytesPerIncremental: { median: median(runs.map((r) => r.storedBytes)), max: Math.max(...runs.map((r) => r.storedBytes)) },
      rpo: {
        restorableMoment:
          "each set's snapshot time (manifest snapshot.time: the server's now() when the set took its target LSN; the set holds every change committed before that LSN). It is the chain's `to`, the newest moment the restore planner offers and a point-in-time restore reaches",
        atEndOfEachS: { median: round(median(runs.map((r) => r.rpoAtEndS)), 3), max: round(Math.max(...runs.map((r) => r.rpoAtEndS)), 3) },
        newestCommitAgeAtEndS: {
          median: round(median(runs.flatMap((r) => (r.newestCommitAgeAtEndS === null ? [] : [r.newestCommitAgeAtEndS]))), 3),
          max: round(Math.max(...runs.flatMap((r) => (r.newestCommitAgeAtEndS === null ? [] : [r.newestCommitAgeAtEndS]))), 3),
        },
        /** The operator's RPO: the worst gap between now and the newest restorable moment over the soak (just before an incremental finishes: ~interval + its duration). */
        worstS: round(Math.max(...runs.map((r) => r.rpoJustBeforeS)), 3),
        worstSampledEverySecondS: round(Math.max(...soakRpo.map((s) => s.s)), 3),
        medianJustBeforeEachS: round(median(runs.map((r) => r.rpoJustBeforeS)), 3),
      },
      rssMB: {
        process: 'this Node process: backups (core), traffic simulators and their pg pool; not the embedded PostgreSQL server',
        soak: {
          start: round(rssAtT0, 1),
          max: round(Math.max(...soakRss.map((s) => s.mb)), 1),
          end: round(soakRss.at(-1)?.mb ?? NaN, 1),
          slopePerMinuteAfterFirstMinute: round(rssSlopeMBPerMin, 3),
          samples: soakRss.length,
        },
        /** From the start, the full, the soak and both restores (restores run in this process too). */
        wholeRunMax: round(wholeMax, 1),
        peakByPart: {
          beforeTheFull: peak(t00, tFull),
          full: peak(tFull, t0),
          soak: peak(t0, tEnd),
          closingIncrementalAndRestores: peak(tEnd, Date.now()),
        },
        maxRssFromResourceUsage: round(usage.maxRSS / 1024, 1),
      },
      restorable: {
        newestOfferedByPlanner: offeredNewest,
        closingIncremental: {
          note: 'taken after the traffic stopped, so the source equals the newest point',
          snapshotTime: closing.result.snapshotTime,
          seconds: round(closing.seconds, 3),
        },
        plannerOffersClosingSet: offeredNewest === closing.result.snapshotTime,
        toSoaksLastPoint: {
          at: lastSoak.snapshotTime,
          seconds: underLoad.seconds,
          transactionsReplayed: underLoad.transactionsReplayed,
          checkOk: underLoad.checkOk,
          phasesMs: underLoad.phasesMs,
        },
        toNewestPoint: {
          at: offeredNewest,
          seconds: newest.seconds,
          transactionsReplayed: newest.transactionsReplayed,
          checkOk: newest.checkOk,
          equalToSource: exact,
          phasesMs: newest.phasesMs,
        },
      },
      incrementalsList: runs,
      targets: { maxDurationShareOfIntervalAtMost: 0.1, peakRssMBAtMost: 300 },
      met: {
        duration: maxDuration / intervalS <= 0.1,
        rss: Math.max(...soakRss.map((s) => s.mb)) <= 300,
        restorable: underLoad.checkOk && newest.checkOk && exact,
      },
      wallS: round((Date.now() - t00) / 1000, 1),
    }
  } finally {
    clearInterval(sampler)
    await Promise.all(sims.map((s) => s.stop()))
    await pool.end().catch(() => {})
    for (const db of restored) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {})
    await ops?.close()
    // The chain's slot goes with its backups (the cluster itself is kept for the next run).
    await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active`).catch(() => {})
    await c.end().catch(() => {})
    await cluster.stop()
    rmSync(runDir, { recursive: true, force: true })
  }
}
