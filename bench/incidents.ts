// Incidents: the timeline of a 24-hour window holding 10,000 entries across every source (alert transitions,
// health changes, new / regressed error groups and spikes, backups, restores with their checks, settings
// changes and other audit records, the incident's own notes and status changes), over a store holding six
// more days of the same outside the window; then the PDF export of that report through renderReport.
// Targets: timeline ≤ 500 ms (median of BENCH_INCIDENTS_RUNS, default 7), PDF ≤ 5 s.
// Database: BENCH_PG_URL (the machine's PostgreSQL). Chromium: CHROMIUM_PATH (default /usr/bin/chromium).
import { mkdtempSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { dbUrl } from './shapes'
import { loadConfig } from '../src/core/config/config'
import { migrate } from '../src/core/db/migrations'
import { AuditLog } from '../src/core/audit/audit'
import { OpsEvents } from '../src/core/events'
import { createLogger } from '../src/core/log/logger'
import { IncidentService } from '../src/core/incidents/service'
import { buildTimeline } from '../src/core/incidents/timeline'
import { renderReport } from '../src/core/incidents/report'
import type { TimelineEntryType } from '../src/shared/incidents'

const base = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const DB = 'examforge_bench_incidents'
const num = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d)
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
const DAY = 86_400_000

async function freshDb(): Promise<pg.Pool> {
  const c = new pg.Client({ connectionString: base })
  await c.connect()
  await c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`)
  await c.query(`CREATE DATABASE ${DB}`)
  await c.end()
  const pool = new pg.Pool({ connectionString: dbUrl(DB), max: 10 })
  // An idle connection ended from outside (the machine's PostgreSQL is shared) is dropped, not a crash.
  pool.on('error', () => {})
  await migrate(pool)
  return pool
}

/**
 * Seven days of records, the last 24 hours being the incident's window. Per day: 3,000 alert transitions,
 * 1,600 health changes, 1,500 audit records (a fifth of them settings changes), 1,000 new error groups
 * (300 of them regressing, 200 spiking), 400 backups, 200 restores (half restore tests) with their checks;
 * the incident itself adds 1,840 notes and 3 status changes. All in one statement per table and day.
 */
async function seed(pool: pg.Pool, end: number, incidentId: string): Promise<void> {
  for (let d = 6; d >= 0; d--) {
    const from = end - (d + 1) * DAY
    const at = (n: number) => `to_timestamp((${from} + (g::float8 / ${n}) * ${DAY - 1000}) / 1000.0)`
    await Promise.all([
      pool.query(
        `INSERT INTO ops.alert_transitions (rule, fingerprint, labels, from_phase, to_phase, value, text, at)
         SELECT 'rule_' || (g % 40), md5(g::text), jsonb_build_object('host', 'h' || (g % 5), 'service', 's' || (g % 7)),
                CASE g % 3 WHEN 0 THEN 'inactive' WHEN 1 THEN 'pending' ELSE 'firing' END,
                CASE g % 3 WHEN 0 THEN 'pending' WHEN 1 THEN 'firing' ELSE 'resolved' END, g % 100, 'value ' || g, ${at(3000)}
           FROM generate_series(0, 2999) g`,
      ),
      pool.query(
        `INSERT INTO ops.health_changes (service, from_status, to_status, reason, at)
         SELECT (ARRAY['postgres','redis','app','s3','stripe'])[1 + g % 5], CASE WHEN g % 2 = 0 THEN 'healthy' ELSE 'unhealthy' END,
                CASE WHEN g % 2 = 0 THEN 'unhealthy' ELSE 'healthy' END, 'reason ' || g, ${at(1600)}
           FROM generate_series(0, 1599) g`,
      ),
      pool.query(
        `INSERT INTO ops.audit_log (at, actor, action, target, outcome, details)
         SELECT ${at(1500)}, 'alice (cli)', CASE WHEN g % 5 = 0 THEN 'settings.update' ELSE 'alerts.ack' END,
                CASE WHEN g % 5 = 0 THEN 'HEALTH_INTERVAL_S' ELSE 'rule_' || g END, 'saved', jsonb_build_object('n', g)
           FROM generate_series(0, 1499) g`,
      ),
      pool.query(
        `INSERT INTO ops.error_groups (id, project, hash, method, explanation, title, culprit, type, level, first_seen, last_seen, count, users, regressed_at)
         SELECT 'g${d}_' || g, '1', 'h${d}_' || g, 'message', 'x', 'TypeError: boom ' || g, 'quiz.ts', 'TypeError', 'error', ${at(1000)}, ${at(1000)}, 5, 1,
                CASE WHEN g % 10 < 3 THEN ${at(1000)} + interval '1 minute' END
           FROM generate_series(0, 999) g`,
      ),
      pool.query(
        `INSERT INTO ops.jobs (id, kind, state, input, result, error, started_at, finished_at)
         SELECT 'job${d}_' || g, CASE WHEN g % 4 = 0 THEN 'backup.full' ELSE 'backup.incremental' END,
                CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'succeeded' END, '{}',
                jsonb_build_object('setId', 'set${d}_' || g, 'tables', 12, 'rows', 1000 * g, 'durationMs', 2000),
                CASE WHEN g % 20 = 0 THEN '{"message":"disk full"}'::jsonb END, ${at(400)} - interval '1 minute', ${at(400)}
           FROM generate_series(0, 399) g`,
      ),
      pool.query(
        `INSERT INTO ops.restores (id, kind, actor, started_at, finished_at, outcome, point, target, tables, duration_ms, report)
         SELECT 'r${d}_' || g, CASE WHEN g % 2 = 0 THEN 'restore-test' ELSE 'restore' END, 'alice (cli)', ${at(200)} - interval '1 minute', ${at(200)},
                'succeeded', 'set set${d}_' || g, 'examforge@db', ARRAY['public.quizzes'], 60000,
                jsonb_build_object('ok', true, 'checkedAt', '2026-01-01T00:00:00Z',
                  'tables', jsonb_build_array(jsonb_build_object('table', 'public.quizzes', 'rowsExpected', 10, 'rowsFound', 10, 'ok', true)),
                  'foreignKeys', '[]'::jsonb, 'sequences', '[]'::jsonb)
           FROM generate_series(0, 199) g`,
      ),
    ])
    // 200 groups a day spike: 20 events in one hour after a quiet day (the 24 h before average under 1 an hour).
    await pool.query(
      `INSERT INTO ops.error_counts (group_id, hour, count)
       SELECT 'g${d}_' || g, date_trunc('hour', ${at(200)}), 20 FROM generate_series(0, 199) g ON CONFLICT DO NOTHING`,
    )
  }
  const opened = end - DAY
  await pool.query(
    `INSERT INTO ops.incidents (id, title, severity, status, origin, opened_at, opened_by, resolved_at, last_activity_at)
     VALUES ($1, 'Redis down during the exam', 'critical', 'resolved', 'manual', $2, 'alice (cli)', $3, $3)`,
    [incidentId, new Date(opened + 30 * 60_000), new Date(end - 10 * 60_000)],
  )
  await pool.query(
    `INSERT INTO ops.incident_status_changes (incident_id, at, from_status, to_status, by) VALUES
       ($1, $2, NULL, 'investigating', 'alice'), ($1, $2::timestamptz + interval '1 hour', 'investigating', 'identified', 'alice'),
       ($1, $2::timestamptz + interval '2 hours', 'identified', 'monitoring', 'alice'), ($1, $3, 'monitoring', 'resolved', 'alice')`,
    [incidentId, new Date(opened + 30 * 60_000), new Date(end - 10 * 60_000)],
  )
  await pool.query(
    `INSERT INTO ops.incident_notes (incident_id, at, by, text)
     SELECT $1, to_timestamp(($2::bigint + g * 40000) / 1000.0), 'alice (cli)', '**Note ' || g || '**: checked the Redis logs' FROM generate_series(0, 1839) g`,
    [incidentId, opened + 31 * 60_000],
  )
  await pool.query('ANALYZE')
}

export async function incidentsBench() {
  const pool = await freshDb()
  const runs = num('BENCH_INCIDENTS_RUNS', 7)
  const end = Date.now()
  const incidentId = 'inc-bench0001'
  try {
    const s0 = performance.now()
    await seed(pool, end, incidentId)
    const seedMs = performance.now() - s0
    const config = loadConfig({ env: {}, dataDir: mkdtempSync(join(tmpdir(), 'ops-bench-incidents-')) })
    const log = createLogger({ level: 'error' })
    const incidents = new IncidentService({
      pool: () => pool,
      config,
      audit: new AuditLog({ store: () => pool, log }),
      events: new OpsEvents(),
      log,
      metrics: { latest: () => [], history: async (series, from, to) => ({ series, host: 'bench', tier: '1m', from, to, points: [] }) },
      rules: () => [],
    })
    const inc = await incidents.get(incidentId)
    const window = incidents.windowOf(inc)
    const times: number[] = []
    let entries = 0
    const byType: Partial<Record<TimelineEntryType, number>> = {}
    for (let r = 0; r < runs; r++) {
      const s = performance.now()
      const t = await buildTimeline(pool, { from: window.from, to: window.to, incidentId })
      times.push(performance.now() - s)
      entries = t.entries.length
      if (r === 0) for (const e of t.entries) byType[e.type] = (byType[e.type] ?? 0) + 1
      if (t.problems.length) throw new Error(`timeline problems: ${t.problems.join('; ')}`)
    }
    const timeline = {
      windowHours: round((window.to - window.from) / 3_600_000, 2),
      entries,
      byType,
      runs,
      medianMs: round(median(times)),
      maxMs: round(Math.max(...times)),
      targetMs: 500,
      seededDays: 7,
      seedMs: Math.round(seedMs),
      measured:
        'buildTimeline in core: every source queried in parallel, merged, scrubbed (what incidents.get does before series and review)',
    }

    // The PDF export of that report as the CLI and the host make it: renderReport with no face printer, so the
    // report prints with Playwright and the system Chromium (CHROMIUM_PATH), launch included, median of 3.
    const report = await incidents.report(incidentId, 'bench')
    let pdf: Record<string, unknown>
    const pdfTimes: number[] = []
    let bytes = 0
    try {
      for (let r = 0; r < 3; r++) {
        const s = performance.now()
        const out = await renderReport(report, 'pdf', { paper: 'A4' })
        pdfTimes.push(performance.now() - s)
        bytes = typeof out.data === 'string' ? Buffer.byteLength(out.data) : out.data.length
      }
      pdf = {
        available: true,
        entries: report.timeline.length,
        rounds: pdfTimes.map(Math.round),
        medianMs: Math.round(median(pdfTimes)),
        bytes,
        targetMs: 5000,
      }
    } catch (e) {
      const msg = (e as Error).message
      pdf = /being built/.test(msg)
        ? { available: false, reason: 'renderer not available: the report renderers (branch incidents-report) are not merged yet' }
        : { available: false, reason: `the PDF export failed: ${msg}` }
    }
    return { timeline, pdf, machine: { cores: cpus().length, loadAverage1mAtEnd: Number(loadavg()[0].toFixed(2)) } }
  } finally {
    await pool.end()
    // BENCH_INCIDENTS_KEEP=1 keeps the seeded database (to look at the queries' plans).
    if (!process.env.BENCH_INCIDENTS_KEEP) {
      const c = new pg.Client({ connectionString: base })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`)
      await c.end()
    }
  }
}
