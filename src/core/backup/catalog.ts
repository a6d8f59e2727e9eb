import { formatBytes } from '../../shared/format'
import type { BackupStorage, StoredObject } from '../storage/storage'
import { manifestSchema, SET_ID, SETS_PREFIX, type Manifest } from './manifest'

export interface CatalogSet {
  setId: string
  status: 'complete' | 'incomplete' | 'unreadable'
  type: 'full' | 'incremental' | 'safety' | 'unknown'
  manifest: Manifest | null
  objects: number
  /** Bytes in storage, unfinished writes included (a killed backup's .partial files take space too). */
  storedBytes: number
  /** Unfinished writes of the set (local .partial files, S3 multipart uploads in progress). */
  partialObjects: number
  partialBytes: number
  lastModified: string
  problem: string | null
}

/**
 * The catalog is what storage holds, read from the manifests alone: it works while the database
 * is down. A set without a manifest is incomplete: shown, never offered for restore.
 */
export async function readCatalog(storage: BackupStorage): Promise<CatalogSet[]> {
  const [objects, partials] = await Promise.all([storage.list(SETS_PREFIX), storage.listPartial(SETS_PREFIX)])
  const bySet = new Map<string, { objs: StoredObject[]; partials: StoredObject[] }>()
  const add = (o: StoredObject, partial: boolean) => {
    const id = o.key.slice(SETS_PREFIX.length).split('/')[0]
    if (!SET_ID.test(id)) return
    const entry = bySet.get(id) ?? { objs: [], partials: [] }
    ;(partial ? entry.partials : entry.objs).push(o)
    bySet.set(id, entry)
  }
  for (const o of objects) add(o, false)
  for (const o of partials) add(o, true)
  const sets: CatalogSet[] = []
  for (const [setId, { objs, partials: p }] of bySet) sets.push(await describeSet(storage, setId, objs, p))
  const at = (s: CatalogSet) => new Date(s.manifest?.snapshot.time ?? s.lastModified).getTime()
  return sets.sort((a, b) => at(b) - at(a) || b.setId.localeCompare(a.setId))
}

/** One set, reading only its own objects and manifest (not the whole catalog); null when there is no such set. */
export async function readSet(storage: BackupStorage, setId: string): Promise<CatalogSet | null> {
  if (!SET_ID.test(setId)) return null
  const [objs, partials] = await Promise.all([storage.list(`${SETS_PREFIX}${setId}/`), storage.listPartial(`${SETS_PREFIX}${setId}/`)])
  return objs.length || partials.length ? describeSet(storage, setId, objs, partials) : null
}

async function describeSet(storage: BackupStorage, setId: string, objs: StoredObject[], partials: StoredObject[]): Promise<CatalogSet> {
  const type = (/-(full|incremental|safety)-/.exec(setId)?.[1] ?? 'unknown') as CatalogSet['type']
  const partialBytes = partials.reduce((n, o) => n + o.size, 0)
  const base = {
    setId,
    type,
    objects: objs.length,
    storedBytes: objs.reduce((n, o) => n + o.size, 0) + partialBytes,
    partialObjects: partials.length,
    partialBytes,
    lastModified: new Date(Math.max(...[...objs, ...partials].map((o) => o.modified.getTime()))).toISOString(),
  }
  const m = objs.find((o) => o.key.endsWith('/manifest.json'))
  if (!m)
    return {
      ...base,
      status: 'incomplete',
      manifest: null,
      problem: `No manifest: the backup did not finish${partials.length ? ` (${partials.length} unfinished write(s) of ${formatBytes(partialBytes)} included in its size)` : ''}. It is never offered for restore and is removed by cleanup.`,
    }
  try {
    const manifest = manifestSchema.parse(JSON.parse((await storage.getBuffer(m.key)).toString('utf8')))
    return { ...base, status: 'complete', manifest, problem: null }
  } catch (e) {
    return { ...base, status: 'unreadable', manifest: null, problem: `The manifest cannot be read: ${(e as Error).message.slice(0, 200)}` }
  }
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
