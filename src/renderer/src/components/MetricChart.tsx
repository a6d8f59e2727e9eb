import { CartesianGrid, Line, LineChart, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts'
import { formatBytes, formatTime } from '../../../shared/format'
import type { MetricPoint, SeriesInfo } from '../../../shared/metrics'
import { chartColors, useTheme } from '../stores/theme'

const COLORS = ['#4c9aff', '#2ea043', '#d29922', '#f85149', '#a371f7', '#39c5cf']

/** The theme's colours for axes, grid, tooltip and thresholds (re-read when the theme changes). */
function useChartColors() {
  return chartColors(useTheme((t) => t.resolved))
}

export function formatValue(v: number | null | undefined, unit: SeriesInfo['unit']): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—'
  if (unit === 'bytes') return formatBytes(v)
  if (unit === 'bytes/s') return `${formatBytes(v)}/s`
  if (unit === '%') return `${v.toFixed(v < 10 ? 1 : 0)} %`
  if (unit === 'ms') return `${v.toFixed(v < 10 ? 1 : 0)} ms`
  if (unit === 's') return `${v.toFixed(v > 0 && v < 1 ? 2 : 1)} s` // sub-second ticks stay distinct
  if (unit === 'count') return String(Math.round(v))
  return `${Number(v.toPrecision(3))} ${unit}`
}

const shortTime = (t: number, span: number) =>
  new Date(t).toLocaleString(
    undefined,
    // Ranges of days show dates; a day's range shows the day with the hour, so midnight is never ambiguous.
    span > 2 * 86_400_000
      ? { month: 'short', day: 'numeric' }
      : span > 6 * 3_600_000
        ? { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }
        : { hour: '2-digit', minute: '2-digit', ...(span <= 900_000 ? { second: '2-digit' } : {}) },
  )

export interface ChartLine {
  id: string
  label: string
  points: MetricPoint[]
}

/**
 * One chart of one or more series with the same unit: exact times and units in the tooltip, the y axis
 * in the unit, and reference lines where alert thresholds will be drawn.
 */
export function MetricChart({
  title,
  unit,
  lines,
  thresholds = [],
  height = 150,
}: {
  title: string
  unit: SeriesInfo['unit']
  lines: ChartLine[]
  thresholds?: { value: number; label: string }[]
  height?: number
}) {
  // Rows by time: each line's value under its id (lines sampled together share their times).
  const c = useChartColors()
  const rows = new Map<number, Record<string, number | null>>()
  for (const l of lines)
    for (const p of l.points) {
      const r = rows.get(p.t) ?? { t: p.t }
      r[l.id] = p.v
      // Rollups carry each bucket's extremes: drawn as faint lines so a one-second spike stays visible.
      if (p.max !== undefined) r[`${l.id}__max`] = p.max
      if (p.min !== undefined) r[`${l.id}__min`] = p.min
      rows.set(p.t, r)
    }
  const data = [...rows.values()].sort((a, b) => (a.t as number) - (b.t as number))
  const span = data.length > 1 ? (data[data.length - 1].t as number) - (data[0].t as number) : 0
  const last = lines.map((l) => l.points.at(-1)?.v ?? null)
  return (
    <figure className="chart" data-testid={`chart-${lines[0]?.id ?? title}`} data-points={data.length}>
      <figcaption>
        <span>{title}</span>
        <span className="chart-now">
          {lines.map((l, i) => (lines.length > 1 ? `${l.label} ` : '') + formatValue(last[i], unit)).join(' · ')}
        </span>
      </figcaption>
      {!data.some((r) => lines.some((l) => r[l.id] !== null && r[l.id] !== undefined)) ? (
        // No rows, or rows without a value (no replica to lag, no keyspace reads yet): say so rather than draw empty axes.
        <div className="chart-empty" style={{ height }}>
          {data.length ? 'No value to show in this range (nothing measured it yet).' : 'No data in this range yet.'}
        </div>
      ) : (
        <ResponsiveContainer width="100%" height={height}>
          <LineChart data={data} margin={{ top: 6, right: 10, bottom: 0, left: 0 }}>
            <CartesianGrid stroke={c.grid} strokeDasharray="3 3" />
            <XAxis
              dataKey="t"
              type="number"
              domain={['dataMin', 'dataMax']}
              scale="time"
              tickFormatter={(t: number) => shortTime(t, span)}
              stroke={c.axis}
              fontSize={11}
              minTickGap={40}
            />
            <YAxis
              stroke={c.axis}
              fontSize={11}
              width={84}
              allowDecimals={unit !== 'count'}
              tickFormatter={(v: number) => formatValue(v, unit)}
              // From zero (or below, for a negative value): a steady series then reads as a level line, not
              // as an axis of five identical labels around it.
              // A threshold above (or below) the data stays in view, so its line is drawn.
              domain={
                unit === '%'
                  ? [0, (max: number) => Math.max(100, max)]
                  : [
                      (min: number) => Math.min(0, min, ...thresholds.map((t) => t.value)),
                      (max: number) => Math.max(max, ...thresholds.map((t) => t.value * 1.1)),
                    ]
              }
            />
            <Tooltip
              contentStyle={{ background: c.panel, border: `1px solid ${c.grid}`, color: 'var(--text)', fontSize: 12 }}
              labelFormatter={(t) => formatTime(Number(t))}
              formatter={(v, name) => [formatValue(Number(v), unit), lines.find((l) => l.id === name)?.label ?? String(name)]}
            />
            {thresholds.map((th) => (
              <ReferenceLine
                key={th.label}
                y={th.value}
                stroke={c.bad}
                strokeDasharray="4 4"
                label={{ value: th.label, fill: c.bad, fontSize: 11 }}
              />
            ))}
            {lines.flatMap((l, i) =>
              l.points.some((p) => p.max !== undefined)
                ? (['max', 'min'] as const).map((k) => (
                    <Line
                      key={`${l.id}__${k}`}
                      dataKey={`${l.id}__${k}`}
                      name={`${l.id}__${k}`}
                      stroke={COLORS[i % COLORS.length]}
                      strokeOpacity={0.35}
                      strokeWidth={1}
                      dot={false}
                      isAnimationActive={false}
                      connectNulls
                      legendType="none"
                      tooltipType="none"
                    />
                  ))
                : [],
            )}
            {lines.map((l, i) => (
              <Line
                key={l.id}
                dataKey={l.id}
                name={l.id}
                stroke={COLORS[i % COLORS.length]}
                dot={false}
                isAnimationActive={false}
                strokeWidth={1.6}
                connectNulls
              />
            ))}
          </LineChart>
        </ResponsiveContainer>
      )}
    </figure>
  )
}

/** A small line for a health tile. */
export function Sparkline({ points }: { points: MetricPoint[] }) {
  const c = useChartColors()
  if (points.length < 2) return null
  return (
    <ResponsiveContainer width="100%" height={28}>
      <LineChart data={points} margin={{ top: 2, right: 0, bottom: 2, left: 0 }}>
        <YAxis hide domain={['auto', 'auto']} />
        <Line dataKey="v" stroke={c.accent} dot={false} isAnimationActive={false} strokeWidth={1.4} connectNulls />
      </LineChart>
    </ResponsiveContainer>
  )
}
