/**
 * Incidents: opened by a firing alert (the alert engine's `onFiring`, inside its transaction, so only the
 * leader opens them and a firing opens at most one: `ops.incident_alerts` is unique per alert and firing)
 * or declared by hand; status investigating → identified → monitoring → resolved (reopen allowed), each
 * change with who and when; a commander (an administrator when ADMIN_EMAILS is set); notes; pinned series;
 * the report (timeline, series, review) and its export in four formats (./report). Writes are audited and
 * emit `incidents.changed`.
 */
import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import { OpsError } from '../../shared/contract'
import {
  INCIDENT_REPORT_SCHEMA_VERSION,
  type ExportFormat,
  type IncidentReport,
  type IncidentReview,
  type IncidentSeverity,
  type IncidentStatus,
  type IncidentView,
} from '../../shared/incidents'
import type { FiredAlert } from '../alerts/engine'
import type { Rule } from '../alerts/rules'
import type { AuditLog } from '../audit/audit'
import type { Config } from '../config/config'
import type { OpsEvents } from '../events'
import type { Logger } from '../log/logger'
import { scrub } from '../log/scrub'
import { insertIncident, listIncidentIds, readIncidents, toView, type IncidentRecord } from './records'
import { renderReport, type PdfPrinter } from './report'
import { draftReview, usersAffected } from './review'
import { chartSeries, type SeriesDeps } from './series'
import { buildTimeline } from './timeline'

/** How long after an incident ends (or now) its timeline goes on. */
export const AFTER_MS = 5 * 60_000
/** The longest window a report of no incident covers (a month of records is already some 300,000 entries). */
export const MAX_WINDOW_MS = 31 * 86_400_000
/** The system's name on records it makes itself (an incident opened by an alert). */
export const SYSTEM_ACTOR = 'alerts'

export interface IncidentDeps {
  pool: () => pg.Pool | null
  config: Config
  audit: AuditLog
  events: OpsEvents
  log: Logger
  metrics: SeriesDeps
  rules: () => Rule[]
  /** Prints the HTML report to PDF: the face's (Electron's printToPDF); absent, the report prints with Playwright and a system Chromium. */
  printPdf?: PdfPrinter
}

export interface ExportResult {
  fileName: string
  mimeType: string
  encoding: 'utf8' | 'base64'
  data: string
  bytes: number
}

const newId = () => `inc-${randomBytes(4).toString('hex')}`

export class IncidentService {
  constructor(private d: IncidentDeps) {}

  private db(): pg.Pool {
    const pool = this.d.pool()
    if (!pool)
      throw new OpsError(
        'store_unavailable',
        'Incidents live in the ops store, which cannot be reached: check OPS_DATABASE_URL (or DATABASE_URL) and the Health page.',
      )
    return pool
  }

  /** A commander must be an administrator: one of ADMIN_EMAILS when it is set. */
  checkCommander(commander: string): string {
    const c = commander.trim()
    const admins = this.d.config.adminEmails
    if (admins.length && !admins.includes(c.toLowerCase()))
      throw new OpsError(
        'not_admin',
        `The commander must be an administrator, and "${c}" is not in ADMIN_EMAILS (${admins.join(', ')}). Choose one of them, or add the e-mail to ADMIN_EMAILS and restart.`,
      )
    return admins.length ? c.toLowerCase() : c
  }

  private async record(id: string): Promise<IncidentRecord> {
    const [r] = await readIncidents(this.db(), [id])
    if (!r) throw new OpsError('unknown_incident', `There is no incident "${id}": "examforge-ops incidents list" shows their ids.`)
    return r
  }

  async get(id: string): Promise<IncidentView> {
    return toView(await this.record(id))
  }

  async list(status: 'open' | 'resolved' | 'all' = 'all', limit = 100): Promise<IncidentView[]> {
    const db = this.db()
    return (await readIncidents(db, await listIncidentIds(db, status, limit))).map(toView)
  }

