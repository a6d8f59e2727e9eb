import { describe, expect, it } from 'vitest'
import { downsample } from '../../src/core/metrics/downsample'
import { prometheusText } from '../../src/core/metrics/prometheus'
import { Rates } from '../../src/core/metrics/rates'
import { SeriesRegistry } from '../../src/core/metrics/registry'
import { tierFor } from '../../src/core/metrics/tiers'
import type { MetricPoint } from '../../src/shared/metrics'
import { promtoolCheck } from '../helpers/promtool'

describe('rates from counters', () => {
  it('has no rate for the first sample, then the change per second; a counter reset gives none', () => {
    const r = new Rates()
    expect(r.rate('x', 1000, 10_000)).toBeNull()
    expect(r.rate('x', 1500, 12_000)).toBe(250)
    expect(r.rate('x', 1500, 13_000)).toBe(0)
    expect(r.rate('x', 10, 14_000)).toBeNull() // restarted
    expect(r.rate('x', 110, 16_000)).toBe(50)
    expect(r.rate('x', null, 17_000)).toBeNull()
  })
  it('gives the ratio of two counters over the interval', () => {
    const r = new Rates()
    expect(r.ratio('hit', 90, 100, 0)).toBeNull()
    expect(r.ratio('hit', 180, 200, 1000)).toBeCloseTo(0.9)
    expect(r.ratio('hit', 180, 200, 2000)).toBeNull() // no reads in the interval
  })
})

describe('tiers by range', () => {
  const now = Date.parse('2026-11-29T12:00:00Z')
  it('reads raw samples for short recent ranges, 1-minute rollups up to 30 days, hourly beyond', () => {
    expect(tierFor(now - 3_600_000, now, now)).toBe('raw')
    expect(tierFor(now - 6 * 3_600_000, now, now)).toBe('raw')
    expect(tierFor(now - 86_400_000, now, now)).toBe('1m')
    expect(tierFor(now - 7 * 86_400_000, now, now)).toBe('1m')
    expect(tierFor(now - 30 * 86_400_000, now, now)).toBe('1m')
    expect(tierFor(now - 90 * 86_400_000, now, now)).toBe('1h')
    // An hour three days ago: raw samples are gone by then (48 h), the 1-minute rollups have it.
    expect(tierFor(now - 3 * 86_400_000, now - 3 * 86_400_000 + 3_600_000, now)).toBe('1m')
  })
})

describe('downsampling keeps the extremes', () => {
  it('returns at most the asked number of points and keeps the largest spike and the deepest dip', () => {
    let seed = 42
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    const pts: MetricPoint[] = Array.from({ length: 604_800 }, (_, i) => ({ t: i * 1000, v: 40 + rnd() * 10 }))
    pts[123_457].v = 99.5 // one-second spike
    pts[500_001].v = 0.25 // one-second dip
    const out = downsample(pts, 1000)
    expect(out.length).toBeLessThanOrEqual(1000)
    expect(out.length).toBeGreaterThan(900)
    expect(out.some((p) => p.v === 99.5 && p.t === 123_457_000)).toBe(true)
    expect(out.some((p) => p.v === 0.25 && p.t === 500_001_000)).toBe(true)
    expect(out.every((p, i) => i === 0 || p.t > out[i - 1].t)).toBe(true)
  })
  it('compares rollups by their own min and max', () => {
    const pts: MetricPoint[] = Array.from({ length: 10_080 }, (_, i) => ({ t: i * 60_000, v: 10, min: 9, max: 11 }))
    pts[5000] = { t: 5000 * 60_000, v: 12, min: 8, max: 97 }
    const out = downsample(pts, 500)
    expect(out.find((p) => p.max === 97)).toBeTruthy()
  })
  it('leaves short series alone', () => {
    const pts = [
      { t: 1, v: 1 },
      { t: 2, v: null },
      { t: 3, v: 3 },
    ]
    expect(downsample(pts, 100)).toEqual([
      { t: 1, v: 1 },
      { t: 3, v: 3 },
    ])
  })
})

