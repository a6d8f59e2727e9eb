import { spawn, type ChildProcess } from 'node:child_process'
import { createConnection } from 'node:net'
import { freePort } from '../../src/core/sandbox/cluster'

export interface RedisServer {
  url: string
  port: number
  stop(): Promise<void>
  /** Start it again on the same port (after stop). */
  restart(): Promise<void>
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' }, () => s.write('PING\r\n'))
    s.on('data', (d) => {
      s.destroy()
      resolve(String(d).startsWith('+PONG'))
    })
    s.on('error', () => resolve(false))
  })
}

/** A real redis-server (Debian's package) on a free port, owned by the test. */
export async function startRedis(extra: string[] = [], fixedPort?: number): Promise<RedisServer> {
  const port = fixedPort ?? (await freePort())
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra],
    {
      stdio: 'ignore',
    },
  )
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (e) =>
      reject(new Error(`redis-server could not start (${e.message}): install it with "apt-get install redis-server".`)),
    ),
  )
  const deadline = Date.now() + 10_000
  for (;;) {
    if (await Promise.race([ping(port), spawnError])) break
    if (Date.now() > deadline) throw new Error('redis-server did not answer PING within 10 s')
    await new Promise((r) => setTimeout(r, 50))
  }
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart() {
      const again = await startRedis(extra, port)
      server.stop = again.stop
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
  return server
}
