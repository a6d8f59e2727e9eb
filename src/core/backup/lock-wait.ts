import type pg from 'pg'
import { pgClient } from '../db/connect'
import { CATALOG_STATEMENT_TIMEOUT_MS, connectTimeouts, type DbTimeoutSettings } from '../db/timeouts'

/**
 * Who our sessions are waiting for. While a backup (or an in-place restore) queues for table locks,
 * a connection of its own polls pg_locks and pg_stat_activity (pg_blocking_pids) every half second,
 * so the progress can say "waiting for a lock held by pid N: <query>" instead of waiting silently,
 * and the timeout error can name the session to wait for or end.
 */
export interface LockWait {
  /** The session holding (or queued ahead for) the lock. */
  pid: number
  /** Its current or last statement, shortened. */
  query: string
  state: string | null
  /** The table we wait for, when the lock is on one. */
  table: string | null
  /** Since when it has been in its current transaction. */
  since: string | null
}

export const describeWait = (w: LockWait) =>
  `waiting for a lock${w.table ? ` on ${w.table}` : ''} held by pid ${w.pid}: ${w.query || '(no statement)'}${w.state && w.state !== 'active' ? ` (${w.state})` : ''}`

const shorten = (q: string) => {
  const one = q.replace(/\s+/g, ' ').trim()
  return one.length > 160 ? `${one.slice(0, 157)}...` : one
}

export interface LockWatch {
  /** The newest wait seen (kept after it ended, for the error message). */
  last(): LockWait | null
  stop(): Promise<void>
}

/**
 * Watch `pids` (backend process ids of our sessions) while they wait; `onWait` is called with each new
 * blocker and with null when nothing blocks them any more. Our own sessions are never reported as
 * blockers. If the watching connection cannot be had, nothing is reported: the wait still ends at its timeout.
 */
export function watchLockWaits(
  url: string,
  pids: number[],
  onWait: (w: LockWait | null) => void,
  timeouts: DbTimeoutSettings = {},
  everyMs = 500,
): LockWatch {
  let stopped = false
  let last: LockWait | null = null
  let current: string | null = null
  let client: pg.Client | null = null
  let timer: NodeJS.Timeout | null = null
  const ours = pids.filter((p) => Number.isInteger(p) && p > 0)
  const poll = async () => {
    if (stopped || !client) return
    try {
      const { rows } = await client.query<{
        pid: number
        query: string | null
        state: string | null
        rel: string | null
        since: Date | null
      }>(
        `SELECT b.pid, b.query, b.state, b.xact_start AS since,
                (SELECT l.relation::regclass::text FROM pg_locks l
                  WHERE l.pid = w.pid AND NOT l.granted AND l.relation IS NOT NULL LIMIT 1) AS rel
           FROM unnest($1::int[]) AS w(pid)
           CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid)
           JOIN pg_stat_activity b ON b.pid = bp.pid
          WHERE NOT (bp.pid = ANY($1::int[]))
          ORDER BY b.xact_start NULLS LAST LIMIT 1`,
        [ours],
      )
      const r = rows[0]
      const w: LockWait | null = r
        ? {
            pid: r.pid,
            query: shorten(r.query ?? ''),
            state: r.state,
            table: r.rel,
            since: r.since ? new Date(r.since).toISOString() : null,
          }
        : null
      const key = w ? `${w.pid}:${w.table}:${w.query}` : null
      if (w) last = w
      if (key !== current) {
        current = key
        onWait(w)
      }
    } catch {
      /* a missed poll only delays the message */
    }
    if (!stopped) timer = setTimeout(() => void poll(), everyMs)
  }
  const started = (async () => {
    if (!ours.length) return
    const c = pgClient(url, {
      application_name: 'examforge-ops:lock-watch',
      ...connectTimeouts({
        statementTimeoutMs: Math.min(CATALOG_STATEMENT_TIMEOUT_MS, 10_000),
        connectTimeoutMs: timeouts.connectTimeoutMs,
      }),
    })
    c.on('error', () => {})
    try {
      await c.connect()
    } catch {
      return
    }
    if (stopped) {
      await c.end().catch(() => {})
      return
    }
    client = c
    // The first look comes after a short pause: most locks are granted at once.
    timer = setTimeout(() => void poll(), Math.min(everyMs, 300))
  })()
  return {
    last: () => last,
    async stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      // A connect still under way is not waited for: it closes itself when it completes.
      void started
      const c = client
      client = null
      await c?.end().catch(() => {})
    },
  }
}
