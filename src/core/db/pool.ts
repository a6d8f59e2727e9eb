import type pg from 'pg'
import { pgPool } from './connect'
import type { Logger } from '../log/logger'

/** The pool behind the `ops` store. Errors on idle clients are logged, never thrown at the process. */
export function createPool(url: string, log: Logger, opts: { max?: number; applicationName?: string } = {}): pg.Pool {
  const pool = pgPool(url, {
    max: opts.max ?? 4,
    connectionTimeoutMillis: 5000,
    keepAlive: true,
    idleTimeoutMillis: 30_000,
    application_name: opts.applicationName ?? 'examforge-ops',
  })
  pool.on('error', (err) => log.warn('ops store connection lost', { error: err.message }))
  return pool
}
