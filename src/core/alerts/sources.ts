/**
 * The rule kinds the alerts capability brings, each a RuleSource (source.ts): a threshold on any metric
 * series, availability of a health check, backup facts, a forecast (predict_linear over recent history)
 * and an anomaly (robust z-score over a window). They read the metrics, health and backup services
 * through the small `SourceDeps` interface, so tests hand them constructed histories. Error sources come
 * from core/errors through engine.registerSource.
 */
import { z } from 'zod'
import type { HealthSnapshot, HealthStatus } from '../../shared/domain'
import type { LatestValue, MetricPoint } from '../../shared/metrics'
import { parseDuration } from './duration'
import { predictLinear, robustZ } from './fit'
import type { Reading, RuleSource } from './source'

export interface BackupFacts {
  /** When the newest successful full (or any successful) backup was taken, ms; null when there is none. */
  lastFullAt: number | null
  lastIncrementalAt: number | null
  /** A backup job failed since the last successful one. */
  lastJobFailed: boolean
  /** WAL held by the chain's slot, bytes; null without a slot. */
  slotBytes: number | null
  lastRestoreTestAt: number | null
  lastRestoreTestFailed: boolean
}

export interface SourceDeps {
  latest(): LatestValue[]
  history(seriesId: string, from: number, to: number): Promise<MetricPoint[]>
  health(): HealthSnapshot
  backupFacts(): Promise<BackupFacts>
  /**
   * For backtests: a health check's stored statuses in [from, to] in time order (its stored results, and
   * before the oldest kept result its stored changes, sampled at the check interval). Absent: availability
   * rules cannot be backtested.
   */
  healthHistory?(service: string, from: number, to: number): Promise<{ t: number; status: HealthStatus; reason: string }[]>
}

