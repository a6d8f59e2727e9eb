import type pg from 'pg'
import type { HealthChange, HealthResult, HealthStatus, ServiceId } from '../../shared/domain'
import type { Logger } from '../log/logger'

/** Health results and state changes in the ops schema. Failures are logged, never thrown: health must work while the store is down. */
export class HealthStore {
  private warned = false
  constructor(
    private pool: () => pg.Pool | null,
    private log: Logger,
  ) {}

  private async q<T extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<T[] | null> {
    const pool = this.pool()
    if (!pool) return null
    try {
      const r = await pool.query<T>(sql, params)
      this.warned = false
      return r.rows
    } catch (e) {
      if (!this.warned)
        this.log.warn('the ops store is not reachable; health results are kept in memory only', { error: (e as Error).message })
      this.warned = true
      return null
    }
  }

  async saveResults(results: HealthResult[]): Promise<void> {
    if (!results.length) return
    await this.q(
      `INSERT INTO ops.health_results (service, status, latency_ms, reason, details, checked_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[], $5::jsonb[], $6::timestamptz[])`,
      [
        results.map((r) => r.service),
        results.map((r) => r.status),
        results.map((r) => r.latencyMs),
        results.map((r) => r.reason),
        results.map((r) => JSON.stringify(r.details)),
        results.map((r) => r.checkedAt),
      ],
    )
    await this.q(
      `INSERT INTO ops.health_state (service, status, reason, since, last_checked)
       SELECT s, st, re, ch, lc FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) AS t(s, st, re, ch, lc)
       ON CONFLICT (service) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason,
         since = EXCLUDED.since, last_checked = EXCLUDED.last_checked`,
      [
        results.map((r) => r.service),
        results.map((r) => r.status),
        results.map((r) => r.reason),
        results.map((r) => r.lastChangeAt ?? r.checkedAt),
        results.map((r) => r.checkedAt),
      ],
    )
  }

  /** A flip is stored at once, with the state it starts, so a console restarting mid-cycle keeps "since". */
  async saveChange(c: HealthChange): Promise<void> {
    await this.q(
      `WITH change AS (INSERT INTO ops.health_changes (service, from_status, to_status, reason, at) VALUES ($1, $2, $3, $4, $5))
       INSERT INTO ops.health_state (service, status, reason, since, last_checked) VALUES ($1, $3, $4, $5, $5)
       ON CONFLICT (service) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason, since = EXCLUDED.since, last_checked = EXCLUDED.last_checked`,
      [c.service, c.from, c.to, c.reason, c.at],
    )
  }

  async loadState(): Promise<{ service: ServiceId; status: HealthStatus; since: string }[]> {
    const rows = await this.q<{ service: ServiceId; status: HealthStatus; since: Date }>(
      `SELECT service, status, since FROM ops.health_state`,
      [],
    )
    return (rows ?? []).map((r) => ({ service: r.service, status: r.status, since: r.since.toISOString() }))
  }

  async history(service: ServiceId, limit: number): Promise<{ results: HealthResult[]; changes: HealthChange[] }> {
    const results = await this.q<{
      service: ServiceId
      status: HealthStatus
      latency_ms: number | null
      reason: string
      details: HealthResult['details']
      checked_at: Date
    }>(
      `SELECT service, status, latency_ms, reason, details, checked_at FROM ops.health_results WHERE service = $1 ORDER BY checked_at DESC LIMIT $2`,
      [service, limit],
    )
    const changes = await this.q<{
      service: ServiceId
      from_status: HealthStatus | null
      to_status: HealthStatus
      reason: string
      at: Date
    }>(`SELECT service, from_status, to_status, reason, at FROM ops.health_changes WHERE service = $1 ORDER BY at DESC LIMIT $2`, [
      service,
      limit,
    ])
    return {
      results: (results ?? []).map((r) => ({
        service: r.service,
        label: r.service,
        status: r.status,
        latencyMs: r.latency_ms,
        reason: r.reason,
        details: r.details,
        transport: null,
        checkedAt: r.checked_at.toISOString(),
        lastChangeAt: null,
      })),
      changes: (changes ?? []).map((c) => ({
        service: c.service,
        from: c.from_status,
        to: c.to_status,
        reason: c.reason,
        at: c.at.toISOString(),
      })),
    }
  }

  /**
   * A check's statuses over [from, to] for alert backtests, in time order: every stored result, and before
   * the oldest result kept (results are pruned after a week, changes are kept) the stored changes, with the
   * status they started sampled every `stepMs` in between. Throws when the store cannot be read: a backtest
   * over nothing would look like "never fired".
   */
  async timeline(
    service: string,
    from: number,
    to: number,
    stepMs: number,
  ): Promise<{ t: number; status: HealthStatus; reason: string }[]> {
    const pool = this.pool()
    if (!pool) throw new Error('the ops store is not configured, so no health history is stored')
    const [results, changes] = await Promise.all([
      pool.query<{ status: HealthStatus; reason: string; checked_at: Date }>(
        `SELECT status, reason, checked_at FROM ops.health_results WHERE service = $1 AND checked_at BETWEEN $2 AND $3 AND checked_at > 'epoch' ORDER BY checked_at`,
        [service, new Date(from), new Date(to)],
      ),
      pool.query<{ to_status: HealthStatus; reason: string; at: Date }>(
        `SELECT to_status, reason, at FROM ops.health_changes WHERE service = $1 AND at <= $2 ORDER BY at`,
        [service, new Date(to)],
      ),
    ])
    const out: { t: number; status: HealthStatus; reason: string }[] = []
    const firstResult = results.rows.length ? results.rows[0].checked_at.getTime() : to + 1
    const ch = changes.rows.map((c) => ({ t: c.at.getTime(), status: c.to_status, reason: c.reason }))
    let i = 0
    let current: (typeof ch)[number] | null = null
    for (let t = from; t < firstResult && t <= to; t += Math.max(stepMs, 1000)) {
      while (i < ch.length && ch[i].t <= t) current = ch[i++]
      if (current) out.push({ t, status: current.status, reason: current.reason })
    }
    for (const r of results.rows) out.push({ t: r.checked_at.getTime(), status: r.status, reason: r.reason })
    return out
  }

  /** Keep a week of raw results; state and changes are small and kept. */
  async prune(days = 7): Promise<number> {
    const rows = await this.q<{ n: string }>(
      `WITH gone AS (DELETE FROM ops.health_results WHERE checked_at < now() - make_interval(days => $1) RETURNING 1) SELECT count(*) AS n FROM gone`,
      [days],
    )
    return Number(rows?.[0]?.n ?? 0)
  }
}
