/**
 * Regressions from the independent security review of the host and the CLI (after the hardening
 * pass): each test is an attack that worked before its fix. Loopback only, bounded.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { loadConfig } from '../../src/core/config/config'
import { pgPool } from '../../src/core/db/connect'
import { silentLogger, type Logger } from '../../src/core/log/logger'
import { startTrafficSimulator } from '../../src/core/sandbox/traffic'
import { createOps, type Ops } from '../../src/core/ops'
import { startHostServer, type HostServer } from '../../src/host/server'
import { cli } from '../helpers/cli'
import { createDatabase, query } from '../helpers/db'
import { call, signIn, tabSocket, wsOpen } from '../helpers/host'

const ADMIN = 'admin-token-review-aaaaaaaaaaaa'
const DEV = 'dev-token-review-bbbbbbbbbbbbbb'
const bearer = (t: string) => ({ authorization: `Bearer ${t}` })

/** A program squatting a loopback port: it records what it is sent and answers like a host would, with its own link. */
async function squatter(): Promise<{ server: Server; origin: string; seen: { auth: string | undefined; url: string | undefined }[] }> {
  const seen: { auth: string | undefined; url: string | undefined }[] = []
  const server = createServer((req, res) => {
    seen.push({ auth: req.headers.authorization, url: req.url })
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify({ ok: true, value: { url: 'http://phish.example/?token=x', expiresInS: 300 } }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

describe('examforge-ops open does not trust a stale control file or whatever answers on its port', () => {
  let trap: Awaited<ReturnType<typeof squatter>>
  beforeAll(async () => {
    trap = await squatter()
  })
  afterAll(() => new Promise<void>((r) => trap.server.close(() => r())))

  it('a host.json left by a dead host: nothing (no local secret, no administrator token) is sent to its old port', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid // a process that has exited
    const dataDir = mkdtempSync(join(tmpdir(), 'ops-stale-'))
    const port = Number(new URL(trap.origin).port)
    writeFileSync(
      join(dataDir, 'host.json'),
      JSON.stringify({ pid: dead, port, origin: trap.origin, secret: 'old-local-secret-0123456789' }),
      { mode: 0o600 },
    )
    const plain = await cli(['open'], { OPS_DATA_DIR: dataDir })
    expect(plain.code).toBe(1)
    expect(plain.stderr).toMatch(/left by a console host that is no longer running .*examforge-ops serve/)
    const asToken = await cli(['open', '--as-token'], { OPS_DATA_DIR: dataDir, OPS_TOKEN: ADMIN })
    expect(asToken.code).toBe(1)
    expect(asToken.stderr).toMatch(/no longer running/)
    expect(asToken.stderr).not.toContain(ADMIN)
    expect(trap.seen).toEqual([])
  })

  it('a link pointing away from the host asked is never printed', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ops-squat-'))
    const port = Number(new URL(trap.origin).port)
    // The pid is alive (this test's), as when a pid is reused by another process.
    writeFileSync(join(dataDir, 'host.json'), JSON.stringify({ pid: process.pid, port, origin: trap.origin, secret: 's' }), {
      mode: 0o600,
    })
    const r = await cli(['open'], { OPS_DATA_DIR: dataDir })
    expect(r.code).toBe(1)
    expect(r.stdout).not.toContain('phish.example')
    expect(r.stderr).toMatch(/is not the console host/)
  })
})

describe('a signed-in caller cannot exhaust the host or undo an administrator', () => {
  let ops: Ops
  let host: HostServer
  let db: Awaited<ReturnType<typeof createDatabase>>
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'review')
    const renderer = mkdtempSync(join(tmpdir(), 'ops-ui-'))
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>ExamForge Ops</title>')
    ops = await createOps({
      config: loadConfig({
        env: {
          DATABASE_URL: db.url,
          ADMIN_EMAILS: 'ops@examforge.test',
          OPS_API_TOKENS: `ops@examforge.test=${ADMIN}, dev@examforge.test=${DEV}`,
        },
        dataDir: mkdtempSync(join(tmpdir(), 'ops-rv-')),
      }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    host = await startHostServer({ ops, rendererDir: renderer, port: 0 })
  })
  afterAll(async () => {
    await host?.close()
    await ops?.close()
    await db?.drop()
  })

  it('one session opens a bounded number of WebSockets (429 past 8); closing one lets another in', async () => {
    const tab = await signIn(host.launchUrl())
    const open = []
    for (let i = 0; i < 8; i++) open.push(await tabSocket(host.origin, tab))
    const wsUrl = host.origin.replace('http', 'ws') + '/ws'
    expect(await wsOpen(wsUrl, { origin: host.origin, cookie: tab.cookie }, tab.secret)).toEqual({ status: 429 })
    // Another tab (its own session) is not affected.
    const other = await tabSocket(host.origin, await signIn(host.launchUrl()))
    other.ws.close()
    open[0].ws.close()
    await open[0].closed
    await expect
      .poll(async () => {
        const r = await wsOpen(wsUrl, { origin: host.origin, cookie: tab.cookie }, tab.secret)
        if ('ws' in r) r.ws.close()
        return 'ws' in r
      })
      .toBe(true)
    for (const s of open) s.ws.close()
  })

  it('a socket that stops reading is cut once its queue passes the limit, instead of growing the host', async () => {
    const tab = await signIn(host.launchUrl())
    const s = await tabSocket(host.origin, tab)
    // The client stops reading: everything the host sends it queues up on the host's side.
    ;(s.ws as unknown as { _socket: { pause(): void } })._socket.pause()
    const values: Record<string, number> = {}
    for (let i = 0; i < 20_000; i++) values[`series.${i}.${'x'.repeat(30)}`] = i
    // Events go to every socket: 40 ticks of ~1 MB each, far more than the socket and the kernel hold.
    for (let i = 0; i < 40 && s.ws.readyState === s.ws.OPEN; i++) {
      ops.events.emit('metrics.tick', { host: 'review', t: Date.now(), values })
      await new Promise((r) => setImmediate(r))
    }
    ;(s.ws as unknown as { _socket: { resume(): void } })._socket.resume()
    const closed = await Promise.race([
      s.closed,
      new Promise<{ code: string }>((r) => setTimeout(() => r({ code: 'still open: the host queued everything' }), 15_000)),
    ])
    expect(closed.code).toBe(1006) // cut by the host, not closed in order
    expect(s.frames.length).toBeLessThan(40)
  })

  it('cancelling a restore needs an administrator, like starting one; the cancel is recorded with who', async () => {
    // A restore job as the restore service runs it (kind "restore"), waiting until it is cancelled.
    const jobId = ops.jobs.start(
      'restore',
      {},
      (_i, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error))),
      'ops@examforge.test (admin-token)',
    )
    const refused = await call(host.origin, 'jobs.cancel', { jobId }, bearer(DEV))
    expect(refused.status).toBe(403)
    expect(refused.reply.error?.message).toMatch(/Cancelling a restore job needs an administrator.*dev@examforge\.test/)
    expect(ops.jobs.get(jobId)?.state).toBe('running')

    expect(await call(host.origin, 'jobs.cancel', { jobId }, bearer(ADMIN))).toMatchObject({
      status: 200,
      reply: { value: { cancelled: true } },
    })
    expect((await ops.jobs.wait(jobId)).state).toBe('cancelled')
    const rows = await query<{ actor: string }>(db.url, `SELECT actor FROM ops.audit_log WHERE action = 'jobs.cancel' AND target = $1`, [
      jobId,
    ])
    expect(rows.map((r) => r.actor)).toEqual([expect.stringContaining('ops@examforge.test')])

    // A job anyone may start, anyone may cancel.
    const verify = ops.jobs.start(
      'backup.verify',
      {},
      (_i, ctx) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('x')))),
    )
    expect(await call(host.origin, 'jobs.cancel', { jobId: verify }, bearer(DEV))).toMatchObject({
      status: 200,
      reply: { value: { cancelled: true } },
    })
  })
})

