/**
 * The host must survive whatever reaches its port. First one test per crash the security review
 * reproduced, then a bounded fuzz run (a few thousand malformed requests, handshakes and frames,
 * loopback only, seeded so a failure repeats) after which the host must still answer. An uncaught
 * exception in the host fails this file: it runs in the test's own process.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { loadConfig } from '../../src/core/config/config'
import { silentLogger } from '../../src/core/log/logger'
import { createOps, type Ops } from '../../src/core/ops'
import { startHostServer, type HostServer } from '../../src/host/server'
import { createDatabase } from '../helpers/db'
import { call, signIn, tabSocket, wsOpen, type Tab } from '../helpers/host'

/** Send raw bytes, half-close, and collect what comes back until the host closes (or 3 s). */
function raw(port: number, data: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    let got = ''
    const timer = setTimeout(() => s.destroy(), 3000)
    s.on('data', (d) => (got += d.toString('latin1')))
    s.on('error', () => {})
    s.on('close', () => {
      clearTimeout(timer)
      resolve(got)
    })
    s.write(data, () => s.end())
  })
}

/** A small seeded generator, so a failing run can be repeated. */
function rng(seed: number) {
  let x = seed >>> 0
  const next = () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 2 ** 32
  }
  return { next, pick: <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)], int: (n: number) => Math.floor(next() * n) }
}

async function inBatches<T>(items: T[], size: number, fn: (t: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn))
}

const UPGRADE = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'

