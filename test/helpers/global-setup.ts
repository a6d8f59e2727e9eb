import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import type { TestProject } from 'vitest/node'
import { startSandboxCluster, type SandboxCluster } from '../../src/core/sandbox/cluster'
import { silentLogger } from '../../src/core/log/logger'
import { startS3, type S3Server } from './s3'

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string
    systemPgUrl: string | null
    s3Endpoint: string
  }
}

/** The machine's PostgreSQL (15 here) where one runs; tests against it skip, saying so, where none does. */
async function systemPostgres(): Promise<string | null> {
  const url = process.env.TEST_SYSTEM_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1500 })
  try {
    await c.connect()
    await c.query('SELECT 1')
    return url
  } catch {
    return null
  } finally {
    await c.end().catch(() => {})
  }
}

let cluster: SandboxCluster | null = null
const runStarted = Date.now()
let s3: S3Server | null = null
let dir: string | null = null

/** One embedded PostgreSQL and one s3rver for the whole run: real servers, started by the tests themselves. */
export async function setup(project: TestProject) {
  dir = mkdtempSync(join(tmpdir(), 'ops-test-'))
  process.env.OPS_SANDBOX_PGDATA = join(dir, 'pgdata')
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    // The server runs as "postgres": let it into the test folder.
    const { chmodSync } = await import('node:fs')
    chmodSync(dir, 0o777)
  }
  cluster = await startSandboxCluster({ dataDir: dir, log: silentLogger })
  delete process.env.OPS_SANDBOX_PGDATA
  s3 = await startS3(join(dir, 's3'))
  project.provide('pgUrl', cluster.url)
  project.provide('systemPgUrl', await systemPostgres())
  project.provide('s3Endpoint', s3.endpoint)
}

export async function teardown() {
  await s3?.close()
  await cluster?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
  // The tests' own temporary folders (all named ops-*) from this run: nothing accumulates on a reused machine.
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith('ops-')) continue
    const p = join(tmpdir(), name)
    try {
      if (statSync(p).mtimeMs >= runStarted - 1000) rmSync(p, { recursive: true, force: true })
    } catch {
      /* already gone */
    }
  }
}