describe('the sandbox traffic simulator', () => {
  it('survives a database it cannot reach (down, full, or out of file descriptors): it warns, the process lives', async () => {
    // Before: pool.connect() rejected outside the tick's try, an unhandled rejection that ended the host.
    const warnings: string[] = []
    const log: Logger = { ...silentLogger, warn: (m, f) => void warnings.push(`${m} ${JSON.stringify(f)}`), child: () => log }
    const pool = pgPool('postgres://postgres@127.0.0.1:1/examforge', { connectionTimeoutMillis: 2000 })
    const traffic = startTrafficSimulator(pool, log, { intervalMs: 20 })
    await expect.poll(() => warnings.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(3)
    await traffic.stop()
    await pool.end()
    expect(warnings[0]).toMatch(/traffic simulator could not connect.*ECONNREFUSED/)
  })
})

describe('one local client cannot hold the host’s connections', () => {
  let ops: Ops
  let host: HostServer
  let db: Awaited<ReturnType<typeof createDatabase>>
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'reviewconn')
    const renderer = mkdtempSync(join(tmpdir(), 'ops-ui-'))
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>ExamForge Ops</title>')
    ops = await createOps({
      config: loadConfig({ env: { DATABASE_URL: db.url }, dataDir: mkdtempSync(join(tmpdir(), 'ops-rc-')) }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    host = await startHostServer({ ops, rendererDir: renderer, port: 0 })
  })
  afterAll(async () => {
    await host?.close()
    await ops?.close()
    await db?.drop()
  })

  /** A connection that sends part of a request and then nothing; what the host answers, and whether it closed it. */
  function halfSent(head: string) {
    const s = connect(host.port, '127.0.0.1')
    let got = ''
    s.on('data', (d) => (got += d.toString('latin1')))
    s.on('error', () => {})
    s.write(head)
    let done = false
    const closed = new Promise<string>((r) =>
      s.on('close', () => {
        done = true
        r(got)
      }),
    )
    return { s, closed, got: () => got, isClosed: () => done }
  }

  it('half-sent requests ("slowloris") are answered 408 and closed within seconds, not held for a minute and more', async () => {
    const started = Date.now()
    const held = Array.from({ length: 20 }, (_, i) =>
      halfSent(i % 2 ? `GET / HTTP/1.1\r\nHost: 127.0.0.1:${host.port}\r\nX-a: ` : `GET /api/call/app.info HTTP/1.1\r\n`),
    )
    const answers = await Promise.race([
      Promise.all(held.map((h) => h.closed)),
      new Promise<string[]>((r) => setTimeout(() => r(held.map((h) => `still open: ${h.got()}`)), 30_000)),
    ])
    held.forEach((h) => h.s.destroy())
    expect(answers.every((a) => a.startsWith('HTTP/1.1 408'))).toBe(true)
    expect(Date.now() - started).toBeLessThan(30_000)
  }, 40_000)

  it('connections past the cap are closed at once; once the flood ends the host answers', async () => {
    const flood = Array.from({ length: 300 }, () => halfSent(''))
    // The host keeps 256 at most: the rest are closed as they arrive, not held.
    await expect.poll(() => flood.filter((f) => f.isClosed()).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(300 - 256)
    expect(flood.filter((f) => f.isClosed()).length).toBeLessThanOrEqual(300 - 256 + 5)
    flood.forEach((f) => f.s.destroy())
    await expect
      .poll(async () => (await call(host.origin, 'app.info', {}, (await signIn(host.launchUrl())).headers)).status, { timeout: 10_000 })
      .toBe(200)
  })

  it('a caller refused 401 is not kept connected (it cannot hold connections by asking again)', async () => {
    await expect.poll(async () => (await call(host.origin, 'app.info', {}, {})).status, { timeout: 10_000 }).toBe(401)
    const r = halfSent(`POST /api/call/app.info HTTP/1.1\r\nHost: 127.0.0.1:${host.port}\r\nContent-Length: 0\r\n\r\n`)
    const got = await Promise.race([r.closed, new Promise<string>((res) => setTimeout(() => res(`still open: ${r.got()}`), 4_000))])
    r.s.destroy()
    expect(got).toMatch(/^HTTP\/1.1 401/)
  })
})

describe('tokens a local user could guess', () => {
  it('the host refuses to start with a short OPS_API_TOKEN or OPS_API_TOKENS entry, without showing it', async () => {
    const db = await createDatabase(inject('pgUrl'), 'reviewtok')
    const renderer = mkdtempSync(join(tmpdir(), 'ops-ui-'))
    const open = (env: Record<string, string>) =>
      createOps({
        config: loadConfig({ env: { DATABASE_URL: db.url, ...env }, dataDir: mkdtempSync(join(tmpdir(), 'ops-rt-')) }),
        face: 'host',
        log: silentLogger,
        schedule: false,
      })
    const ops = await open({ OPS_API_TOKENS: 'ops@examforge.test=letmein' })
    try {
      // Unauthenticated guesses are not limited (there is no one to limit them to): a short token falls.
      await expect(startHostServer({ ops, rendererDir: renderer, port: 0 })).rejects.toThrow(
        /The OPS_API_TOKENS token of ops@examforge.test is only 7 characters: .*at least 16 random characters/,
      )
      await expect(startHostServer({ ops, rendererDir: renderer, port: 0 })).rejects.not.toThrow(/letmein/)
      await expect(startHostServer({ ops, rendererDir: renderer, port: 0, apiToken: 'prom-123' })).rejects.toThrow(
        /OPS_API_TOKEN is only 8 characters/,
      )
    } finally {
      await ops.close()
    }
    const fine = await open({ OPS_API_TOKENS: `ops@examforge.test=${ADMIN}` })
    const host = await startHostServer({ ops: fine, rendererDir: renderer, port: 0, apiToken: 'prom-token-0123456789' })
    await host.close()
    await fine.close()
    await db.drop()
  })
})

describe('the data folder (settings, host.json, default backups) is private', () => {
  it('one of ours that others may write to is made 0700 when the configuration is loaded', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-shared-'))
    chmodSync(dir, 0o777)
    loadConfig({ env: {}, dataDir: dir })
    expect(statSync(dir).mode & 0o777).toBe(0o700)
  })

  it.skipIf(process.getuid?.() !== 0)('one that belongs to another user (created first under /tmp) is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-theirs-'))
    // Another user's folder, as if they had created the path first; its settings would point our secrets at them.
    writeFileSync(join(dir, 'settings.json'), JSON.stringify({ STRIPE_API_BASE: 'https://collector.example/' }))
    chownSync(dir, 65534, 65534)
    expect(() => loadConfig({ env: {}, dataDir: dir })).toThrow(/The data folder .* belongs to another user \(uid 65534\)/)
  })
})
