/**
 * The error tracker's rule sources for the alert engine (core/alerts/source.ts):
 *
 * - `errors.count`     — "≥ N events in M minutes" (default 10 in 5, as the original system had), over
 *                        every group or one; a value-like source (the count), compared with the rule's N.
 * - `errors.new_group` — a group first seen in the last M minutes; one reading per such group.
 * - `errors.regression`— a group that regressed (resolved, then received an event) in the last M minutes.
 * - `errors.spike`     — a group whose events in the last M minutes are `factor` times its hourly
 *                        average over the previous 24 h (and at least `min`); one reading per group.
 *
 * Counts come from the stored events (recent ones are never pruned by the per-group cap) and the hourly
 * buckets; when the store cannot be read, the reading carries `error` rather than pretending "no errors".
 */
import type pg from 'pg'
import { z } from 'zod'
import type { Reading, RuleSource } from '../alerts/source'

const minutes = z
  .number()
  .int()
  .min(1)
  .max(24 * 60)

export const countParams = z.object({
  minutes: minutes.default(5),
  /** The rule's threshold N, for the reading's text; the engine compares the value itself. */
  threshold: z.number().int().min(1).default(10),
  group: z.string().max(64).optional(),
  level: z.enum(['fatal', 'error', 'warning', 'info', 'debug']).optional(),
})
export const windowParams = z.object({ minutes: minutes.default(5) })
export const spikeParams = z.object({
  minutes: minutes.default(15),
  factor: z.number().min(1).default(5),
  min: z.number().int().min(1).default(10),
})

const failed = (e: unknown, labels: Record<string, string> = {}): Reading[] => [
  { labels, value: null, error: `The ops store could not be read: ${(e as Error).message}` },
]

export function errorRuleSources(pool: () => pg.Pool | null): RuleSource[] {
  const db = () => {
    const p = pool()
    if (!p) throw new Error('the ops store is not reachable')
    return p
  }
  const count: RuleSource<z.output<typeof countParams>> = {
    kind: 'errors.count',
    describe: 'At least N error events in M minutes (all groups, or one)',
    params: countParams as unknown as z.ZodType<z.output<typeof countParams>>,
    condition: false,
    async evaluate(p, now) {
      try {
        const { rows } = await db().query<{ n: string }>(
          `SELECT count(*) AS n FROM ops.error_events
            WHERE received_at > to_timestamp($1 / 1000.0) AND received_at <= to_timestamp($2 / 1000.0)
              AND ($3::text IS NULL OR group_id = $3) AND ($4::text IS NULL OR level = $4)`,
          [now - p.minutes * 60_000, now, p.group ?? null, p.level ?? null],
        )
        const n = Number(rows[0].n)
        return [
          {
            labels: p.group ? { group: p.group } : {},
            value: n,
            text: `${n} error event${n === 1 ? '' : 's'} in ${p.minutes} min (threshold ${p.threshold})`,
            ...(p.group ? { source: { kind: 'error_group', id: p.group } } : {}),
          },
        ]
      } catch (e) {
        return failed(e)
      }
    },
  }
  const groupsSince = (
    kind: string,
    describe: string,
    column: 'first_seen' | 'regressed_at',
    what: string,
  ): RuleSource<z.output<typeof windowParams>> => ({
    kind,
    describe,
    params: windowParams as unknown as z.ZodType<z.output<typeof windowParams>>,
    condition: true,
    async evaluate(p, now) {
      try {
        const { rows } = await db().query<{ id: string; title: string }>(
          `SELECT id, title FROM ops.error_groups WHERE ${column} > to_timestamp($1 / 1000.0) AND ${column} <= to_timestamp($2 / 1000.0)
           ORDER BY ${column} DESC LIMIT 50`,
          [now - p.minutes * 60_000, now],
        )
        if (!rows.length) return [{ labels: {}, value: 0, text: `no ${what} in ${p.minutes} min` }]
        return rows.map((r) => ({
          labels: { group: r.id },
          value: 1,
          text: `${what}: ${r.title}`,
          source: { kind: 'error_group', id: r.id },
        }))
      } catch (e) {
        return failed(e)
      }
    },
  })
  const spike: RuleSource<z.output<typeof spikeParams>> = {
    kind: 'errors.spike',
    describe: 'A group with many times its usual rate of events',
    params: spikeParams as unknown as z.ZodType<z.output<typeof spikeParams>>,
    condition: false,
    async evaluate(p, now) {
      try {
        const { rows } = await db().query<{ id: string; title: string; recent: string; usual: string }>(
          `WITH recent AS (
             SELECT group_id, count(*) AS n FROM ops.error_events
              WHERE received_at > to_timestamp($1 / 1000.0) AND received_at <= to_timestamp($2 / 1000.0) GROUP BY group_id),
           usual AS (
             SELECT group_id, sum(count) / 24.0 AS per_hour FROM ops.error_counts
              WHERE hour >= to_timestamp($1 / 1000.0) - interval '25 hours' AND hour < to_timestamp($1 / 1000.0) - interval '1 hour' GROUP BY group_id)
           SELECT g.id, g.title, r.n AS recent, coalesce(u.per_hour, 0) * $3 / 60.0 AS usual
             FROM recent r JOIN ops.error_groups g ON g.id = r.group_id LEFT JOIN usual u ON u.group_id = r.group_id
            WHERE r.n >= $4 ORDER BY r.n DESC LIMIT 50`,
          [now - p.minutes * 60_000, now, p.minutes, p.min],
        )
        const out: Reading[] = []
        for (const r of rows) {
          const usual = Math.max(Number(r.usual), 1)
          const ratio = Number(r.recent) / usual
          if (ratio < p.factor) continue
          out.push({
            labels: { group: r.id },
            value: Math.round(ratio * 10) / 10,
            text: `${r.recent} events in ${p.minutes} min, ${ratio.toFixed(1)}× the usual: ${r.title}`,
            source: { kind: 'error_group', id: r.id },
          })
        }
        return out.length ? out : [{ labels: {}, value: 0, text: `no group above ${p.factor}× its usual rate` }]
      } catch (e) {
        return failed(e)
      }
    },
  }
  return [
    count as RuleSource,
    groupsSince('errors.new_group', 'A new error group appeared', 'first_seen', 'new error group') as RuleSource,
    groupsSince('errors.regression', 'A resolved error group came back', 'regressed_at', 'regression') as RuleSource,
    spike as RuleSource,
  ]
}
