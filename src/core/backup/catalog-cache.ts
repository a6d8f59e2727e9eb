import { createHash, randomBytes } from 'node:crypto'
import { chmod, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { mkdirPrivate } from '../storage/local'
import type { BackupStorage } from '../storage/storage'
import type { Manifest } from './manifest'

/** A manifest as stored (the JSON its MAC covers) and as validated. */
export interface Parsed {
  raw: Record<string, unknown>
  manifest: Manifest
}

/** Manifest text kept parsed in memory, at most (a year of sets is a few MB). */
const MEMORY_BYTES = 32 * 1024 * 1024

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const x of Object.values(v)) deepFreeze(x)
  }
  return v
}

/**
 * Manifests kept on this machine, so that listing a catalog of a thousand sets reads storage's listing and
 * only the manifests it has not seen: one file per set, named by the set and by its manifest's tag in that
 * listing (S3's ETag; a local file's inode, mtime and size), holding the manifest's bytes as stored. A set
 * replaced behind the cache's back has another tag (its file is no longer found: the manifest is fetched
 * again); a set deleted is no longer listed (its file is removed at the next full read).
 *
 * Only bytes are kept: the catalog parses and authenticates cached manifests exactly as fetched ones
 * (authenticity.ts), so a file changed here is caught as a manifest changed in storage would be.
 * The folder lives in the console's private data folder (0700, files 0600): manifests name tables.
 * A cache that cannot be read or written only costs fetches: the catalog never fails because of it.
 */
export class ManifestCache {
  readonly dir: string

  /** root: the cache folder in the data folder; location: the storage's (each storage has a folder of its own). */
  constructor(root: string, location: string) {
    this.dir = join(root, createHash('sha256').update(location).digest('hex').slice(0, 24))
  }

  private file(setId: string, tag: string): string {
    return `${setId}.${createHash('sha256').update(tag).digest('hex').slice(0, 32)}.json`
  }

  /** The manifest's bytes as stored under this tag, or null when not cached. */
  async get(setId: string, tag: string): Promise<Buffer | null> {
    try {
      return await readFile(join(this.dir, this.file(setId, tag)))
    } catch {
      return null
    }
  }

  private ready: Promise<void> | null = null

  /**
   * Manifests this process has already parsed, by set and tag (frozen: shared by every read), up to
   * MEMORY_BYTES of manifest text: a console asked for its catalog again reads neither files nor JSON.
   * Only the parse is skipped; the catalog authenticates them at every read.
   */
  private parsed = new Map<string, { tag: string; size: number; value: Parsed }>()
  private parsedBytes = 0

  recall(setId: string, tag: string): Parsed | null {
    const e = this.parsed.get(setId)
    return e && e.tag === tag ? e.value : null
  }

  remember(setId: string, tag: string, size: number, value: Parsed): void {
    this.forget(setId)
    if (this.parsedBytes + size > MEMORY_BYTES) return
    this.parsed.set(setId, { tag, size, value: deepFreeze(value) })
    this.parsedBytes += size
  }

  private forget(setId: string): void {
    const e = this.parsed.get(setId)
    if (!e) return
    this.parsed.delete(setId)
    this.parsedBytes -= e.size
  }

  async put(setId: string, tag: string, bytes: Buffer): Promise<void> {
    try {
      await (this.ready ??= mkdirPrivate(this.dir).catch((e) => {
        this.ready = null
        throw e
      }))
      // Written aside and renamed: another process (the CLI, the agent) may read or write the same folder.
      const name = this.file(setId, tag)
      const tmp = join(this.dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`)
      await writeFile(tmp, bytes, { mode: 0o600 })
      await chmod(tmp, 0o600)
      await rename(tmp, join(this.dir, name))
    } catch {
      // Not cached: the next read fetches it again.
    }
  }

  /** After a full read: remove the files of sets no longer listed and of manifests since replaced. */
  async retain(current: Map<string, string>): Promise<void> {
    for (const [setId, e] of [...this.parsed]) if (current.get(setId) !== e.tag) this.forget(setId)
    const names = await readdir(this.dir).catch(() => [] as string[])
    const keep = new Set([...current].map(([setId, tag]) => this.file(setId, tag)))
    await Promise.all(names.filter((n) => !keep.has(n) && !n.startsWith('.')).map((n) => rm(join(this.dir, n), { force: true })))
  }
}

const caches = new WeakMap<BackupStorage, ManifestCache>()

/** Give a storage its manifest cache (BackupService does, for the storage every face and the restore planner use). */
export function withManifestCache<S extends BackupStorage>(storage: S, cache: ManifestCache): S {
  caches.set(storage, cache)
  return storage
}

export const manifestCacheOf = (storage: BackupStorage): ManifestCache | null => caches.get(storage) ?? null
