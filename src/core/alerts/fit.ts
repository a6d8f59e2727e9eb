/**
 * The arithmetic behind the forecast and anomaly rules, on plain points so tests can build histories:
 * a least-squares line (what Prometheus' predict_linear fits) and a robust z-score (distance from the
 * median in units of the scaled median absolute deviation, so one earlier spike does not hide the next).
 */
export interface Point {
  t: number
  v: number | null
}

/** The value the least-squares line through the points reaches at time `at`; null with fewer than 3 points or no spread in time. */
export function predictLinear(points: Point[], at: number): number | null {
  const p = points.filter((x): x is { t: number; v: number } => x.v !== null && Number.isFinite(x.v))
  if (p.length < 3) return null
  const t0 = p[0].t
  let sx = 0
  let sy = 0
  let sxx = 0
  let sxy = 0
  for (const { t, v } of p) {
    const x = (t - t0) / 1000
    sx += x
    sy += v
    sxx += x * x
    sxy += x * v
  }
  const n = p.length
  const den = n * sxx - sx * sx
  if (den === 0) return null
  const slope = (n * sxy - sx * sy) / den
  const intercept = (sy - slope * sx) / n
  return intercept + slope * ((at - t0) / 1000)
}

/** The median, sorting in place (a typed array sorts numerically, without a comparator: backtests call this per point). */
const medianInPlace = (s: Float64Array): number => {
  s.sort()
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * How unusual `value` is against the window: |value − median| / (1.4826 · MAD). 0 when the change is
 * smaller than `minChange` (idle series stay quiet); null with fewer than 5 points. A flat window (MAD 0)
 * with a change of at least minChange reads as a large score (Infinity is avoided: 1e6).
 */
export function robustZ(window: Point[], value: number, minChange: number): number | null {
  const xs = new Float64Array(window.length)
  let n = 0
  for (const p of window) if (p.v !== null && Number.isFinite(p.v)) xs[n++] = p.v
  if (n < 5) return null
  const vals = xs.subarray(0, n)
  const med = medianInPlace(vals)
  const change = Math.abs(value - med)
  if (change < minChange) return 0
  for (let i = 0; i < n; i++) vals[i] = Math.abs(vals[i] - med)
  const mad = 1.4826 * medianInPlace(vals)
  return mad === 0 ? 1e6 : change / mad
}
