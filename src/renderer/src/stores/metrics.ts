import { create } from 'zustand'
import type { HistoryResult, MetricPoint, RangeName, SeriesInfo } from '../../../shared/metrics'
import { RANGES } from '../../../shared/metrics'
import { useApp } from './app'

/** Live points kept per series: ten minutes at one sample a second. Older ones are dropped, so the page never grows. */
export const LIVE_POINTS = 600

interface MetricsState {
  series: SeriesInfo[]
  /** Services not configured here: one line each instead of their charts. */
  unconfigured: { group: SeriesInfo['group']; message: string }[]
  host: string | null
  hosts: string[]
  selectedHost: string | null
  intervalMs: number
  range: RangeName
  live: Record<string, MetricPoint[]>
  history: Record<string, HistoryResult>
  loading: boolean
  /** "range|host" of the history on screen (the charts show it once drawn). */
  loaded: string | null
  /** When the last range's charts were asked for (the page records when they were drawn). */
  requestedAt: number | null
  init(): Promise<void>
  setRange(r: RangeName): Promise<void>
  setHost(h: string): Promise<void>
  load(ids: string[], points: number): Promise<void>
  tick(t: number, values: Record<string, number | null>): void
}

const api = () => useApp.getState().api!

export const useMetrics = create<MetricsState>((set, get) => {
  let started = false
  let latestAsk = ''
  return {
    series: [],
    unconfigured: [],
    host: null,
    hosts: [],
    selectedHost: null,
    intervalMs: 5000,
    range: 'live',
    live: {},
    history: {},
    loading: false,
    loaded: null,
    requestedAt: null,
    async init() {
      if (started) return
      started = true
      api().on('metrics.tick', (t) => {
        if (t.host === get().host) get().tick(t.t, t.values)
      })
      // Tell the console someone is watching (it collects at the full rate only then).
      const watch = () =>
        void api()
          .call('metrics.watch', {})
          .catch(() => {})
      watch()
      setInterval(watch, 20_000)
      const r = await api().call('metrics.series', {})
      set({
        series: r.series,
        unconfigured: r.unconfigured,
        host: r.host,
        hosts: r.hosts,
        selectedHost: r.host,
        intervalMs: r.intervalMs,
      })
      // Fill the live view with what the console already holds (the last ten minutes, from its memory).
      await get().load(
        r.series.map((s) => s.id),
        LIVE_POINTS,
      )
    },
    tick(t, values) {
      const live = { ...get().live }
      for (const [id, v] of Object.entries(values)) {
        const prev = live[id] ?? []
        const next = prev.length >= LIVE_POINTS ? prev.slice(prev.length - LIVE_POINTS + 1) : prev.slice()
        next.push({ t, v })
        live[id] = next
      }
      // New series (a disk mounted) appear on the next series list.
      if (Object.keys(values).some((id) => !get().series.some((s) => s.id === id)))
        void api()
          .call('metrics.series', {})
          .then((r) => set({ series: r.series }))
      set({ live })
    },
    // The Metrics page loads what a range or host needs when it changes (one request per shown series).
    async setRange(range) {
      set({ range })
    },
    async setHost(h) {
      set({ selectedHost: h, range: h === get().host ? get().range : get().range === 'live' ? '1h' : get().range })
    },
    async load(ids, points) {
      const { range, selectedHost, host } = get()
      const ask = `${range}|${selectedHost}|${ids.join(',')}`
      latestAsk = ask
      const to = Date.now()
      const from = to - RANGES[range]
      set({ loading: true, requestedAt: performance.now() })
      try {
        const results = await Promise.all(
          ids.map((series) => api().call('metrics.history', { series, from, to, points, host: selectedHost ?? undefined })),
        )
        if (latestAsk !== ask) return // a newer range or host was asked for meanwhile
        if (range === 'live' && selectedHost === host) {
          const live = { ...get().live }
          // Ticks that arrived while this was asked for stay; the history fills in everything before them
          // (replacing only an empty series would drop the last ten minutes as soon as one tick came first).
          for (const r of results) {
            const ticks = live[r.series] ?? []
            const first = ticks[0]?.t ?? Infinity
            live[r.series] = [...r.points.filter((p) => p.t < first), ...ticks].slice(-LIVE_POINTS)
          }
          set({ live, loading: false })
        } else set({ history: Object.fromEntries(results.map((r) => [r.series, r])), loading: false, loaded: `${range}|${selectedHost}` })
      } catch (e) {
        set({ loading: false })
        useApp.setState({ error: (e as Error).message })
      }
    },
  }
})

/** For the bench only (localStorage.opsBench = "1"): feed synthetic live ticks at speed, to measure the page over an hour of updates. */
export function installBenchHook(): void {
  try {
    if (localStorage.getItem('opsBench') !== '1') return
  } catch {
    return
  }
  ;(window as unknown as { __opsMetricsStore: typeof useMetrics }).__opsMetricsStore = useMetrics
  ;(window as unknown as { __opsMetricsSimulate: (n: number) => Promise<void> }).__opsMetricsSimulate = async (n) => {
    const ids = useMetrics.getState().series.map((s) => s.id)
    let t = Date.now()
    for (let i = 0; i < n; i++) {
      t += 1000
      useMetrics.getState().tick(t, Object.fromEntries(ids.map((id) => [id, 50 + 40 * Math.sin(i / 30) + Math.random() * 5])))
      if (i % 60 === 59) await new Promise((r) => requestAnimationFrame(() => r(null)))
    }
  }
}
