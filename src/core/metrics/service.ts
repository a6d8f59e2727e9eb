import os from 'node:os'
import type pg from 'pg'
import type { HistoryResult, LatestValue, MetricPoint, SeriesInfo } from '../../shared/metrics'
import type { OpsEvents } from '../events'
import type { Logger } from '../log/logger'
import type { Collector, Sample } from './collectors/collector'
import type { PrometheusInput } from './prometheus'
import { downsample } from './downsample'
import { SeriesRegistry } from './registry'
import { MetricStore } from './store'
import { tierFor } from './tiers'

/** Each collector's chart group, and the one line shown instead of its charts when it is not configured. */
const GROUPS: Record<Collector['id'], { group: SeriesInfo['group']; notConfigured: string }> = {
  host: { group: 'host', notConfigured: '' },
  postgres: { group: 'database', notConfigured: 'PostgreSQL is not configured — set DATABASE_URL to watch it.' },
  redis: { group: 'redis', notConfigured: 'Redis is not configured — set REDIS_URL to watch it.' },
  app: { group: 'app', notConfigured: 'The web app is not configured — set APP_URL to watch it.' },
}

/** How much of the newest history is served from memory (also while the database is down). */
const LIVE_MS = 15 * 60_000

export interface MetricsOptions {
  collectors: Collector[]
  intervalMs: number
  pool: () => pg.Pool | null
  events: OpsEvents
  log: Logger
  host?: string
}

/**
 * Collects every configured collector at the interval (1 to 60 s), off the event loop's critical path
 * (all I/O is asynchronous; a slow collector never delays the others), keeps the newest quarter hour in
 * memory for the live view, and writes batches to the ops store. With nobody watching it slows to one
 * collection per 30 s (or the interval, if longer).
 */
export class MetricsService {
  readonly registry = new SeriesRegistry()
  readonly store: MetricStore
  readonly host: string
  private live = new Map<string, MetricPoint[]>()
  private latest_ = new Map<string, { t: number; v: number | null; note: string | null; raw: number | null }>()
  private timer: NodeJS.Timeout | null = null
  private flushTimer: NodeJS.Timeout | null = null
  private pruneTimer: NodeJS.Timeout | null = null
  private lastWatch = 0
  private running: Promise<void> | null = null
  private stopped = false

  constructor(private o: MetricsOptions) {
    this.host = o.host ?? os.hostname()
    this.store = new MetricStore({ pool: o.pool, log: o.log })
  }

  get intervalMs(): number {
    return this.o.intervalMs
  }

  /** The renderer calls this while a page with metrics is open. */
  watch(): { intervalMs: number } {
    const wasIdle = !this.watched()
    this.lastWatch = Date.now()
    if (wasIdle && this.timer) this.schedule(0)
    return { intervalMs: this.o.intervalMs }
  }

  private watched(): boolean {
    return Date.now() - this.lastWatch < 60_000
  }

  /** How often collections run now: the interval while a page watches, at most every 30 s otherwise. */
  get collectingEveryMs(): number {
    return this.effectiveInterval()
  }

  private effectiveInterval(): number {
    return this.watched() ? this.o.intervalMs : Math.max(this.o.intervalMs, 30_000)
  }

  start(): void {
    this.stopped = false
    this.schedule(0)
    this.flushTimer = setInterval(() => void this.store.flush(), Math.max(5_000, this.o.intervalMs))
    this.pruneTimer = setInterval(() => void this.store.prune().catch(() => {}), 3_600_000)
    this.flushTimer.unref()
    this.pruneTimer.unref()
  }

  private schedule(delay: number): void {
    if (this.timer) clearTimeout(this.timer)
    if (this.stopped) return
    this.timer = setTimeout(() => {
      const started = Date.now()
      this.running = this.collect()
        .then(() => {})
        .catch((e) => this.o.log.warn('metric collection failed', { error: (e as Error).message }))
        .finally(() => {
          this.running = null
          // Fixed rate: the next collection is one interval after this one started.
          this.schedule(Math.max(0, this.effectiveInterval() - (Date.now() - started)))
        })
    }, delay)
    this.timer.unref()
  }

