/**
 * The sandbox's own Redis: where `redis-server` is installed, the sandbox starts one on a free loopback
 * port, so the Redis tile, its metrics and the web app's cache are live on a first start. It keeps
 * nothing on disk, asks for a password (other local users share the loopback interface), and that
 * password is in a 0600 config file in a 0700 folder, never on the command line. Where no
 * `redis-server` is installed, the sandbox simply has no Redis (Health says "not configured").
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from '../log/logger'
import { registerSecret } from '../log/scrub'
import { freePort } from './cluster'

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
  const dir = await mkdtemp(join(tmpdir(), 'examforge-ops-redis-'))
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
