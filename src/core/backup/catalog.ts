import { formatBytes } from '../../shared/format'
import type { BackupStorage, StoredObject } from '../storage/storage'
import { checkManifest, type Authenticity } from './authenticity'
import { deriveKeys, type KeySource } from './crypto'
import { manifestCacheOf, type ManifestCache } from './catalog-cache'
import { manifestKey, manifestSchema, SET_ID, SETS_PREFIX, type Manifest } from './manifest'

/** Manifests read at once: enough to hide S3's round trips, few enough not to queue behind the client's sockets. */
const READ_AHEAD = 16

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i])
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

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
 * is down. A set without a manifest is incomplete: shown, never offered for restore. With the
 * encryption settings given, encrypted sets' manifests are authenticated (a bad one is "tampered").
 * One listing of the sets' prefix (paginated), then only the manifests the storage's cache does not
 * hold under their current tag (catalog-cache.ts); cached ones are checked as fetched ones are.
 */
export async function readCatalog(storage: BackupStorage, keys: KeySource | null = null): Promise<CatalogSet[]> {
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
  // Manifests side by side (a thousand sets are a thousand small reads), each from the cache when its tag is known.
  const cache = manifestCacheOf(storage)
  const read = await mapLimit([...bySet], READ_AHEAD, ([setId, { objs, partials: p }]) => readManifest(storage, setId, objs, p, cache))
  if (cache) {
    const current = new Map<string, string>()
    for (const [setId, { objs }] of bySet) {
      const tag = objs.find((o) => o.key === manifestKey(setId))?.tag
      if (tag) current.set(setId, tag)
    }
    await cache.retain(current)
  }
  // Passphrase keys (one scrypt per set) are derived in parallel before the manifests are checked with them.
  if (keys)
    await deriveKeys(
      read.map((r) => ('raw' in r ? r.manifest.encryption : null)),
      keys,
    )
  const sets = read.map((r) => ('raw' in r ? authenticate(r, keys) : r))
  const at = (s: CatalogSet) => new Date(s.manifest?.snapshot.time ?? s.lastModified).getTime()
  return sets.sort((a, b) => at(b) - at(a) || b.setId.localeCompare(a.setId))
}

/** One set, reading only its own objects and manifest (not the whole catalog); null when there is no such set. */
export async function readSet(storage: BackupStorage, setId: string, keys: KeySource | null = null): Promise<CatalogSet | null> {
  if (!SET_ID.test(setId)) return null
  const [objs, partials] = await Promise.all([storage.list(`${SETS_PREFIX}${setId}/`), storage.listPartial(`${SETS_PREFIX}${setId}/`)])
  if (!objs.length && !partials.length) return null
  const r = await readManifest(storage, setId, objs, partials, manifestCacheOf(storage))
  return 'raw' in r ? authenticate(r, keys) : r
}

type Base = Pick<CatalogSet, 'setId' | 'type' | 'objects' | 'storedBytes' | 'partialObjects' | 'partialBytes' | 'lastModified'>
/** A manifest read and parsed, not yet checked. */
interface ReadManifest {
  base: Base
  raw: Record<string, unknown>
  manifest: Manifest
}

async function readManifest(
  storage: BackupStorage,
  setId: string,
  objs: StoredObject[],
  partials: StoredObject[],
  cache: ManifestCache | null,
): Promise<CatalogSet | ReadManifest> {
  const type = (/-(full|incremental|safety)-/.exec(setId)?.[1] ?? 'unknown') as CatalogSet['type']
  const partialBytes = partials.reduce((n, o) => n + o.size, 0)
  const base: Base = {
    setId,
    type,
    objects: objs.length,
    storedBytes: objs.reduce((n, o) => n + o.size, 0) + partialBytes,
    partialObjects: partials.length,
    partialBytes,
    lastModified: new Date(Math.max(...[...objs, ...partials].map((o) => o.modified.getTime()))).toISOString(),
  }
  const m = objs.find((o) => o.key === manifestKey(setId))
  if (!m)
    return {
      ...base,
      status: 'incomplete',
      manifest: null,
      authenticity: null,
      problem: `No manifest: the backup did not finish${partials.length ? ` (${partials.length} unfinished write(s) of ${formatBytes(partialBytes)} included in its size)` : ''}. It is never offered for restore and is removed by cleanup.`,
    }
  try {
    // Parsed already by this process (authenticated below all the same), else its bytes from the cache or storage.
    const known = m.tag && cache ? cache.recall(setId, m.tag) : null
    if (known) return { base, ...known }
    let bytes = m.tag && cache ? await cache.get(setId, m.tag) : null
    let tag = m.tag ?? null
    if (!bytes) {
      const got = await storage.getTagged(m.key)
      bytes = got.data
      tag = got.tag
      // Cached under the tag of the bytes read (the manifest may have been replaced since it was listed).
      if (cache && tag) await cache.put(setId, tag, bytes)
    }
    // Cached or fetched, the bytes are parsed and then authenticated alike (authenticate()).
    const raw = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
    const parsed = { raw, manifest: manifestSchema.parse(raw) }
    if (cache && tag) cache.remember(setId, tag, bytes.length, parsed)
    return { base, ...parsed }
  } catch (e) {
    return {
      ...base,
      status: 'unreadable',
      manifest: null,
      authenticity: null,
      problem: `The manifest cannot be read: ${(e as Error).message.slice(0, 200)}`,
    }
  }
}

/** Complete, or tampered (its contents are then not handed on). */
function authenticate({ base, raw, manifest }: ReadManifest, keys: KeySource | null): CatalogSet {
  const check = checkManifest(base.setId, raw, manifest, keys)
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
