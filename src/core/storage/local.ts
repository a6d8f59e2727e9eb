import { createReadStream, createWriteStream, statSync } from 'node:fs'
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { StorageError, type BackupStorage, type StoredObject } from './storage'

const PARTIAL = '.partial'

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * Create a folder (and any missing parents) readable by this user alone: every folder this call
 * creates is chmod-ed 0700 explicitly, whatever the umask. Folders that already exist are left as
 * they are (the storage health probe warns when the backup folder itself is open to others).
 */
export async function mkdirPrivate(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o700 })
  if (!first) return
  // Only the folders this call made: from dir up to the first one created, never above it.
  const top = resolve(first)
  for (let d = resolve(dir); d.startsWith(top); d = dirname(d)) {
    await chmod(d, 0o700)
    if (d === top) break
  }
}

/** Why other users could read the backup folder (a sentence with the fix), or null when it is private or missing. */
export function openToOthers(dir: string): string | null {
  if (process.platform === 'win32') return null
  let mode: number
  try {
    mode = statSync(dir).mode & 0o777
  } catch {
    return null
  }
  if ((mode & 0o077) === 0) return null
  return `The backup folder ${dir} can be read by other users (mode ${mode.toString(8)}), and backups hold user rows: run "chmod 700 ${dir}".`
}

/** A file's tag (see StoredObject): a file replaced (renamed over) or rewritten in place gets another. */
const localTag = (st: Stats) => `${st.ino}:${st.mtimeMs}:${st.size}`

/**
 * A local folder: objects are written to "<key>.partial", fsynced, then renamed into place.
 * Backups hold user rows: folders are created 0700 and objects 0600, whatever the umask.
 */
export class LocalStorage implements BackupStorage {
  readonly kind = 'local' as const
  readonly location: string

  constructor(private root: string) {
    this.location = resolve(root)
  }

  private path(key: string): string {
    const p = resolve(this.location, ...key.split('/'))
    if (!p.startsWith(this.location + sep)) throw new StorageError('bad_key', `Refusing a key outside the backup folder: ${key}`)
    return p
  }

  /** The folder a listing of the prefix starts in (its folders only: one set's listing does not walk every set). */
  private under(prefix: string): string {
    const dir = prefix.slice(0, prefix.lastIndexOf('/') + 1).replace(/\/+$/, '')
    return dir ? this.path(dir) : this.location
  }

  private async prepare(key: string): Promise<string> {
    const p = this.path(key)
    try {
      await mkdirPrivate(dirname(p))
    } catch (e) {
      throw new StorageError(
        'unwritable',
        `Cannot create ${dirname(p)} (${(e as NodeJS.ErrnoException).code}): check LOCAL_BACKUP_PATH and its permissions.`,
      )
    }
    return p
  }

  async put(key: string, body: Readable, signal?: AbortSignal): Promise<{ size: number }> {
    const p = await this.prepare(key)
    const tmp = p + PARTIAL
    let size = 0
    body.on('data', (c: Buffer) => (size += c.length))
    try {
      await pipeline(body, createWriteStream(tmp, { mode: 0o600 }), { signal })
      await chmod(tmp, 0o600)
      await fsyncPath(tmp)
      await rename(tmp, p)
      await fsyncPath(dirname(p))
    } catch (e) {
      await rm(tmp, { force: true })
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC')
        throw new StorageError('no_space', `The backup folder ${this.location} is full: free space or move LOCAL_BACKUP_PATH.`)
      throw e
    }
    return { size }
  }

  async putSmall(key: string, data: Buffer | string): Promise<void> {
    const p = await this.prepare(key)
    const tmp = p + PARTIAL
    await writeFile(tmp, data, { mode: 0o600 })
    await chmod(tmp, 0o600)
    await fsyncPath(tmp)
    await rename(tmp, p)
    await fsyncPath(dirname(p))
  }

  async get(key: string): Promise<Readable> {
    const p = this.path(key)
    await stat(p).catch(() => {
      throw new StorageError('not_found', `The object ${key} is missing from ${this.location}.`)
    })
    return createReadStream(p)
  }

