import type { LatestValue } from '../../shared/metrics'
import type { Histogram } from './collectors/collector'

/**
 * /metrics in Prometheus' text exposition format (0.0.4), by Prometheus' conventions rather than the UI's
 * friendly units: base units (seconds, bytes, ratios from 0 to 1), raw counters as `_total` (the counters the
 * collectors compute their per-second rates from, so Prometheus computes rates itself and loses no event
 * between scrapes), and the web app's response time as a histogram of every probe request since start.
 * The UI and the CLI keep their units (%, ms, per second). Checked with `promtool check metrics` in
 * test/unit/prometheus.test.ts.
 */

export interface PrometheusInput {
  /** The newest value of every series, with the raw counter behind a rate (null for gauges). */
  series: (LatestValue & { raw: number | null })[]
  /** The app collector's requests since start (null when no web app is configured). */
  app: { latency: Histogram; ok: number; failed: number } | null
}

type Family =
  | { kind: 'gauge'; name: string; help: string; scale?: number }
  /** Exposed from the raw counter the rate was computed from. */
  | { kind: 'counter'; name: string; help: string }

/** Each series of the registry as a Prometheus family; series left out are derived from others (see below). */
const FAMILIES: Record<string, Family | null> = {
  'host.cpu_percent': { kind: 'gauge', name: 'host_cpu_busy_ratio', help: 'CPU busy, all cores (0 to 1)', scale: 0.01 },
  'host.load1': { kind: 'gauge', name: 'host_load1', help: '1-minute load average' },
  'host.mem_percent': { kind: 'gauge', name: 'host_memory_used_ratio', help: 'Memory in use without caches (0 to 1)', scale: 0.01 },
  'host.swap_percent': { kind: 'gauge', name: 'host_swap_used_ratio', help: 'Swap in use (0 to 1)', scale: 0.01 },
  'host.disk_used_percent': { kind: 'gauge', name: 'host_disk_used_ratio', help: 'Disk space in use, per mount (0 to 1)', scale: 0.01 },
  'host.disk_read_bps': { kind: 'counter', name: 'host_disk_read_bytes_total', help: 'Bytes read from disk since boot' },
  'host.disk_write_bps': { kind: 'counter', name: 'host_disk_written_bytes_total', help: 'Bytes written to disk since boot' },
  'host.net_rx_bps': { kind: 'counter', name: 'host_network_received_bytes_total', help: 'Bytes received (all interfaces but loopback)' },
  'host.net_tx_bps': { kind: 'counter', name: 'host_network_sent_bytes_total', help: 'Bytes sent (all interfaces but loopback)' },
  'pg.tps': { kind: 'counter', name: 'pg_transactions_total', help: 'Transactions committed or rolled back in the database' },
  'pg.cache_hit_ratio': {
    kind: 'gauge',
    name: 'pg_cache_hit_ratio',
    help: 'Share of block reads served from shared buffers over the last collection interval (0 to 1)',
    scale: 0.01,
  },
  'pg.connections': { kind: 'gauge', name: 'pg_connections', help: 'Client connections' },
  'pg.connections_percent': {
    kind: 'gauge',
    name: 'pg_connections_used_ratio',
    help: 'Client connections as a share of max_connections (0 to 1)',
    scale: 0.01,
  },
  'pg.db_size_bytes': { kind: 'gauge', name: 'pg_database_size_bytes', help: 'Database size' },
  'pg.longest_tx_s': { kind: 'gauge', name: 'pg_longest_transaction_seconds', help: 'Age of the longest open transaction' },
  'pg.deadlocks_per_s': { kind: 'counter', name: 'pg_deadlocks_total', help: 'Deadlocks detected in the database' },
  'pg.temp_bytes_per_s': { kind: 'counter', name: 'pg_temp_written_bytes_total', help: 'Bytes written to temporary files' },
  'pg.replication_lag_bytes': { kind: 'gauge', name: 'pg_replication_lag_bytes', help: 'Largest replica replay lag' },
  'pg.slot_retained_bytes': { kind: 'gauge', name: 'pg_slot_retained_wal_bytes', help: 'WAL retained by the most demanding replication slot' },
  'redis.ops_per_s': { kind: 'counter', name: 'redis_commands_processed_total', help: 'Commands processed by Redis' },
  'redis.mem_used_bytes': { kind: 'gauge', name: 'redis_memory_used_bytes', help: 'Memory used by Redis' },
  'redis.mem_percent': { kind: 'gauge', name: 'redis_memory_used_ratio', help: 'Memory used as a share of maxmemory (0 to 1)', scale: 0.01 },
  'redis.clients': { kind: 'gauge', name: 'redis_connected_clients', help: 'Connected clients' },
  'redis.hit_rate': {
    kind: 'gauge',
    name: 'redis_keyspace_hit_ratio',
    help: 'Keyspace hits among lookups over the last collection interval (0 to 1)',
    scale: 0.01,
  },
  'redis.evicted_per_s': { kind: 'counter', name: 'redis_evicted_keys_total', help: 'Keys evicted by Redis' },
  // The app's percentiles, throughput and error rate are what Prometheus derives from the histogram and
  // examforge_app_requests_total (histogram_quantile, rate): not exposed as our own window's numbers.
  'app.p50_ms': null,
  'app.p95_ms': null,
  'app.p99_ms': null,
  'app.throughput_rpm': null,
  'app.error_rate': null,
}

