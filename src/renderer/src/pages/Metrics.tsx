import { memo, useEffect, useLayoutEffect, useMemo, useRef } from 'react'
import { useShallow } from 'zustand/react/shallow'
import type { RangeName, SeriesInfo } from '../../../shared/metrics'
import { RANGES } from '../../../shared/metrics'
import { MetricChart, type ChartLine } from '../components/MetricChart'
import { useMetrics } from '../stores/metrics'
import { useAlerts } from '../stores/alerts'

/** Charts by group: series drawn together share a unit. */
const LAYOUT: {
  group: SeriesInfo['group']
  title: string
  charts: { title: string; ids: string[] | ((s: SeriesInfo[]) => string[]) }[]
}[] = [
  {
    group: 'host',
    title: 'Host',
    charts: [
      { title: 'CPU', ids: ['host.cpu_percent'] },
      { title: 'Load (1 min)', ids: ['host.load1'] },
      { title: 'Memory and swap', ids: ['host.mem_percent', 'host.swap_percent'] },
      { title: 'Disk space used', ids: (s) => s.filter((x) => x.name === 'host.disk_used_percent').map((x) => x.id) },
      { title: 'Disk I/O', ids: ['host.disk_read_bps', 'host.disk_write_bps'] },
      { title: 'Network', ids: ['host.net_rx_bps', 'host.net_tx_bps'] },
    ],
  },
  {
    group: 'database',
    title: 'PostgreSQL',
    charts: [
      { title: 'Transactions', ids: ['pg.tps'] },
      { title: 'Cache hit ratio', ids: ['pg.cache_hit_ratio'] },
      { title: 'Connections (of max_connections)', ids: ['pg.connections_percent'] },
      { title: 'Database size', ids: ['pg.db_size_bytes'] },
      { title: 'Longest transaction', ids: ['pg.longest_tx_s'] },
      { title: 'Deadlocks', ids: ['pg.deadlocks_per_s'] },
      { title: 'Temporary files', ids: ['pg.temp_bytes_per_s'] },
      { title: 'Replication lag and slot WAL', ids: ['pg.replication_lag_bytes', 'pg.slot_retained_bytes'] },
    ],
  },
  {
    group: 'redis',
    title: 'Redis',
    charts: [
      { title: 'Commands', ids: ['redis.ops_per_s'] },
      { title: 'Memory used', ids: ['redis.mem_used_bytes'] },
      { title: 'Clients', ids: ['redis.clients'] },
      { title: 'Keyspace hit rate', ids: ['redis.hit_rate'] },
      { title: 'Evictions', ids: ['redis.evicted_per_s'] },
    ],
  },
  {
    group: 'app',
    title: 'Web app',
    charts: [
      { title: 'Response time', ids: ['app.p50_ms', 'app.p95_ms', 'app.p99_ms'] },
      { title: 'Throughput', ids: ['app.throughput_rpm'] },
      { title: 'Error rate', ids: ['app.error_rate'] },
    ],
  },
]

const NO_LIVE: Record<string, never> = {}

/** Line names where a chart draws several series. */
const SHORT: Record<string, string> = {
  'host.mem_percent': 'memory',
  'host.swap_percent': 'swap',
  'host.disk_read_bps': 'read',
  'host.disk_write_bps': 'write',
  'host.net_rx_bps': 'in',
  'host.net_tx_bps': 'out',
  'pg.replication_lag_bytes': 'replica lag',
  'pg.slot_retained_bytes': 'slot WAL',
  'app.p50_ms': 'p50',
  'app.p95_ms': 'p95',
  'app.p99_ms': 'p99',
}

const Chart = memo(
  MetricChart,
  (a, b) =>
    a.title === b.title &&
    a.unit === b.unit &&
    a.lines.every((l, i) => l.points === b.lines[i]?.points) &&
    a.lines.length === b.lines.length,
)

const NO_THRESHOLDS: { value: number; label: string }[] = []