  async getBuffer(key: string): Promise<Buffer> {
    try {
      return await readFile(this.path(key))
    } catch {
      throw new StorageError('not_found', `The object ${key} is missing from ${this.location}.`)
    }
  }

  async getTagged(key: string): Promise<{ data: Buffer; tag: string | null }> {
    const p = this.path(key)
    try {
      const before = await stat(p)
      const data = await readFile(p)
      const after = await stat(p)
      const tag = localTag(before)
      return { data, tag: tag === localTag(after) && data.length === after.size ? tag : null }
    } catch {
      throw new StorageError('not_found', `The object ${key} is missing from ${this.location}.`)
    }
  }

  async exists(key: string): Promise<boolean> {
    return stat(this.path(key)).then(
      () => true,
      () => false,
    )
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const out: StoredObject[] = []
    const walk = async (dir: string) => {
      let entries
      try {
        entries = await readdir(dir, { withFileTypes: true })
      } catch {
        return
      }
      // A folder's entries side by side: a catalog of a thousand sets is thousands of files.
      await Promise.all(
        entries.map(async (e) => {
          const p = join(dir, e.name)
          if (e.isDirectory()) await walk(p)
          else if (!e.name.endsWith(PARTIAL)) {
            const key = relative(this.location, p).split(sep).join('/')
            if (!key.startsWith(prefix)) return
            const st = await stat(p).catch(() => null) // it may be deleted meanwhile
            if (st) out.push({ key, size: st.size, modified: st.mtime, tag: localTag(st) })
          }
        }),
      )
    }
    await walk(this.under(prefix))
    return out.sort((a, b) => a.key.localeCompare(b.key))
  }

  async listPartial(prefix: string): Promise<StoredObject[]> {
    const out: StoredObject[] = []
    const walk = async (dir: string) => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
      for (const e of entries) {
        const p = join(dir, e.name)
        if (e.isDirectory()) await walk(p)
        else if (e.name.endsWith(PARTIAL)) {
          const key = relative(this.location, p).split(sep).join('/').slice(0, -PARTIAL.length)
          if (!key.startsWith(prefix)) continue
          const st = await stat(p).catch(() => null) // it may be renamed into place meanwhile
          if (st) out.push({ key, size: st.size, modified: st.mtime })
        }
      }
    }
    await walk(this.under(prefix))
    return out.sort((a, b) => a.key.localeCompare(b.key))
  }

  async delete(keys: string[]): Promise<void> {
    const dirs = new Set<string>()
    for (const k of keys) {
      const p = this.path(k)
      await rm(p, { force: true })
      dirs.add(dirname(p))
    }
    // Remove folders the deletion emptied, up to the root.
    for (let d of [...dirs].sort((a, b) => b.length - a.length)) {
      while (d.startsWith(this.location + sep)) {
        const left = await readdir(d).catch(() => null)
        if (!left || left.length) break
        await rm(d, { recursive: true, force: true })
        d = dirname(d)
      }
    }
  }

  async discard(prefix: string): Promise<void> {
    const dir = this.path(prefix.replace(/\/+$/, ''))
    await rm(dir, { recursive: true, force: true })
    // And the folders that emptied, up to the root (as delete() does).
    for (let d = dirname(dir); d.startsWith(this.location + sep); d = dirname(d)) {
      const left = await readdir(d).catch(() => null)
      if (!left || left.length) break
      await rm(d, { recursive: true, force: true })
    }
  }

  async cleanupIncomplete(olderThanMs: number): Promise<{ removed: number }> {
    let removed = 0
    const walk = async (dir: string) => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
      for (const e of entries) {
        const p = join(dir, e.name)
        if (e.isDirectory()) await walk(p)
        else if (e.name.endsWith(PARTIAL)) {
          const st = await stat(p)
          if (Date.now() - st.mtimeMs >= olderThanMs) {
            await rm(p, { force: true })
            removed++
          }
        }
      }
    }
    await walk(this.location)
    return { removed }
  }
}
