/**
 * The metric series an incident charts: those its alerts' rules watch (metric kinds: threshold, forecast,
 * anomaly name a `series`) plus the ones the operator pinned, read from the metrics store over the window
 * and downsampled (MinMaxLTTB, metrics/service.ts) to a few hundred points. Threshold and forecast rules
 * put their threshold on the chart; an anomaly's threshold is a z-score, not a value of the series, so it
 * draws none.
 */
import type { ReportSeries } from '../../shared/incidents'
import type { HistoryResult, LatestValue } from '../../shared/metrics'
import type { Rule } from '../alerts/rules'

/** Points per charted series. */
export const SERIES_POINTS = 300
/** At most this many series on an incident's chart (rules naming a series by its name can match many label sets). */
export const MAX_SERIES = 12

export interface SeriesDeps {
  latest: () => LatestValue[]
  history: (series: string, from: number, to: number, points: number, host?: string) => Promise<HistoryResult>
}

const METRIC_KINDS = new Set(['threshold', 'forecast', 'anomaly'])

/** The series of these rules (by name) and the pinned ones, with thresholds, over [from, to]. */
export async function chartSeries(
  deps: SeriesDeps,
  rules: Rule[],
  ruleNames: string[],
  pinned: string[],
  from: number,
  to: number,
): Promise<ReportSeries[]> {
  const latest = deps.latest()
  const want = new Map<string, { id: string; host?: string; unit: string | null; thresholds: ReportSeries['thresholds'] }>()
  const add = (series: string, host: string | undefined, threshold: ReportSeries['thresholds'][number] | null) => {
    const found = latest.filter((l) => (l.id === series || l.name === series) && (!host || l.host === host))
    // Not among this process' series (another host's, or not collected here): chart the id as written.
    const ids = found.length ? found.map((f) => ({ id: f.id, unit: f.unit as string })) : [{ id: series, unit: null }]
    for (const x of ids) {
      const key = `${host ?? ''}|${x.id}`
      const w = want.get(key) ?? { id: x.id, host, unit: x.unit, thresholds: [] }
      if (threshold && !w.thresholds.some((t) => t.rule === threshold.rule)) w.thresholds.push(threshold)
      want.set(key, w)
    }
  }
  const byName = new Map(rules.map((r) => [r.name, r]))
  for (const name of ruleNames) {
    const rule = byName.get(name)
    if (!rule || !METRIC_KINDS.has(rule.kind)) continue
    const series = rule.series ?? (typeof rule.params.series === 'string' ? rule.params.series : null)
    if (!series) continue
    const host = rule.host ?? (typeof rule.params.host === 'string' ? rule.params.host : undefined)
    add(series, host, rule.kind === 'anomaly' ? null : { value: rule.threshold, rule: rule.name, severity: rule.severity })
  }
  for (const p of pinned) add(p, undefined, null)
  const chosen = [...want.values()].slice(0, MAX_SERIES)
  return Promise.all(
    chosen.map(async (w) => {
      const h = await deps.history(w.id, from, to, SERIES_POINTS, w.host).catch(() => null)
      return {
        name: w.host ? `${w.id} @ ${w.host}` : w.id,
        unit: w.unit,
        points: (h?.points ?? []).map((p) => [p.t, p.v] as [number, number | null]),
        thresholds: w.thresholds,
      }
    }),
  )
}