  private changed(v: { id: string; status: IncidentStatus }): void {
    this.d.events.emit('incidents.changed', { id: v.id, status: v.status })
  }

  /** Declare an incident by hand. */
  async open(
    input: {
      title: string
      severity: IncidentSeverity
      commander?: string
      from?: { kind: 'alert' | 'error_group' | 'health'; id: string }
      note?: string
    },
    who: string,
    defaultCommander: string | null,
  ): Promise<IncidentView> {
    let commander: string | null = null
    if (input.commander) commander = this.checkCommander(input.commander)
    else if (defaultCommander) {
      // Whoever declares it commands it, when they may (an administrator, or anyone while ADMIN_EMAILS is unset).
      const admins = this.d.config.adminEmails
      if (!admins.length || admins.includes(defaultCommander.toLowerCase())) commander = defaultCommander
    }
    const db = this.db()
    const id = newId()
    const now = Date.now()
    const c = await db.connect()
    try {
      await c.query('BEGIN')
      await insertIncident(c, {
        id,
        title: input.title,
        severity: input.severity,
        commander,
        origin: 'manual',
        alertRule: input.from?.kind === 'alert' ? input.from.id.split('/')[0] : null,
        declaredFrom: input.from ?? null,
        openedAt: now,
        openedBy: who,
      })
      if (input.from?.kind === 'alert') {
        // Declared from an alert: it is one of the incident's alerts (its series are charted).
        await c.query(
          `INSERT INTO ops.incident_alerts (incident_id, alert_id, rule, severity, fired_at, joined_at)
           SELECT $1, $2, s.rule, s.severity, COALESCE(s.fired_at, s.active_at, now()), now()
             FROM ops.alert_state s WHERE s.rule || '/' || s.fingerprint = $2 OR (s.rule = $2 AND strpos($2, '/') = 0)
           ON CONFLICT DO NOTHING`,
          [id, input.from.id],
        )
      }
      if (input.note?.trim())
        await c.query(`INSERT INTO ops.incident_notes (incident_id, at, by, text) VALUES ($1, now(), $2, $3)`, [id, who, input.note.trim()])
      await c.query('COMMIT')
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {})
      throw e
    } finally {
      c.release()
    }
    await this.d.audit.record({
      actor: who,
      action: 'incidents.open',
      target: id,
      outcome: 'opened',
      details: { title: input.title, severity: input.severity, commander, from: input.from ?? null },
    })
    const v = await this.get(id)
    this.changed(v)
    return v
  }

  async setStatus(id: string, status: IncidentStatus, who: string, note?: string): Promise<IncidentView> {
    const db = this.db()
    const c = await db.connect()
    let from: IncidentStatus
    try {
      await c.query('BEGIN')
      const { rows } = await c.query<{ status: IncidentStatus }>(`SELECT status FROM ops.incidents WHERE id = $1 FOR UPDATE`, [id])
      if (!rows[0]) throw new OpsError('unknown_incident', `There is no incident "${id}": "examforge-ops incidents list" shows their ids.`)
      from = rows[0].status
      if (from === status) throw new OpsError('unchanged', `Incident ${id} is already ${status}.`)
      await c.query(
        `UPDATE ops.incidents SET status = $2, last_activity_at = now(),
                resolved_at = CASE WHEN $2 = 'resolved' THEN now() ELSE NULL END WHERE id = $1`,
        [id, status],
      )
      await c.query(
        `INSERT INTO ops.incident_status_changes (incident_id, at, from_status, to_status, by) VALUES ($1, now(), $2, $3, $4)`,
        [id, from, status, who],
      )
      if (note?.trim())
        await c.query(`INSERT INTO ops.incident_notes (incident_id, at, by, text) VALUES ($1, now(), $2, $3)`, [id, who, note.trim()])
      await c.query('COMMIT')
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {})
      throw e
    } finally {
      c.release()
    }
    await this.d.audit.record({
      actor: who,
      action: from === 'resolved' ? 'incidents.reopen' : 'incidents.status',
      target: id,
      outcome: status,
      details: { from, to: status },
    })
    const v = await this.get(id)
    this.changed(v)
    return v
  }

  async setCommander(id: string, commander: string, who: string): Promise<IncidentView> {
    const to = this.checkCommander(commander)
    const db = this.db()
    const c = await db.connect()
    let prev: string | null = null
    try {
      await c.query('BEGIN')
      const { rows } = await c.query<{ commander: string | null }>(`SELECT commander FROM ops.incidents WHERE id = $1 FOR UPDATE`, [id])
      if (!rows[0]) throw new OpsError('unknown_incident', `There is no incident "${id}": "examforge-ops incidents list" shows their ids.`)
      prev = rows[0].commander
      if (prev !== to) {
        await c.query(`UPDATE ops.incidents SET commander = $2, last_activity_at = now() WHERE id = $1`, [id, to])
        await c.query(
          `INSERT INTO ops.incident_commanders (incident_id, at, from_commander, commander, by) VALUES ($1, now(), $2, $3, $4)`,
          [id, prev, to, who],
        )
      }
      await c.query('COMMIT')
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {})
      throw e
    } finally {
      c.release()
    }
    await this.d.audit.record({ actor: who, action: 'incidents.commander', target: id, outcome: 'set', details: { from: prev, to } })
    const v = await this.get(id)
    this.changed(v)
    return v
  }

  async note(id: string, text: string, who: string): Promise<{ id: string; at: number }> {
    const db = this.db()
    const { rows } = await db.query<{ id: string; at: Date; status: IncidentStatus }>(
      `WITH i AS (UPDATE ops.incidents SET last_activity_at = now() WHERE id = $1 RETURNING id, status)
       INSERT INTO ops.incident_notes (incident_id, at, by, text) SELECT i.id, now(), $2, $3 FROM i RETURNING id, at, (SELECT status FROM i)`,
      [id, who, text.trim()],
    )
    if (!rows[0]) throw new OpsError('unknown_incident', `There is no incident "${id}": "examforge-ops incidents list" shows their ids.`)
    await this.d.audit.record({ actor: who, action: 'incidents.note', target: id, outcome: 'added', details: { chars: text.length } })
    this.changed({ id, status: rows[0].status })
    return { id: `incident.note:${rows[0].id}`, at: rows[0].at.getTime() }
  }

  async pin(id: string, series: string, pinned: boolean, who: string): Promise<IncidentView> {
    const { rowCount } = await this.db().query(
      pinned
        ? `UPDATE ops.incidents SET pinned_series = array_append(array_remove(pinned_series, $2), $2) WHERE id = $1`
        : `UPDATE ops.incidents SET pinned_series = array_remove(pinned_series, $2) WHERE id = $1`,
      [id, series],
    )
    if (!rowCount) throw new OpsError('unknown_incident', `There is no incident "${id}": "examforge-ops incidents list" shows their ids.`)
    await this.d.audit.record({
      actor: who,
      action: pinned ? 'incidents.pin' : 'incidents.unpin',
      target: id,
      outcome: 'saved',
      details: { series },
    })
    const v = await this.get(id)
    this.changed(v)
    return v
  }

  async saveReview(id: string, review: Omit<IncidentReview, 'editedBy' | 'editedAt'>, who: string): Promise<IncidentReview> {
    const inc = await this.record(id)
    if (inc.status !== 'resolved')
      throw new OpsError(
        'not_resolved',
        `Incident ${id} is ${inc.status}: resolve it first ("examforge-ops incidents resolve ${id}"), then write its review.`,
      )
    const saved: IncidentReview = { ...review, editedBy: who, editedAt: Date.now() }
    await this.db().query(`UPDATE ops.incidents SET review = $2 WHERE id = $1`, [id, JSON.stringify(saved)])
    await this.d.audit.record({
      actor: who,
      action: 'incidents.review',
      target: id,
      outcome: 'saved',
      details: { actionItems: review.actionItems.length },
    })
    this.changed({ id, status: inc.status })
    return saved
  }

  /** The window an incident's report covers: the margin before it opened, to a little after it ended (or now). */
  windowOf(inc: Pick<IncidentRecord, 'openedAt' | 'resolvedAt'>, now = Date.now()): { from: number; to: number; marginMs: number } {
    const marginMs = this.d.config.incidents.marginMs
    return { from: inc.openedAt - marginMs, to: (inc.resolvedAt ?? now) + AFTER_MS, marginMs }
  }

  /** An incident's report: the incident, its timeline, series and review (a draft once resolved, until one is saved). */
  async report(id: string, who: string): Promise<IncidentReport> {
    const inc = await this.record(id)
    const db = this.db()
    const window = this.windowOf(inc)
    const [timeline, series] = await Promise.all([
      buildTimeline(db, { from: window.from, to: window.to, incidentId: id }),
      chartSeries(this.d.metrics, this.d.rules(), [...new Set(inc.alerts.map((a) => a.rule))], inc.pinnedSeries, window.from, window.to),
    ])
    for (const p of timeline.problems) this.d.log.warn(`incident timeline: ${p}`)
    let review = inc.review
    if (!review && inc.status === 'resolved') review = draftReview(inc, timeline.entries, await usersAffected(db, window.from, window.to))
    return {
      schemaVersion: INCIDENT_REPORT_SCHEMA_VERSION,
      generatedAt: Date.now(),
      generatedBy: who,
      incident: toView(inc),
      window,
      title: scrub(inc.title),
      timeline: timeline.entries,
      series,
      review,
    }
  }

  /** A report of a window with no incident declared: every source's entries, every incident's records in it, the series of the alerts that fired. */
  async windowReport(from: number, to: number, who: string): Promise<IncidentReport> {
    if (!(from < to)) throw new OpsError('bad_window', 'The window must start before it ends: give --from earlier than --to.')
    if (to - from > MAX_WINDOW_MS)
      throw new OpsError('bad_window', 'A report covers at most 31 days: give a shorter window (--from and --to), or one report per month.')
    const db = this.db()
    const timeline = await buildTimeline(db, { from, to, incidentId: null })
    for (const p of timeline.problems) this.d.log.warn(`timeline: ${p}`)
    const fired = [
      ...new Set(timeline.entries.filter((e) => e.type === 'alert.transition' && e.data.to === 'firing').map((e) => String(e.data.rule))),
    ]
    const series = await chartSeries(this.d.metrics, this.d.rules(), fired, [], from, to)
    return {
      schemaVersion: INCIDENT_REPORT_SCHEMA_VERSION,
      generatedAt: Date.now(),
      generatedBy: who,
      incident: null,
      window: { from, to, marginMs: 0 },
      title: `What happened from ${new Date(from).toISOString()} to ${new Date(to).toISOString()}`,
      timeline: timeline.entries,
      series,
      review: null,
    }
  }

  /** The report in one format: text as utf8, the PDF as base64. */
  async export(
    input: { id?: string; from?: number; to?: number; format: ExportFormat; paper: 'A4' | 'Letter' },
    who: string,
  ): Promise<ExportResult> {
    const report = input.id ? await this.report(input.id, who) : await this.windowReport(input.from!, input.to!, who)
    const r = await renderReport(report, input.format, { paper: input.paper, printPdf: this.d.printPdf })
    const buf = typeof r.data === 'string' ? Buffer.from(r.data, 'utf8') : r.data
    await this.d.audit.record({
      actor: who,
      action: 'incidents.export',
      target: input.id ?? `${new Date(input.from!).toISOString()}/${new Date(input.to!).toISOString()}`,
      outcome: 'exported',
      details: { format: input.format, bytes: buf.length },
    })
    return {
      fileName: r.fileName,
      mimeType: r.mimeType,
      encoding: r.encoding,
      data: r.encoding === 'base64' ? buf.toString('base64') : typeof r.data === 'string' ? r.data : buf.toString('utf8'),
      bytes: buf.length,
    }
  }

  /**
   * The alert engine's hook, inside its transaction: each fired alert of an auto-open severity joins the open
   * incident whose last activity is within INCIDENT_JOIN_WINDOW of its firing, or opens a new one. A firing
   * already recorded (same alert, same fired_at) is skipped. Returns what to do after the commit (audit, events).
   */
  async onFiring(c: pg.PoolClient, fired: FiredAlert[]): Promise<() => Promise<void>> {
    const { autoOpenSeverities, joinWindowMs } = this.d.config.incidents
    const todo = fired.filter((f) => autoOpenSeverities.includes(f.severity)).sort((a, b) => a.firedAt - b.firedAt)
    const done: { id: string; status: IncidentStatus; opened: boolean; alert: FiredAlert }[] = []
    if (todo.length) {
      // Serialises openings across processes (only the leader evaluates; this also covers a takeover's overlap).
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('examforge-ops:incidents'))`)
      for (const f of todo) {
        const seen = await c.query(`SELECT 1 FROM ops.incident_alerts WHERE alert_id = $1 AND fired_at = to_timestamp($2 / 1000.0)`, [
          f.id,
          f.firedAt,
        ])
        if (seen.rowCount) continue
        let incidentId: string | null = null
        let status: IncidentStatus = 'investigating'
        if (joinWindowMs > 0) {
          const { rows } = await c.query<{ id: string; status: IncidentStatus }>(
            `SELECT id, status FROM ops.incidents WHERE status <> 'resolved' AND last_activity_at >= to_timestamp($1 / 1000.0)
              ORDER BY last_activity_at DESC LIMIT 1`,
            [f.firedAt - joinWindowMs],
          )
          incidentId = rows[0]?.id ?? null
          status = rows[0]?.status ?? status
        }
        const opened = !incidentId
        if (!incidentId) {
          incidentId = newId()
          const what = f.summary ?? f.text ?? (f.value != null ? String(f.value) : null)
          await insertIncident(c, {
            id: incidentId,
            title: scrub(`${f.rule} firing${what ? `: ${what}` : ''}`).slice(0, 200),
            severity: f.severity,
            commander: null,
            origin: 'alert',
            alertRule: f.rule,
            declaredFrom: null,
            openedAt: f.firedAt,
            openedBy: SYSTEM_ACTOR,
          })
        } else
          await c.query(`UPDATE ops.incidents SET last_activity_at = GREATEST(last_activity_at, to_timestamp($2 / 1000.0)) WHERE id = $1`, [
            incidentId,
            f.firedAt,
          ])
        await c.query(
          `INSERT INTO ops.incident_alerts (incident_id, alert_id, rule, severity, fired_at, joined_at)
           VALUES ($1, $2, $3, $4, to_timestamp($5 / 1000.0), to_timestamp($5 / 1000.0)) ON CONFLICT DO NOTHING`,
          [incidentId, f.id, f.rule, f.severity, f.firedAt],
        )
        done.push({ id: incidentId, status, opened, alert: f })
      }
    }
    return async () => {
      for (const x of done) {
        await this.d.audit.record({
          actor: SYSTEM_ACTOR,
          action: x.opened ? 'incidents.open' : 'incidents.join',
          target: x.id,
          outcome: x.opened ? 'opened' : 'joined',
          details: { alert: x.alert.id, rule: x.alert.rule, severity: x.alert.severity },
        })
        this.changed({ id: x.id, status: x.status })
      }
    }
  }
}
