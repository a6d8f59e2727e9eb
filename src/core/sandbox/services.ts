/**
 * The sandbox's services beside its database: its own Redis (where `redis-server` is installed) and
 * its small web app. A long-lived face (the host, the desktop app) starts them and records their
 * addresses in `<data folder>/sandbox/services.json` (0600); a one-shot CLI command started while that
 * face runs attaches to them, as it attaches to the sandbox database, instead of starting its own.
 * A configured REDIS_URL or APP_URL always wins: the sandbox never replaces a real service.
 */
import { existsSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type pg from 'pg'
import { pgPool } from '../db/connect'
import type { Logger } from '../log/logger'
import { registerSecret } from '../log/scrub'
import { alive } from './cluster'
import { startSandboxRedis, type SandboxRedis } from './redis'
import { startSandboxWebApp, type SandboxWebApp } from './webapp'

export interface SandboxServices {
  redisUrl: string | null
  appUrl: string | null
  /** What the banner says is simulated. */
  describe: string
  /** The sandbox web app reports its errors to this DSN (when the console runs the ingest). */
  reportErrors(dsn: string): void
  stop(): Promise<void>
}

const file = (dataDir: string) => join(dataDir, 'sandbox', 'services.json')

function describe(redis: boolean, app: boolean): string {
  const parts = [
    'an embedded PostgreSQL with generated ExamForge data',
    redis ? 'its own Redis' : null,
    app ? 'a small ExamForge-like web app' : null,
  ]
  const list = parts.filter(Boolean) as string[]
  return `${list.length > 1 ? `${list.slice(0, -1).join(', ')} and ${list.at(-1)}` : list[0]}, with simulated traffic`
}

export async function sandboxServices(o: {
  dataDir: string
  databaseUrl: string
  /** Start them (long-lived faces) or only attach to a running face's (one-shot commands). */
  start: boolean
  redisUrl: string | null
  appUrl: string | null
  log: Logger
}): Promise<SandboxServices> {
  const path = file(o.dataDir)
  if (!o.start) {
    // Attach to the services of the face that runs the sandbox, if it still runs.
    let found: { pid: number; redisUrl: string | null; appUrl: string | null } | null = null
    if (existsSync(path)) {
      try {
        const r = JSON.parse(await readFile(path, 'utf8')) as { pid: number; redisUrl: string | null; appUrl: string | null }
        if (alive(r.pid)) found = r
      } catch {
        found = null
      }
    }
    if (found?.redisUrl) registerSecret(new URL(found.redisUrl).password)
    const redisUrl = o.redisUrl ?? found?.redisUrl ?? null
    const appUrl = o.appUrl ?? found?.appUrl ?? null
    return { redisUrl, appUrl, describe: describe(!!found?.redisUrl, !!found?.appUrl), reportErrors: () => {}, stop: async () => {} }
  }
  let redis: SandboxRedis | null = null
  let app: SandboxWebApp | null = null
  let pool: pg.Pool | null = null
  if (!o.redisUrl) redis = await startSandboxRedis({ log: o.log })
  const redisUrl = o.redisUrl ?? redis?.url ?? null
  if (!o.appUrl) {
    pool = pgPool(o.databaseUrl, { max: 2, application_name: 'examforge-ops:sandbox-app' })
    pool.on('error', () => {})
    app = await startSandboxWebApp({ pool, redisUrl, log: o.log })
  }
  const appUrl = o.appUrl ?? app?.url ?? null
  await writeFile(path, JSON.stringify({ pid: process.pid, redisUrl: redis?.url ?? null, appUrl: app?.url ?? null }), { mode: 0o600 })
  return {
    redisUrl,
    appUrl,
    describe: describe(!!redis, !!app),
    reportErrors: (dsn) => app?.reportErrors(dsn),
    async stop() {
      await rm(path, { force: true })
      await app?.stop()
      await pool?.end().catch(() => {})
      await redis?.stop()
    },
  }
}
