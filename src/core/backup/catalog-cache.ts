import { createHash, randomBytes } from 'node:crypto'
import { chmod, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { mkdirPrivate } from '../storage/local'
import type { BackupStorage } from '../storage/storage'

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
