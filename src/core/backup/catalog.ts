import type { BackupStorage, StoredObject } from '../storage/storage'
import { checkManifest, type Authenticity } from './authenticity'
import type { KeySource } from './crypto'
import { manifestSchema, SET_ID, SETS_PREFIX, type Manifest } from './manifest'

export interface CatalogSet {
  setId: string
  /** tampered: its manifest failed its authentication check (or describes another set): never offered for restore. */
  status: 'complete' | 'incomplete' | 'unreadable' | 'tampered'
  type: 'full' | 'incremental' | 'safety' | 'unknown'
  /** Null unless complete: a tampered manifest's contents are not handed on. */
  manifest: Manifest | null
  /** See authenticity.ts; null without a readable manifest. */
  authenticity: Authenticity | null
  objects: number
  storedBytes: number
  lastModified: string
  problem: string | null
}

/**
 * The catalog is what storage holds, read from the manifests alone: it works while the database
 * is down. A set without a manifest is incomplete: shown, never offered for restore. With the
 * encryption settings given, encrypted sets' manifests are authenticated (a bad one is "tampered").
 */
export async function readCatalog(storage: BackupStorage, keys: KeySource | null = null): Promise<CatalogSet[]> {
  const objects = await storage.list(SETS_PREFIX)
  const bySet = new Map<string, StoredObject[]>()
  for (const o of objects) {
    const id = o.key.slice(SETS_PREFIX.length).split('/')[0]
    if (!SET_ID.test(id)) continue
    bySet.set(id, [...(bySet.get(id) ?? []), o])
  }
  const sets: CatalogSet[] = []
  for (const [setId, objs] of bySet) sets.push(await describeSet(storage, setId, objs, keys))
  const at = (s: CatalogSet) => new Date(s.manifest?.snapshot.time ?? s.lastModified).getTime()
  return sets.sort((a, b) => at(b) - at(a) || b.setId.localeCompare(a.setId))
}

/** One set, reading only its own objects and manifest (not the whole catalog); null when there is no such set. */
export async function readSet(storage: BackupStorage, setId: string, keys: KeySource | null = null): Promise<CatalogSet | null> {
  if (!SET_ID.test(setId)) return null
  const objs = await storage.list(`${SETS_PREFIX}${setId}/`)
  return objs.length ? describeSet(storage, setId, objs, keys) : null
}

async function describeSet(storage: BackupStorage, setId: string, objs: StoredObject[], keys: KeySource | null): Promise<CatalogSet> {
  const type = (/-(full|incremental|safety)-/.exec(setId)?.[1] ?? 'unknown') as CatalogSet['type']
  const base = {
    setId,
    type,
    objects: objs.length,
    storedBytes: objs.reduce((n, o) => n + o.size, 0),
    lastModified: new Date(Math.max(...objs.map((o) => o.modified.getTime()))).toISOString(),
  }
  const m = objs.find((o) => o.key.endsWith('/manifest.json'))
  if (!m)
    return {
      ...base,
      status: 'incomplete',
      manifest: null,
      authenticity: null,
      problem: 'No manifest: the backup did not finish. It is never offered for restore and is removed by cleanup.',
    }
  let raw: Record<string, unknown>
  let manifest: Manifest
  try {
    raw = JSON.parse((await storage.getBuffer(m.key)).toString('utf8'))
    manifest = manifestSchema.parse(raw)
  } catch (e) {
    return {
      ...base,
      status: 'unreadable',
      manifest: null,
      authenticity: null,
      problem: `The manifest cannot be read: ${(e as Error).message.slice(0, 200)}`,
    }
  }
  const check = checkManifest(setId, raw, manifest, keys)
  if (check.tampered) return { ...base, status: 'tampered', manifest: null, authenticity: check.authenticity, problem: check.problem }
  return { ...base, status: 'complete', manifest, authenticity: check.authenticity, problem: check.problem }
}

export interface Chain {
  full: Manifest
  /** The full and its incrementals, oldest first. */
  sets: Manifest[]
  /** The range a restore can reach: from the full's snapshot to the newest set's point. */
  from: string
  to: string
}

/** Complete sets grouped into chains (a full and the incrementals that follow it), newest chain first. */
export function chains(sets: CatalogSet[]): Chain[] {
  const complete = sets.filter((s) => s.status === 'complete' && s.manifest).map((s) => s.manifest!)
  const byParent = new Map<string, Manifest[]>()
  for (const m of complete) if (m.parent) byParent.set(m.parent, [...(byParent.get(m.parent) ?? []), m])
  return (
    complete
      .filter((m) => m.type === 'full')
      .map((full) => {
        const list = [full]
        for (let next = byParent.get(full.setId)?.[0]; next; next = byParent.get(next.setId)?.[0]) list.push(next)
        return { full, sets: list, from: full.snapshot.time, to: list[list.length - 1].snapshot.time }
      })
      // Newest chain first, by snapshot time: set ids have one-second resolution.
      .sort(
        (a, b) =>
          new Date(b.full.snapshot.time).getTime() - new Date(a.full.snapshot.time).getTime() || b.full.setId.localeCompare(a.full.setId),
      )
  )
}
