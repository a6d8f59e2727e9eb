/**
 * Reading and changing error groups: the list (filters, 24 h sparklines), one group with an event, its
 * neighbours, why it was grouped and what else happened around its first event, and state changes.
 * Everything read here was scrubbed before it was stored.
 */
import type pg from 'pg'
import { OpsError } from '../../shared/contract'
import type { ErrorGroup, ErrorGroupDetail, GroupState } from '../../shared/errors'

interface GroupRow {
  id: string
  title: string
  culprit: string
  type: string
  level: string
  first_seen: Date
  last_seen: Date
  count: string
  users: number
  state: GroupState
  releases: string[]
  environments: string[]
  regressed_at: Date | null
  ignore_until: Date | null
  ignore_until_count: string | null
  resolved_in_release: string | null
  method: string
  explanation: string
  components: string[]
  last_release: string | null
}

const toGroup = (r: GroupRow, spark: number[]): ErrorGroup => ({
  id: r.id,
  title: r.title,
  culprit: r.culprit,
  type: r.type,
  level: r.level,
  firstSeen: r.first_seen.getTime(),
  lastSeen: r.last_seen.getTime(),
  count: Number(r.count),
  users: r.users,
  state: r.state,
  releases: r.releases,
  environments: r.environments,
  spark,
  regressedAt: r.regressed_at?.getTime() ?? null,
  ignoreUntil: r.ignore_until?.getTime() ?? null,
  ignoreUntilCount: r.ignore_until_count == null ? null : Number(r.ignore_until_count),
  resolvedInRelease: r.resolved_in_release,
})

export interface ListFilter {
  state?: GroupState
  level?: string
  release?: string
  environment?: string
  text?: string
  limit?: number
}

async function sparks(db: pg.Pool, ids: string[], now: number): Promise<Map<string, number[]>> {
  const start = Math.floor(now / 3_600_000) * 3_600_000 - 23 * 3_600_000
  const out = new Map(ids.map((id) => [id, new Array<number>(24).fill(0)]))
  if (!ids.length) return out
  const { rows } = await db.query<{ group_id: string; hour: Date; count: string }>(
    `SELECT group_id, hour, count FROM ops.error_counts WHERE group_id = ANY($1) AND hour >= to_timestamp($2 / 1000.0)`,
    [ids, start],
  )
  for (const r of rows) {
    const i = Math.floor((r.hour.getTime() - start) / 3_600_000)
    const a = out.get(r.group_id)
    if (a && i >= 0 && i < 24) a[i] += Number(r.count)
  }
  return out
}

