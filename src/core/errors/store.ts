/**
 * Error groups and events in the `ops` store (tables in migration 14):
 *
 * - `error_groups`: one row per group (title, culprit, level, first/last seen, exact count, users
 *   affected, state, releases, environments, why grouped).
 * - `error_counts`: exact counts per group and hour, kept after the events themselves are gone
 *   (sparklines, "N in M minutes", spikes).
 * - `error_events`: the scrubbed events, partitioned by day of arrival, so retention (ERROR_RETAIN_DAYS)
 *   drops whole partitions instead of deleting row by row; at most ERROR_EVENTS_PER_GROUP are kept per
 *   group (the oldest beyond that are deleted), while the counts stay exact.
 * - `error_group_users`: who was affected, for the users count.
 *
 * Writes come in batches, each one transaction: a batch is stored whole or not at all. States:
 * unresolved, resolved (optionally only for the release current at the time: "in the next release"),
 * ignored (for good, until a time, or until N more events), and regressed (a resolved group that
 * received an event).
 */
import type pg from 'pg'
import { OpsError } from '../../shared/contract'
import type { ErrorEvent } from './event'
import type { Grouping } from './grouping'
import { titleOf } from './grouping'

export interface Prepared {
  ev: ErrorEvent
  grouping: Grouping
}

export interface WriteOutcome {
  groupId: string
  isNew: boolean
  regressed: boolean
}

export type GroupState = 'unresolved' | 'regressed' | 'resolved' | 'ignored'

const SEVERITY: Record<string, number> = { debug: 0, info: 1, warning: 2, error: 3, fatal: 4 }
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10)
const partitionName = (day: string) => `error_events_p${day.replace(/-/g, '')}`
const nextDay = (day: string) => new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10)
export const userKey = (u: ErrorEvent['user']) => (u ? (u.id ?? u.email ?? u.username ?? u.ip_address ?? null) : null)

export class ErrorStore {
  private partitions = new Set<string>()

  constructor(private pool: () => pg.Pool | null) {}

  db(): pg.Pool {
    const p = this.pool()
    if (!p)
      throw new OpsError(
        'store_unavailable',
        'The ops store (PostgreSQL) cannot be reached, so error groups cannot be read or changed now. Check OPS_DATABASE_URL.',
      )
    return p
  }

