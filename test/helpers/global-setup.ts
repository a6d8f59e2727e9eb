import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
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
let runTmp: string | null = null
let s3: S3Server | null = null
let dir: string | null = null

/** One embedded PostgreSQL and one s3rver for the whole run: real servers, started by the tests themselves. */
export async function setup(project: TestProject) {
  // Every temporary folder of this run, in the tests and in the processes they start, goes under one folder of
  // its own (TMPDIR, which os.tmpdir() reads), removed at the end: nothing accumulates on a reused machine, and
  // two runs on one machine (two checkouts) never remove each other's folders. Open to the "postgres" user the
  // embedded server runs as, which reaches the test folders below it.
  // One per project (each runs this setup), side by side under the machine's own temporary folder: never nested,
  // so paths stay short (Chromium's profile socket must fit a Unix socket path).
  const base = (process.env.OPS_TEST_TMP_BASE ??= tmpdir())
  runTmp = mkdtempSync(join(base, 'ops-run-'))
  chmodSync(runTmp, 0o755)
  process.env.TMPDIR = runTmp
  dir = mkdtempSync(join(tmpdir(), 'ops-test-'))
  process.env.OPS_SANDBOX_PGDATA = join(dir, 'pgdata')
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    // The server runs as "postgres": let it into the test folder.
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
  if (runTmp) rmSync(runTmp, { recursive: true, force: true })
}
