/**
 * The timeline of a window: everything the store recorded between `from` and `to`, one entry per event,
 * in time order. One query per source, all in parallel, each an index range scan on its time column
 * (migration 15 adds the ones the older tables lacked); no query per row. A source whose table is missing
 * (an older store) or that fails gives no entries and is named in `problems`, never breaking the rest.
 *
 * Sources and their rules (docs/incidents.md says the same for operators):
 * - alert transitions (ops.alert_transitions): every phase change; level from the rule's severity when it
 *   fires, ok when it resolves;
 * - health changes (ops.health_changes): unhealthy → critical, degraded → warning, healthy → ok;
 * - error groups: a group whose first event is in the window (error.new_group), a group that regressed in
 *   it (error.regressed: ops.error_groups.regressed_at, the latest regression), and spikes from the hourly
 *   counts (error.spike): an hour overlapping the window whose count is at least SPIKE_MIN_EVENTS and at
 *   least SPIKE_FACTOR times the group's average hour over the 24 hours before it (hours without events
 *   count as 0, so a group's first busy hour is a spike too);
 * - backups and verifies (ops.jobs, kinds backup.full / backup.incremental / backup.verify) when they end,
 *   linked to their set;
 * - restores, undos and restore tests (ops.restores) when they end (or start, while running), with their check;
 * - settings changes (audit action settings.update) and every other audit record, except those another
 *   source already shows (the incidents' own writes, backup and restore jobs);
 * - the incident's own records: opened, status changes, commander changes, notes (Markdown).
 * Every text is passed through scrub() (secrets and credential shapes removed) before it leaves core.
 */
import type pg from 'pg'
import type { TimelineEntry, TimelineEntryType } from '../../shared/incidents'
import { scrub } from '../log/scrub'

export const SPIKE_MIN_EVENTS = 10
export const SPIKE_FACTOR = 3

type Level = TimelineEntry['level']

export interface TimelineQuery {
  from: number
  to: number
  /** Only this incident's own records; null: every incident's records within the window. */
  incidentId: string | null
}

export interface TimelineResult {
  entries: TimelineEntry[]
  /** Sources that could not be read, and why (missing table in an older store, a failed query). */
  problems: string[]
}

/** Ties at the same millisecond keep this order, then the source's own order (its row id). */
const RANK: Record<TimelineEntryType, number> = {
  'health.change': 0,
  'alert.transition': 1,
  'error.new_group': 2,
  'error.regressed': 3,
  'error.spike': 4,
  backup: 5,
  restore: 6,
  'settings.change': 7,
  audit: 8,
  'incident.opened': 9,
  'incident.commander': 10,
  'incident.status': 11,
  'incident.note': 12,
}

interface Keyed {
  e: TimelineEntry
  seq: number
}

/** Times are selected as milliseconds (ms(col)): parsing 10,000 timestamps into Dates costs more than the queries. */
const t = (d: Date | number | null | undefined): number => (d == null ? 0 : typeof d === 'number' ? d : d.getTime())
const ms = (col: string, as = col.replace(/^\w+\./, '')) => `floor(extract(epoch FROM ${col}) * 1000)::float8 AS ${as}`
/** A record's own fields (undefined left out); scrubbed with the rest of the entry in scrubEntries. */
function data(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v
  return out
}

/**
 * Every text of every entry through scrub() in one call: the strings (titles, details, data at any depth) are
 * joined with a separator no scrub pattern can cross (a newline and a control character: the credential
 * patterns stop at whitespace, the key shapes are word-bounded, and a registered secret holds neither), scrubbed
 * together and put back. One call on the whole text instead of one per string: a 10,000-entry timeline holds some
 * 80,000 strings, and a call per string cost more than all the queries together.
 */
const SEP = '\n\u0001\n'
export function scrubEntries(entries: TimelineEntry[]): void {
  const slots: [Record<string, unknown> | unknown[], string | number][] = []
  const texts: string[] = []
  const walk = (o: Record<string, unknown> | unknown[]) => {
    const keys: (string | number)[] = Array.isArray(o) ? o.map((_, i) => i) : Object.keys(o)
    for (const k of keys) {
      const v = (o as Record<string | number, unknown>)[k]
      if (typeof v === 'string') {
        if (v.length >= 4) {
          slots.push([o, k])
          texts.push(v)
        }
      } else if (v !== null && typeof v === 'object') walk(v as Record<string, unknown>)
    }
  }
  for (const e of entries) walk(e as unknown as Record<string, unknown>)
  if (!texts.length) return
  const joined = texts.join(SEP)
  const out = scrub(joined)
  if (out === joined) return
  const parts = out.split(SEP)
  if (parts.length !== texts.length) {
    // A secret spanning a separator cannot happen; should it, scrub each string on its own.
    slots.forEach(([o, k], i) => ((o as Record<string | number, unknown>)[k] = scrub(texts[i])))
    return
  }
  slots.forEach(([o, k], i) => ((o as Record<string | number, unknown>)[k] = parts[i]))
}

