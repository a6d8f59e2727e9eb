import type pg from 'pg'
import type { CatalogSet } from './catalog'

/**
 * Safety backups no restore needs. An in-place restore stores a safety backup of the tables it replaces
 * and records its id before replacing anything; when that restore then fails or is cancelled, the
 * database is left as it was, so the safety backup holds nothing to undo. Such sets, and safety sets no
 * restore record names at all (older than a restore takes to record one), are "orphaned": marked in the
 * catalog, never offered for undo, and deleted by retention. A safety set of a restore that succeeded,
 * is running, or was interrupted (it may have committed) is never orphaned.
 * Needs the ops store (ops.restores): without it nothing is called orphaned.
 */

/** A safety set no record names yet is left alone this long (its restore records it right after storing it). */
export const UNNAMED_GRACE_MS = 60 * 60_000

export async function orphanedSafetySets(pool: pg.Pool | null, catalog: CatalogSet[], now = Date.now()): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const safety = catalog.filter((s) => s.status === 'complete' && s.manifest?.type === 'safety')
  if (!pool || !safety.length) return out
  let rows: { id: string; outcomes: string[] }[]
  try {
    rows = (
      await pool.query<{ id: string; outcomes: string[] }>(
        `SELECT safety_set_id AS id, array_agg(outcome) AS outcomes FROM ops.restores
          WHERE safety_set_id = ANY($1::text[]) GROUP BY safety_set_id`,
        [safety.map((s) => s.setId)],
      )
    ).rows
  } catch {
    return out // the store cannot be read: say nothing rather than guess
  }
  const named = new Map(rows.map((r) => [r.id, r.outcomes]))
  for (const s of safety) {
    const outcomes = named.get(s.setId)
    if (outcomes) {
      if (outcomes.every((o) => o === 'failed' || o === 'cancelled'))
        out.set(
          s.setId,
          `the restore that took it ${outcomes.includes('failed') ? 'failed' : 'was cancelled'}, so the database was left as it was`,
        )
    } else if (now - new Date(s.manifest!.snapshot.time).getTime() > UNNAMED_GRACE_MS)
      out.set(s.setId, 'no restore on record took it (its restore was killed or failed before naming it)')
  }
  return out
}
