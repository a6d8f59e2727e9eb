import { mkdtempSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { networkInterfaces, tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { loadConfig } from '../../src/core/config/config'
import { silentLogger } from '../../src/core/log/logger'
import { createOps, type Ops } from '../../src/core/ops'
import { startHostServer, type HostServer } from '../../src/host/server'
import { SIGN_OUT_PATH, SIGNED_OUT_PATH } from '../../src/shared/ws-protocol'
import { cli } from '../helpers/cli'
import { createDatabase, query } from '../helpers/db'
import { call, http as get, signIn, tabSocket, wsOpen } from '../helpers/host'

const PROGRAM = 'test-api-token-0123456789'
const ADMIN = 'admin-token-aaaaaaaaaaaaaaaa'
const DEV = 'dev-token-bbbbbbbbbbbbbbbbbb'
const bearer = (t: string) => ({ authorization: `Bearer ${t}` })

describe('the headless host lets in only the operator who holds the token', () => {
  let ops: Ops
  let host: HostServer
  let db: Awaited<ReturnType<typeof createDatabase>>
  let renderer: string
  let dataDir: string
  let cookie = ''
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'host')
    renderer = mkdtempSync(join(tmpdir(), 'ops-ui-'))
    mkdirSync(join(renderer, 'assets'))
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>ExamForge Ops</title>')
    dataDir = mkdtempSync(join(tmpdir(), 'ops-h-'))
    ops = await createOps({
      config: loadConfig({
        env: {
          DATABASE_URL: db.url,
          ADMIN_EMAILS: 'ops@examforge.test',
          OPS_API_TOKENS: `ops@examforge.test=${ADMIN}, dev@examforge.test=${DEV}`,
        },
        dataDir,
      }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    host = await startHostServer({ ops, rendererDir: renderer, port: 0, apiToken: PROGRAM, controlDir: dataDir })
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

  it('a launch link works once: an HttpOnly SameSite=Strict cookie, and the secret only in the fragment', async () => {
    const link = host.launchUrl()
    const first = await get(link)
    expect(first.status).toBe(302)
    expect(first.headers.location).toMatch(/^\/#ops-session=[\w-]{32}$/)
    const setCookie = String(first.headers['set-cookie'])
    expect(setCookie).toMatch(/HttpOnly/)
    expect(setCookie).toMatch(/SameSite=Strict/)
    expect(setCookie).not.toContain(String(first.headers.location).split('=')[1])
    cookie = setCookie.split(';')[0]
    const page = await get(`${host.origin}/`, { cookie })
    expect(page.status).toBe(200)
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/)
    expect(page.body).toContain('ExamForge Ops')
    const again = await get(link)
    expect(again.status).toBe(401)
    expect(JSON.parse(again.body)).toMatchObject({ ok: false, error: { code: 'link_used' } })
  })

  it('the cookie alone does not authenticate a call or a WebSocket (another port could replay it): cookie AND secret do', async () => {
    const tab = await signIn(host.launchUrl())
    expect((await call(host.origin, 'app.info', {}, { cookie: tab.cookie })).status).toBe(401)
    expect((await call(host.origin, 'app.info', {}, { 'x-ops-session': tab.secret })).status).toBe(401)
    expect((await call(host.origin, 'app.info', {}, { cookie: tab.cookie, 'x-ops-session': 'x'.repeat(32) })).status).toBe(401)
    expect(await call(host.origin, 'app.info', {}, tab.headers)).toMatchObject({ status: 200, reply: { ok: true } })
    const wsUrl = host.origin.replace('http', 'ws') + '/ws'
    expect(await wsOpen(wsUrl, { origin: host.origin, cookie: tab.cookie })).toEqual({ status: 401 })
    expect(await wsOpen(wsUrl, { origin: host.origin, cookie: tab.cookie }, 'x'.repeat(32))).toEqual({ status: 401 })
    expect(await wsOpen(wsUrl, { origin: host.origin }, tab.secret)).toEqual({ status: 401 })
    const ok = await wsOpen(wsUrl, { origin: host.origin, cookie: tab.cookie }, tab.secret)
    expect('ws' in ok && ok.ws.protocol).toBe('ops.v1')
    if ('ws' in ok) ok.ws.close()
  })

  it('refuses another origin (403) and another Host name (403)', async () => {
    expect((await get(`${host.origin}/`, { cookie, origin: 'http://evil.example' })).status).toBe(403)
    expect((await get(`${host.origin}/`, { cookie, host: 'evil.example' })).status).toBe(403)
    expect((await get(`${host.origin}/`, { cookie, origin: 'http://127.0.0.1:1' })).status).toBe(403)
  })

  it('WebSocket: 403 from another origin, calls and events with a signed-in tab', async () => {
    const tab = await signIn(host.launchUrl())
    const wsUrl = host.origin.replace('http', 'ws') + '/ws'
    expect(await wsOpen(wsUrl, { origin: 'http://evil.example', cookie: tab.cookie }, tab.secret)).toEqual({ status: 403 })
    const s = await tabSocket(host.origin, tab)
    s.ws.send(JSON.stringify({ id: 1, method: 'health.checkNow', input: { service: 'postgres' } }))
    s.ws.send(JSON.stringify({ id: 2, method: 'health.checkNow', input: { service: 'mysql' } }))
    s.ws.send(JSON.stringify({ id: 3, method: 'process.exit', input: {} }))
    await expect.poll(() => s.frames.filter((f) => 'id' in f).length, { timeout: 10_000 }).toBe(3)
    const reply = (id: number) =>
      s.reply(id) as { ok: boolean; value?: { results: { service: string; status: string }[] }; error?: { code: string; message: string } }
    expect(reply(1).ok).toBe(true)
    expect(reply(1).value!.results.find((r) => r.service === 'postgres')!.status).toBe('healthy')
    expect(reply(2)).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    expect(reply(3)).toMatchObject({ ok: false, error: { code: 'unknown_method', message: 'There is no method "process.exit".' } })
    expect(s.frames.some((f) => f.event === 'health.updated')).toBe(true)
    s.ws.close()
  })

  it('programs read with OPS_API_TOKEN, and are refused anything destructive or that starts work', async () => {
    const ok = await call(host.origin, 'app.info', {}, bearer(PROGRAM))
    expect(ok).toMatchObject({ status: 200, reply: { ok: true, value: { face: 'host', sandbox: { active: false } } } })
    expect((await call(host.origin, 'app.info', {}, bearer('nope'))).status).toBe(401)
    const metrics = await get(`${host.origin}/metrics`, bearer(PROGRAM))
    expect(metrics.status).toBe(200)
    for (const [method, input] of [
      ['settings.update', { key: 'APP_URL', value: 'https://evil.example' }],
      ['backups.prune', { confirm: 'delete' }],
      ['restore.test', {}],
      ['backups.start', { type: 'full' }],
    ] as const) {
      const r = await call(host.origin, method, input, bearer(PROGRAM))
      expect(r.status, method).toBe(403)
      expect(r.reply.error).toMatchObject({ code: 'forbidden' })
      expect(r.reply.error!.message).toMatch(/OPS_API_TOKEN is a read-only token for programs.*OPS_API_TOKENS/)
    }
  })

  it("destructive calls need an administrator (ADMIN_EMAILS): an admin's token may, the audit log names the identity, not the typed name", async () => {
    const denied = await call(host.origin, 'settings.update', { key: 'APP_URL', value: 'https://x.example' }, bearer(DEV))
    expect(denied.status).toBe(403)
    expect(denied.reply.error!.message).toBe(
      'settings.update needs an administrator, and you are signed in as dev@examforge.test (admin-token), which is not in ADMIN_EMAILS. ' +
        'Ask an administrator to add your e-mail to ADMIN_EMAILS and map your OS user to it (OPS_OS_USERS=user=email) or give you a token (OPS_API_TOKENS=email=token).',
    )
    // The typed operator grants nothing.
    const typed = await call(host.origin, 'restore.test', { operator: 'ops@examforge.test' }, bearer(DEV))
    expect(typed.reply.error).toMatchObject({ code: 'forbidden' })
    // A browser session launched by the host's OS user (not mapped to an administrator) is refused too, and says who it is.
    const tab = await signIn(host.launchUrl())
    const browser = await call(host.origin, 'sandbox.seed', { scale: 1 }, tab.headers)
    expect(browser.reply.error!.message).toContain(`signed in as ${userInfo().username} (browser)`)
    const ok = await call(host.origin, 'settings.update', { key: 'APP_URL', value: 'https://examforge.example' }, bearer(ADMIN))
    expect(ok).toMatchObject({ status: 200, reply: { ok: true } })
    const [row] = await query<{ actor: string }>(
      db.url,
      `SELECT actor FROM ops.audit_log WHERE action = 'settings.update' ORDER BY id DESC LIMIT 1`,
    )
    expect(row.actor).toBe('ops@examforge.test (admin-token)')
  })

  it('settings reach the client masked; saving a secret in the host is refused with what to do', async () => {
    const auth = bearer(ADMIN)
    const list = (await call(host.origin, 'settings.list', {}, auth)).reply as { value: { key: string; value: string }[] }
    const dbSetting = list.value.find((s) => s.key === 'DATABASE_URL')!
    expect(dbSetting.value).toMatch(/:•••@/)
    expect(JSON.stringify(list)).not.toContain(new URL(db.url).password)
    expect(JSON.stringify(list)).not.toContain(ADMIN)
    const save = (await call(host.origin, 'settings.update', { key: 'STRIPE_SECRET_KEY', value: 'sk_test_zzzz1111' }, auth)).reply
    expect(save).toMatchObject({ ok: false, error: { code: 'secret_store_unavailable' } })
    expect(save.error!.message).toMatch(/OPS_SECRETS_FILE/)
    const ok = (await call(host.origin, 'settings.update', { key: 'APP_URL', value: 'https://examforge.example' }, auth)).reply
    expect(ok).toMatchObject({ ok: true, value: { restartRequired: true } })
    const after = (await call(host.origin, 'settings.list', {}, auth)).reply as { value: { key: string; value: string; source: string }[] }
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

  it('a session launched by an administrator token carries its identity', async () => {
    const r = await get(`${host.origin}/api/session/launch-link`, bearer(ADMIN), 'POST')
    const { url } = (JSON.parse(r.body) as { value: { url: string } }).value
    const tab = await signIn(url)
    const ok = await call(host.origin, 'settings.update', { key: 'APP_HEALTH_PATH', value: '/healthz' }, tab.headers)
    expect(ok.reply).toMatchObject({ ok: true })
    const [row] = await query<{ actor: string }>(
      db.url,
      `SELECT actor FROM ops.audit_log WHERE action = 'settings.update' ORDER BY id DESC LIMIT 1`,
    )
    expect(row.actor).toBe('ops@examforge.test (browser)')
    // The program token cannot mint browser sessions.
    expect((await get(`${host.origin}/api/session/launch-link`, bearer(PROGRAM), 'POST')).status).toBe(403)
  })

  it('sign-out ends the session: its socket closes, its calls get 401, the cookie is cleared', async () => {
    const tab = await signIn(host.launchUrl())
    const s = await tabSocket(host.origin, tab)
    const out = await get(`${host.origin}${SIGN_OUT_PATH}`, { ...tab.headers, origin: host.origin }, 'POST')
    expect(out.status).toBe(200)
    expect(String(out.headers['set-cookie'])).toMatch(/Max-Age=0/)
    expect((await s.closed).code).toBe(4401)
    const after = await call(host.origin, 'app.info', {}, tab.headers)
    expect(after).toMatchObject({ status: 401, reply: { error: { code: 'session_ended' } } })
    const page = await get(`${host.origin}${SIGNED_OUT_PATH}`, { accept: 'text/html' })
    expect(page.status).toBe(200)
    expect(page.body).toContain('examforge-ops open')
  })

  it('tidy errors: invalid JSON 400, too large 413, bad times invalid_input, and no absolute path in a 404', async () => {
    const tab = await signIn(host.launchUrl())
    const bad = await get(`${host.origin}/api/call/app.info`, tab.headers, 'POST', '{"oops"')
    expect(bad.status).toBe(400)
    expect(JSON.parse(bad.body)).toMatchObject({ ok: false, error: { code: 'invalid_json' } })
    const big = await get(`${host.origin}/api/call/app.info`, tab.headers, 'POST', JSON.stringify({ x: 'y'.repeat(1_100_000) }))
    expect(big.status).toBe(413)
    expect(JSON.parse(big.body)).toMatchObject({ error: { code: 'too_large' } })
    const wrongMethod = await get(`${host.origin}/api/call/app.info`, tab.headers)
    expect(wrongMethod.status).toBe(405)
    const history = await call(host.origin, 'metrics.history', { series: 'host.cpu_percent', from: 0, to: 9e15 }, tab.headers)
    expect(history.reply.error).toMatchObject({ code: 'invalid_input' })
    expect(history.reply.error!.message).toMatch(/at "to": must be a time in milliseconds since 1970, before the year 10000/)
    // A host whose UI is not built says what to do, without naming folders.
    const empty = mkdtempSync(join(tmpdir(), 'ops-noui-'))
    const bare = await startHostServer({ ops, rendererDir: empty, port: 0 })
    try {
      const t = await signIn(bare.launchUrl())
      const r = await get(`${bare.origin}/`, { cookie: t.cookie })
      expect(r.status).toBe(404)
      expect(r.body).toMatch(/npm run build/)
      expect(r.body).not.toContain(empty)
      expect(r.body).not.toContain(tmpdir())
    } finally {
      await bare.close()
    }
  })

  it('a browser (Accept: text/html) gets a readable page saying what to do: no token, wrong token, used link, ended session', async () => {
    const html = { accept: 'text/html,application/xhtml+xml' }
    const link = host.launchUrl()
    await signIn(link)
    const cases: [string, Record<string, string>, RegExp][] = [
      [`${host.origin}/`, html, /Not signed in/],
      [`${host.origin}/?token=guessed`, html, /not one this host issued/],
      [link, html, /already used/],
      [`${host.origin}/`, { ...html, cookie: 'ops_session=gone' }, /Your session has ended/],
    ]
    for (const [url, headers, text] of cases) {
      const r = await get(url, headers)
      expect(r.status).toBe(401)
      expect(r.headers['content-type']).toMatch(/^text\/html/)
      expect(r.body).toMatch(text)
      expect(r.body).toContain('examforge-ops open')
      expect(r.body).not.toMatch(/<script/)
    }
  })

  it('examforge-ops open prints a fresh link from the 0600 control file; --as-token uses an administrator token, never the program one', async () => {
    const control = join(dataDir, 'host.json')
    expect(statSync(control).mode & 0o777).toBe(0o600)
    const r = await cli(['open', '--json'], { OPS_DATA_DIR: dataDir })
    expect(r.code, r.stderr).toBe(0)
    const { url } = JSON.parse(r.stdout) as { url: string }
    expect(url.startsWith(`${host.origin}/?token=`)).toBe(true)
    expect((await signIn(url)).secret).toHaveLength(32)
    const asAdmin = await cli(['open', '--as-token'], { OPS_DATA_DIR: dataDir, OPS_TOKEN: ADMIN })
    expect(asAdmin.code, asAdmin.stderr).toBe(0)
    expect(asAdmin.stdout).toMatch(/one-time link/)
    const asProgram = await cli(['open', '--as-token'], { OPS_DATA_DIR: dataDir, OPS_TOKEN: PROGRAM })
    expect(asProgram.code, asProgram.stderr).toBe(1)
    expect(asProgram.stderr).toMatch(/read-only token for programs/)
    const none = await cli(['open'], { OPS_DATA_DIR: mkdtempSync(join(tmpdir(), 'ops-nohost-')) })
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/No console host is running .* Start one with "examforge-ops serve"/)
  })
})

describe('sessions and launch links expire; calls are rate-limited', () => {
  let ops: Ops
  let db: Awaited<ReturnType<typeof createDatabase>>
  let renderer: string
  let clock = Date.now()
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'hostexp')
    renderer = mkdtempSync(join(tmpdir(), 'ops-ui-'))
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>ExamForge Ops</title>')
    ops = await createOps({
      config: loadConfig({ env: { DATABASE_URL: db.url }, dataDir: mkdtempSync(join(tmpdir(), 'ops-h-')) }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
  })
  afterAll(async () => {
    await ops?.close()
    await db?.drop()
  })
  // The host's clock is this variable, so expiry is tested without waiting for it.
  const start = (auth: Parameters<typeof startHostServer>[0]['auth']) =>
    startHostServer({ ops, rendererDir: renderer, port: 0, sweepMs: 50, auth: { now: () => clock, ...auth } })

  it('an unused launch link expires', async () => {
    const host = await start({ launchTtlMs: 5 * 60_000 })
    try {
      const link = host.launchUrl()
      clock += 5 * 60_000 + 1
      const r = await get(link)
      expect(r.status).toBe(401)
      expect(JSON.parse(r.body).error.message).toMatch(/expired \(an unused link lasts 5 minutes\).*examforge-ops open/)
    } finally {
      await host.close()
    }
  })

  it('a session ends after its idle time without calls (its socket is closed), and after its absolute time whatever', async () => {
    const host = await start({ idleMs: 30 * 60_000, maxMs: 12 * 3600_000 })
    try {
      const tab = await signIn(host.launchUrl())
      const s = await tabSocket(host.origin, tab)
      clock += 29 * 60_000
      expect((await call(host.origin, 'app.info', {}, tab.headers)).status).toBe(200) // activity resets the idle time
      clock += 29 * 60_000
      // The page's own heartbeat (metrics.watch, every 20 s) keeps nothing signed in: a forgotten tab goes idle.
      s.ws.send(JSON.stringify({ id: 1, method: 'metrics.watch', input: {} }))
      await expect.poll(() => s.reply(1)).toMatchObject({ ok: true })
      expect((await call(host.origin, 'metrics.watch', {}, tab.headers)).status).toBe(200)
      clock += 60_000 + 1
      expect((await s.closed).code).toBe(4401) // closed by the host's sweep
      expect(await call(host.origin, 'app.info', {}, tab.headers)).toMatchObject({
        status: 401,
        reply: { error: { code: 'session_ended' } },
      })

      const busy = await signIn(host.launchUrl())
      for (let h = 0; h < 12 * 4; h++) {
        expect((await call(host.origin, 'app.info', {}, busy.headers)).status, `after ${h / 4} h`).toBe(200)
        clock += 15 * 60_000
      }
      expect((await call(host.origin, 'app.info', {}, busy.headers)).status).toBe(401)
    } finally {
      await host.close()
    }
  })

  it('calls beyond the rate answer rate_limited (HTTP 429 and on the WebSocket), per session', async () => {
    const host = await start({ rate: { burst: 5, perSecond: 1 } })
    try {
      const tab = await signIn(host.launchUrl())
      for (let i = 0; i < 5; i++) expect((await call(host.origin, 'app.info', {}, tab.headers)).status).toBe(200)
      const limited = await call(host.origin, 'app.info', {}, tab.headers)
      expect(limited.status).toBe(429)
      expect(limited.reply.error).toMatchObject({ code: 'rate_limited' })
      expect(limited.reply.error!.message).toMatch(/Too many calls .* slow down/)
      const s = await tabSocket(host.origin, tab)
      s.ws.send(JSON.stringify({ id: 1, method: 'app.info', input: {} }))
      await expect.poll(() => s.reply(1)).toMatchObject({ ok: false, error: { code: 'rate_limited' } })
      // Another session has its own bucket; time refills this one.
      const other = await signIn(host.launchUrl())
      expect((await call(host.origin, 'app.info', {}, other.headers)).status).toBe(200)
      clock += 2000
      expect((await call(host.origin, 'app.info', {}, tab.headers)).status).toBe(200)
      s.ws.close()
    } finally {
      await host.close()
    }
  })
})