const healthLevel = (s: string): Level => (s === 'unhealthy' ? 'critical' : s === 'degraded' ? 'warning' : s === 'healthy' ? 'ok' : 'info')
const severityLevel = (s: string | null): Level => (s === 'critical' ? 'critical' : s === 'warning' ? 'warning' : 'info')
const errorLevel = (s: string): Level => (s === 'fatal' || s === 'error' ? 'critical' : s === 'warning' ? 'warning' : 'info')

type Source = (db: pg.Pool, q: TimelineQuery) => Promise<Keyed[]>

const range = (q: TimelineQuery) => [new Date(q.from), new Date(q.to)]

const alertTransitions: Source = async (db, q) => {
  const { rows } = await db.query(
    `SELECT x.id, x.rule, x.fingerprint, x.labels, x.from_phase, x.to_phase, x.value, x.text, ${ms('x.at')}, s.severity
       FROM ops.alert_transitions x LEFT JOIN ops.alert_state s ON s.rule = x.rule AND s.fingerprint = x.fingerprint
      WHERE x.at >= $1 AND x.at <= $2`,
    range(q),
  )
  return rows.map((r) => {
    const labels = Object.entries(r.labels as Record<string, string>)
      .filter(([, v]) => v !== '')
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')
    const level: Level =
      r.to_phase === 'firing' ? severityLevel(r.severity) : r.to_phase === 'resolved' ? 'ok' : r.to_phase === 'pending' ? 'warning' : 'info'
    return {
      seq: Number(r.id),
      e: {
        id: `alert.transition:${r.id}`,
        type: 'alert.transition',
        at: t(r.at),
        title: `Alert ${r.rule} ${r.to_phase}${labels ? ` (${labels})` : ''}${r.text ? `: ${r.text}` : r.value != null ? `: ${r.value}` : ''}`,
        detail: null,
        level,
        actor: null,
        source: { kind: 'alert', id: `${r.rule}/${r.fingerprint}` },
        data: data({
          rule: r.rule,
          fingerprint: r.fingerprint,
          labels: r.labels,
          from: r.from_phase,
          to: r.to_phase,
          value: r.value,
          text: r.text,
          severity: r.severity ?? null,
        }),
      },
    }
  })
}

const healthChanges: Source = async (db, q) => {
  const { rows } = await db.query(
    `SELECT id, service, from_status, to_status, reason, ${ms('at')} FROM ops.health_changes WHERE at >= $1 AND at <= $2`,
    range(q),
  )
  return rows.map((r) => ({
    seq: Number(r.id),
    e: {
      id: `health.change:${r.id}`,
      type: 'health.change',
      at: t(r.at),
      title: `${r.service} ${r.from_status ?? 'unknown'} → ${r.to_status}${r.reason ? `: ${r.reason}` : ''}`,
      detail: null,
      level: healthLevel(r.to_status),
      actor: null,
      source: { kind: 'health', id: r.service },
      data: data({ service: r.service, from: r.from_status, to: r.to_status, reason: r.reason }),
    },
  }))
}

const errorGroups: Source = async (db, q) => {
  const [fresh, regressed] = await Promise.all([
    db.query(
      `SELECT id, title, culprit, level, ${ms('first_seen')}, count, users FROM ops.error_groups WHERE first_seen >= $1 AND first_seen <= $2`,
      range(q),
    ),
    db.query(
      `SELECT id, title, culprit, level, ${ms('regressed_at')}, count, users, last_release FROM ops.error_groups WHERE regressed_at >= $1 AND regressed_at <= $2`,
      range(q),
    ),
  ])
  const out: Keyed[] = []
  for (const r of fresh.rows)
    out.push({
      seq: 0,
      e: {
        id: `error.new_group:${r.id}`,
        type: 'error.new_group',
        at: t(r.first_seen),
        title: `New error: ${r.title}`,
        detail: r.culprit || null,
        level: errorLevel(r.level),
        actor: null,
        source: { kind: 'error_group', id: r.id },
        data: data({ groupId: r.id, title: r.title, culprit: r.culprit, level: r.level, events: Number(r.count), users: r.users }),
      },
    })
  for (const r of regressed.rows)
    out.push({
      seq: 0,
      e: {
        id: `error.regressed:${r.id}`,
        type: 'error.regressed',
        at: t(r.regressed_at),
        title: `Error regressed: ${r.title}`,
        detail: r.culprit || null,
        level: errorLevel(r.level),
        actor: null,
        source: { kind: 'error_group', id: r.id },
        data: data({ groupId: r.id, title: r.title, culprit: r.culprit, level: r.level, release: r.last_release }),
      },
    })
  return out
}