  private async ensurePartition(c: pg.PoolClient, day: string) {
    if (this.partitions.has(day)) return
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('examforge-ops:error-partitions'))`)
    await c.query(
      `CREATE TABLE IF NOT EXISTS ops.${partitionName(day)} PARTITION OF ops.error_events FOR VALUES FROM ('${day} 00:00:00+00') TO ('${nextDay(day)} 00:00:00+00')`,
    )
    this.partitions.add(day)
  }

  /** Store a batch in one transaction: groups upserted, states moved, events, hourly counts and users. */
  async write(batch: Prepared[]): Promise<WriteOutcome[]> {
    if (!batch.length) return []
    const c = await this.db().connect()
    try {
      await c.query('BEGIN')
      for (const day of new Set(batch.map((p) => dayOf(p.ev.received)))) await this.ensurePartition(c, day)
      const byHash = new Map<string, Prepared[]>()
      for (const p of batch) byHash.set(p.grouping.hash, [...(byHash.get(p.grouping.hash) ?? []), p])
      const out: WriteOutcome[] = []
      const events: unknown[] = []
      const counts = new Map<string, number>()
      const users: { group_id: string; user_key: string }[] = []
      // Every group of the batch upserted in one statement (sorted by hash, so concurrent writers lock in one order).
      const rowsIn = [...byHash.entries()]
        .sort(([x], [y]) => (x < y ? -1 : 1))
        .map(([hash, items]) => {
          const latest = items.reduce((a, b) => (b.ev.timestamp >= a.ev.timestamp ? b : a))
          const { title, culprit, type } = titleOf(latest.ev)
          return {
            hash,
            project: latest.ev.project,
            method: latest.grouping.method,
            explanation: latest.grouping.explanation,
            components: latest.grouping.components.slice(0, 200),
            title,
            culprit,
            type,
            level: items.reduce((l, p) => ((SEVERITY[p.ev.level] ?? 3) > (SEVERITY[l] ?? 3) ? p.ev.level : l), latest.ev.level as string),
            first_ms: Math.min(...items.map((p) => p.ev.timestamp)),
            last_ms: Math.max(...items.map((p) => p.ev.timestamp)),
            n: items.length,
            releases: [...new Set(items.map((p) => p.ev.release).filter((r): r is string => !!r))],
            environments: [...new Set(items.map((p) => p.ev.environment).filter((r): r is string => !!r))],
            last_release: latest.ev.release,
          }
        })
      const { rows: upserted } = await c.query<{
        id: string
        hash: string
        state: GroupState
        resolved_in_release: string | null
        ignore_until: Date | null
        ignore_until_count: string | null
        count: string
        inserted: boolean
      }>(
        `INSERT INTO ops.error_groups AS g (id, project, hash, method, explanation, components, title, culprit, type, level,
           first_seen, last_seen, count, releases, environments, last_release)
         SELECT left(x.hash, 12), x.project, x.hash, x.method, x.explanation, x.components, x.title, x.culprit, x.type, x.level,
           to_timestamp(x.first_ms / 1000.0), to_timestamp(x.last_ms / 1000.0), x.n,
           ARRAY(SELECT jsonb_array_elements_text(x.releases)), ARRAY(SELECT jsonb_array_elements_text(x.environments)), x.last_release
         FROM jsonb_to_recordset($1::jsonb) AS x(hash text, project text, method text, explanation text, components jsonb, title text,
           culprit text, type text, level text, first_ms double precision, last_ms double precision, n bigint, releases jsonb,
           environments jsonb, last_release text)
         ON CONFLICT (hash) DO UPDATE SET
           count = g.count + EXCLUDED.count,
           first_seen = least(g.first_seen, EXCLUDED.first_seen),
           last_seen = greatest(g.last_seen, EXCLUDED.last_seen),
           title = EXCLUDED.title, culprit = EXCLUDED.culprit, level = EXCLUDED.level,
           releases = CASE WHEN EXCLUDED.releases <@ g.releases THEN g.releases
             ELSE (SELECT coalesce(array_agg(DISTINCT r), '{}') FROM unnest(g.releases || EXCLUDED.releases) r) END,
           environments = CASE WHEN EXCLUDED.environments <@ g.environments THEN g.environments
             ELSE (SELECT coalesce(array_agg(DISTINCT r), '{}') FROM unnest(g.environments || EXCLUDED.environments) r) END,
           last_release = coalesce(EXCLUDED.last_release, g.last_release)
         RETURNING id, hash, state, resolved_in_release, ignore_until, ignore_until_count, count, (xmax = 0) AS inserted`,
        [JSON.stringify(rowsIn)],
      )
      const byHashRow = new Map(upserted.map((r) => [r.hash, r]))
      for (const [hash, items] of byHash) {
        const r = byHashRow.get(hash)!
        let regressed = false
        if (r.state === 'resolved') {
          // "Resolved in the next release": events of the release that was current when it was resolved do not count.
          regressed = r.resolved_in_release == null || items.some((p) => p.ev.release != null && p.ev.release !== r.resolved_in_release)
          if (regressed)
            await c.query(
              `UPDATE ops.error_groups SET state = 'regressed', regressed_at = now(), state_changed_at = now(), resolved_in_release = NULL WHERE id = $1`,
              [r.id],
            )
        } else if (r.state === 'ignored') {
          const timeUp = r.ignore_until != null && r.ignore_until.getTime() <= Date.now()
          const countUp = r.ignore_until_count != null && Number(r.count) >= Number(r.ignore_until_count)
          if (timeUp || countUp)
            await c.query(
              `UPDATE ops.error_groups SET state = 'unresolved', state_changed_at = now(), ignore_until = NULL, ignore_until_count = NULL WHERE id = $1`,
              [r.id],
            )
        }
        out.push({ groupId: r.id, isNew: r.inserted, regressed })
        for (const p of items) {
          const uk = userKey(p.ev.user)
          events.push({
            received_at: new Date(p.ev.received).toISOString(),
            id: p.ev.eventId,
            group_id: r.id,
            occurred_at: new Date(p.ev.timestamp).toISOString(),
            level: p.ev.level,
            release: p.ev.release,
            environment: p.ev.environment,
            user_key: uk,
            event: p.ev,
          })
          const hour = `${r.id}\n${new Date(Math.floor(p.ev.received / 3_600_000) * 3_600_000).toISOString()}`
          counts.set(hour, (counts.get(hour) ?? 0) + 1)
          if (uk) users.push({ group_id: r.id, user_key: uk })
        }
      }
      await c.query(
        `INSERT INTO ops.error_events (received_at, id, group_id, occurred_at, level, release, environment, user_key, event)
         SELECT received_at, id, group_id, occurred_at, level, release, environment, user_key, event
         FROM json_populate_recordset(null::ops.error_events, $1::json)`,
        [JSON.stringify(events)],
      )
      await c.query(
        `INSERT INTO ops.error_counts AS c (group_id, hour, count)
         SELECT split_part(k, E'\\n', 1), split_part(k, E'\\n', 2)::timestamptz, v::bigint FROM json_each_text($1::json) AS j(k, v)
         ON CONFLICT (group_id, hour) DO UPDATE SET count = c.count + EXCLUDED.count`,
        [JSON.stringify(Object.fromEntries(counts))],
      )
      if (users.length)
        await c.query(
          `WITH added AS (
             INSERT INTO ops.error_group_users SELECT * FROM json_populate_recordset(null::ops.error_group_users, $1::json)
             ON CONFLICT DO NOTHING RETURNING group_id)
           UPDATE ops.error_groups g SET users = g.users + a.n FROM (SELECT group_id, count(*)::int AS n FROM added GROUP BY group_id) a WHERE g.id = a.group_id`,
          [JSON.stringify(users)],
        )
      await c.query('COMMIT')
      return out
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {})
      throw e
    } finally {
      c.release()
    }
  }

  /** Ingest outcomes (accepted, rejected_auth, too_large, rate_limited, malformed, …), counted in the store. */
  async countOutcomes(counts: Record<string, number>): Promise<void> {
    const entries = Object.entries(counts).filter(([, n]) => n > 0)
    if (!entries.length || !this.pool()) return
    await this.db().query(
      `INSERT INTO ops.error_ingest_stats AS s (outcome, count) SELECT k, v::bigint FROM json_each_text($1::json) AS j(k, v)
       ON CONFLICT (outcome) DO UPDATE SET count = s.count + EXCLUDED.count`,
      [JSON.stringify(Object.fromEntries(entries))],
    )
  }

  async outcomes(): Promise<Record<string, number>> {
    const { rows } = await this.db().query<{ outcome: string; count: string }>('SELECT outcome, count FROM ops.error_ingest_stats')
    return Object.fromEntries(rows.map((r) => [r.outcome, Number(r.count)]))
  }

  /** Retention: whole partitions older than `days` dropped; beyond `perGroup` events in a group, the oldest deleted. */
  async prune(days: number, perGroup: number, now = Date.now()): Promise<{ partitionsDropped: number; eventsDeleted: number }> {
    const db = this.db()
    const { rows } = await db.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
       JOIN pg_namespace n ON n.oid = p.relnamespace WHERE n.nspname = 'ops' AND p.relname = 'error_events'`,
    )
    const cutoff = dayOf(now - days * 86_400_000)
    let dropped = 0
    for (const { name } of rows) {
      const m = /^error_events_p(\d{4})(\d{2})(\d{2})$/.exec(name)
      if (!m) continue
      const day = `${m[1]}-${m[2]}-${m[3]}`
      if (day < cutoff) {
        await db.query(`DROP TABLE ops.${name}`)
        this.partitions.delete(day)
        dropped++
      }
    }
    const del = await db.query(
      `DELETE FROM ops.error_events e USING (
         SELECT id, received_at FROM (
           SELECT id, received_at, row_number() OVER (PARTITION BY group_id ORDER BY occurred_at DESC, seq DESC) AS rn
           FROM ops.error_events WHERE group_id IN (SELECT id FROM ops.error_groups WHERE count > $1)) r WHERE rn > $1) x
       WHERE e.id = x.id AND e.received_at = x.received_at`,
      [perGroup],
    )
    await db.query(`DELETE FROM ops.error_counts WHERE hour < now() - make_interval(days => greatest($1::int, 90))`, [days])
    return { partitionsDropped: dropped, eventsDeleted: del.rowCount ?? 0 }
  }
}
