/**
 * The post-incident review's pre-filled draft, offered once an incident is resolved until an operator saves
 * one: a summary from the title, severity and duration; the impact's duration, the services (those whose
 * health went bad in the window, and the `service` / `job` / `instance` labels of the alerts that fired in
 * it) and the users affected (distinct users of the error events in the window, where the events carry a
 * user; null when none does); root cause, what went well or badly and action items left for the operator.
 */
import type pg from 'pg'
import type { IncidentReview, TimelineEntry } from '../../shared/incidents'
import type { IncidentRecord } from './records'

export function formatSpan(ms: number): string {
  if (ms < 60_000) return `${Math.max(0, Math.round(ms / 1000))} s`
  const m = Math.round(ms / 60_000)
  if (m < 60) return `${m} min`
  const h = Math.floor(m / 60)
  const d = Math.floor(h / 24)
  if (d) return `${d} d ${h % 24} h`
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`
}

/** Services the timeline shows in trouble: health changes to anything but healthy, and firing alerts' service labels. */
export function servicesOf(timeline: TimelineEntry[]): string[] {
  const out = new Set<string>()
  for (const e of timeline) {
    if (e.type === 'health.change' && e.data.to !== 'healthy' && e.data.to !== 'not_configured' && typeof e.data.service === 'string')
      out.add(e.data.service)
    if (e.type === 'alert.transition' && e.data.to === 'firing') {
      const labels = (e.data.labels ?? {}) as Record<string, string>
      for (const k of ['service', 'job', 'instance']) if (labels[k]) out.add(labels[k])
    }
  }
  return [...out].sort()
}

/** Distinct users in the error events of [from, to]; null when no event there names a user (the data does not say). */
export async function usersAffected(db: pg.Pool, from: number, to: number): Promise<number | null> {
  try {
    const { rows } = await db.query<{ n: string }>(
      `SELECT count(DISTINCT user_key) AS n FROM ops.error_events WHERE occurred_at >= $1 AND occurred_at <= $2 AND user_key IS NOT NULL`,
      [new Date(from), new Date(to)],
    )
    const n = Number(rows[0]?.n ?? 0)
    return n > 0 ? n : null
  } catch (e) {
    if ((e as { code?: string }).code === '42P01') return null // no error tracking in this store
    throw e
  }
}

export function draftReview(inc: IncidentRecord, timeline: TimelineEntry[], users: number | null): IncidentReview {
  const durationMs = inc.resolvedAt != null ? inc.resolvedAt - inc.openedAt : null
  const services = servicesOf(timeline)
  const span = durationMs != null ? formatSpan(durationMs) : null
  const from = new Date(inc.openedAt).toISOString().replace('T', ' ').slice(0, 16)
  const to = inc.resolvedAt != null ? new Date(inc.resolvedAt).toISOString().replace('T', ' ').slice(0, 16) : null
  const rules = [...new Set(inc.alerts.map((a) => a.rule))]
  const summary =
    `${inc.title}: a ${inc.severity} incident${span ? ` lasting ${span}` : ''}, from ${from}${to ? ` to ${to}` : ''} UTC.` +
    (rules.length ? ` Alerts: ${rules.join(', ')}.` : '') +
    (inc.commander ? ` Commander: ${inc.commander}.` : '')
  const impact = [
    span ? `Duration ${span}.` : null,
    services.length ? `Services affected: ${services.join(', ')}.` : null,
    users != null ? `${users} user${users === 1 ? '' : 's'} affected (from the error events).` : null,
  ]
    .filter(Boolean)
    .join(' ')
  return {
    summary,
    impact: { durationMs, services, usersAffected: users, text: impact },
    rootCause: '',
    wentWell: '',
    wentBadly: '',
    actionItems: [],
    editedBy: null,
    editedAt: null,
  }
}
