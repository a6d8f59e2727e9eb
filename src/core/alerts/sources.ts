/**
 * The rule kinds the alerts capability brings, each a RuleSource (source.ts): a threshold on any metric
 * series, availability of a health check, backup facts, a forecast (predict_linear over recent history)
 * and an anomaly (robust z-score over a window). They read the metrics, health and backup services
 * through the small `SourceDeps` interface, so tests hand them constructed histories. Error sources come
 * from core/errors through engine.registerSource.
 */
import { z } from 'zod'
import type { HealthSnapshot } from '../../shared/domain'
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
      if (!r || r.status === 'not_configured')
        return [{ labels: { service: p.service }, value: null, text: r ? 'not configured' : 'not checked yet' }]
      const bad = r.status === 'unhealthy' || (p.status === 'degraded' && r.status === 'degraded')
      return [{ labels: { service: p.service }, value: bad ? 1 : 0, text: `${r.status}: ${r.reason}` }]
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
      return Promise.all(
        found.map(async (s): Promise<Reading> => {
          const pts = await windowOf(s.id, window, now)
          const v = predictLinear(pts, now + within)
          return { labels: labelsOf(s), value: v, text: v === null ? 'too little history to fit' : `${round(v)} ${s.unit} in ${p.within}` }
        }),
      )
    },
  }

  const anomaly: RuleSource<{ series: string; host?: string; window: string; min_change: number }> = {
    kind: 'anomaly',
    describe: "How far the newest value is from the series' own recent normal (robust z-score over `window`), quiet below `min_change`",
    params: z.object({
      series: z.string().min(1),
      host: z.string().optional(),
      window: durationText('window').default('1h'),
      min_change: z.number().min(0).default(0),
    }),
    condition: false,
    async evaluate(p, now) {
      const found = matching(deps.latest(), p.series, p.host)
      if (!found.length) return [{ labels: { host: p.host ?? '' }, value: null, text: `no series ${p.series}` }]
      const window = parseDuration(p.window)!
      return Promise.all(
        found.map(async (s): Promise<Reading> => {
          if (s.v === null) return { labels: labelsOf(s), value: null, text: 'no data' }
          const pts = await windowOf(s.id, window, now)
          const z = robustZ(pts, s.v, p.min_change)
          return { labels: labelsOf(s), value: z, text: z === null ? 'too little history' : `z ${round(z)} at ${round(s.v)} ${s.unit}` }
        }),
      )
    },
  }
  return [threshold, availability, backup, forecast, anomaly] as RuleSource<Record<string, unknown>>[]
}

export const round = (v: number) => (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 100) / 100)
