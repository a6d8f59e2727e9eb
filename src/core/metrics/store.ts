import type pg from 'pg'
import type { MetricPoint } from '../../shared/metrics'
import type { Logger } from '../log/logger'
import { RETENTION, type Tier } from './tiers'

export interface StoredSample {
  series: string
  host: string
  t: number
  v: number | null
}

const BUCKET: Record<Exclude<Tier, 'raw'>, number> = { '1m': 60_000, '1h': 3_600_000 }

/**
 * Metric history in the ops schema: raw samples, and 1-minute and 1-hour rollups (min, max, sum, count)
 * kept current as each batch is written (upserts that combine with what the bucket holds). Writes that
 * fail while the database is down stay queued in memory, bounded, oldest dropped first, and go with the
 * next batch.
 */
export class MetricStore {
  private queue: StoredSample[] = []
  dropped = 0
  private flushing: Promise<void> | null = null

  constructor(private deps: { pool: () => pg.Pool | null; log: Logger; maxQueued?: number }) {}

  get queued(): number {
    return this.queue.length
  }

  add(samples: StoredSample[]): void {
    this.queue.push(...samples)
    const max = this.deps.maxQueued ?? 200_000
    if (this.queue.length > max) {
      this.dropped += this.queue.length - max
      this.queue.splice(0, this.queue.length - max)
    }
  }

  /** Write what is queued in one transaction; on failure it stays queued. */
  flush(): Promise<void> {
    this.flushing ??= this.flushNow().finally(() => (this.flushing = null))
    return this.flushing
  }

  private async flushNow(): Promise<void> {
    const pool = this.deps.pool()
    if (!pool) return
    try {
      while (this.queue.length) {
        const batch = this.queue.slice(0, 50_000)
        await writeBatch(pool, batch)
        this.queue.splice(0, batch.length)
      }
    } catch (e) {
      this.deps.log.warn('metric samples could not be written; kept in memory until the database answers', {
        queued: this.queue.length,
        error: (e as Error).message,
      })
    }
  }

  /** Remove what is past each tier's retention. */
  async prune(now = Date.now()): Promise<void> {
    const pool = this.deps.pool()
    if (!pool) return
    await pool.query(`DELETE FROM ops.metric_samples WHERE ts < $1`, [new Date(now - RETENTION.raw)])
    await pool.query(`DELETE FROM ops.metric_rollups WHERE tier = '1m' AND bucket < $1`, [new Date(now - RETENTION['1m'])])
    await pool.query(`DELETE FROM ops.metric_rollups WHERE tier = '1h' AND bucket < $1`, [new Date(now - RETENTION['1h'])])
  }

  async read(tier: Tier, series: string, host: string, from: number, to: number): Promise<MetricPoint[]> {
    const pool = this.deps.pool()
    if (!pool) return []
    if (tier === 'raw') {
      const { rows } = await pool.query<{ t: number; v: number | null }>(
        `SELECT (extract(epoch FROM ts) * 1000)::float8 AS t, value AS v FROM ops.metric_samples
          WHERE series = $1 AND host = $2 AND ts BETWEEN $3 AND $4 ORDER BY ts`,
        [series, host, new Date(from), new Date(to)],
      )
      return rows
    }
    const { rows } = await pool.query<{ t: number; v: number; min: number; max: number }>(
      `SELECT (extract(epoch FROM bucket) * 1000)::float8 AS t, sum / count AS v, min, max FROM ops.metric_rollups
        WHERE tier = $1 AND series = $2 AND host = $3 AND bucket BETWEEN $4 AND $5 ORDER BY bucket`,
      [tier, series, host, new Date(from - BUCKET[tier]), new Date(to)],
    )
    return rows
  }

  async hosts(): Promise<string[]> {
    const pool = this.deps.pool()
    if (!pool) return []
    const { rows } = await pool.query<{ host: string }>(
      `SELECT DISTINCT host FROM ops.metric_rollups WHERE tier = '1h' AND series LIKE 'host.%' AND bucket > now() - interval '30 days' ORDER BY host`,
    )
    return rows.map((r) => r.host)
  }
}

/** One batch: raw rows through unnest, and each touched rollup bucket combined with what it holds. */
export async function writeBatch(pool: pg.Pool, batch: StoredSample[]): Promise<void> {
  const withValue = batch.filter((s) => s.v !== null && Number.isFinite(s.v))
  const roll = new Map<
    string,
    { tier: string; series: string; host: string; bucket: number; min: number; max: number; sum: number; count: number }
  >()
  for (const s of withValue)
    for (const [tier, size] of Object.entries(BUCKET)) {
      const bucket = Math.floor(s.t / size) * size
      const k = `${tier}|${s.series}|${s.host}|${bucket}`
      const r = roll.get(k)
      if (r) {
        r.min = Math.min(r.min, s.v!)
        r.max = Math.max(r.max, s.v!)
        r.sum += s.v!
        r.count++
      } else roll.set(k, { tier, series: s.series, host: s.host, bucket, min: s.v!, max: s.v!, sum: s.v!, count: 1 })
    }
  const rolls = [...roll.values()]
  const c = await pool.connect()
  try {
    await c.query('BEGIN')
    await c.query(
      `INSERT INTO ops.metric_samples (series, host, ts, value)
       SELECT s, h, to_timestamp(t / 1000.0), v FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) AS x(s, h, t, v)`,
      [batch.map((s) => s.series), batch.map((s) => s.host), batch.map((s) => s.t), batch.map((s) => s.v)],
    )
    if (rolls.length)
      await c.query(
        `INSERT INTO ops.metric_rollups (tier, series, host, bucket, min, max, sum, count)
         SELECT tier, series, host, to_timestamp(b / 1000.0), min, max, sum, count
           FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::int[])
             AS x(tier, series, host, b, min, max, sum, count)
         ON CONFLICT (tier, series, host, bucket) DO UPDATE SET
           min = LEAST(ops.metric_rollups.min, EXCLUDED.min), max = GREATEST(ops.metric_rollups.max, EXCLUDED.max),
           sum = ops.metric_rollups.sum + EXCLUDED.sum, count = ops.metric_rollups.count + EXCLUDED.count`,
        [
          rolls.map((r) => r.tier),
          rolls.map((r) => r.series),
          rolls.map((r) => r.host),
          rolls.map((r) => r.bucket),
          rolls.map((r) => r.min),
          rolls.map((r) => r.max),
          rolls.map((r) => r.sum),
          rolls.map((r) => r.count),
        ],
      )
    await c.query('COMMIT')
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {})
    throw e
  } finally {
    c.release()
  }
}
