import { OpsError } from '../../shared/contract'
import type { AuditLog } from '../audit/audit'
import type { Config } from '../config/config'
import type { JobRunner } from '../jobs/runner'
import type { Logger } from '../log/logger'
import { openStorage } from '../storage/open'
import type { BackupStorage } from '../storage/storage'
import { readCatalog, type CatalogSet } from './catalog'
import { parseCompression } from './compression'
import { resolveKey } from './crypto'
import { runFullBackup } from './full'
import { newSetId } from './manifest'
import { verifySet } from './verify'

/** Partial writes younger than this may belong to a backup still running elsewhere (the agent): left alone. */
const STALE_MS = 15 * 60_000

export class BackupService {
  private storage_: BackupStorage | null = null
  private running: string | null = null

  constructor(private deps: { config: Config; databaseUrl: () => string | null; jobs: JobRunner; log: Logger; audit: AuditLog }) {}

  storage(): BackupStorage {
    return (this.storage_ ??= openStorage(this.deps.config))
  }

  list(): Promise<CatalogSet[]> {
    return readCatalog(this.storage())
  }

  /** Remove sets that never got a manifest and stale partial uploads (a killed or failed run). */
  async cleanup(olderThanMs = STALE_MS): Promise<{ removedSets: string[]; removedPartials: number }> {
    const storage = this.storage()
    const removedSets: string[] = []
    for (const s of await readCatalog(storage)) {
      if (s.status !== 'incomplete' || Date.now() - new Date(s.lastModified).getTime() < olderThanMs) continue
      const keys = (await storage.list(`sets/${s.setId}/`)).map((o) => o.key)
      await storage.delete(keys)
      removedSets.push(s.setId)
    }
    const { removed } = await storage.cleanupIncomplete(olderThanMs)
    if (removedSets.length || removed) this.deps.log.info('removed incomplete backups', { sets: removedSets, partials: removed })
    return { removedSets, removedPartials: removed }
  }

  startFull(actor: string): { jobId: string; setId: string } {
    const url = this.deps.databaseUrl()
    if (!url) throw new OpsError('no_database', 'No database to back up: set DATABASE_URL.')
    if (this.running) throw new OpsError('backup_running', `A backup is already running (job ${this.running}); wait for it or cancel it.`)
    const b = this.deps.config.backup
    // Configuration errors are reported now, not minutes into the job.
    const compression = parseCompression(b.compression)
    const encryption = resolveKey({ key: b.encryptionKey, passphrase: b.encryptionPassphrase })
    const storage = this.storage()
    const setId = newSetId('full')
    const jobId = this.deps.jobs.start(
      'backup.full',
      { setId, storage: storage.location },
      async (_input, ctx) => {
        try {
          await this.cleanup().catch((e) => this.deps.log.warn('cleanup before the backup failed', { error: (e as Error).message }))
          const m = await runFullBackup(
            setId,
            {
              databaseUrl: url,
              storage,
              compression,
              encryption,
              parallelism: b.parallelism ?? undefined,
              chunkBytes: b.chunkBytes,
              serverSideEncryption: b.s3Sse,
              log: this.deps.log,
            },
            ctx,
          )
          return {
            setId,
            tables: m.tables.length,
            rows: m.tables.reduce((n, t) => n + t.rows, 0),
            rawBytes: m.tables.reduce((n, t) => n + t.rawBytes, 0),
            storedBytes: m.objects.reduce((n, o) => n + o.size, 0),
            durationMs: m.timings.durationMs,
          }
        } finally {
          this.running = null
        }
      },
      actor,
    )
    this.running = jobId
    return { jobId, setId }
  }

  startVerify(setId: string, actor: string): { jobId: string } {
    const b = this.deps.config.backup
    const jobId = this.deps.jobs.start(
      'backup.verify',
      { setId },
      (_i, ctx) => verifySet(this.storage(), setId, { key: b.encryptionKey, passphrase: b.encryptionPassphrase }, ctx),
      actor,
    )
    return { jobId }
  }
}
