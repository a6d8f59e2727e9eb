import { describe, expect, it } from 'vitest'
import { downsample } from '../../src/core/metrics/downsample'
import { prometheusText } from '../../src/core/metrics/prometheus'
import { Rates } from '../../src/core/metrics/rates'
import { SeriesRegistry } from '../../src/core/metrics/registry'
import { tierFor } from '../../src/core/metrics/tiers'
import type { LatestValue, MetricPoint } from '../../src/shared/metrics'

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
  it('writes one gauge per series with help, units and labels, and parses as exposition lines', () => {
    const reg = new SeriesRegistry()
    const at = (id: string, v: number | null): LatestValue => ({ ...reg.get(id)!, host: 'ops-1', t: 1, v, note: null })
    reg.id('host.disk_used_percent', { mount: '/var/"lib"' })
    const text = prometheusText([
      at('host.cpu_percent', 12.5),
      at('host.disk_used_percent{mount=/var/"lib"}', 40),
      at('pg.replication_lag_bytes', null),
    ])
    const lines = text.trim().split('\n')
    expect(lines).toContain('# TYPE examforge_host_cpu_percent gauge')
    expect(lines).toContain('examforge_host_cpu_percent{host="ops-1"} 12.5')
    expect(lines).toContain('examforge_host_disk_used_percent{host="ops-1",mount="/var/\\"lib\\""} 40')
    expect(text).not.toMatch(/replication_lag_bytes\{/) // no value, no sample line
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$/
    for (const l of lines) expect(l.startsWith('# HELP ') || l.startsWith('# TYPE ') || sample.test(l), l).toBe(true)
  })
})
