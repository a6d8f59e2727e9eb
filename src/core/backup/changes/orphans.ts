import type pg from 'pg'
import type { CatalogSet } from '../catalog'
import { ourSlots, type SlotStatus } from './slot'

/**
 * Which of our slots no backup chain uses. Once a chain exists, every full creates a slot of its own;
 * a full that is killed (or whose server stops) before its manifest is written cannot drop it, and
 * that slot then holds WAL back on the database server for nothing. A slot is an orphan when it is
 * ours (examforge_ops_ prefix, this database), nobody reads it, no complete set in storage names it
 * (so it is never the live chain's), and no running full owns it: a running full's coordinating
 * session carries the slot's name in its application_name (see runningFullName).
 */

/** The application_name of the session that coordinates a full creating this slot (under 64 bytes). */
export const runningFullName = (slot: string) => `examforge-ops:full ${slot}`

/** Slots named by complete sets: every chain's, the live one's included. */
export function slotsInUse(catalog: CatalogSet[]): Set<string> {
  const out = new Set<string>()
  for (const s of catalog) if (s.status === 'complete' && s.manifest?.snapshot.slot) out.add(s.manifest.snapshot.slot)
  return out
}

export interface SlotUse extends SlotStatus {
  /** Used by no chain and owned by no running backup: safe to drop. */
  orphan: boolean
}

export async function classifySlots(client: pg.ClientBase, catalog: CatalogSet[]): Promise<SlotUse[]> {
  const used = slotsInUse(catalog)
  const slots = await ourSlots(client)
  const { rows } = await client.query<{ name: string }>(
    `SELECT application_name AS name FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'examforge-ops:full %'`,
  )
  const running = new Set(rows.map((r) => r.name))
  return slots.map((s) => ({ ...s, orphan: !s.active && !used.has(s.name) && !running.has(runningFullName(s.name)) }))
}
