import { useEffect, useState } from 'react'
import { CartesianGrid, Line, LineChart, ReferenceArea, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts'
import { formatTime } from '../../../../shared/format'
import type { IncidentView, ReportSeries } from '../../../../shared/incidents'
import type { SeriesInfo } from '../../../../shared/metrics'
import { formatValue } from '../../components/MetricChart'
import { useApp } from '../../stores/app'
import { useIncidents } from '../../stores/incidents'
import { chartColors, useTheme } from '../../stores/theme'

const shortTime = (t: number, span: number) =>
  new Date(t).toLocaleString(
    undefined,
    span > 2 * 86_400_000 ? { month: 'short', day: 'numeric', hour: '2-digit' } : { hour: '2-digit', minute: '2-digit' },
  )

/** One series over the incident's window: its thresholds as dashed lines, the incident's start and end marked and shaded between. */
function SeriesChart({ s, start, end, from, to }: { s: ReportSeries; start: number | null; end: number | null; from: number; to: number }) {
  const c = chartColors(useTheme((t) => t.resolved))
  const unit = (s.unit ?? 'count') as SeriesInfo['unit']
  const data = s.points.map(([t, v]) => ({ t, v }))
  const has = data.some((d) => d.v !== null)
  const span = to - from
  return (
    <figure className="chart" data-testid={`incident-chart-${s.name}`} data-points={data.length}>
      <figcaption>
        <span>{s.name}</span>
        <span className="chart-now">{s.thresholds.map((th) => `${th.rule}: ${formatValue(th.value, unit)}`).join(' · ')}</span>
      </figcaption>
      {!has ? (
        <div className="chart-empty" style={{ height: 150 }}>
          No stored values of {s.name} in this window.
        </div>
      ) : (
        <ResponsiveContainer width="100%" height={170}>
          <LineChart data={data} margin={{ top: 14, right: 12, bottom: 0, left: 0 }}>
            <CartesianGrid stroke={c.grid} strokeDasharray="3 3" />
            <XAxis
              dataKey="t"
              type="number"
              domain={[from, to]}
              scale="time"
              tickFormatter={(t: number) => shortTime(t, span)}
              stroke={c.axis}
              fontSize={11}
              minTickGap={40}
              allowDataOverflow
            />
            <YAxis
              stroke={c.axis}
              fontSize={11}
              width={84}
              tickFormatter={(v: number) => formatValue(v, unit)}
              domain={[
                (min: number) => Math.min(0, min, ...s.thresholds.map((t) => t.value)),
                (max: number) => Math.max(max, ...s.thresholds.map((t) => t.value * 1.1)),
              ]}
            />
            <Tooltip
              contentStyle={{ background: c.panel, border: `1px solid ${c.grid}`, color: 'var(--text)', fontSize: 12 }}
              labelFormatter={(t) => formatTime(Number(t))}
              formatter={(v) => [formatValue(Number(v), unit), s.name]}
            />
            {start !== null && <ReferenceArea x1={start} x2={end ?? to} fill={c.bad} fillOpacity={0.07} ifOverflow="hidden" />}
            {start !== null && (
              <ReferenceLine
                x={start}
                stroke={c.bad}
                strokeWidth={1.5}
                label={{ value: 'start', position: 'insideTopRight', fill: c.bad, fontSize: 11 }}
              />
            )}
            {end !== null && (
              <ReferenceLine
                x={end}
                stroke={c.accent}
                strokeWidth={1.5}
                label={{ value: 'end', position: 'insideBottomLeft', fill: c.accent, fontSize: 11 }}
              />
            )}
            {s.thresholds.map((th) => (
              <ReferenceLine
                key={`${th.rule}-${th.value}`}
                y={th.value}
                stroke={th.severity === 'critical' ? c.bad : c.axis}
                strokeDasharray="4 4"
                label={{ value: th.rule, fill: th.severity === 'critical' ? c.bad : c.axis, fontSize: 11, position: 'insideBottomRight' }}
              />
            ))}
            <Line dataKey="v" name={s.name} stroke={c.accent} dot={false} isAnimationActive={false} strokeWidth={1.6} connectNulls />
          </LineChart>
        </ResponsiveContainer>
      )}
    </figure>
  )
}

/** Pin a series to the incident's chart (any the console collects), or unpin one pinned before. */
function PinPicker({ incident }: { incident: IncidentView }) {
  const api = useApp((s) => s.api)
  const refresh = useIncidents((s) => s.refresh)
  const [all, setAll] = useState<SeriesInfo[]>([])
  const [pick, setPick] = useState('')
  const [problem, setProblem] = useState<string | null>(null)
  useEffect(() => {
    if (api)
      void api.call('metrics.series', {}).then(
        (r) => setAll(r.series),
        () => setAll([]),
      )
  }, [api])
  const pin = async (series: string, pinned: boolean) => {
    if (!api) return
    setProblem(null)
    try {
      await api.call('incidents.pin', { id: incident.id, series, pinned })
      setPick('')
      await refresh()
    } catch (e) {
      setProblem((e as Error).message)
    }
  }
  const choices = all.filter((s) => !incident.pinnedSeries.includes(s.id))
  return (
    <div className="pin-picker" data-testid="pin-picker">
      <label>
        Pin a series{' '}
        <select value={pick} onChange={(e) => setPick(e.target.value)} data-testid="pin-series" aria-label="Series to pin">
          <option value="">Choose…</option>
          {choices.map((s) => (
            <option key={s.id} value={s.id}>
              {s.id} ({s.unit})
            </option>
          ))}
        </select>
      </label>
      <button onClick={() => void pin(pick, true)} disabled={!pick} data-testid="pin-add">
        Pin
      </button>
      {incident.pinnedSeries.map((s) => (
        <span key={s} className="pinned">
          <code>{s}</code>{' '}
          <button className="link" onClick={() => void pin(s, false)} aria-label={`Unpin ${s}`} data-testid={`unpin-${s}`}>
            unpin
          </button>
        </span>
      ))}
      {problem && (
        <span className="danger-text" role="alert">
          {problem}
        </span>
      )}
    </div>
  )
}

export function IncidentCharts({
  series,
  incident,
  window: w,
}: {
  series: ReportSeries[]
  incident: IncidentView | null
  window: { from: number; to: number }
}) {
  return (
    <section className="card" data-testid="incident-charts">
      <h3>Series</h3>
      {incident && <PinPicker incident={incident} />}
      {series.length ? (
        <div className="charts">
          {series.map((s) => (
            <SeriesChart key={s.name} s={s} start={incident?.openedAt ?? null} end={incident?.resolvedAt ?? null} from={w.from} to={w.to} />
          ))}
        </div>
      ) : (
        <p className="muted">No series yet: those of the incident's alerts appear here, and any you pin.</p>
      )}
    </section>
  )
}