export function Metrics() {
  const { series, unconfigured, host, hosts, selectedHost, range, history, loading, loaded, requestedAt, init, setRange, setHost, load } =
    useMetrics(
      useShallow((s) => ({
        series: s.series,
        unconfigured: s.unconfigured,
        host: s.host,
        hosts: s.hosts,
        selectedHost: s.selectedHost,
        range: s.range,
        history: s.history,
        loading: s.loading,
        requestedAt: s.requestedAt,
        loaded: s.loaded,
        init: s.init,
        setRange: s.setRange,
        setHost: s.setHost,
        load: s.load,
      })),
    )
  // Live points re-render the page only while it shows them.
  const live = useMetrics((s) => (s.range === 'live' && s.selectedHost === s.host ? s.live : NO_LIVE))
  useEffect(() => void init(), [init])
  // Threshold rules drawn on their series' charts (the same reference array while the rules do not change).
  const rules = useAlerts((s) => s.rules)
  useEffect(() => void useAlerts.getState().load(), [])
  const thresholdsOf = useMemo(() => {
    const m = new Map<string, { value: number; label: string }[]>()
    for (const r of rules?.rules ?? []) {
      if (r.kind !== 'threshold' || !r.enabled || typeof r.spec.series !== 'string') continue
      const list = m.get(r.spec.series) ?? []
      list.push({ value: Number(r.spec.threshold), label: `${r.name} ${String(r.spec.op)} ${String(r.spec.threshold)}` })
      m.set(r.spec.series, list)
    }
    return m
  }, [rules])
  const drawn = useRef<HTMLDivElement>(null)
  const byId = useMemo(() => new Map(series.map((s) => [s.id, s])), [series])
  const isLive = range === 'live' && selectedHost === host
  const groups = LAYOUT.map((g) => ({
    ...g,
    charts: g.charts
      .map((c) => ({ ...c, ids: (typeof c.ids === 'function' ? c.ids(series) : c.ids).filter((id) => byId.has(id)) }))
      .filter((c) => c.ids.length),
  })).filter((g) => g.charts.length && (selectedHost === host || g.group === 'host'))
  const shownIds = groups.flatMap((g) => g.charts.flatMap((c) => c.ids))
  const key = shownIds.join('|')
  useEffect(() => {
    // As many points as a chart is wide in pixels (charts sit three to a row here): more could not be seen.
    if (!isLive && key) void load(key.split('|'), Math.max(200, Math.min(1200, Math.round((drawn.current?.clientWidth ?? 1200) / 3))))
  }, [key, isLive, load, range, selectedHost])
  // How long the charts took from asking to drawn (the bench reads it).
  useLayoutEffect(() => {
    if (!loading && requestedAt && drawn.current) drawn.current.dataset.renderMs = String(Math.round(performance.now() - requestedAt))
  }, [loading, requestedAt, history])
  // Lines only change when their points do: a chart redraws for new data, not for "loading" or a range click.
  const linesOf = useMemo(() => {
    const m = new Map<string, ChartLine[]>()
    for (const g of groups)
      for (const c of g.charts)
        m.set(
          c.title,
          c.ids.map((id) => ({
            id,
            label: byId.get(id)!.labels.mount ?? SHORT[byId.get(id)!.name] ?? byId.get(id)!.help,
            points: isLive ? (live[id] ?? []) : (history[id]?.points ?? []),
          })),
        )
    return m
    // eslint-disable-next-line react-hooks/exhaustive-deps -- groups follow key
  }, [key, byId, isLive, live, history])
  const tier = history[shownIds[0]]?.tier
  return (
    <div ref={drawn} data-testid="metrics" data-range={range} data-loaded={isLive ? 'live' : (loaded ?? '')}>
      <div className="toolbar">
        <div className="segmented" role="group" aria-label="Range">
          {(Object.keys(RANGES) as RangeName[]).map((r) => (
            <button key={r} className={r === range ? 'active' : ''} onClick={() => void setRange(r)} data-testid={`range-${r}`}>
              {r === 'live' ? 'Live' : r}
            </button>
          ))}
        </div>
        <label>
          Host{' '}
          <select value={selectedHost ?? ''} onChange={(e) => void setHost(e.target.value)} aria-label="Host" data-testid="host-picker">
            {hosts.map((h) => (
              <option key={h} value={h}>
                {h}
                {h === host ? ' (this one)' : ''}
              </option>
            ))}
          </select>
        </label>
        <span className="muted">
          {isLive
            ? 'Live: updated at every collection, the last ten minutes.'
            : `${loading ? 'Loading… ' : ''}${tier === 'raw' ? 'raw samples' : tier === '1m' ? '1-minute rollups (min, max, average)' : tier === '1h' ? 'hourly rollups (min, max, average)' : tier === 'live' ? 'from memory' : ''}, spikes kept when thinned.`}
        </span>
      </div>
      {selectedHost === host &&
        unconfigured.map((u) => (
          <p key={u.group} className="muted not-configured" data-testid={`metrics-${u.group}-not-configured`}>
            {u.message}
          </p>
        ))}
      {groups.map((g) => (
        <section key={g.group} className="metric-group" data-testid={`metrics-${g.group}`}>
          <h2>{g.title}</h2>
          <div className="charts">
            {g.charts.map((c) => (
              <Chart
                key={c.title}
                title={c.title}
                unit={byId.get(c.ids[0])!.unit}
                lines={linesOf.get(c.title)!}
                thresholds={thresholdsOf.get(c.ids[0]) ?? thresholdsOf.get(byId.get(c.ids[0])!.name) ?? NO_THRESHOLDS}
              />
            ))}
          </div>
        </section>
      ))}
    </div>
  )
}
