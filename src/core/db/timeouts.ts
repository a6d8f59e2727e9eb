import { OpsError } from '../../shared/contract'

/**
 * How long a connection to PostgreSQL may take and how a dead one is noticed, for every connection the
 * backups and restores open (spread into pg's client options). A server that accepts TCP but never
 * answers, or drops packets, fails the connect within `connectTimeoutMs` instead of hanging (or waiting
 * ~135 s for the kernel's ETIMEDOUT); TCP keepalives notice a peer that vanished mid-stream.
 * A statement timeout is given only to connections that run short catalog queries: the long COPY and
 * replication streams must never be cut by one (their sessions set statement_timeout = 0 themselves).
 */
export interface DbTimeoutSettings {
  /** From DB_CONNECT_TIMEOUT_S. */
  connectTimeoutMs?: number
  /** Only for connections that run short queries; none when omitted. */
  statementTimeoutMs?: number | null
  /** The longest a statement of this connection waits for a lock; none when omitted. */
  lockTimeoutMs?: number | null
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
/** Catalog and bookkeeping queries (prerequisites, slots, plans): generous, but never forever. */
export const CATALOG_STATEMENT_TIMEOUT_MS = 120_000
/** Idle time before the first keepalive probe. */
export const KEEPALIVE_IDLE_MS = 10_000

export const connectTimeouts = (cfg: DbTimeoutSettings = {}) => ({
  connectionTimeoutMillis: cfg.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  keepAlive: true,
  keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
  ...(cfg.statementTimeoutMs ? { statement_timeout: cfg.statementTimeoutMs } : {}),
  ...(cfg.lockTimeoutMs ? { lock_timeout: cfg.lockTimeoutMs } : {}),
})

/** host:port of a database URL, for messages (never credentials). */
function serverOf(url: string): string {
  try {
    const u = new URL(url)
    return `${u.hostname || 'localhost'}:${u.port || '5432'}`
  } catch {
    return 'the database server'
  }
}

/**
 * A connect that timed out, said as what it is. Other errors (refused, bad password, no such database)
 * already say what happened and pass through unchanged.
 */
export function explainConnectError(e: unknown, url: string, cfg: DbTimeoutSettings = {}): unknown {
  const msg = (e as Error)?.message ?? ''
  if (!/timeout expired|connection timeout|ETIMEDOUT/i.test(msg)) return e
  const s = Math.round((cfg.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) / 100) / 10
  return new OpsError(
    'connect_timeout',
    `PostgreSQL at ${serverOf(url)} did not answer within ${s} s (DB_CONNECT_TIMEOUT_S): check that DATABASE_URL names the right host and port and that the server is up and reachable, then try again.`,
  )
}
