/**
 * The sandbox's own Redis: where `redis-server` is installed, the sandbox starts one on a free loopback
 * port, so the Redis tile, its metrics and the web app's cache are live on a first start. It keeps
 * nothing on disk, asks for a password (other local users share the loopback interface), and that
 * password is in a 0600 config file in a 0700 folder, never on the command line. Where no
 * `redis-server` is installed, the sandbox simply has no Redis (Health says "not configured").
 *
 * A Redis must not outlive the console that started it. Normal exits stop it; a console that was killed
 * cannot, so each Redis's folder names its owner, and every start reaps the Redis servers of owners
 * that are gone (their folder and process both checked to be ours before anything is killed).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from '../log/logger'
import { registerSecret } from '../log/scrub'
import { alive, freePort } from './cluster'

const PREFIX = 'examforge-ops-redis-'

/** Stop the sandbox Redis servers whose consoles died without stopping them. */
export function reapOrphanRedis(dir = tmpdir()): number {
  let reaped = 0
  let names: string[] = []
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(PREFIX))
  } catch {
    return 0
  }
  for (const name of names) {
    const folder = join(dir, name)
    try {
      const { owner, pid } = JSON.parse(readFileSync(join(folder, 'owner.json'), 'utf8')) as { owner: number; pid: number }
      if (alive(owner)) continue
      // Only a redis-server working in this folder (its `dir`) is ours to stop: Redis rewrites its
      // command line once it runs, so its working folder is what identifies it.
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (alive(pid) && /redis-server/.test(cmd) && readlinkSync(`/proc/${pid}/cwd`) === folder) {
        process.kill(pid, 'SIGTERM')
        reaped++
      }
      rmSync(folder, { recursive: true, force: true })
    } catch {
      /* not ours, already gone, or not on Linux: left alone */
    }
  }
  return reaped
}

export interface SandboxRedis {
  url: string
  pid: number
  stop(): Promise<void>
}

function redisServerBinary(): string | null {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 5000 })
  return r.status === 0 ? 'redis-server' : null
}

/** Resolves once the server answers PING with the password (or rejects when it exits first). */
function ready(port: number, password: string, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`redis-server exited (${code}) before it answered`))
    child.once('exit', onExit)
    const attempt = () => {
      const s = createConnection({ port, host: '127.0.0.1' }, () => s.write(`AUTH ${password}\r\nPING\r\n`))
      let got = ''
      s.on('data', (d) => {
        got += String(d)
        if (got.includes('+PONG')) {
          s.destroy()
          child.off('exit', onExit)
          resolve()
        }
      })
      s.on('error', () => {
        s.destroy()
        if (Date.now() > deadline) {
          child.off('exit', onExit)
          reject(new Error('redis-server did not answer in time'))
        } else setTimeout(attempt, 100)
      })
    }
    attempt()
  })
}

export async function startSandboxRedis(o: { log: Logger }): Promise<SandboxRedis | null> {
  const bin = redisServerBinary()
  if (!bin) {
    o.log.info('no redis-server installed: the sandbox runs without Redis')
    return null
  }
  const reaped = reapOrphanRedis()
  if (reaped) o.log.info('stopped sandbox Redis servers whose consoles had gone', { count: reaped })
  const dir = await mkdtemp(join(tmpdir(), PREFIX))
  await chmod(dir, 0o700)
  const password = randomBytes(18).toString('base64url')
  registerSecret(password)
  const port = await freePort()
  const conf = join(dir, 'redis.conf')
  await writeFile(
    conf,
    [`port ${port}`, 'bind 127.0.0.1', 'save ""', 'appendonly no', `dir ${dir}`, `requirepass ${password}`, 'maxmemory 64mb', ''].join(
      '\n',
    ),
    { mode: 0o600 },
  )
  const child = spawn(bin, [conf], { stdio: 'ignore', detached: false })
  await writeFile(join(dir, 'owner.json'), JSON.stringify({ owner: process.pid, pid: child.pid }), { mode: 0o600 })
  // However this process ends normally (process.exit included), its Redis ends with it.
  const onExit = () => {
    if (child.exitCode === null) child.kill('SIGTERM')
  }
  process.once('exit', onExit)
  try {
    await ready(port, password, child)
  } catch (e) {
    child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
    o.log.warn('the sandbox Redis could not start; the sandbox runs without it', { error: (e as Error).message })
    return null
  }
  o.log.info('sandbox Redis started', { port })
  return {
    url: `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      process.off('exit', onExit)
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())])
        if (child.exitCode === null) child.kill('SIGKILL')
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}
