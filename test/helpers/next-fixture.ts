import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { waitFor } from './wait'

const root = resolve(__dirname, '../..')
export const NEXT_FIXTURE = join(root, 'test/fixtures/next-app')
const next = join(root, 'node_modules/next/dist/bin/next')

function files(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n !== '.next' && n !== 'node_modules')
    .flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]))
    .sort()
}

/** What the build depends on: the fixture's sources, the SDK it imports (built), Next's version. */
function stamp(): string {
  const h = createHash('sha256')
  for (const f of [...files(NEXT_FIXTURE), ...files(join(root, 'packages/error-tracker/dist'))]) h.update(f).update(readFileSync(f))
  h.update(JSON.parse(readFileSync(join(root, 'node_modules/next/package.json'), 'utf8')).version)
  return h.digest('hex')
}

/**
 * `next build` of the fixture app, unless its .next already holds a build of the same sources (the stamp);
 * returns how long the build took (0 when cached). The SDK's dist must be built first.
 */
export async function buildNextFixture(): Promise<number> {
  const s = stamp()
  const file = join(NEXT_FIXTURE, '.next/examforge-fixture-stamp')
  if (existsSync(file) && readFileSync(file, 'utf8') === s) return 0
  const t0 = performance.now()
  await promisify(execFile)(process.execPath, [next, 'build'], {
    cwd: NEXT_FIXTURE,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
    timeout: 240_000,
  }).catch((e: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`next build of the fixture failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  })
  writeFileSync(file, s)
  return performance.now() - t0
}

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}

/** `next start` of the built fixture on a loopback port; resolves once it answers. */
export async function startNextFixture(env: Record<string, string>): Promise<{ url: string; child: ChildProcess; output: () => string; stop(): Promise<void> }> {
  const port = await freePort()
  const child = spawn(process.execPath, [next, 'start', '-H', '127.0.0.1', '-p', String(port)], {
    cwd: NEXT_FIXTURE,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', ...env },
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const url = `http://127.0.0.1:${port}`
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`next start exited ${child.exitCode}: ${out}`)
      return fetch(url).then(
        (r) => r.status === 200,
        () => false,
      )
    },
    'the Next.js fixture to answer',
    60_000,
  )
  return {
    url,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    },
  }
}
