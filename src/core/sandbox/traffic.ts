import type pg from 'pg'
import type { Logger } from '../log/logger'

/**
 * Keeps the sandbox alive like a real ExamForge: students submit quizzes (inserts), subscriptions
 * renew or lapse (updates), old attempts are purged (deletes). One transaction per tick.
 */
export function startTrafficSimulator(pool: pg.Pool, log: Logger, opts: { intervalMs?: number } = {}) {
  let stopped = false
  let running: Promise<void> | null = null
  let ticks = 0
  const tick = async () => {
    // The database may be down, full (too many clients) or out of reach: a tick is skipped, never thrown.
    let client: pg.PoolClient
    try {
      client = await pool.connect()
    } catch (e) {
      if (!stopped) log.warn('traffic simulator could not connect', { error: (e as Error).message })
      return
    }
    try {
      await client.query('BEGIN')
      const { rows } = await client.query(
        `SELECT (SELECT max(id) FROM quizzes) AS quizzes, (SELECT max(id) FROM users) AS users, (SELECT max(id) FROM subscriptions) AS subs`,
      )
      const { quizzes, users, subs } = rows[0] as { quizzes: string | null; users: string | null; subs: string | null }
      if (!quizzes || !users) {
        await client.query('ROLLBACK')
        return
      }
      const r = await client.query(
        `INSERT INTO quiz_responses ("quizId", "userId", "submittedAt", score, metadata)
         SELECT q.id, u.id, now(), round((random() * 100)::numeric, 2), jsonb_build_object('source', 'simulator')
           FROM (SELECT id FROM quizzes WHERE id >= 1 + floor(random() * $1::bigint) ORDER BY id LIMIT 1) q,
                (SELECT id FROM users WHERE id >= 1 + floor(random() * $2::bigint) ORDER BY id LIMIT 1) u
         RETURNING id, "quizId"`,
        [quizzes, users],
      )
      if (r.rows[0]) {
        await client.query(
          `INSERT INTO question_responses ("responseId", "questionId", answer, "isCorrect")
           SELECT $1, id, jsonb_build_object('choice', floor(random() * 4)::int), random() < 0.5
             FROM questions WHERE "quizId" = $2 ORDER BY position LIMIT 3`,
          [r.rows[0].id, r.rows[0].quizId],
        )
      }
      if (subs) {
        await client.query(
          `UPDATE subscriptions SET status = (ARRAY['active','past_due','active','canceled'])[1 + floor(random() * 4)::int]::subscription_status,
                  "updatedAt" = now()
            WHERE id = (SELECT id FROM subscriptions WHERE id >= 1 + floor(random() * $1::bigint) ORDER BY id LIMIT 1)`,
          [subs],
        )
      }
      if (ticks % 3 === 2) {
        await client.query(
          `DELETE FROM quiz_responses WHERE id = (SELECT id FROM quiz_responses WHERE "submittedAt" IS NOT NULL ORDER BY id LIMIT 1 OFFSET floor(random() * 50)::int)`,
        )
      }
      await client.query('COMMIT')
      ticks++
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {})
      if (!stopped) log.warn('traffic simulator tick failed', { error: (e as Error).message })
    } finally {
      client.release()
    }
  }
  const timer = setInterval(() => {
    if (stopped || running) return
    running = tick().finally(() => {
      running = null
    })
  }, opts.intervalMs ?? 1000)
  timer.unref()
  return {
    get ticks() {
      return ticks
    },
    async stop() {
      stopped = true
      clearInterval(timer)
      await running
    },
  }
}
export type TrafficSimulator = ReturnType<typeof startTrafficSimulator>
