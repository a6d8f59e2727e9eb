import type { BackupStorage } from '../storage/storage'
import { type CatalogSet } from './catalog'
import { manifestKey } from './manifest'

export interface RetentionPolicy {
  /** Sets whose snapshot is younger than this are kept. */
  retainDays: number
  /** The newest N fulls are kept with their incrementals, however old (at least 1). */
  keepFulls: number
}

export interface RetentionPlan {
  policy: RetentionPolicy
  delete: { setId: string; type: string; snapshotTime: string | null; bytes: number; reason: string }[]
  keep: { setId: string; reason: string }[]
  bytesFreed: number
}

const DAY = 86_400_000
const snapshotMs = (s: CatalogSet) => new Date(s.manifest?.snapshot.time ?? s.lastModified).getTime()

/**
 * Which sets go. A set is kept when it is young enough, in one of the newest fulls' chains, or an
 * ancestor of a kept set (an incremental is useless without its full and every set between): so
 * retention can never break a chain. Incomplete sets past the stale window go too, and so do orphaned
 * safety backups (of restores that failed or were cancelled: they hold nothing to undo).
 */
export function planRetention(
  sets: CatalogSet[],
  policy: RetentionPolicy,
  now = Date.now(),
  staleMs = 15 * 60_000,
  /** Safety sets no restore needs (see safety.ts), with why: deleted whatever their age. */
  orphanedSafety: Map<string, string> = new Map(),
): RetentionPlan {
  const keepFulls = Math.max(1, policy.keepFulls)
  const complete = sets.filter((s) => s.status === 'complete' && s.manifest)
  const byId = new Map(complete.map((s) => [s.setId, s]))
  const fullOf = (s: CatalogSet): string => {
    let cur = s
    while (cur.manifest?.parent && byId.has(cur.manifest.parent)) cur = byId.get(cur.manifest.parent)!
    return cur.setId
  }
  // Newest by snapshot time (set ids have one-second resolution).
  const newestFulls = complete
    .filter((s) => s.type === 'full')
    .sort((a, b) => snapshotMs(b) - snapshotMs(a) || b.setId.localeCompare(a.setId))
    .slice(0, keepFulls)
    .map((s) => s.setId)
  const reasons = new Map<string, string>()
  for (const s of complete) {
    const at = new Date(s.manifest!.snapshot.time).getTime()
    if (orphanedSafety.has(s.setId)) continue
    if (now - at < policy.retainDays * DAY) reasons.set(s.setId, `younger than ${policy.retainDays} days`)
    else if (newestFulls.includes(fullOf(s))) reasons.set(s.setId, `in one of the newest ${keepFulls} full backup chain(s)`)
  }
  // Ancestors of kept sets are kept: walk each kept set up to its full.
  for (const id of [...reasons.keys()]) {
    let parent = byId.get(id)?.manifest?.parent
    while (parent && byId.has(parent)) {
      if (!reasons.has(parent)) reasons.set(parent, `needed by the kept set ${id}`)
      parent = byId.get(parent)!.manifest!.parent
    }
  }
  const del: RetentionPlan['delete'] = []
  for (const s of complete)
    if (!reasons.has(s.setId))
      del.push({
        setId: s.setId,
        type: s.type,
        snapshotTime: s.manifest!.snapshot.time,
        bytes: s.storedBytes,
        reason: orphanedSafety.has(s.setId)
          ? `orphaned safety backup: ${orphanedSafety.get(s.setId)}`
          : `older than ${policy.retainDays} days and not in a kept chain`,
      })
  for (const s of sets)
    if (s.status !== 'complete' && now - new Date(s.lastModified).getTime() >= staleMs)
      del.push({
        setId: s.setId,
        type: s.type,
        snapshotTime: null,
        bytes: s.storedBytes,
        reason: `${s.status}: ${s.problem ?? 'no manifest'}`,
      })
  return {
    policy: { retainDays: policy.retainDays, keepFulls },
    delete: del.sort((a, b) => a.setId.localeCompare(b.setId)),
    keep: [...reasons.entries()].map(([setId, reason]) => ({ setId, reason })).sort((a, b) => b.setId.localeCompare(a.setId)),
    bytesFreed: del.reduce((n, d) => n + d.bytes, 0),
  }
}

/** Delete the planned sets for real: the manifest first (the set stops being restorable at once), then every object. */
export async function applyRetention(storage: BackupStorage, plan: RetentionPlan): Promise<{ deleted: string[]; objects: number }> {
  let objects = 0
  const deleted: string[] = []
  // Newest first: a chain is cut from its end, so an interruption never leaves an incremental without its parent.
  const at = (d: RetentionPlan['delete'][number]) => (d.snapshotTime ? new Date(d.snapshotTime).getTime() : 0)
  for (const d of [...plan.delete].sort((a, b) => at(b) - at(a) || b.setId.localeCompare(a.setId))) {
    await storage.delete([manifestKey(d.setId)])
    const keys = (await storage.list(`sets/${d.setId}/`)).map((o) => o.key)
    await storage.delete(keys)
    objects += keys.length + 1
    deleted.push(d.setId)
  }
  return { deleted, objects }
}