/** The points of a time-ordered history with a ≤ t ≤ b (binary search; the history is not copied beyond the slice). */
export function between(points: MetricPoint[], a: number, b: number): MetricPoint[] {
  const first = (x: number) => {
    let lo = 0
    let hi = points.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (points[mid].t < x) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const lo = first(a)
  let hi = first(b)
  while (hi < points.length && points[hi].t === b) hi++
  return points.slice(lo, hi)
}

const WEEK = 7 * 86_400_000

/** Anomaly baselines: the window before now, or the same hour (±window/2) of each of the last `weeks` weeks. */
export function anomalyBaseline(
  p: { baseline: 'window' | 'weekly'; window: string; weeks: number },
  now: number,
): { from: number; to: number }[] {
  const window = parseDuration(p.window)!
  if (p.baseline === 'window') return [{ from: now - window, to: now }]
  return Array.from({ length: p.weeks }, (_, i) => ({ from: now - (i + 1) * WEEK - window / 2, to: now - (i + 1) * WEEK + window / 2 }))
}

const durationText = (what: string) =>
  z.string().refine((s) => parseDuration(s) !== null, `${what} must be a duration such as "6h" or "30m"`)

/** The series a rule names: an exact id ("host.disk_used_percent{mount=/}") or a name (every label set of it). */
function matching(latest: LatestValue[], series: string, host?: string): LatestValue[] {
  return latest.filter((s) => (s.id === series || s.name === series) && (!host || s.host === host))
}

const labelsOf = (s: LatestValue) => ({ host: s.host, ...s.labels })

/** How long a window's history is reused: a fit over hours need not re-read the store at every collection. */
const HISTORY_REUSE_MS = 60_000

export function metricSources(deps: SourceDeps): RuleSource<Record<string, unknown>>[] {
  const cache = new Map<string, { at: number; points: Promise<MetricPoint[]> }>()
  const windowOf = (id: string, window: number, now: number): Promise<MetricPoint[]> => {
    const key = `${id}|${window}`
    const hit = cache.get(key)
    if (hit && now - hit.at < HISTORY_REUSE_MS && now >= hit.at) return hit.points
    const points = deps.history(id, now - window, now)
    points.catch(() => cache.delete(key))
    cache.set(key, { at: now, points })
    return points
  }
  const threshold: RuleSource<{ series: string; host?: string }> = {
    kind: 'threshold',
    describe: 'The newest value of a metric series, per host and label set',
    params: z.object({ series: z.string().min(1), host: z.string().optional() }),
    condition: false,
    async evaluate(p) {
      const found = matching(deps.latest(), p.series, p.host)
      if (!found.length) return [{ labels: { host: p.host ?? '' }, value: null, text: `no series ${p.series}` }]
      return found.map((s) => ({ labels: labelsOf(s), value: s.v, text: s.v === null ? (s.note ?? 'no data') : `${round(s.v)} ${s.unit}` }))
    },
  }

  const availability: RuleSource<{ service: string; status: 'unhealthy' | 'degraded' }> = {
    kind: 'availability',
    describe: 'A health check unhealthy (or, with status "degraded", degraded or worse); reads 1 while it is',
    params: z.object({ service: z.string().min(1), status: z.enum(['unhealthy', 'degraded']).default('unhealthy') }),
    condition: true,
    async evaluate(p) {
      const r = deps.health().results.find((x) => x.service === p.service)
      // Never checked yet (the placeholder result before the first probe) is no data, not "unhealthy".
      if (r && Date.parse(r.checkedAt) === 0) return [{ labels: { service: p.service }, value: null, text: 'not checked yet' }]
      return [availabilityReading(p, r ?? null)]
    },
    async history(p, from, to) {
      if (!deps.healthHistory) return []
      const rows = await deps.healthHistory(p.service, from, to)
      return [{ labels: { service: p.service }, steps: rows.map((r) => ({ t: r.t, reading: availabilityReading(p, r) })) }]
    },
  }

  const facts = [
    'hours_since_full',
    'hours_since_incremental',
    'job_failed',
    'slot_wal_mb',
    'days_since_restore_test',
    'restore_test_failed',
  ] as const
  const backup: RuleSource<{ fact: (typeof facts)[number] }> = {
    kind: 'backup',
    describe:
      "A backup fact: hours since the last successful full or incremental, a failed backup job, the slot's WAL in MB, days since the last restore test, a failed restore test",
    params: z.object({ fact: z.enum(facts) }),
    condition: false,
    noHistory:
      'Backup facts are read from the current backup catalogue and job list; their past values (hours since a backup, slot WAL) are not stored, so a backup rule cannot be backtested.',
    async evaluate(p, now) {
      const f = await deps.backupFacts()
      const hours = (t: number | null) => (t === null ? null : (now - t) / 3_600_000)
      const value = (): number | null => {
        switch (p.fact) {
          case 'hours_since_full':
            return hours(f.lastFullAt)
          case 'hours_since_incremental':
            return hours(f.lastIncrementalAt)
          case 'job_failed':
            return f.lastJobFailed ? 1 : 0
          case 'slot_wal_mb':
            return f.slotBytes === null ? null : f.slotBytes / 1024 / 1024
          case 'days_since_restore_test':
            return f.lastRestoreTestAt === null ? null : (now - f.lastRestoreTestAt) / 86_400_000
          case 'restore_test_failed':
            return f.lastRestoreTestFailed ? 1 : 0
        }
      }
      const v = value()
      return [{ labels: { fact: p.fact }, value: v, text: v === null ? 'no data' : `${round(v)}` }]
    },
  }

  const forecast: RuleSource<{ series: string; host?: string; within: string; window: string }> = {
    kind: 'forecast',
    describe: 'Where a series will be `within` from now, from a straight line fitted over `window` of history (predict_linear)',
    params: z.object({
      series: z.string().min(1),
      host: z.string().optional(),
      within: durationText('within'),
      window: durationText('window'),
    }),
    condition: false,
    async evaluate(p, now) {
      const found = matching(deps.latest(), p.series, p.host)
      if (!found.length) return [{ labels: { host: p.host ?? '' }, value: null, text: `no series ${p.series}` }]
      const window = parseDuration(p.window)!
      const within = parseDuration(p.within)!
      return Promise.all(found.map(async (s) => forecastReading(s, await windowOf(s.id, window, now), now, within, p.within)))
    },
    async history(p, from, to) {
      const window = parseDuration(p.window)!
      const within = parseDuration(p.within)!
      return Promise.all(
        matching(deps.latest(), p.series, p.host).map(async (s) => {
          const all = await deps.history(s.id, from - window, to)
          return {
            labels: labelsOf(s),
            steps: between(all, from, to).map((pt) => ({
              t: pt.t,
              reading: forecastReading(s, between(all, pt.t - window, pt.t), pt.t, within, p.within),
            })),
          }
        }),
      )
    },
  }

  type AnomalyParams = {
    series: string
    host?: string
    window: string
    min_change: number
    baseline: 'window' | 'weekly'
    weeks: number
  }
  const anomaly: RuleSource<AnomalyParams> = {
    kind: 'anomaly',
    describe:
      'How far the newest value is from the series\' normal (robust z-score): over the last `window`, or with baseline "weekly" over the same hour of the last `weeks` weeks; quiet below `min_change`',
    params: z.object({
      series: z.string().min(1),
      host: z.string().optional(),
      window: durationText('window').default('1h'),
      min_change: z.number().min(0).default(0),
      baseline: z.enum(['window', 'weekly']).default('window'),
      weeks: z.number().int().min(1).max(12).default(4),
    }),
    condition: false,
    async evaluate(p, now) {
      const found = matching(deps.latest(), p.series, p.host)
      if (!found.length) return [{ labels: { host: p.host ?? '' }, value: null, text: `no series ${p.series}` }]
      return Promise.all(
        found.map(async (s): Promise<Reading> => {
          if (s.v === null) return { labels: labelsOf(s), value: null, text: 'no data' }
          const ranges = anomalyBaseline(p, now)
          const pts =
            p.baseline === 'window'
              ? await windowOf(s.id, parseDuration(p.window)!, now)
              : (await Promise.all(ranges.map((r) => deps.history(s.id, r.from, r.to)))).flat()
          return anomalyReading(s, s.v, pts, p.min_change)
        }),
      )
    },
    async history(p, from, to) {
      const earliest = Math.min(...anomalyBaseline(p, from).map((r) => r.from))
      return Promise.all(
        matching(deps.latest(), p.series, p.host).map(async (s) => {
          const all = await deps.history(s.id, earliest, to)
          return {
            labels: labelsOf(s),
            steps: between(all, from, to).map((pt) => ({
              t: pt.t,
              reading:
                pt.v === null
                  ? { labels: labelsOf(s), value: null, text: 'no data' }
                  : anomalyReading(
                      s,
                      pt.v,
                      anomalyBaseline(p, pt.t).flatMap((r) => between(all, r.from, r.to)),
                      p.min_change,
                    ),
            })),
          }
        }),
      )
    },
  }
  return [threshold, availability, backup, forecast, anomaly] as RuleSource<Record<string, unknown>>[]
}

function availabilityReading(
  p: { service: string; status: 'unhealthy' | 'degraded' },
  r: { status: HealthStatus; reason: string } | null,
): Reading {
  if (!r || r.status === 'not_configured')
    return { labels: { service: p.service }, value: null, text: r ? 'not configured' : 'not checked yet' }
  const bad = r.status === 'unhealthy' || (p.status === 'degraded' && r.status === 'degraded')
  return { labels: { service: p.service }, value: bad ? 1 : 0, text: `${r.status}: ${r.reason}` }
}

function forecastReading(s: LatestValue, pts: MetricPoint[], now: number, within: number, withinText: string): Reading {
  const v = predictLinear(pts, now + within)
  return { labels: labelsOf(s), value: v, text: v === null ? 'too little history to fit' : `${round(v)} ${s.unit} in ${withinText}` }
}

function anomalyReading(s: LatestValue, value: number, baseline: MetricPoint[], minChange: number): Reading {
  const z = robustZ(baseline, value, minChange)
  return { labels: labelsOf(s), value: z, text: z === null ? 'too little history' : `z ${round(z)} at ${round(value)} ${s.unit}` }
}

export const round = (v: number) => (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 100) / 100)