/** Every series name this module knows (a test checks the registry has no other). */
export const FAMILY_NAMES = Object.keys(FAMILIES)

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
const labelText = (labels: Record<string, string>) =>
  `{${Object.entries(labels)
    .map(([k, v]) => `${k.replace(/[^a-zA-Z0-9_]/g, '_')}="${esc(v)}"`)
    .join(',')}}`
const num = (v: number) => (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(12))))

export function prometheusText(input: PrometheusInput): string {
  const out: string[] = []
  const byFamily = new Map<string, { f: Family; lines: string[] }>()
  for (const l of input.series) {
    const f = FAMILIES[l.name]
    if (!f) continue
    const value = f.kind === 'counter' ? l.raw : l.v === null ? null : l.v * (f.scale ?? 1)
    const entry = byFamily.get(f.name) ?? { f, lines: [] }
    byFamily.set(f.name, entry)
    if (value === null || !Number.isFinite(value)) continue
    entry.lines.push(`examforge_${f.name}${labelText({ host: l.host, ...l.labels })} ${num(value)}`)
  }
  const host = input.series[0]?.host ?? ''
  for (const [name, { f, lines }] of byFamily) {
    if (!lines.length) continue
    out.push(`# HELP examforge_${name} ${f.help}`, `# TYPE examforge_${name} ${f.kind}`, ...lines)
  }
  if (input.app) {
    const { latency: h, ok, failed } = input.app
    const m = 'examforge_app_request_duration_seconds'
    out.push(`# HELP ${m} Web app response time of the answered probe requests`, `# TYPE ${m} histogram`)
    h.bounds.forEach((b, i) => out.push(`${m}_bucket${labelText({ host, le: String(b) })} ${h.counts[i]}`))
    out.push(`${m}_bucket${labelText({ host, le: '+Inf' })} ${h.count}`)
    out.push(`${m}_sum${labelText({ host })} ${num(h.sum)}`, `${m}_count${labelText({ host })} ${h.count}`)
    const r = 'examforge_app_requests_total'
    out.push(`# HELP ${r} Probe requests to the web app, by outcome (failed: no answer, a timeout or a 5xx)`, `# TYPE ${r} counter`)
    out.push(`${r}${labelText({ host, outcome: 'ok' })} ${ok}`, `${r}${labelText({ host, outcome: 'failed' })} ${failed}`)
  }
  return out.join('\n') + '\n'
}
