/**
 * A report series as an inline SVG line chart: axes with UTC time labels and value labels, the alert
 * thresholds as labelled dashed lines, the incident's start and end as labelled vertical lines. Plain
 * vector shapes and text only (Chromium prints them as PDF paths and text, never as a raster image).
 *
 * Dense series are reduced to at most `maxColumns` columns, each keeping its minimum and maximum, so
 * peaks survive and a 24-hour series at 10 s resolution still prints quickly.
 */
import type { ReportSeries } from '../../../shared/incidents'
import { num, utcDate, utcHm } from './format'
import { esc } from './html-escape'

export interface ChartOptions {
  from: number
  to: number
  markers: { at: number; label: string }[]
  width?: number
  height?: number
  maxColumns?: number
}

const f = (n: number) => (Math.round(n * 10) / 10).toFixed(1)

/** "Nice" tick values covering [lo, hi]. */
function niceTicks(lo: number, hi: number, count: number): number[] {
  if (lo === hi) {
    const d = Math.abs(lo) || 1
    lo -= d / 2
    hi += d / 2
  }
  const raw = (hi - lo) / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag
  const start = Math.floor(lo / step) * step
  const out: number[] = []
  for (let v = start; out.length < 20; v += step) {
    out.push(Number(v.toPrecision(12)))
    if (v >= hi) break
  }
  return out
}

const TIME_STEPS = [
  60_000,
  5 * 60_000,
  10 * 60_000,
  15 * 60_000,
  30 * 60_000,
  3_600_000,
  2 * 3_600_000,
  3 * 3_600_000,
  6 * 3_600_000,
  12 * 3_600_000,
  86_400_000,
]

function timeTicks(from: number, to: number, count: number): number[] {
  const span = Math.max(1, to - from)
  const step = TIME_STEPS.find((s) => span / s <= count) ?? Math.ceil(span / count / 86_400_000) * 86_400_000
  const out: number[] = []
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) out.push(t)
  return out
}

/** Min/max per column: the shape (and every peak) of a dense series with few points. */
export function downsample(points: [number, number | null][], from: number, to: number, columns: number): [number, number | null][] {
  if (points.length <= columns * 2) return points
  const span = Math.max(1, to - from)
  const out: [number, number | null][] = []
  let col = -1
  let lo: [number, number] | null = null
  let hi: [number, number] | null = null
  let gap = false
  const flush = () => {
    if (lo && hi) {
      if (lo[0] <= hi[0]) out.push(lo, ...(hi !== lo ? [hi] : []))
      else out.push(hi, lo)
    }
    if (gap) out.push([out.length ? out[out.length - 1][0] : from, null])
    lo = hi = null
    gap = false
  }
  for (const [t, v] of points) {
    const c = Math.floor(((t - from) / span) * columns)
    if (c !== col) {
      flush()
      col = c
    }
    if (v == null || !Number.isFinite(v)) {
      gap = true
      continue
    }
    if (!lo || v < lo[1]) lo = [t, v]
    if (!hi || v > hi[1]) hi = [t, v]
  }
  flush()
  return out
}

