import { constants } from 'node:fs'
import { access, rm, statfs, writeFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { mkdirPrivate, openToOthers } from '../../storage/local'
import { degraded, formatBytes, ok, unhealthy, type Probe } from '../probe'

/** The local backup folder: exists (created 0700 when missing), private to this user, writable, free space. */
export function localStorageProbe(o: { path: string; minFreeBytes?: number }): Probe {
  return {
    id: 'storage',
    label: 'Backup folder',
    howToConfigure: 'Set LOCAL_BACKUP_PATH to a folder on a disk with room for the backups.',
    configured: () => true,
    async run() {
      try {
        await mkdirPrivate(o.path)
        await access(o.path, constants.W_OK)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        return unhealthy(
          code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
            ? `The backup folder ${o.path} is not writable by this user: fix its permissions or choose another LOCAL_BACKUP_PATH.`
            : `The backup folder ${o.path} cannot be used (${code ?? (e as Error).message}): choose another LOCAL_BACKUP_PATH.`,
          { path: o.path },
        )
      }
      const canary = join(o.path, `.ops-canary-${randomUUID()}`)
      const t0 = performance.now()
      try {
        await writeFile(canary, 'canary', { mode: 0o600 })
        if ((await readFile(canary, 'utf8')) !== 'canary') return unhealthy(`A file written to ${o.path} read back different.`)
      } catch (e) {
        return unhealthy(`Cannot write to the backup folder ${o.path}: ${(e as Error).message}. Fix its permissions or free space.`, {
          path: o.path,
        })
      } finally {
        await rm(canary, { force: true })
      }
      const ioMs = performance.now() - t0
      const fs = await statfs(o.path)
      const free = fs.bavail * fs.bsize
      const total = fs.blocks * fs.bsize
      const details = {
        path: o.path,
        free: formatBytes(free),
        total: formatBytes(total),
        freeBytes: free,
        usedPercent: Math.round((1 - free / total) * 100),
      }
      // Backups hold user rows: a folder other users can enter lets them read every set.
      const open = openToOthers(o.path)
      if (open) return degraded(open, details, ioMs)
      if (free < (o.minFreeBytes ?? 1024 ** 3))
        return degraded(`Only ${details.free} free in ${o.path}: backups may fail. Free space or move LOCAL_BACKUP_PATH.`, details, ioMs)
      return ok(`Writable, ${details.free} free of ${details.total}.`, details, ioMs)
    },
  }
}
