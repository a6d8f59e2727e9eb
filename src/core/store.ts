import type pg from 'pg'
import { createPool } from './db/pool'
import { migrate } from './db/migrations'
import type { Logger } from './log/logger'

/**
 * The ops store (the `ops` schema). pool() is null until the schema is migrated, so writers
 * skip their bookkeeping instead of failing while the database is unreachable; ready() retries.
 */
export class OpsStore {
  private pool_: pg.Pool | null = null
  private migrated = false
  private attempt: Promise<boolean> | null = null

  constructor(
    private url: string | null,
    private log: Logger,
  ) {}

  pool(): pg.Pool | null {
    return this.migrated ? this.pool_ : null
  }

  /** Connect and migrate, once; after a failure the next call tries again. */
  ready(): Promise<boolean> {
    if (this.migrated) return Promise.resolve(true)
    if (!this.url) return Promise.resolve(false)
    this.attempt ??= (async () => {
      try {
        this.pool_ ??= createPool(this.url!, this.log)
        const applied = await migrate(this.pool_)
        if (applied.length) this.log.info('ops schema migrated', { versions: applied })
        this.migrated = true
        return true
      } catch (e) {
        this.log.warn('the ops store is not reachable yet; will retry', { error: (e as Error).message })
        return false
      } finally {
        this.attempt = null
      }
    })()
    return this.attempt
  }

  async close(): Promise<void> {
    await this.pool_?.end().catch(() => {})
    this.pool_ = null
    this.migrated = false
  }
}
