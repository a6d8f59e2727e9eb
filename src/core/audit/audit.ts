import type pg from 'pg'
import type { Logger } from '../log/logger'
import { scrub } from '../log/scrub'

export interface AuditEntry {
  actor: string
  action: string
  target?: string | null
  outcome: string
  details?: Record<string, unknown>
}

/** Who did what, when, with what outcome. Written to ops.audit_log; also logged so nothing is lost while the store is down. */
export class AuditLog {
  constructor(private deps: { store: () => pg.Pool | null; log: Logger }) {}

  async record(e: AuditEntry): Promise<void> {
    const details = JSON.parse(scrub(JSON.stringify(e.details ?? {}))) as Record<string, unknown>
    this.deps.log.info(`audit: ${e.actor} ${e.action} ${e.target ?? ''} -> ${e.outcome}`)
    const pool = this.deps.store()
    if (!pool) return
    try {
      await pool.query(`INSERT INTO ops.audit_log (actor, action, target, outcome, details) VALUES ($1, $2, $3, $4, $5)`, [
        e.actor,
        e.action,
        e.target ?? null,
        e.outcome,
        JSON.stringify(details),
      ])
    } catch (err) {
      this.deps.log.warn('could not write the audit record to ops.audit_log', { error: (err as Error).message })
    }
  }
}
