import { SMTPServer } from 'smtp-server'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deliver, type Channel, type Notification } from '../../src/core/alerts/notify'
import { startHttp } from '../helpers/http'

const now = Date.parse('2026-11-30T12:00:00Z')
const n: Notification = {
  channel: 'x',
  groupKey: '{}:{alertname="cpu_high"}',
  status: 'firing',
  groupLabels: { alertname: 'cpu_high' },
  externalUrl: 'http://127.0.0.1:7480/#/alerts',
  alerts: [
    {
      rule: 'cpu_high',
      fingerprint: '0123456789abcdef',
      status: 'firing',
      severity: 'critical',
      labels: { alertname: 'cpu_high', severity: 'critical', host: 'db1' },
      annotations: { summary: 'CPU at 93 % on db1', runbook_url: 'https://runbooks.example/cpu' },
      value: 93,
      text: '93 %',
      startsAt: now,
      endsAt: null,
    },
  ],
}
const times = { groupWaitMs: 0, groupIntervalMs: 0, repeatIntervalMs: 1000 }

describe('alert channels against real receivers on loopback', () => {
  const hits: { path: string; at: number; body: Record<string, unknown> }[] = []
  const mode: Record<string, number> = {}
  let recv: Awaited<ReturnType<typeof startHttp>>
  beforeAll(async () => {
    recv = await startHttp((req, res) => {
      let b = ''
      req.on('data', (c) => (b += c))
      req.on('end', () => {
        const path = req.url ?? ''
        hits.push({ path, at: Date.now(), body: b ? JSON.parse(b) : {} })
        const seen = hits.filter((h) => h.path === path).length
        if (path === '/limited' && seen === 1) return res.writeHead(429, { 'retry-after': '1' }).end('slow down')
        if (path === '/broken') return res.writeHead(500).end('down')
        if (path === '/gone') return res.writeHead(404).end('no such hook')
        res.writeHead(mode[path] ?? 200).end('ok')
      })
    })
  })
  afterAll(async () => {
    await recv?.close()
  })
  const ch = (name: string, type: Channel['type'], path: string): Channel => ({ name, type, url: `${recv.url}${path}`, ...times })

  it('Slack gets an attachment coloured by severity with service, value, since and the runbook', async () => {
    expect(await deliver(ch('slack', 'slack', '/slack'), n)).toEqual({ ok: true, attempts: 1, error: null })
    const body = hits.find((h) => h.path === '/slack')!.body as { text: string; attachments: Record<string, unknown>[] }
    expect(body.text).toBe('[FIRING:1] cpu_high')
    expect(body.attachments[0]).toMatchObject({
      color: '#d32f2f',
      title: 'CRITICAL: cpu_high',
      text: 'CPU at 93 % on db1',
      title_link: n.externalUrl,
    })
    expect(body.attachments[0].fields).toEqual(
      expect.arrayContaining([
        { title: 'Service', value: 'db1', short: true },
        { title: 'Value', value: '93 %', short: true },
        { title: 'Since', value: '2026-11-30T12:00:00.000Z', short: true },
        { title: 'Runbook', value: 'https://runbooks.example/cpu', short: false },
      ]),
    )
  })

  it('Discord gets an embed', async () => {
    await deliver(ch('discord', 'discord', '/discord'), {
      ...n,
      status: 'resolved',
      alerts: [{ ...n.alerts[0], status: 'resolved', endsAt: now + 60_000 }],
    })
    const body = hits.find((h) => h.path === '/discord')!.body as { content: string; embeds: Record<string, unknown>[] }
    expect(body.content).toBe('[RESOLVED] cpu_high')
    expect(body.embeds[0]).toMatchObject({
      title: 'Resolved: cpu_high',
      description: 'CPU at 93 % on db1',
      color: 0x2e7d32,
      timestamp: '2026-11-30T12:01:00.000Z',
    })
  })

  it('the generic webhook gets Alertmanager’s webhook JSON (version 4)', async () => {
    await deliver(ch('webhook', 'webhook', '/am'), n)
    const body = hits.find((h) => h.path === '/am')!.body
    expect(body).toEqual({
      version: '4',
      groupKey: '{}:{alertname="cpu_high"}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'webhook',
      groupLabels: { alertname: 'cpu_high' },
      commonLabels: { alertname: 'cpu_high', severity: 'critical', host: 'db1' },
      commonAnnotations: { summary: 'CPU at 93 % on db1', runbook_url: 'https://runbooks.example/cpu' },
      externalURL: n.externalUrl,
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'cpu_high', severity: 'critical', host: 'db1' },
          annotations: { summary: 'CPU at 93 % on db1', runbook_url: 'https://runbooks.example/cpu' },
          startsAt: '2026-11-30T12:00:00.000Z',
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: n.externalUrl,
          fingerprint: '0123456789abcdef',
        },
      ],
    })
  })

  it('429 with Retry-After is honoured; a 500 channel is retried and fails without naming its URL while the next channel still gets it; 404 is not retried', async () => {
    const limited = await deliver(ch('limited', 'webhook', '/limited'), n, { backoffMs: 10 })
    expect(limited).toEqual({ ok: true, attempts: 2, error: null })
    const l = hits.filter((h) => h.path === '/limited')
    expect(l[1].at - l[0].at).toBeGreaterThanOrEqual(950)

    const [broken, next] = await Promise.all([
      deliver(ch('broken', 'webhook', '/broken'), n, { backoffMs: 20, attempts: 3 }),
      deliver(ch('next', 'webhook', '/next'), n),
    ])
    expect(broken.ok).toBe(false)
    expect(broken.attempts).toBe(3)
    expect(broken.error).toBe('the broken channel answered HTTP 500, after 3 attempts')
    expect(broken.error).not.toContain(recv.url)
    expect(hits.filter((h) => h.path === '/broken').length).toBe(3)
    expect(next.ok).toBe(true)

    const gone = await deliver(ch('gone', 'webhook', '/gone'), n, { backoffMs: 10 })
    expect(gone).toMatchObject({ ok: false, attempts: 1 })
  })

  it('e-mail reaches a real SMTP server, authenticated, with the alert in the text', async () => {
    const mails: { from: string; to: string[]; data: string; user: string }[] = []
    const server = new SMTPServer({
      authOptional: false,
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      onAuth(auth, _s, cb) {
        if (auth.username === 'ops@examforge.test' && auth.password === 's3cret-pw') cb(null, { user: auth.username })
        else cb(new Error('bad credentials'))
      },
      onData(stream, session, cb) {
        let data = ''
        stream.on('data', (c) => (data += c))
        stream.on('end', () => {
          mails.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            data,
            user: String(session.user),
          })
          cb()
        })
      },
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.server.address() as AddressInfo).port
    try {
      const r = await deliver(
        {
          name: 'email',
          type: 'email',
          url: `smtp://ops%40examforge.test:s3cret-pw@127.0.0.1:${port}`,
          to: ['oncall@examforge.test'],
          ...times,
        },
        n,
      )
      expect(r).toEqual({ ok: true, attempts: 1, error: null })
      expect(mails).toHaveLength(1)
      expect(mails[0]).toMatchObject({ from: 'ops@examforge.test', to: ['oncall@examforge.test'], user: 'ops@examforge.test' })
      expect(mails[0].data).toContain('Subject: ExamForge Ops [FIRING:1] cpu_high')
      expect(mails[0].data).toContain('CPU at 93 % on db1')
      const bad = await deliver(
        {
          name: 'email',
          type: 'email',
          url: `smtp://ops%40examforge.test:wrong@127.0.0.1:${port}`,
          to: ['oncall@examforge.test'],
          ...times,
        },
        n,
        { attempts: 1 },
      )
      expect(bad.ok).toBe(false)
      expect(bad.error).not.toContain('wrong')
    } finally {
      await new Promise<void>((r) => server.close(() => r()))
    }
  })
})