describe('Prometheus text format', () => {
  const reg = new SeriesRegistry()
  reg.id('host.disk_used_percent', { mount: '/var/"lib"' })
  const at = (id: string, v: number | null, raw: number | null = null) => ({ ...reg.get(id)!, host: 'ops-1', t: 1, v, note: null, raw })
  const input = {
    series: [
      at('host.cpu_percent', 12.5),
      at('host.disk_used_percent{mount=/var/"lib"}', 40),
      at('host.net_rx_bps', 1500.5, 987_654_321),
      at('pg.tps', 42.1, 1_234_567),
      at('pg.longest_tx_s', 3.5),
      at('pg.replication_lag_bytes', null),
      at('redis.hit_rate', 97),
      at('app.p50_ms', 12),
      at('app.throughput_rpm', 60),
    ],
    app: {
      latency: { bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], counts: [1, 3, 8, 9, 9, 9, 9, 9, 9, 9, 9, 10], sum: 0.3, count: 10 },
      ok: 10,
      failed: 2,
    },
  }

  it('base units, ratios 0 to 1, raw counters as _total, and the app latency as a histogram', () => {
    const lines = prometheusText(input).trim().split('\n')
    expect(lines).toContain('# TYPE examforge_host_cpu_busy_ratio gauge')
    expect(lines).toContain('examforge_host_cpu_busy_ratio{host="ops-1"} 0.125')
    expect(lines).toContain('examforge_host_disk_used_ratio{host="ops-1",mount="/var/\\"lib\\""} 0.4')
    // The counters the rates were computed from, not our per-second numbers.
    expect(lines).toContain('# TYPE examforge_host_network_received_bytes_total counter')
    expect(lines).toContain('examforge_host_network_received_bytes_total{host="ops-1"} 987654321')
    expect(lines).toContain('examforge_pg_transactions_total{host="ops-1"} 1234567')
    expect(lines).toContain('examforge_pg_longest_transaction_seconds{host="ops-1"} 3.5')
    expect(lines).toContain('examforge_redis_keyspace_hit_ratio{host="ops-1"} 0.97')
    expect(lines).toContain('# TYPE examforge_app_request_duration_seconds histogram')
    expect(lines).toContain('examforge_app_request_duration_seconds_bucket{host="ops-1",le="0.01"} 3')
    expect(lines).toContain('examforge_app_request_duration_seconds_bucket{host="ops-1",le="+Inf"} 10')
    expect(lines).toContain('examforge_app_request_duration_seconds_count{host="ops-1"} 10')
    expect(lines).toContain('examforge_app_requests_total{host="ops-1",outcome="failed"} 2')
    const text = lines.join('\n')
    // Nothing in the UI's units, and no value, no sample line.
    expect(text).not.toMatch(/_percent|_ms\b|_ms\{|_per_s|_bps|_rpm|p50/)
    expect(text).not.toMatch(/replication_lag_bytes\{/)
  })

  it('every series of the registry is mapped (exposed, or said to be derived), so none is dropped by accident', async () => {
    const { FAMILY_NAMES } = await import('../../src/core/metrics/prometheus')
    for (const s of reg.list()) expect(FAMILY_NAMES, s.name).toContain(s.name)
  })

  it('passes promtool check metrics (Prometheus\' own parser and linter)', () => {
    expect(promtoolCheck(prometheusText(input))).toEqual({ code: 0, output: '' })
    // And the checker can fail: the old exposition's names break the conventions.
    const old = '# HELP examforge_app_p50_ms x\n# TYPE examforge_app_p50_ms gauge\nexamforge_app_p50_ms 12\n# HELP examforge_pg_tps x\n# TYPE examforge_pg_tps counter\nexamforge_pg_tps 4\n'
    expect(promtoolCheck(old).output).toMatch(/counter metrics should have "_total" suffix/)
  })
})