const errorSpikes: Source = async (db, q) => {
  // Hours overlapping the window, each against the 24 hours before it (read from 25 h before the window).
  const { rows } = await db.query(
    `WITH c AS (
       SELECT group_id, hour, count,
              COALESCE(SUM(count) OVER (PARTITION BY group_id ORDER BY hour
                       RANGE BETWEEN interval '24 hours' PRECEDING AND interval '1 hour' PRECEDING), 0) AS before
         FROM ops.error_counts
        WHERE hour > $1::timestamptz - interval '25 hours' AND hour <= $2
     )
     SELECT c.group_id, c.hour, c.count, c.before, g.title, g.level
       FROM c JOIN ops.error_groups g ON g.id = c.group_id
      WHERE c.hour > $1::timestamptz - interval '1 hour' AND c.count >= $3 AND c.count >= $4 * c.before / 24.0`,
    [...range(q), SPIKE_MIN_EVENTS, SPIKE_FACTOR],
  )
  return rows.map((r) => {
    const at = Math.max(t(r.hour), q.from)
    const avg = Number(r.before) / 24
    return {
      seq: 0,
      e: {
        id: `error.spike:${r.group_id}:${t(r.hour)}`,
        type: 'error.spike',
        at,
        title: `Error spike: ${r.count} events in the hour from ${new Date(t(r.hour)).toISOString().slice(11, 16)} UTC — ${r.title}`,
        detail: null,
        level: errorLevel(r.level),
        actor: null,
        source: { kind: 'error_group', id: r.group_id },
        data: data({
          groupId: r.group_id,
          hour: t(r.hour),
          events: Number(r.count),
          averageBefore: Math.round(avg * 100) / 100,
          title: r.title,
        }),
      },
    }
  })
}

const backups: Source = async (db, q) => {
  const { rows } = await db.query(
    `SELECT id, kind, state, input, result, error, ${ms('started_at')}, ${ms('finished_at')} FROM ops.jobs
      WHERE kind LIKE 'backup.%' AND kind IN ('backup.full', 'backup.incremental', 'backup.verify') AND finished_at >= $1 AND finished_at <= $2`,
    range(q),
  )
  return rows.map((r, i) => {
    const res = (r.result ?? {}) as Record<string, unknown>
    const setId = (res.setId as string | undefined) ?? ((r.input ?? {}) as { setId?: string }).setId ?? null
    const what = r.kind === 'backup.full' ? 'Full backup' : r.kind === 'backup.incremental' ? 'Incremental backup' : 'Backup verify'
    const ok = r.state === 'succeeded'
    const err = (r.error as { message?: string } | null)?.message ?? null
    const verifyOk = r.kind === 'backup.verify' ? (res.ok as boolean | undefined) : undefined
    const title =
      `${what} ${r.state}${setId ? `: set ${setId}` : ''}` +
      (ok && r.kind !== 'backup.verify' && typeof res.tables === 'number' ? ` (${res.tables} tables, ${res.rows ?? 0} rows)` : '') +
      (verifyOk === false ? ' — problems found' : '') +
      (err ? ` — ${err}` : '')
    return {
      seq: i,
      e: {
        id: `backup:${r.id}`,
        type: 'backup',
        at: t(r.finished_at),
        title,
        detail: null,
        level: ok && verifyOk !== false ? 'ok' : r.state === 'cancelled' ? 'warning' : 'critical',
        actor: null,
        source: setId ? { kind: 'backup_set', id: setId } : { kind: 'job', id: r.id },
        data: data({
          jobId: r.id,
          kind: r.kind,
          state: r.state,
          setId,
          type: res.type,
          tables: res.tables,
          rows: res.rows,
          storedBytes: res.storedBytes,
          durationMs: res.durationMs,
          startedAt: t(r.started_at),
          error: err,
        }),
      },
    }
  })
}