export function chartSvg(s: ReportSeries, o: ChartOptions): string {
  const W = o.width ?? 680
  const H = o.height ?? 210
  const L = 56
  const R = 14
  const T = 14
  const B = 34
  const pw = W - L - R
  const ph = H - T - B
  const from = o.from
  const to = Math.max(o.to, from + 1)
  const pts = downsample(
    s.points.filter(([t]) => t >= from && t <= to),
    from,
    to,
    o.maxColumns ?? 400,
  )
  const values = pts.map(([, v]) => v).filter((v): v is number => v != null && Number.isFinite(v))
  const all = [...values, ...s.thresholds.map((t) => t.value)]
  const lo0 = all.length ? Math.min(...all) : 0
  const hi0 = all.length ? Math.max(...all) : 1
  const yt = niceTicks(Math.min(lo0, 0 <= lo0 && lo0 < hi0 / 3 ? 0 : lo0), hi0, 4)
  const ylo = yt[0]
  const yhi = yt[yt.length - 1] === ylo ? ylo + 1 : yt[yt.length - 1]
  const x = (t: number) => L + ((t - from) / (to - from)) * pw
  const y = (v: number) => T + ph - ((v - ylo) / (yhi - ylo)) * ph
  const unit = s.unit ? ` ${s.unit}` : ''

  const parts: string[] = []
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(`Chart of ${s.name}`)}">`,
  )
  parts.push(`<title>${esc(s.name)}</title>`)
  // Grid and value axis.
  for (const v of yt) {
    const yy = f(y(v))
    parts.push(`<line class="grid" x1="${L}" x2="${L + pw}" y1="${yy}" y2="${yy}"/>`)
    parts.push(`<text class="ylab" x="${L - 5}" y="${yy}" text-anchor="end" dominant-baseline="middle">${esc(num(v))}</text>`)
  }
  // Time axis.
  const ticks = timeTicks(from, to, 6)
  const multiDay = utcDate(from) !== utcDate(to)
  for (const t of ticks) {
    const xx = f(x(t))
    parts.push(`<line class="tick" x1="${xx}" x2="${xx}" y1="${T + ph}" y2="${T + ph + 4}"/>`)
    const label = multiDay && t % 86_400_000 === 0 ? utcDate(t).slice(5) : utcHm(t)
    parts.push(`<text class="xlab" x="${xx}" y="${T + ph + 15}" text-anchor="middle">${esc(label)}</text>`)
  }
  parts.push(`<text class="xlab" x="${L + pw}" y="${T + ph + 28}" text-anchor="end">UTC</text>`)
  parts.push(`<line class="axis" x1="${L}" x2="${L}" y1="${T}" y2="${T + ph}"/>`)
  parts.push(`<line class="axis" x1="${L}" x2="${L + pw}" y1="${T + ph}" y2="${T + ph}"/>`)
  // The incident's start and end.
  // The start's label leans left of its line and the end's right, so close markers stay readable.
  o.markers.forEach((m, i) => {
    if (m.at < from || m.at > to) return
    const xx = x(m.at)
    const anchor = o.markers.length > 1 ? (i === 0 ? 'end' : 'start') : 'middle'
    const lx = anchor === 'end' ? xx + 2 : anchor === 'start' ? xx - 2 : xx
    parts.push(`<line class="marker" x1="${f(xx)}" x2="${f(xx)}" y1="${T}" y2="${T + ph}"/>`)
    parts.push(`<text class="mlab" x="${f(lx)}" y="${T - 3}" text-anchor="${anchor}">${esc(m.label)}</text>`)
  })
  // Thresholds.
  // Labels pushed apart where thresholds lie close together, so each stays readable.
  const placed: number[] = []
  const labelY = (yy: number) => {
    let v = yy
    while (placed.some((p) => Math.abs(p - v) < 11)) v -= 11
    placed.push(v)
    return v
  }
  s.thresholds.forEach((th) => {
    const yy = f(y(th.value))
    parts.push(`<line class="threshold ${th.severity === 'critical' ? 'crit' : 'warn'}" x1="${L}" x2="${L + pw}" y1="${yy}" y2="${yy}"/>`)
    const label = `${th.rule} ${num(th.value)}${unit} (${th.severity})`
    // Inside the plot, right-aligned just above its line.
    parts.push(
      `<text class="tlab ${th.severity === 'critical' ? 'crit' : 'warn'}" x="${L + pw - 4}" y="${f(labelY(Number(yy) - 4))}" text-anchor="end">${esc(label.length > 60 ? `${label.slice(0, 59)}…` : label)}</text>`,
    )
  })
  // The series, as one path with gaps where there is no value.
  let d = ''
  let pen = false
  for (const [t, v] of pts) {
    if (v == null || !Number.isFinite(v)) {
      pen = false
      continue
    }
    d += `${pen ? 'L' : 'M'}${f(x(t))},${f(y(v))}`
    pen = true
  }
  if (d) parts.push(`<path class="line" d="${d}"/>`)
  else parts.push(`<text class="empty" x="${L + pw / 2}" y="${T + ph / 2}" text-anchor="middle">no values in the window</text>`)
  if (s.unit) parts.push(`<text class="ylab" x="4" y="${T - 3}">${esc(s.unit)}</text>`)
  parts.push('</svg>')
  return parts.join('')
}