export async function listGroups(db: pg.Pool, f: ListFilter, now = Date.now()): Promise<{ groups: ErrorGroup[]; total: number }> {
  const where: string[] = []
  const args: unknown[] = []
  const arg = (v: unknown) => (args.push(v), `$${args.length}`)
  if (f.state) where.push(`state = ${arg(f.state)}`)
  if (f.level) where.push(`level = ${arg(f.level)}`)
  if (f.release) where.push(`${arg(f.release)} = ANY(releases)`)
  if (f.environment) where.push(`${arg(f.environment)} = ANY(environments)`)
  if (f.text) {
    const t = arg(`%${f.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)
    where.push(`(title ILIKE ${t} OR culprit ILIKE ${t} OR id = ${arg(f.text)})`)
  }
  const w = where.length ? `WHERE ${where.join(' AND ')}` : ''
  const [{ rows }, total] = await Promise.all([
    db.query<GroupRow>(`SELECT * FROM ops.error_groups ${w} ORDER BY last_seen DESC LIMIT ${Math.min(f.limit ?? 100, 500)}`, args),
    db.query<{ n: string }>(`SELECT count(*) AS n FROM ops.error_groups ${w}`, args),
  ])
  const s = await sparks(
    db,
    rows.map((r) => r.id),
    now,
  )
  return { groups: rows.map((r) => toGroup(r, s.get(r.id)!)), total: Number(total.rows[0].n) }
}

async function groupRow(db: pg.Pool, id: string): Promise<GroupRow> {
  const { rows } = await db.query<GroupRow>(`SELECT * FROM ops.error_groups WHERE id = $1 OR hash = $1`, [id])
  if (!rows[0]) throw new OpsError('unknown_group', `There is no error group "${id}". "errors list" shows the groups there are.`)
  return rows[0]
}

export async function showGroup(db: pg.Pool, id: string, eventId?: string, now = Date.now()): Promise<ErrorGroupDetail> {
  const r = await groupRow(db, id)
  const pick = eventId
    ? await db.query<{ id: string; seq: string; occurred_at: Date; event: ErrorGroupDetail['event'] }>(
        `SELECT id, seq, occurred_at, event FROM ops.error_events WHERE group_id = $1 AND id = $2 LIMIT 1`,
        [r.id, eventId],
      )
    : await db.query<{ id: string; seq: string; occurred_at: Date; event: ErrorGroupDetail['event'] }>(
        `SELECT id, seq, occurred_at, event FROM ops.error_events WHERE group_id = $1 ORDER BY occurred_at DESC, seq DESC LIMIT 1`,
        [r.id],
      )
  if (eventId && !pick.rows[0])
    throw new OpsError('unknown_event', `Group ${r.id} has no stored event "${eventId}" (it may have passed retention).`)
  const cur = pick.rows[0]
  const near = async (op: '<' | '>') =>
    cur
      ? ((
          await db.query<{ id: string }>(
            `SELECT id FROM ops.error_events WHERE group_id = $1 AND (occurred_at, seq) ${op} ($2, $3)
             ORDER BY occurred_at ${op === '<' ? 'DESC' : 'ASC'}, seq ${op === '<' ? 'DESC' : 'ASC'} LIMIT 1`,
            [r.id, cur.occurred_at, cur.seq],
          )
        ).rows[0]?.id ?? null)
      : null
  const [olderId, newerId, count, around, s] = await Promise.all([
    near('<'),
    near('>'),
    db.query<{ n: string }>(`SELECT count(*) AS n FROM ops.error_events WHERE group_id = $1`, [r.id]),
    aroundFirst(db, r.first_seen),
    sparks(db, [r.id], now),
  ])
  return {
    group: toGroup(r, s.get(r.id)!),
    why: { method: r.method, explanation: r.explanation, components: r.components },
    event: cur?.event ?? null,
    olderId,
    newerId,
    eventCount: Number(count.rows[0].n),
    around,
  }
}

/**
 * Health changes, backups and restores within an hour of a moment, from the same store. A service's first
 * check (no status before it) is not a change: a healthy or not-configured one is left out, any other reads
 * "first check: unhealthy".
 */
async function aroundFirst(db: pg.Pool, at: Date): Promise<ErrorGroupDetail['around']> {
  const { rows } = await db.query<{ at: Date; kind: string; text: string }>(
    `SELECT at, 'health' AS kind,
            service || ': ' || CASE WHEN from_status IS NULL THEN 'first check: ' || to_status ELSE from_status || ' → ' || to_status END
              || ' (' || reason || ')' AS text
       FROM ops.health_changes WHERE at BETWEEN $1::timestamptz - interval '1 hour' AND $1::timestamptz + interval '1 hour'
        AND NOT (from_status IS NULL AND to_status IN ('healthy', 'not_configured'))
     UNION ALL
     SELECT started_at, 'job', kind || ' ' || state FROM ops.jobs
       WHERE kind NOT LIKE 'sandbox%' AND started_at BETWEEN $1::timestamptz - interval '1 hour' AND $1::timestamptz + interval '1 hour'
     UNION ALL
     SELECT started_at, 'restore', kind || ' restore to ' || target || ': ' || outcome FROM ops.restores
       WHERE started_at BETWEEN $1::timestamptz - interval '1 hour' AND $1::timestamptz + interval '1 hour'
     ORDER BY 1 LIMIT 50`,
    [at],
  )
  return rows.map((x) => ({ at: x.at.getTime(), kind: x.kind, text: x.text }))
}

export type StateChange =
  { state: 'resolved'; inNextRelease?: boolean } | { state: 'ignored'; untilMs?: number; untilCount?: number } | { state: 'unresolved' }

/** Move groups to a state; returns the ids changed. Unknown ids are an error naming them, and nothing changes. */
export async function setState(db: pg.Pool, ids: string[], change: StateChange): Promise<string[]> {
  const { rows: found } = await db.query<{ id: string; count: string; last_release: string | null }>(
    `SELECT id, count, last_release FROM ops.error_groups WHERE id = ANY($1)`,
    [ids],
  )
  const missing = ids.filter((i) => !found.some((f) => f.id === i))
  if (missing.length)
    throw new OpsError('unknown_group', `There is no error group ${missing.map((m) => `"${m}"`).join(', ')}; nothing was changed.`)
  for (const g of found) {
    if (change.state === 'resolved')
      await db.query(
        `UPDATE ops.error_groups SET state = 'resolved', state_changed_at = now(), resolved_in_release = $2, ignore_until = NULL, ignore_until_count = NULL WHERE id = $1`,
        [g.id, change.inNextRelease ? (g.last_release ?? null) : null],
      )
    else if (change.state === 'ignored')
      await db.query(
        `UPDATE ops.error_groups SET state = 'ignored', state_changed_at = now(), resolved_in_release = NULL,
           ignore_until = $2, ignore_until_count = $3 WHERE id = $1`,
        [g.id, change.untilMs ? new Date(change.untilMs) : null, change.untilCount ? Number(g.count) + change.untilCount : null],
      )
    else
      await db.query(
        `UPDATE ops.error_groups SET state = 'unresolved', state_changed_at = now(), resolved_in_release = NULL, ignore_until = NULL, ignore_until_count = NULL WHERE id = $1`,
        [g.id],
      )
  }
  return found.map((f) => f.id)
}

/** Groups first seen, or regressed, since a moment (the Overview's "new and regressed"). */
export async function recentGroups(db: pg.Pool, sinceMs: number): Promise<{ fresh: ErrorGroup[]; regressed: ErrorGroup[] }> {
  const { rows } = await db.query<GroupRow>(
    `SELECT * FROM ops.error_groups WHERE first_seen >= to_timestamp($1 / 1000.0) OR regressed_at >= to_timestamp($1 / 1000.0)
     ORDER BY last_seen DESC LIMIT 20`,
    [sinceMs],
  )
  const s = await sparks(
    db,
    rows.map((r) => r.id),
    Date.now(),
  )
  const groups = rows.map((r) => toGroup(r, s.get(r.id)!))
  return {
    fresh: groups.filter((g) => g.firstSeen >= sinceMs),
    regressed: groups.filter((g) => g.state === 'regressed' && (g.regressedAt ?? 0) >= sinceMs),
  }
}