const restores: Source = async (db, q) => {
  const { rows } = await db.query(
    `SELECT id, kind, actor, ${ms('started_at')}, ${ms('finished_at')}, outcome, point, target, tables, safety_set_id, proven_set_id, duration_ms, error, report
       FROM ops.restores
      WHERE (finished_at >= $1 AND finished_at <= $2) OR (finished_at IS NULL AND started_at >= $1 AND started_at <= $2)`,
    range(q),
  )
  return rows.map((r, i) => {
    const rep = r.report as {
      ok: boolean
      tables: { ok: boolean }[]
      foreignKeys: { ok: boolean; checked?: boolean; note?: string | null }[]
      countOnly?: string | null
    } | null
    const check = rep
      ? {
          ok: rep.ok,
          tables: rep.tables.length,
          tablesFailed: rep.tables.filter((x) => !x.ok).length,
          foreignKeys: rep.foreignKeys.length,
          foreignKeysBroken: rep.foreignKeys.filter((f) => (f.checked ?? !f.note?.startsWith('not checked')) && !f.ok).length,
          countOnly: rep.countOnly ?? null,
        }
      : null
    const what = r.kind === 'restore-test' ? 'Restore test' : r.kind === 'undo' ? 'Undo of a restore' : 'Restore'
    const scope = r.tables?.length ? ` of ${r.tables.length <= 3 ? r.tables.join(', ') : `${r.tables.length} tables`}` : ''
    const checkText = check
      ? check.ok
        ? ', check passed'
        : `, check FAILED (${check.tablesFailed} tables, ${check.foreignKeysBroken} foreign keys)`
      : ''
    const ok = r.outcome === 'succeeded' && (!check || check.ok)
    return {
      seq: i,
      e: {
        id: `restore:${r.id}`,
        type: 'restore',
        at: t(r.finished_at ?? r.started_at),
        title: `${what}${scope} from ${r.point} into ${r.target} ${r.outcome}${checkText}${r.error ? ` — ${r.error}` : ''}`,
        detail: null,
        level: r.outcome === 'running' ? 'info' : ok ? 'ok' : r.outcome === 'cancelled' ? 'warning' : 'critical',
        actor: r.actor,
        source: { kind: 'restore', id: r.id },
        data: data({
          restoreId: r.id,
          kind: r.kind,
          outcome: r.outcome,
          point: r.point,
          target: r.target,
          tables: r.tables,
          safetySetId: r.safety_set_id,
          provenSetId: r.proven_set_id,
          durationMs: r.duration_ms == null ? null : Number(r.duration_ms),
          startedAt: t(r.started_at),
          error: r.error,
          check,
        }),
      },
    }
  })
}

const auditRecords: Source = async (db, q) => {
  // Shown by their own sources: the incidents' writes, backup and restore jobs and runs.
  const { rows } = await db.query(
    `SELECT id, ${ms('at')}, actor, action, target, outcome, details FROM ops.audit_log
      WHERE at >= $1 AND at <= $2 AND action NOT LIKE 'incidents.%' AND action NOT LIKE 'job.backup.%' AND action NOT LIKE 'job.restore%'
        AND action NOT IN ('restore.run', 'restore.test', 'restore.undo')`,
    range(q),
  )
  return rows.map((r) => {
    const setting = r.action === 'settings.update'
    return {
      seq: Number(r.id),
      e: {
        id: `audit:${r.id}`,
        type: setting ? 'settings.change' : 'audit',
        at: t(r.at),
        title: setting ? `Setting ${r.target ?? ''} changed (${r.outcome})` : `${r.action}${r.target ? ` ${r.target}` : ''}: ${r.outcome}`,
        detail: null,
        level: /fail|refus|denied|error/i.test(r.outcome) ? 'warning' : 'info',
        actor: r.actor,
        source: setting ? { kind: 'setting', id: r.target ?? '' } : { kind: 'audit', id: String(r.id) },
        data: data({ action: r.action, target: r.target, outcome: r.outcome, details: r.details }),
      },
    }
  })
}

