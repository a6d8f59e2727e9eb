import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { exportRules, parseRulesFile } from '../../src/core/alerts/rules-file'
import { z } from 'zod'
import { AuditLog } from '../../src/core/alerts/../audit/audit'
import { AlertEngine, type EngineOptions } from '../../src/core/alerts/engine'
import type { Channel } from '../../src/core/alerts/notify'
import type { RuleSource } from '../../src/core/alerts/source'
import { OpsEvents } from '../../src/core/events'
import { HealthStore } from '../../src/core/health/store'
import { metricSources } from '../../src/core/alerts/sources'
import { silentLogger } from '../../src/core/log/logger'
import { OpsStore } from '../../src/core/store'
import { createDatabase, query } from '../helpers/db'
import { startHttp } from '../helpers/http'
import { waitFor } from '../helpers/wait'

/** A source whose value the test moves, like a metric crossing a threshold. */
function knob() {
  const s = { value: 10 as number | null }
  const source: RuleSource<{ series: string }> = {
    kind: 'threshold',
    describe: 'test knob',
    params: z.object({ series: z.string() }),
    condition: false,
    evaluate: async () => [{ labels: { host: 'h1' }, value: s.value, text: `${s.value} %` }],
  }
  return { s, source: source as RuleSource<unknown> }
}

interface Received {
  path: string
  body: Record<string, unknown>
}