  /** One collection of every configured collector, in parallel. */
  async collect(now = Date.now()): Promise<Record<string, number | null>> {
    const results = await Promise.all(
      this.o.collectors
        .filter((c) => c.configured)
        .map((c) =>
          c.collect(now).catch((e): Sample[] => {
            this.o.log.warn(`the ${c.id} collector failed`, { error: (e as Error).message })
            return []
          }),
        ),
    )
    const values: Record<string, number | null> = {}
    const stored = []
    for (const s of results.flat()) {
      const id = this.registry.id(s.name, s.labels)
      values[id] = s.v
      this.latest_.set(id, { t: now, v: s.v, note: s.note ?? null, raw: s.raw ?? null })
      const ring = this.live.get(id) ?? []
      ring.push({ t: now, v: s.v })
      while (ring.length && ring[0].t < now - LIVE_MS) ring.shift()
      this.live.set(id, ring)
      stored.push({ series: id, host: this.host, t: now, v: s.v })
    }
    this.store.add(stored)
    this.o.events.emit('metrics.tick', { host: this.host, t: now, values })
    return values
  }

  /** Services with no configuration: one line each, in place of their (empty) series. */
  unconfigured(): { group: SeriesInfo['group']; message: string }[] {
    return this.o.collectors.filter((c) => !c.configured).map((c) => ({ group: GROUPS[c.id].group, message: GROUPS[c.id].notConfigured }))
  }

  /** The series of the configured collectors. */
  series(): SeriesInfo[] {
    const off = new Set(this.unconfigured().map((u) => u.group))
    return this.registry.list().filter((s) => !off.has(s.group))
  }

  latest(): LatestValue[] {
    return this.series().map((s) => {
      const l = this.latest_.get(s.id)
      return { ...s, host: this.host, t: l?.t ?? null, v: l?.v ?? null, note: l ? l.note : 'not collected yet' }
    })
  }

  /** What /metrics exposes (prometheus.ts): the newest values with the raw counters behind the rates, and the app's requests. */
  exposition(): PrometheusInput {
    const series = this.latest().map((l) => ({ ...l, raw: this.latest_.get(l.id)?.raw ?? null }))
    const app = this.o.collectors.find((c) => c.id === 'app' && c.configured)?.requests?.() ?? null
    return { series, app }
  }

  /** At most `points` points of a series over [from, to], from memory (live), raw samples or rollups by range. */
  async history(series: string, from: number, to: number, points: number, host = this.host): Promise<HistoryResult> {
    const now = Date.now()
    if (host === this.host && now - from <= LIVE_MS) {
      const pts = (this.live.get(series) ?? []).filter((p) => p.t >= from && p.t <= to)
      return { series, host, tier: 'live', from, to, points: downsample(pts, points) }
    }
    const tier = tierFor(from, to, now)
    let pts = await this.store.read(tier, series, host, from, to)
    // Raw samples are written in batches: this host's newest ones may still be in memory only. They are
    // part of the range all the same (a chart of the last hour must not stop at the last batch written).
    if (tier === 'raw' && host === this.host) {
      const last = pts.length ? pts[pts.length - 1].t : -Infinity
      const newer = (this.live.get(series) ?? []).filter((p) => p.t > last && p.t >= from && p.t <= to)
      if (newer.length) pts = [...pts, ...newer]
    }
    return { series, host, tier, from, to, points: downsample(pts, points) }
  }

  async hosts(): Promise<string[]> {
    const stored = await this.store.hosts().catch(() => [])
    return [...new Set([this.host, ...stored])].sort()
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    if (this.flushTimer) clearInterval(this.flushTimer)
    if (this.pruneTimer) clearInterval(this.pruneTimer)
    await this.running
    await this.store.flush().catch(() => {})
    await Promise.all(this.o.collectors.map((c) => c.close()))
  }
}