describe('the host survives malformed input', () => {
  let ops: Ops
  let host: HostServer
  let db: Awaited<ReturnType<typeof createDatabase>>
  let tab: Tab
  let hostHeader = ''
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'fuzz')
    const renderer = mkdtempSync(join(tmpdir(), 'ops-ui-'))
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>ExamForge Ops</title>')
    ops = await createOps({
      config: loadConfig({ env: { DATABASE_URL: db.url }, dataDir: mkdtempSync(join(tmpdir(), 'ops-fz-')) }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    host = await startHostServer({ ops, rendererDir: renderer, port: 0, apiToken: 'fuzz-program-token-0123456789' })
    hostHeader = `127.0.0.1:${host.port}`
    tab = await signIn(host.launchUrl())
  })
  afterAll(async () => {
    await host?.close()
    await ops?.close()
    await db?.drop()
  })

  /** A fresh tab (its own rate bucket) gets a valid call answered. */
  const stillAnswers = async () => {
    const fresh = await signIn(host.launchUrl())
    expect(await call(host.origin, 'app.info', {}, fresh.headers)).toMatchObject({ status: 200, reply: { ok: true } })
  }

  it('an upgrade request for "//" is refused (404), raw or from a WebSocket client', async () => {
    const r = await raw(host.port, `GET // HTTP/1.1\r\nHost: ${hostHeader}\r\n${UPGRADE}\r\n`)
    expect(r).toMatch(/^HTTP\/1.1 404/)
    expect(await wsOpen(`ws://${hostHeader}//`, {})).toEqual({ status: 404 })
    await stillAnswers()
  })

  it('a cookie with broken percent-encoding is ignored: 401 on /ws, and a signed-in call still works (not 413)', async () => {
    const r = await raw(host.port, `GET /ws HTTP/1.1\r\nHost: ${hostHeader}\r\nCookie: a=%\r\n${UPGRADE}\r\n`)
    expect(r).toMatch(/^HTTP\/1.1 401/)
    const withBad = { ...tab.headers, cookie: `a=%; b=%E0%A4%A; ${tab.cookie}` }
    expect(await call(host.origin, 'app.info', {}, withBad)).toMatchObject({ status: 200, reply: { ok: true } })
    const opened = await wsOpen(`ws://${hostHeader}/ws`, { cookie: withBad.cookie }, tab.secret)
    expect('ws' in opened).toBe(true)
    if ('ws' in opened) opened.ws.close()
    await stillAnswers()
  })

  it('a signed-in socket sending an oversize frame (1009), invalid UTF-8 (1007) or a method that is an object (1003) is closed; the host lives', async () => {
    const big = await tabSocket(host.origin, tab)
    big.ws.send('x'.repeat(1_000_001))
    expect((await big.closed).code).toBe(1009)

    const utf8 = await tabSocket(host.origin, tab)
    utf8.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false })
    expect((await utf8.closed).code).toBe(1007)

    const object = await tabSocket(host.origin, tab)
    object.ws.send('{"id":4,"method":{"toString":1},"input":{}}')
    expect((await object.closed).code).toBe(1003)
    await stillAnswers()
  })

  it('a few thousand malformed requests, handshakes and frames later, the host still answers a valid call', async () => {
    const r = rng(20261130)
    const started = Date.now()
    const fuzzTab = await signIn(host.launchUrl())
    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'HEAD', 'G ET', 'FOO', '', 'GET\0']
    const paths = [
      '/',
      '//',
      '///x',
      '/%',
      '/%zz',
      '/%00',
      '/..%2f..%2fetc%2fpasswd',
      '/../../etc/passwd',
      '*',
      'http://evil.example/',
      '/api/call/',
      '/api/call/%E0%A4%A',
      '/api/call/app.info',
      '/api/call/settings.update',
      '/api/call/__proto__',
      '/api/call/constructor',
      '/metrics',
      '/ws',
      '/?token=%',
      '/?token=',
      '/?token=' + 'a'.repeat(40),
      '/api/session/launch-link',
      '/api/session/sign-out',
      '/signed-out',
      '/' + 'a'.repeat(10_000),
      '/assets/%ff',
      '/#frag',
      '/?a=%&b=%zz',
    ]
    const versions = ['HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', '', 'HTTP/1.1 extra']
    const hosts = [hostHeader, hostHeader, `localhost:${host.port}`, 'evil.example', '', '%', '[::1', hostHeader + '\0']
    const cookies = [
      '',
      'a=%',
      'ops_session=%',
      '=;;;=',
      `ops_session=${'x'.repeat(5000)}`,
      `a=%E0; ${fuzzTab.cookie}`,
      fuzzTab.cookie,
      ';',
      'ops_session',
    ]
    const auths = ['', 'Bearer', 'Bearer ', 'Basic eDp5', `Bearer ${'x'.repeat(10_000)}`, 'Bearer fuzz-program-token-0123456789']
    const secrets = ['', fuzzTab.secret, '%', 'x'.repeat(5000), fuzzTab.secret + '\u00e9']
    const bodies = [
      '',
      '{',
      '[]',
      'null',
      '"x"',
      '{"a":',
      '{}',
      '{"key":"APP_URL","value":"x"}',
      '['.repeat(100_000),
      '\u0000\u00ff',
      '{"__proto__":{"x":1}}',
    ]
    const extra = [
      '',
      'Content-Length: -1\r\n',
      'Content-Length: abc\r\n',
      'Content-Length: 99999999\r\n',
      'Transfer-Encoding: chunked\r\n',
      'Accept: text/html\r\n',
      `X-Big: ${'h'.repeat(20_000)}\r\n`,
      'Origin: http://evil.example\r\n',
      `Origin: ${host.origin}\r\n`,
      'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n',
      'Expect: 100-continue\r\n',
    ]
    const requests: (string | Buffer)[] = []
    for (let i = 0; i < 2400; i++) {
      const body = r.pick(bodies)
      const headers =
        (r.next() < 0.9 ? `Host: ${r.pick(hosts)}\r\n` : '') +
        (r.next() < 0.5 ? `Cookie: ${r.pick(cookies)}\r\n` : '') +
        (r.next() < 0.3 ? `Authorization: ${r.pick(auths)}\r\n` : '') +
        (r.next() < 0.4 ? `X-Ops-Session: ${r.pick(secrets)}\r\n` : '') +
        r.pick(extra) +
        (r.next() < 0.15 ? UPGRADE + (r.next() < 0.5 ? `Sec-WebSocket-Protocol: ops.v1, ops-session.${r.pick(secrets)}\r\n` : '') : '') +
        (r.next() < 0.7 ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : '') +
        'Connection: close\r\n'
      const line = `${r.pick(methods)} ${r.pick(paths)} ${r.pick(versions)}`
      const crlf = r.next() < 0.05 ? '\n' : '\r\n'
      requests.push(r.next() < 0.03 ? Buffer.from(Array.from({ length: 200 }, () => r.int(256))) : `${line}${crlf}${headers}\r\n${body}`)
    }
    const answers = new Map<string, number>()
    await inBatches(requests, 40, async (req) => {
      const got = await raw(host.port, req)
      const status = /^HTTP\/1.1 (\d+)/.exec(got)?.[1] ?? 'closed'
      answers.set(status, (answers.get(status) ?? 0) + 1)
    })
    // Broken requests are answered (400s), never with a 500 or a dropped host.
    expect(answers.get('500') ?? 0).toBe(0)
    expect(answers.get('400')).toBeGreaterThan(100)
    await stillAnswers()

    // Frames on signed-in sockets: each malformed one closes its socket (1003/1007/1009) or gets an error reply.
    const frames: (string | { data: Buffer; binary: boolean })[] = [
      'x'.repeat(1_000_001),
      '1',
      'null',
      '"x"',
      '[]',
      '{}',
      'true',
      '{"id":"1","method":"app.info","input":{}}',
      '{"id":-1,"method":"app.info","input":{}}',
      '{"id":1.5,"method":"app.info","input":{}}',
      '{"id":1e400,"method":"app.info"}',
      '{"id":1,"method":{"toString":1},"input":{}}',
      '{"id":1,"method":["app.info"],"input":{}}',
      '{"id":1,"method":null}',
      '{"id":1,"method":"__proto__","input":{}}',
      '{"id":1,"method":"constructor","input":{}}',
      '{"id":1,"method":"hasOwnProperty"}',
      '{"id":1,"method":"app.info","input":' + '['.repeat(50_000) + ']'.repeat(50_000) + '}',
      '['.repeat(200_000),
      '{"id":1,"method":"restore.plan","input":{"point":' + '{"a":'.repeat(5000) + '1' + '}'.repeat(5000) + '}}',
      '{"id":1,"method":"metrics.history","input":{"series":"x","from":0,"to":9e15}}',
      '{"id":1,"method":"app.info","input":{}',
      { data: Buffer.from([0xc3, 0x28]), binary: false },
      { data: Buffer.from([0, 1, 2, 3]), binary: true },
      { data: Buffer.from('{"id":1,"method":"app.info","input":{}}'), binary: true },
    ]
    let sock = await tabSocket(host.origin, tab)
    let closes = 0
    for (let i = 0; i < 600; i++) {
      const f = frames[i % frames.length]
      if (typeof f === 'string') sock.ws.send(f)
      else sock.ws.send(f.data, { binary: f.binary })
      // A ping answered means the host handled the frame before it (frames are handled in order); or it closed the socket.
      const ws = sock.ws
      const outcome = await Promise.race([
        new Promise<'pong'>((res) => {
          ws.once('pong', () => res('pong'))
          ws.ping(undefined, undefined, () => {})
        }),
        sock.closed.then(() => 'closed' as const),
      ])
      if (outcome === 'closed') {
        closes++
        sock = await tabSocket(host.origin, tab)
      }
    }
    sock.ws.close()
    expect(closes).toBeGreaterThan(300)

    // And still: an HTTP call, and a WebSocket call, answered.
    await stillAnswers()
    const last = await tabSocket(host.origin, tab)
    last.ws.send(JSON.stringify({ id: 7, method: 'app.info', input: {} }))
    await expect.poll(() => last.reply(7), { timeout: 10_000 }).toMatchObject({ ok: true })
    last.ws.close()
    expect(Date.now() - started).toBeLessThan(60_000)
  }, 90_000)
})