describe('alert engine on a real ops store: one notifier, restarts, takeover', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let hook: Awaited<ReturnType<typeof startHttp>>
  const got: Received[] = []
  const opened: { engine: AlertEngine; store: OpsStore }[] = []

  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'alerts')
    hook = await startHttp((req, res) => {
      let b = ''
      req.on('data', (c) => (b += c))
      req.on('end', () => {
        got.push({ path: req.url ?? '', body: JSON.parse(b) })
        res.writeHead(200).end('ok')
      })
    })
  })
  afterAll(async () => {
    for (const o of opened) await close(o)
    await hook?.close()
    await db?.drop()
  })

  async function open(k: ReturnType<typeof knob>, extra: Partial<EngineOptions> = {}) {
    const store = new OpsStore(db.url, silentLogger)
    expect(await store.ready()).toBe(true)
    const channels: Channel[] = [
      { name: 'webhook', type: 'webhook', url: `${hook.url}/am`, groupWaitMs: 0, groupIntervalMs: 0, repeatIntervalMs: 3_600_000 },
    ]
    const engine = new AlertEngine({
      pool: () => store.pool(),
      opsUrl: db.url,
      intervalMs: 300,
      log: silentLogger,
      events: new OpsEvents(),
      audit: new AuditLog({ store: () => store.pool(), log: silentLogger }),
      defaults: [
        {
          name: 'cpu_high',
          series: 'host.cpu_percent',
          op: '>',
          threshold: 80,
          for: '2m',
          severity: 'critical',
          annotations: { summary: 'CPU at {{value}} on {{host}}' },
        },
      ],
      channels,
      rulesFile: null,
      knowsSeries: () => true,
      seriesIds: () => [],
      history: async () => [],
      send: { backoffMs: 50 },
      ...extra,
    })
    engine.registerSource(k.source)
    await engine.start({ evaluate: true })
    const o = { engine, store }
    opened.push(o)
    return o
  }
  async function close(o: { engine: AlertEngine; store: OpsStore }) {
    const i = opened.indexOf(o)
    if (i >= 0) opened.splice(i, 1)
    await o.engine.stop()
    await o.store.close()
  }

  it('pending survives a restart, firing is sent once, a restart never re-sends, and two hosts make one notifier with takeover', async () => {
    const k = knob()
    const a = await open(k)
    const b = await open(k)
    await waitFor(() => a.engine.leader.isLeader || b.engine.leader.isLeader, 'one engine to take the lock')
    const [leader, standby] = a.engine.leader.isLeader ? [a, b] : [b, a]
    expect(standby.engine.leader.isLeader).toBe(false)

    const t0 = Date.now()
    k.s.value = 95
    // Both are asked to evaluate at every collection: only the lock holder does.
    await Promise.all([leader.engine.evaluate(t0), standby.engine.evaluate(t0)])
    expect((await leader.engine.active()).map((x) => x.phase)).toEqual(['pending'])

    // Restart the leader before `for` has passed: the pending timer is kept (from the store), not reset.
    await close(leader)
    await waitFor(() => standby.engine.leader.isLeader, 'the stand-by to take over within an interval', 5000)
    await standby.engine.evaluate(t0 + 60_000)
    expect((await standby.engine.active())[0].phase).toBe('pending')
    await standby.engine.evaluate(t0 + 120_000)
    expect((await standby.engine.active())[0].phase).toBe('firing')
    await standby.engine.drain()
    await waitFor(() => got.length === 1, 'the firing notification')

    const p = got[0].body
    expect(got[0].path).toBe('/am')
    expect(p).toMatchObject({
      version: '4',
      status: 'firing',
      receiver: 'webhook',
      groupKey: '{}:{alertname="cpu_high"}',
      groupLabels: { alertname: 'cpu_high' },
      commonLabels: { alertname: 'cpu_high', severity: 'critical', host: 'h1' },
    })
    const alert = (p.alerts as Record<string, unknown>[])[0]
    expect(alert).toMatchObject({
      status: 'firing',
      labels: { alertname: 'cpu_high', host: 'h1' },
      annotations: { summary: 'CPU at 95 on h1' },
      endsAt: '0001-01-01T00:00:00Z',
    })
    expect(alert.fingerprint).toMatch(/^[0-9a-f]{16}$/)
    expect(new Date(alert.startsAt as string).getTime()).toBe(t0 + 120_000)

    // A third host joins; the notifier is restarted several times while it keeps firing: nothing is sent again.
    const c = await open(k)
    for (let i = 3; i < 6; i++) {
      await Promise.all([standby.engine.evaluate(t0 + i * 60_000), c.engine.evaluate(t0 + i * 60_000)])
    }
    await close(standby)
    await waitFor(() => c.engine.leader.isLeader, 'the third host to take over', 5000)
    await c.engine.evaluate(t0 + 7 * 60_000)
    await c.engine.drain()
    expect(got.length).toBe(1)

    // It resolves: one resolved notice, from whoever holds the lock.
    k.s.value = 10
    await c.engine.evaluate(t0 + 8 * 60_000)
    await c.engine.drain()
    await waitFor(() => got.length === 2, 'the resolved notice')
    expect(got[1].body).toMatchObject({ status: 'resolved' })
    expect((got[1].body.alerts as { status: string; endsAt: string }[])[0]).toMatchObject({
      status: 'resolved',
      endsAt: new Date(t0 + 8 * 60_000).toISOString(),
    })
    await c.engine.evaluate(t0 + 9 * 60_000)
    await c.engine.drain()
    expect(got.length).toBe(2)

    const transitions = await query<{ from_phase: string; to_phase: string }>(
      db.url,
      `SELECT from_phase, to_phase FROM ops.alert_transitions ORDER BY id`,
    )
    expect(transitions.map((t) => `${t.from_phase}>${t.to_phase}`)).toEqual(['inactive>pending', 'pending>firing', 'firing>resolved'])
    const log = await query<{ channel: string; outcome: string; attempts: number; status: string }>(
      db.url,
      `SELECT channel, outcome, attempts, status FROM ops.alert_deliveries ORDER BY id`,
    )
    expect(log).toEqual([
      { channel: 'webhook', outcome: 'sent', attempts: 1, status: 'firing' },
      { channel: 'webhook', outcome: 'sent', attempts: 1, status: 'resolved' },
    ])
    await close(c)
  })

  it('silences suppress notifications and expire; an acknowledged alert is not repeated but stays visible', async () => {
    await query(db.url, `TRUNCATE ops.alert_state, ops.alert_groups, ops.alert_transitions`)
    got.length = 0
    const k = knob()
    const e = await open(k, {
      defaults: [{ name: 'mem_high', series: 'host.mem_percent', threshold: 80, severity: 'warning' }],
      channels: [{ name: 'webhook', type: 'webhook', url: `${hook.url}/am`, groupWaitMs: 0, groupIntervalMs: 0, repeatIntervalMs: 60_000 }],
    })
    await waitFor(() => e.engine.leader.isLeader, 'the lock')
    const s = await e.engine.silence([{ name: 'alertname', value: 'mem_high', op: '=' }], Date.now() + 5 * 60_000, 'tester', 'maintenance')
    const t0 = Date.now()
    k.s.value = 95
    await e.engine.evaluate(t0)
    await e.engine.drain()
    const active = await e.engine.active()
    expect(active).toMatchObject([{ phase: 'firing', silencedBy: s.id }])
    expect(got.length).toBe(0)
    // The silence ends: the alert is sent.
    await e.engine.expireSilence(s.id, 'tester')
    await e.engine.evaluate(t0 + 60_000)
    await e.engine.drain()
    await waitFor(() => got.length === 1, 'the notification after the silence')
    // Not acknowledged: repeated after repeat_interval. Acknowledged: not repeated, still listed.
    await e.engine.evaluate(t0 + 2 * 60_000 + 1)
    await e.engine.drain()
    await waitFor(() => got.length === 2, 'the repeat')
    const { acknowledged } = await e.engine.ack('mem_high', 'tester')
    expect(acknowledged).toBe(1)
    await e.engine.evaluate(t0 + 4 * 60_000)
    await e.engine.drain()
    expect(got.length).toBe(2)
    expect(await e.engine.active()).toMatchObject([{ phase: 'firing', ackedBy: 'tester' }])
    const audit = await query<{ action: string }>(db.url, `SELECT action FROM ops.audit_log WHERE action LIKE 'alerts.%' ORDER BY id`)
    expect(audit.map((a) => a.action)).toEqual(['alerts.silence', 'alerts.silence.expire', 'alerts.ack'])
    await close(e)
  })

  it('follows the rules file: a change applies, a bad file is refused with its line and the previous rules stay; UI rules export as a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-rules-'))
    const file = join(dir, 'rules.yaml')
    writeFileSync(file, 'rules:\n  - name: from_file\n    series: host.cpu_percent\n    threshold: 70\n')
    const k = knob()
    const e = await open(k, { rulesFile: file, knowsSeries: (x) => x.startsWith('host.') })
    expect(e.engine.rules().find((r) => r.rule.name === 'from_file')).toMatchObject({ origin: 'file', rule: { threshold: 70 } })
    writeFileSync(file, 'rules:\n  - name: from_file\n    series: host.cpu_percent\n    threshold: 75\n    for: 2m\n')
    await waitFor(
      () => e.engine.rules().find((r) => r.rule.name === 'from_file')?.rule.threshold === 75,
      'the changed file to apply',
      15_000,
    )
    writeFileSync(file, 'rules:\n  - name: from_file\n    series: host.cpu_percent\n    threshold: 90\n    for: 2 minutes\n')
    await waitFor(() => e.engine.rulesFileProblem, 'the bad file to be refused', 15_000)
    expect(e.engine.rulesFileProblem).toMatch(/rules\.yaml line 5: rule 1: "for": for must be a duration such as "30s"/)
    expect(e.engine.rules().find((r) => r.rule.name === 'from_file')?.rule).toMatchObject({ threshold: 75, for: 120_000 })

    // A rule saved from the UI is stored in ops; a file rule of the same name cannot be changed there.
    await e.engine.saveRule({ name: 'ui_rule', series: 'host.mem_percent', threshold: 60, for: '1m', severity: 'info' }, 'tester')
    await expect(e.engine.saveRule({ name: 'from_file', series: 'host.cpu_percent', threshold: 1 }, 'tester')).rejects.toThrow(
      /defined in the rules file/,
    )
    await expect(e.engine.saveRule({ name: 'bad', series: 'nope.series', threshold: 1 }, 'tester')).rejects.toThrow(
      /unknown series "nope.series"/,
    )
    const text = exportRules(e.engine.rules().map((r) => r.rule))
    const back = parseRulesFile(text, 'export.yaml', { sources: new Map([['threshold', k.source]]), knowsSeries: () => true })
    expect(back.rules.map((r) => r.name).sort()).toEqual(
      e.engine
        .rules()
        .map((r) => r.rule.name)
        .sort(),
    )
    expect(back.rules.find((r) => r.name === 'ui_rule')).toMatchObject({ threshold: 60, for: 60_000, severity: 'info' })
    // A default is turned off (stored switched off); deleting that stored version brings the default back.
    expect(await e.engine.deleteRule('cpu_high', 'tester')).toEqual({ deleted: false, disabled: true })
    expect(e.engine.rules().find((r) => r.rule.name === 'cpu_high')).toMatchObject({ origin: 'ui', rule: { enabled: false } })
    expect(await e.engine.deleteRule('cpu_high', 'tester')).toEqual({ deleted: true, disabled: false })
    expect(e.engine.rules().find((r) => r.rule.name === 'cpu_high')).toMatchObject({ origin: 'default', rule: { enabled: true } })
    expect(await e.engine.deleteRule('ui_rule', 'tester')).toEqual({ deleted: true, disabled: false })
    expect(e.engine.rules().some((r) => r.rule.name === 'ui_rule')).toBe(false)
    await close(e)
  })

  it('says once, as a desktop notification, that alerts are not being evaluated while the ops store cannot be reached', async () => {
    const k = knob()
    const events = new OpsEvents()
    const notices: string[] = []
    events.on('alerts.notify', (n) => notices.push(n.title))
    const e = await open(k, { events })
    const down = new AlertEngine({ ...(e.engine as unknown as { o: EngineOptions }).o, pool: () => null, opsUrl: null })
    down.registerSource(k.source)
    await down.evaluate(Date.now(), true)
    await down.evaluate(Date.now(), true)
    expect(down.lastEvaluation?.error).toMatch(/not reachable/)
    expect(notices).toEqual(['Alerts are not being evaluated'])
    await down.stop()
    await close(e)
  })

  it('backtests an availability rule over the stored health results and changes, and says why a backup rule cannot be', async () => {
    const store = new OpsStore(db.url, silentLogger)
    expect(await store.ready()).toBe(true)
    const hs = new HealthStore(() => store.pool(), silentLogger)
    const now = Date.now()
    const at = (minAgo: number) => new Date(now - minAgo * 60_000).toISOString()
    // Changes only, nine days ago (results older than a week are pruned): unhealthy for 10 minutes.
    await hs.saveChange({ service: 'redis', from: 'healthy', to: 'unhealthy', reason: 'refused', at: at(9 * 1440) })
    await hs.saveChange({ service: 'redis', from: 'unhealthy', to: 'healthy', reason: 'ok', at: at(9 * 1440 - 10) })
    // Results, the last hour: a check every 30 s, unhealthy for 5 minutes from 40 to 35 minutes ago.
    const results = Array.from({ length: 120 }, (_, i) => {
      const minAgo = 60 - i / 2
      const bad = minAgo <= 40 && minAgo > 35
      return {
        service: 'redis' as const,
        label: 'Redis',
        status: bad ? ('unhealthy' as const) : ('healthy' as const),
        latencyMs: 1,
        reason: bad ? 'refused' : 'ok',
        details: {},
        transport: null,
        checkedAt: at(minAgo),
        lastChangeAt: null,
      }
    })
    await hs.saveResults(results)
    const engine = new AlertEngine({
      pool: () => store.pool(),
      opsUrl: db.url,
      intervalMs: 300,
      log: silentLogger,
      events: new OpsEvents(),
      audit: new AuditLog({ store: () => store.pool(), log: silentLogger }),
      defaults: [],
      channels: [],
      rulesFile: null,
      knowsSeries: () => true,
      seriesIds: () => [],
      history: async () => [],
    })
    for (const src of metricSources({
      latest: () => [],
      history: async () => [],
      health: () => ({ overall: 'healthy', results: [], checkedAt: null, intervalS: 30 }),
      healthHistory: (service, from, to) => hs.timeline(service, from, to, 30_000),
      backupFacts: async () => ({
        lastFullAt: null,
        lastIncrementalAt: null,
        lastJobFailed: false,
        slotBytes: null,
        lastRestoreTestAt: null,
        lastRestoreTestFailed: false,
      }),
    }))
      engine.registerSource(src)
    const rule = { name: 'redis_down', kind: 'availability', params: { service: 'redis' }, for: '1m' }
    const [r] = await engine.backtest(rule, 10, now)
    expect(r.series).toBe('service=redis')
    expect(r.result.episodes).toHaveLength(2)
    // From the changes (sampled every 30 s): fired a minute after the flip, resolved when it flipped back.
    expect(Math.round((now - r.result.episodes[0].from) / 60_000)).toBe(9 * 1440 - 1)
    expect(Math.round((now - r.result.episodes[0].to!) / 60_000)).toBe(9 * 1440 - 10)
    // From the results: fired a minute into the outage, resolved at the first healthy check.
    expect((now - r.result.episodes[1].from) / 60_000).toBeCloseTo(39, 5)
    expect((now - r.result.episodes[1].to!) / 60_000).toBeCloseTo(35, 5)
    // A week back only: the older outage is not in range.
    expect((await engine.backtest(rule, 7, now))[0].result.episodes).toHaveLength(1)
    await expect(
      engine.backtest({ name: 'no_backup', kind: 'backup', params: { fact: 'hours_since_full' }, threshold: 26 }, 7, now),
    ).rejects.toThrow(/past values .* are not stored/)
    await engine.stop()
    await store.close()
  })

  it("evaluates a rule that leaves a kind's parameters at their defaults (an anomaly without window or baseline)", async () => {
    const store = new OpsStore(db.url, silentLogger)
    expect(await store.ready()).toBe(true)
    const now = Date.now()
    const meta = { id: 'app.rps', name: 'app.rps', group: 'app', unit: 'req/min', labels: {}, help: '', host: 'h1', note: null } as const
    const engine = new AlertEngine({
      pool: () => store.pool(),
      opsUrl: db.url,
      intervalMs: 300,
      log: silentLogger,
      events: new OpsEvents(),
      audit: new AuditLog({ store: () => store.pool(), log: silentLogger }),
      defaults: [{ name: 'rps_odd', kind: 'anomaly', series: 'app.rps', params: { min_change: 5 }, threshold: 6 }],
      channels: [],
      rulesFile: null,
      knowsSeries: () => true,
      seriesIds: () => [],
      history: async () => [],
    })
    for (const src of metricSources({
      latest: () => [{ ...meta, labels: {}, t: now, v: 500 }],
      // The last hour (the default window): steady around 20.
      history: async (_id, from, to) =>
        Array.from({ length: 60 }, (_, i) => ({ t: now - i * 60_000, v: 20 + (i % 3) })).filter((p) => p.t >= from && p.t <= to),
      health: () => ({ overall: 'healthy', results: [], checkedAt: null, intervalS: 30 }),
      backupFacts: async () => ({
        lastFullAt: null,
        lastIncrementalAt: null,
        lastJobFailed: false,
        slotBytes: null,
        lastRestoreTestAt: null,
        lastRestoreTestFailed: false,
      }),
    }))
      engine.registerSource(src)
    await engine.evaluate(now, true)
    expect(engine.lastEvaluation?.error).toBeNull()
    const firing = (await engine.active()).filter((a) => a.rule === 'rps_odd')
    expect(firing).toMatchObject([{ phase: 'firing', labels: { host: 'h1' } }])
    expect(firing[0].text).toMatch(/^z \d+/)
    await engine.stop()
    await store.close()
  })
})
