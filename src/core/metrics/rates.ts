/**
 * Rates from counters: the change between two samples over the time between them. The first sample of a
 * counter has nothing to compare with (null, and the series says so); a counter that went backwards was
 * reset (a restart): no rate for that interval either.
 */
export class Rates {
  private last = new Map<string, { v: number; t: number }>()

  rate(key: string, value: number | null | undefined, tMs: number): number | null {
    if (value === null || value === undefined || !Number.isFinite(value)) return null
    const prev = this.last.get(key)
    this.last.set(key, { v: value, t: tMs })
    if (!prev || tMs <= prev.t || value < prev.v) return null
    return ((value - prev.v) * 1000) / (tMs - prev.t)
  }

  /** A ratio of two counters' changes (e.g. cache hits / reads) over the interval. */
  ratio(key: string, part: number | null | undefined, whole: number | null | undefined, tMs: number): number | null {
    const p = this.rate(`${key}:part`, part, tMs)
    const w = this.rate(`${key}:whole`, whole, tMs)
    if (p === null || w === null || w === 0) return null
    return p / w
  }
}
