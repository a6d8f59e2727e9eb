import type { MetricPoint } from '../../shared/metrics'

/**
 * Down to at most `max` points, keeping spikes: MinMaxLTTB. The series is cut into buckets; each bucket
 * contributes its minimum and maximum as candidates (so an extreme can never fall between the chosen
 * points), then Largest-Triangle-Three-Buckets picks the visually significant ones among the candidates.
 * Points that carry their own min/max (rollups) are compared by those.
 */
export function downsample(points: MetricPoint[], max: number): MetricPoint[] {
  const pts = points.filter((p) => p.v !== null)
  if (pts.length <= max || max < 3) return pts
  // 1. Min-max preselection: 2 candidates per bucket, about twice as many candidates as wanted points.
  const buckets = Math.max(1, Math.floor(max / 2) * 2)
  const per = pts.length / buckets
  const candidates: MetricPoint[] = []
  for (let b = 0; b < buckets; b++) {
    const s = Math.floor(b * per)
    const e = Math.min(pts.length, Math.floor((b + 1) * per))
    if (s >= e) continue
    let lo = s
    let hi = s
    for (let i = s + 1; i < e; i++) {
      if ((pts[i].min ?? pts[i].v!) < (pts[lo].min ?? pts[lo].v!)) lo = i
      if ((pts[i].max ?? pts[i].v!) > (pts[hi].max ?? pts[hi].v!)) hi = i
    }
    if (lo === hi) candidates.push(pts[lo])
    else if (lo < hi) candidates.push(pts[lo], pts[hi])
    else candidates.push(pts[hi], pts[lo])
  }
  if (candidates.length <= max) return candidates
  // 2. LTTB over the candidates, keeping each bucket's extreme when it is the global one.
  return lttb(candidates, max)
}

function lttb(data: MetricPoint[], threshold: number): MetricPoint[] {
  const out: MetricPoint[] = [data[0]]
  const every = (data.length - 2) / (threshold - 2)
  let a = 0
  const y = (p: MetricPoint) => p.v!
  for (let i = 0; i < threshold - 2; i++) {
    const avgStart = Math.floor((i + 1) * every) + 1
    const avgEnd = Math.min(Math.floor((i + 2) * every) + 1, data.length)
    let ax = 0
    let ay = 0
    for (let j = avgStart; j < avgEnd; j++) {
      ax += data[j].t
      ay += y(data[j])
    }
    const n = Math.max(1, avgEnd - avgStart)
    ax /= n
    ay /= n
    const rangeStart = Math.floor(i * every) + 1
    const rangeEnd = Math.floor((i + 1) * every) + 1
    let best = rangeStart
    let bestArea = -1
    for (let j = rangeStart; j < rangeEnd; j++) {
      const area = Math.abs((data[a].t - ax) * (y(data[j]) - y(data[a])) - (data[a].t - data[j].t) * (ay - y(data[a])))
      if (area > bestArea) {
        bestArea = area
        best = j
      }
    }
    out.push(data[best])
    a = best
  }
  out.push(data[data.length - 1])
  // LTTB may skip a bucket's extreme: put the global minimum and maximum back in (replacing their neighbours' slot).
  for (const pick of [maxOf(data), minOf(data)]) if (!out.includes(pick)) replaceNearest(out, pick)
  return out
}

const maxOf = (d: MetricPoint[]) => d.reduce((m, p) => ((p.max ?? p.v!) > (m.max ?? m.v!) ? p : m))
const minOf = (d: MetricPoint[]) => d.reduce((m, p) => ((p.min ?? p.v!) < (m.min ?? m.v!) ? p : m))
function replaceNearest(out: MetricPoint[], p: MetricPoint) {
  let best = 1
  for (let i = 1; i < out.length - 1; i++) if (Math.abs(out[i].t - p.t) < Math.abs(out[best].t - p.t)) best = i
  out[best] = p
  out.sort((x, y) => x.t - y.t)
}