const incidentRecords: Source = async (db, q) => {
  const args = [...range(q), q.incidentId]
  const [opened, status, commanders, notes] = await Promise.all([
    db.query(
      `SELECT id, title, severity, origin, alert_rule, declared_from, opened_at, opened_by FROM ops.incidents
        WHERE opened_at >= $1 AND opened_at <= $2 AND ($3::text IS NULL OR id = $3)`,
      args,
    ),
    db.query(
      `SELECT c.id, c.incident_id, ${ms('c.at')}, c.from_status, c.to_status, c.by FROM ops.incident_status_changes c
        WHERE c.at >= $1 AND c.at <= $2 AND ($3::text IS NULL OR c.incident_id = $3) AND c.from_status IS NOT NULL`,
      args,
    ),
    db.query(
      `SELECT id, incident_id, ${ms('at')}, from_commander, commander, by FROM ops.incident_commanders
        WHERE at >= $1 AND at <= $2 AND ($3::text IS NULL OR incident_id = $3)`,
      args,
    ),
    db.query(
      `SELECT id, incident_id, ${ms('at')}, by, text FROM ops.incident_notes WHERE at >= $1 AND at <= $2 AND ($3::text IS NULL OR incident_id = $3)`,
      args,
    ),
  ])
  const out: Keyed[] = []
  for (const r of opened.rows) {
    const from = r.declared_from as { kind: 'alert' | 'error_group' | 'health'; id: string } | null
    out.push({
      seq: 0,
      e: {
        id: `incident.opened:${r.id}`,
        type: 'incident.opened',
        at: t(r.opened_at),
        title:
          r.origin === 'alert'
            ? `Incident opened by the firing alert ${r.alert_rule}: ${r.title}`
            : `Incident declared (${r.severity}): ${r.title}${from ? ` — from ${from.kind === 'error_group' ? 'error group' : from.kind} ${from.id}` : ''}`,
        detail: null,
        level: severityLevel(r.severity),
        actor: r.origin === 'alert' ? null : r.opened_by,
        // Declared from an alert, an error group or a health tile: linked to it; otherwise to the incident.
        source: from ? { kind: from.kind, id: from.id } : { kind: 'incident', id: r.id },
        data: data({ incidentId: r.id, title: r.title, severity: r.severity, origin: r.origin, alertRule: r.alert_rule, from }),
      },
    })
  }
  for (const r of status.rows)
    out.push({
      seq: Number(r.id),
      e: {
        id: `incident.status:${r.id}`,
        type: 'incident.status',
        at: t(r.at),
        title: `Status ${r.from_status} → ${r.to_status}`,
        detail: null,
        level: r.to_status === 'resolved' ? 'ok' : 'info',
        actor: r.by,
        source: { kind: 'incident', id: r.incident_id },
        data: { incidentId: r.incident_id, from: r.from_status, to: r.to_status },
      },
    })
  for (const r of commanders.rows)
    out.push({
      seq: Number(r.id),
      e: {
        id: `incident.commander:${r.id}`,
        type: 'incident.commander',
        at: t(r.at),
        title: r.from_commander ? `Commander ${r.from_commander} → ${r.commander}` : `Commander: ${r.commander}`,
        detail: null,
        level: 'info',
        actor: r.by,
        source: { kind: 'incident', id: r.incident_id },
        data: { incidentId: r.incident_id, from: r.from_commander, to: r.commander },
      },
    })
  for (const r of notes.rows) {
    const text = r.text as string
    const first = text.split('\n').find((l) => l.trim()) ?? ''
    out.push({
      seq: Number(r.id),
      e: {
        id: `incident.note:${r.id}`,
        type: 'incident.note',
        at: t(r.at),
        title: `Note: ${first.length > 120 ? `${first.slice(0, 119)}…` : first}`,
        detail: text,
        level: 'info',
        actor: r.by,
        source: { kind: 'incident', id: r.incident_id },
        data: { incidentId: r.incident_id },
      },
    })
  }
  return out
}

const SOURCES: [string, Source][] = [
  ['alert transitions', alertTransitions],
  ['health changes', healthChanges],
  ['error groups', errorGroups],
  ['error spikes', errorSpikes],
  ['backups', backups],
  ['restores', restores],
  ['audit records', auditRecords],
  ['incident records', incidentRecords],
]

/** The timeline of [from, to]: every source in parallel, merged in time order (ties: source rank, then row order). */
export async function buildTimeline(db: pg.Pool, q: TimelineQuery): Promise<TimelineResult> {
  const problems: string[] = []
  const parts = await Promise.all(
    SOURCES.map(([name, source]) =>
      source(db, q).catch((e: Error & { code?: string }) => {
        // 42P01: the table is not there (an older store): that source has nothing to say.
        if (e.code !== '42P01') problems.push(`${name}: ${scrub(e.message)}`)
        return [] as Keyed[]
      }),
    ),
  )
  const all = parts.flat()
  all.sort(
    (a, b) => a.e.at - b.e.at || RANK[a.e.type] - RANK[b.e.type] || a.seq - b.seq || (a.e.id < b.e.id ? -1 : a.e.id > b.e.id ? 1 : 0),
  )
  return { entries: all.map((k) => k.e), problems }
}
