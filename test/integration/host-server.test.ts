import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import WebSocket from 'ws'
import { loadConfig } from '../../src/core/config/config'
import { silentLogger } from '../../src/core/log/logger'
import { createOps, type Ops } from '../../src/core/ops'
import { startHostServer, type HostServer } from '../../src/host/server'
import { createDatabase } from '../helpers/db'

function get(url: string, headers: Record<string, string> = {}, method = 'GET', body?: string) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let data = ''
      res.on('data', (c) => (data += c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: data }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

function wsOpen(url: string, headers: Record<string, string>): Promise<{ ws: WebSocket } | { status: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers })
    ws.on('open', () => resolve({ ws }))
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode! }))
    ws.on('error', () => {})
  })
}

describe('the headless host lets in only the operator who holds the token', () => {
  let ops: Ops
  let host: HostServer
  let db: Awaited<ReturnType<typeof createDatabase>>
  let cookie = ''
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'host')
    const renderer = mkdtempSync(join(tmpdir(), 'ops-ui-'))
    mkdirSync(join(renderer, 'assets'))
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>ExamForge Ops</title>')
    ops = await createOps({
      config: loadConfig({ env: { DATABASE_URL: db.url }, dataDir: mkdtempSync(join(tmpdir(), 'ops-h-')) }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    host = await startHostServer({ ops, rendererDir: renderer, port: 0, apiToken: 'test-api-token-0123456789' })
  })
  afterAll(async () => {
    await host?.close()
    await ops?.close()
    await db?.drop()
  })

  // This machine's other addresses: the host must not answer on them.
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address
  it.skipIf(!external)('listens on 127.0.0.1 only: the same port on another address of this machine refuses the connection', async () => {
    expect((await get(`${host.origin}/`)).status).toBe(401) // it answers on loopback
    const err = await get(`http://${external}:${host.port}/`).then(
      () => null,
      (e: NodeJS.ErrnoException) => e.code,
    )
    expect(err).toBe('ECONNREFUSED')
  })

  it('refuses the UI and the API without a token (401)', async () => {
    expect((await get(`${host.origin}/`)).status).toBe(401)
    expect((await get(`${host.origin}/api/call/health.snapshot`, {}, 'POST', '{}')).status).toBe(401)
    expect((await get(`${host.origin}/?token=guessed`)).status).toBe(401)
  })

  it('a launch link works once, setting an HttpOnly SameSite=Strict session cookie', async () => {
    const link = host.launchUrl()
    const first = await get(link)
    expect(first.status).toBe(302)
    expect(first.headers.location).toBe('/')
    const setCookie = String(first.headers['set-cookie'])
    expect(setCookie).toMatch(/HttpOnly/)
    expect(setCookie).toMatch(/SameSite=Strict/)
    cookie = setCookie.split(';')[0]
    const page = await get(`${host.origin}/`, { cookie })
    expect(page.status).toBe(200)
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/)
    expect(page.body).toContain('ExamForge Ops')
    expect((await get(link)).status).toBe(401)
  })

  it('refuses another origin (403) and another Host name (403)', async () => {
    expect((await get(`${host.origin}/`, { cookie, origin: 'http://evil.example' })).status).toBe(403)
    expect((await get(`${host.origin}/`, { cookie, host: 'evil.example' })).status).toBe(403)
  })

  it('WebSocket: 401 without the session, 403 from another origin, calls and events with it', async () => {
    const wsUrl = host.origin.replace('http', 'ws') + '/ws'
    expect(await wsOpen(wsUrl, { origin: host.origin })).toEqual({ status: 401 })
    expect(await wsOpen(wsUrl, { origin: 'http://evil.example', cookie })).toEqual({ status: 403 })
    const opened = await wsOpen(wsUrl, { origin: host.origin, cookie })
    expect('ws' in opened).toBe(true)
    const ws = (opened as { ws: WebSocket }).ws
    const frames: Record<string, unknown>[] = []
    ws.on('message', (d) => frames.push(JSON.parse(String(d))))
    ws.send(JSON.stringify({ id: 1, method: 'health.checkNow', input: { service: 'postgres' } }))
    ws.send(JSON.stringify({ id: 2, method: 'health.checkNow', input: { service: 'mysql' } }))
    ws.send(JSON.stringify({ id: 3, method: 'process.exit', input: {} }))
    await expect.poll(() => frames.filter((f) => 'id' in f).length, { timeout: 10_000 }).toBe(3)
    const reply = (id: number) =>
      frames.find((f) => f.id === id) as {
        ok: boolean
        value?: { results: { service: string; status: string }[] }
        error?: { code: string; message: string }
      }
    expect(reply(1).ok).toBe(true)
    expect(reply(1).value!.results.find((r) => r.service === 'postgres')!.status).toBe('healthy')
    expect(reply(2)).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    expect(reply(3)).toMatchObject({ ok: false, error: { code: 'unknown_method' } })
    expect(frames.some((f) => f.event === 'health.updated')).toBe(true)
    ws.close()
  })

  it('programs use the API token as a Bearer header', async () => {
    const ok = await get(`${host.origin}/api/call/app.info`, { authorization: 'Bearer test-api-token-0123456789' }, 'POST', '{}')
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body)).toMatchObject({ ok: true, value: { face: 'host', sandbox: { active: false } } })
    const wrong = await get(`${host.origin}/api/call/app.info`, { authorization: 'Bearer nope' }, 'POST', '{}')
    expect(wrong.status).toBe(401)
  })

  it('settings reach the client masked; saving a secret in the host is refused with what to do', async () => {
    const auth = { authorization: 'Bearer test-api-token-0123456789' }
    const list = JSON.parse((await get(`${host.origin}/api/call/settings.list`, auth, 'POST', '{}')).body) as {
      value: { key: string; value: string }[]
    }
    const dbSetting = list.value.find((s) => s.key === 'DATABASE_URL')!
    expect(dbSetting.value).toMatch(/:•••@/)
    expect(JSON.stringify(list)).not.toContain(new URL(db.url).password)
    const save = JSON.parse(
      (
        await get(
          `${host.origin}/api/call/settings.update`,
          auth,
          'POST',
          JSON.stringify({ key: 'STRIPE_SECRET_KEY', value: 'sk_test_zzzz1111' }),
        )
      ).body,
    )
    expect(save).toMatchObject({ ok: false, error: { code: 'secret_store_unavailable' } })
    expect(save.error.message).toMatch(/OPS_SECRETS_FILE/)
    const ok = JSON.parse(
      (
        await get(
          `${host.origin}/api/call/settings.update`,
          auth,
          'POST',
          JSON.stringify({ key: 'APP_URL', value: 'https://examforge.example' }),
        )
      ).body,
    )
    expect(ok).toMatchObject({ ok: true, value: { restartRequired: true } })
    const after = JSON.parse((await get(`${host.origin}/api/call/settings.list`, auth, 'POST', '{}')).body) as {
      value: { key: string; value: string; source: string }[]
    }
    // Saved, shown as pending until the next start.
    expect(after.value.find((s) => s.key === 'APP_URL')).toMatchObject({
      value: null,
      source: 'unset',
      pending: 'https://examforge.example',
    })
    const restarted = loadConfig({ env: { DATABASE_URL: db.url }, dataDir: ops.config.dataDir })
    expect(restarted.app.url).toBe('https://examforge.example')
    expect(restarted.sources.APP_URL).toBe('settings file')
  })
})
