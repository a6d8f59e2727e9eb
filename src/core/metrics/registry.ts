import type { SeriesInfo } from '../../shared/metrics'

/** Every series the collectors produce: name, unit, group, help. Series with labels (a disk's mount) are added as first seen. */
const BASE: Omit<SeriesInfo, 'id' | 'labels'>[] = [
  { name: 'host.cpu_percent', group: 'host', unit: '%', help: 'CPU busy, all cores' },
  { name: 'host.load1', group: 'host', unit: 'load', help: '1-minute load average' },
  { name: 'host.mem_percent', group: 'host', unit: '%', help: 'Memory in use (without caches)' },
  { name: 'host.swap_percent', group: 'host', unit: '%', help: 'Swap in use' },
  { name: 'host.disk_used_percent', group: 'host', unit: '%', help: 'Disk space in use, per mount' },
  { name: 'host.disk_read_bps', group: 'host', unit: 'bytes/s', help: 'Disk reads' },
  { name: 'host.disk_write_bps', group: 'host', unit: 'bytes/s', help: 'Disk writes' },
  { name: 'host.net_rx_bps', group: 'host', unit: 'bytes/s', help: 'Network received' },
  { name: 'host.net_tx_bps', group: 'host', unit: 'bytes/s', help: 'Network sent' },
  { name: 'pg.tps', group: 'database', unit: 'tx/s', help: 'Transactions (commits and rollbacks) per second' },
  { name: 'pg.cache_hit_ratio', group: 'database', unit: '%', help: 'Share of block reads served from shared buffers' },
  { name: 'pg.connections', group: 'database', unit: 'count', help: 'Connections' },
  { name: 'pg.connections_percent', group: 'database', unit: '%', help: 'Connections as a share of max_connections' },
  { name: 'pg.db_size_bytes', group: 'database', unit: 'bytes', help: 'Database size' },
  { name: 'pg.longest_tx_s', group: 'database', unit: 's', help: 'Age of the longest open transaction' },
  { name: 'pg.deadlocks_per_s', group: 'database', unit: 'ops/s', help: 'Deadlocks per second' },
  { name: 'pg.temp_bytes_per_s', group: 'database', unit: 'bytes/s', help: 'Temporary file bytes written per second' },
  { name: 'pg.replication_lag_bytes', group: 'database', unit: 'bytes', help: 'Largest replica replay lag' },
  { name: 'pg.slot_retained_bytes', group: 'database', unit: 'bytes', help: 'WAL retained by the most demanding replication slot' },
  { name: 'redis.ops_per_s', group: 'redis', unit: 'ops/s', help: 'Commands per second' },
  { name: 'redis.mem_used_bytes', group: 'redis', unit: 'bytes', help: 'Memory used' },
  { name: 'redis.mem_percent', group: 'redis', unit: '%', help: 'Memory used as a share of maxmemory (null without a limit)' },
  { name: 'redis.clients', group: 'redis', unit: 'count', help: 'Connected clients' },
  { name: 'redis.hit_rate', group: 'redis', unit: '%', help: 'Keyspace hits among lookups' },
  { name: 'redis.evicted_per_s', group: 'redis', unit: 'ops/s', help: 'Keys evicted per second' },
  { name: 'app.p50_ms', group: 'app', unit: 'ms', help: 'Web app response time, median over the window' },
  { name: 'app.p95_ms', group: 'app', unit: 'ms', help: 'Web app response time, 95th percentile over the window' },
  { name: 'app.p99_ms', group: 'app', unit: 'ms', help: 'Web app response time, 99th percentile over the window' },
  { name: 'app.throughput_rpm', group: 'app', unit: 'req/min', help: 'Probe requests answered per minute' },
  { name: 'app.error_rate', group: 'app', unit: '%', help: 'Probe requests that failed or answered 5xx, over the window' },
]

export const seriesId = (name: string, labels: Record<string, string> = {}) => {
  const keys = Object.keys(labels).sort()
  return keys.length ? `${name}{${keys.map((k) => `${k}=${labels[k]}`).join(',')}}` : name
}

export class SeriesRegistry {
  private byId = new Map<string, SeriesInfo>()
  private base = new Map(BASE.map((b) => [b.name, b]))

  constructor() {
    for (const b of BASE) if (b.name !== 'host.disk_used_percent') this.byId.set(b.name, { ...b, id: b.name, labels: {} })
  }

  /** The id of a series, registering a labelled one the first time it is seen. */
  id(name: string, labels: Record<string, string> = {}): string {
    const id = seriesId(name, labels)
    if (!this.byId.has(id)) {
      const b = this.base.get(name)
      if (!b) throw new Error(`unknown metric ${name}`)
      this.byId.set(id, { ...b, id, labels })
    }
    return id
  }

  /** Whether a series name ("host.disk_used_percent") or id ("host.disk_used_percent{mount=/}") is one the collectors produce. */
  knows(series: string): boolean {
    return this.byId.has(series) || this.base.has(series.split('{')[0])
  }

  get(id: string): SeriesInfo | undefined {
    return this.byId.get(id)
  }

  list(): SeriesInfo[] {
    return [...this.byId.values()]
  }
}
