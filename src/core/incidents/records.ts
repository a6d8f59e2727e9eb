/**
 * The incidents' own records in ops (migration 15): the incident, its status changes, commander changes,
 * notes, the alerts that opened or joined it, its pinned series and its saved review. Reading many
 * incidents takes three queries whatever their number (no query per incident).
 */
import type pg from 'pg'
import type { IncidentReview, IncidentSeverity, IncidentStatus, IncidentView } from '../../shared/incidents'

type Db = pg.Pool | pg.PoolClient

interface IncidentRow {
  id: string
  title: string
  severity: IncidentSeverity
  status: IncidentStatus
  commander: string | null
  origin: 'alert' | 'manual'
  alert_rule: string | null
  declared_from: { kind: string; id: string } | null
  opened_at: Date
  opened_by: string
  resolved_at: Date | null
  last_activity_at: Date
  pinned_series: string[]
  review: IncidentReview | null
}

export interface IncidentRecord extends IncidentView {
  declaredFrom: { kind: string; id: string } | null
  lastActivityAt: number
  review: IncidentReview | null
}

/** Incidents by id, in the order asked, with their status changes and alerts. */
export async function readIncidents(db: Db, ids: string[]): Promise<IncidentRecord[]> {
  if (!ids.length) return []
  const [inc, changes, alerts] = await Promise.all([
    db.query<IncidentRow>(`SELECT * FROM ops.incidents WHERE id = ANY($1)`, [ids]),
    db.query<{ incident_id: string; at: Date; from_status: IncidentStatus | null; to_status: IncidentStatus; by: string }>(
      `SELECT incident_id, at, from_status, to_status, by FROM ops.incident_status_changes WHERE incident_id = ANY($1) ORDER BY at, id`,
      [ids],
    ),
    db.query<{ incident_id: string; alert_id: string; rule: string; joined_at: Date }>(
      `SELECT incident_id, alert_id, rule, joined_at FROM ops.incident_alerts WHERE incident_id = ANY($1) ORDER BY joined_at, alert_id`,
      [ids],
    ),
  ])
  const byId = new Map(inc.rows.map((r) => [r.id, r]))
  const out: IncidentRecord[] = []
  for (const id of ids) {
    const r = byId.get(id)
    if (!r) continue
    out.push({
      id: r.id,
      title: r.title,
      severity: r.severity,
      status: r.status,
      commander: r.commander,
      openedAt: r.opened_at.getTime(),
      openedBy: r.opened_by,
      origin: r.origin,
      alertRule: r.alert_rule,
      resolvedAt: r.resolved_at?.getTime() ?? null,
      statusChanges: changes.rows
        .filter((c) => c.incident_id === id)
        .map((c) => ({ at: c.at.getTime(), from: c.from_status, to: c.to_status, by: c.by })),
      pinnedSeries: r.pinned_series,
      alerts: alerts.rows
        .filter((a) => a.incident_id === id)
        .map((a) => ({ id: a.alert_id, rule: a.rule, joinedAt: a.joined_at.getTime() })),
      declaredFrom: r.declared_from,
      lastActivityAt: r.last_activity_at.getTime(),
      review: r.review,
    })
  }
  return out
}

/** The view the contract carries (no store-only fields). */
export function toView(r: IncidentRecord): IncidentView {
  return {
    id: r.id,
    title: r.title,
    severity: r.severity,
    status: r.status,
    commander: r.commander,
    openedAt: r.openedAt,
    openedBy: r.openedBy,
    origin: r.origin,
    alertRule: r.alertRule,
    resolvedAt: r.resolvedAt,
    statusChanges: r.statusChanges,
    pinnedSeries: r.pinnedSeries,
    alerts: r.alerts,
  }
}

export interface NewIncident {
  id: string
  title: string
  severity: IncidentSeverity
  commander: string | null
  origin: 'alert' | 'manual'
  alertRule: string | null
  declaredFrom: { kind: string; id: string } | null
  openedAt: number
  openedBy: string
}

/** Insert an incident and its first status (investigating). */
export async function insertIncident(db: Db, n: NewIncident): Promise<void> {
  await db.query(
    `INSERT INTO ops.incidents (id, title, severity, status, commander, origin, alert_rule, declared_from, opened_at, opened_by, last_activity_at)
     VALUES ($1, $2, $3, 'investigating', $4, $5, $6, $7, to_timestamp($8 / 1000.0), $9, to_timestamp($8 / 1000.0))`,
    [
      n.id,
      n.title,
      n.severity,
      n.commander,
      n.origin,
      n.alertRule,
      n.declaredFrom ? JSON.stringify(n.declaredFrom) : null,
      n.openedAt,
      n.openedBy,
    ],
  )
  await db.query(
    `INSERT INTO ops.incident_status_changes (incident_id, at, from_status, to_status, by) VALUES ($1, to_timestamp($2 / 1000.0), NULL, 'investigating', $3)`,
    [n.id, n.openedAt, n.openedBy],
  )
  if (n.commander)
    await db.query(
      `INSERT INTO ops.incident_commanders (incident_id, at, from_commander, commander, by) VALUES ($1, to_timestamp($2 / 1000.0), NULL, $3, $4)`,
      [n.id, n.openedAt, n.commander, n.openedBy],
    )
}

/** Ids of incidents, newest first. */
export async function listIncidentIds(db: Db, status: 'open' | 'resolved' | 'all', limit: number): Promise<string[]> {
  const where = status === 'open' ? `WHERE status <> 'resolved'` : status === 'resolved' ? `WHERE status = 'resolved'` : ''
  const { rows } = await db.query<{ id: string }>(`SELECT id FROM ops.incidents ${where} ORDER BY opened_at DESC, id DESC LIMIT $1`, [
    limit,
  ])
  return rows.map((r) => r.id)
}
