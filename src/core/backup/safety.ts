import type pg from 'pg'
import type { CatalogSet } from './catalog'

/**
 * Safety backups no restore needs. An in-place restore stores a safety backup of the tables it replaces
 * and names it in its record (ops.restores.safety_set_id) before replacing anything; when that restore then
 * fails or is cancelled, the database is left as it was, so the safety backup holds nothing to undo. Such
 * sets are "orphaned": marked in the catalog, never offered for restore, and deleted by retention.
 * A safety set that no record names (taken before records named them at once) is matched to the in-place
 * restore that was running when it was taken, and orphaned only if that restore failed or was cancelled.
 * A safety set of a restore that succeeded, is running or was interrupted (it may have committed), or whose
 * restore is not on record (another ops store), is never orphaned. Without the ops store nothing is.
 */
const SKEW_MS = 60_000

export async function orphanedSafetySets(pool: pg.Pool | null, catalog: CatalogSet[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const safety = catalog.filter((s) => s.status === 'complete' && s.manifest?.type === 'safety')
  if (!pool || !safety.length) return out
  const oldest = new Date(Math.min(...safety.map((s) => new Date(s.manifest!.snapshot.time).getTime())) - 86_400_000)
  let rows: { id: string | null; outcome: string; started: Date; finished: Date | null }[]
  try {
    rows = (
      await pool.query(
        `SELECT safety_set_id AS id, outcome, started_at AS started, finished_at AS finished FROM ops.restores
          WHERE safety_set_id = ANY($1::text[])
             OR (safety_set_id IS NULL AND outcome IN ('failed', 'cancelled') AND plan->'target'->>'mode' = 'replace' AND started_at >= $2)`,
        [safety.map((s) => s.setId), oldest],
      )
    ).rows
  } catch {
    return out // the store cannot be read: say nothing rather than guess
  }
  const why = (outcomes: string[]) =>
    `the restore that took it ${outcomes.includes('failed') ? 'failed' : 'was cancelled'}, so the database was left as it was`
  for (const s of safety) {
    const named = rows.filter((r) => r.id === s.setId).map((r) => r.outcome)
    if (named.length) {
      if (named.every((o) => o === 'failed' || o === 'cancelled')) out.set(s.setId, why(named))
      continue
    }
    const at = new Date(s.manifest!.snapshot.time).getTime()
    // The snapshot time is the database server's clock, the record's times the console's: allow for skew.
    const during = rows.find((r) => !r.id && r.started.getTime() - SKEW_MS <= at && at <= (r.finished?.getTime() ?? 0) + SKEW_MS)
    if (during) out.set(s.setId, why([during.outcome]))
  }
  return out
}
