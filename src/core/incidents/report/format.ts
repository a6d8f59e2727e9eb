/** Shared wording for every format: times in UTC (the offset said), durations, labels. */
import type { IncidentReport, TimelineEntryType } from '../../../shared/incidents'

const pad = (n: number, w = 2) => String(n).padStart(w, '0')

/** "2026-11-30 19:10:15 UTC". */
export function utc(ms: number): string {
  const d = new Date(ms)
  if (Number.isNaN(d.getTime())) return 'invalid time'
  return `${utcDate(ms)} ${utcTime(ms)} UTC`
}

/** "2026-11-30". */
export function utcDate(ms: number): string {
  const d = new Date(ms)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
}

/** "19:10:15". */
export function utcTime(ms: number): string {
  const d = new Date(ms)
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
}

/** "19:10" (chart axes). */
export function utcHm(ms: number): string {
  const d = new Date(ms)
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
}

export const TIME_NOTE = 'All times are UTC (offset +00:00).'

/** "2 h 5 min", "45 s", "3 d 4 h". */
export function duration(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms) || ms < 0) return '—'
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min${s % 60 ? ` ${s % 60} s` : ''}`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h} h${m % 60 ? ` ${m % 60} min` : ''}`
  const d = Math.floor(h / 24)
  return `${d} d${h % 24 ? ` ${h % 24} h` : ''}`
}

export const TYPE_LABEL: Record<TimelineEntryType, string> = {
  'incident.opened': 'Incident opened',
  'incident.status': 'Status',
  'incident.commander': 'Commander',
  'incident.note': 'Note',
  'alert.transition': 'Alert',
  'health.change': 'Health',
  'error.new_group': 'New error',
  'error.regressed': 'Regressed error',
  'error.spike': 'Error spike',
  backup: 'Backup',
  restore: 'Restore',
  'settings.change': 'Settings',
  audit: 'Audit',
}

export const LEVEL_MARK: Record<'critical' | 'warning' | 'info' | 'ok', string> = {
  critical: '✖ critical',
  warning: '▲ warning',
  info: '● info',
  ok: '✔ ok',
}

/** The facts of the title page, in one order for every format. */
export function titleFacts(r: IncidentReport): [string, string][] {
  const i = r.incident
  const facts: [string, string][] = []
  if (i) {
    facts.push(['Severity', i.severity])
    facts.push(['Status', i.status])
    facts.push(['Commander', i.commander ?? 'none'])
    facts.push([
      'Opened',
      `${utc(i.openedAt)} by ${i.openedBy}${i.origin === 'alert' && i.alertRule && !i.openedBy.includes(i.alertRule) ? ` (alert ${i.alertRule})` : ''}`,
    ])
    facts.push(['Resolved', i.resolvedAt != null ? utc(i.resolvedAt) : 'not resolved'])
    facts.push(['Duration', i.resolvedAt != null ? duration(i.resolvedAt - i.openedAt) : `${duration(r.generatedAt - i.openedAt)} so far`])
  } else {
    facts.push(['Incident', 'none declared: a report of a time window'])
  }
  facts.push([
    'Window',
    `${utc(r.window.from)} – ${utc(r.window.to)}${r.window.marginMs ? ` (with ${duration(r.window.marginMs)} before)` : ''}`,
  ])
  facts.push(['Timeline', `${r.timeline.length} entries`])
  facts.push(['Generated', `${utc(r.generatedAt)} by ${r.generatedBy}`])
  return facts
}

/** The incident's start and end on the charts (or the window's when no incident was declared). */
export function markers(r: IncidentReport): { at: number; label: string }[] {
  const i = r.incident
  if (!i) return []
  const out = [{ at: i.openedAt, label: 'incident start' }]
  if (i.resolvedAt != null) out.push({ at: i.resolvedAt, label: 'incident end' })
  return out
}

/** Min, max and last of a series' values (nulls are gaps). */
export function seriesStats(points: [number, number | null][]): { min: number; max: number; last: number; n: number } | null {
  let min = Infinity
  let max = -Infinity
  let last = NaN
  let n = 0
  for (const [, v] of points) {
    if (v == null || !Number.isFinite(v)) continue
    if (v < min) min = v
    if (v > max) max = v
    last = v
    n++
  }
  return n ? { min, max, last, n } : null
}

/** A value as people read it: up to 3 significant decimals, no exponent for ordinary sizes. */
export function num(v: number): string {
  if (!Number.isFinite(v)) return String(v)
  const a = Math.abs(v)
  if (a !== 0 && (a >= 1e9 || a < 1e-3)) return v.toExponential(2)
  if (Number.isInteger(v)) return String(v)
  return String(Number(v.toFixed(a >= 100 ? 1 : a >= 1 ? 2 : 3)))
}
