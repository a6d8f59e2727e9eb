import { describe, expect, it } from 'vitest'
import { backtestPoints, backtestReadings, inputOf } from '../../src/core/alerts/backtest'
import { parseDuration } from '../../src/core/alerts/duration'
import { predictLinear, robustZ } from '../../src/core/alerts/fit'
import { between, metricSources, type SourceDeps } from '../../src/core/alerts/sources'
import { parseRulesFile } from '../../src/core/alerts/rules-file'
import { ruleInput, sourceParams, type Rule } from '../../src/core/alerts/rules'
import type { HealthSnapshot } from '../../src/shared/domain'
import { initialState, step, type AlertPhase, type Input } from '../../src/core/alerts/state'
import { SeriesRegistry } from '../../src/core/metrics/registry'
import type { RuleSource } from '../../src/core/alerts/source'

const rule = (o: Partial<Record<string, unknown>> = {}): Rule =>
  ruleInput.parse({ name: 'r', series: 'host.cpu_percent', threshold: 80, ...o })
const T = (v: number): Input => ({ kind: 'value', value: v, holds: v > 80 })
const N: Input = { kind: 'nodata' }
const E: Input = { kind: 'error', error: 'probe failed' }

/** Feed inputs one minute apart; the phase after each. */
function run(r: Rule, inputs: Input[]): AlertPhase[] {
  let s = initialState()
  return inputs.map((input, i) => {
    s = step(s, input, r, i * 60_000).state
    return s.phase
  })
}

describe('the alert state machine (Prometheus semantics)', () => {
  const cases: { name: string; rule: Partial<Record<string, unknown>>; inputs: Input[]; phases: AlertPhase[] }[] = [
    {
      name: 'for 0 fires at once and resolves when it stops',
      rule: {},
      inputs: [T(90), T(90), T(10)],
      phases: ['firing', 'firing', 'resolved'],
    },
    {
      name: 'pending until `for` has passed, then firing',
      rule: { for: '2m' },
      inputs: [T(90), T(90), T(90), T(90)],
      phases: ['pending', 'pending', 'firing', 'firing'],
    },
    {
      name: 'a pending alert cancelled before `for` never fires, and its timer starts again',
      rule: { for: '2m' },
      inputs: [T(90), T(90), T(10), T(90), T(90), T(90)],
      phases: ['pending', 'pending', 'inactive', 'pending', 'pending', 'firing'],
    },
    {
      name: 'flapping is held by keep_firing_for',
      rule: { keep_firing_for: '3m' },
      inputs: [T(90), T(10), T(90), T(10), T(10), T(10), T(10)],
      phases: ['firing', 'firing', 'firing', 'firing', 'firing', 'resolved', 'resolved'],
    },
    {
      name: 'no data with "keep" leaves firing firing (never a silent resolve)',
      rule: {},
      inputs: [T(90), N, N, T(10)],
      phases: ['firing', 'firing', 'firing', 'resolved'],
    },
    {
      name: 'no data with "alert" fires',
      rule: { no_data: 'alert', for: '1m' },
      inputs: [N, N, N],
      phases: ['pending', 'firing', 'firing'],
    },
    { name: 'no data with "ok" resolves', rule: { no_data: 'ok' }, inputs: [T(90), N], phases: ['firing', 'resolved'] },
    {
      name: 'a failed check with "keep" keeps a pending timer running',
      rule: { for: '2m' },
      inputs: [T(90), E, T(90)],
      phases: ['pending', 'pending', 'firing'],
    },
    { name: 'a failed check with "alert" fires', rule: { on_error: 'alert' }, inputs: [E], phases: ['firing'] },
    {
      name: 'a failed check with "ok" cancels pending',
      rule: { on_error: 'ok', for: '5m' },
      inputs: [T(90), E],
      phases: ['pending', 'inactive'],
    },
    {
      name: 'after resolving, a new episode goes through pending again',
      rule: { for: '1m' },
      inputs: [T(90), T(90), T(10), T(90), T(90)],
      phases: ['pending', 'firing', 'resolved', 'pending', 'firing'],
    },
  ]
  for (const c of cases) it(c.name, () => expect(run(rule(c.rule), c.inputs)).toEqual(c.phases))

  it('reports each transition once with its time and value', () => {
    const r = rule({ for: '1m' })
    let s = initialState()
    const seen: string[] = []
    for (const [i, v] of [90, 95, 96, 10].entries()) {
      const out = step(s, T(v), r, i * 60_000)
      s = out.state
      if (out.transition) seen.push(`${out.transition.from}>${out.transition.to}@${out.transition.at / 60_000}:${out.transition.value}`)
    }
    expect(seen).toEqual(['inactive>pending@0:90', 'pending>firing@1:95', 'firing>resolved@3:10'])
  })
})

describe('backtest', () => {
  it('equals a replay of the state machine over the same points', () => {
    const r = rule({ for: '2m', keep_firing_for: '1m' })
    const points = Array.from({ length: 200 }, (_, i) => ({ t: i * 60_000, v: i % 37 < 12 ? 85 + (i % 5) : i % 53 === 0 ? null : 40 }))
    const bt = backtestPoints(r, points, 200 * 60_000)
    let s = initialState()
    const replay = []
    for (const p of points) {
      const out = step(s, p.v === null ? N : T(p.v), r, p.t)
      s = out.state
      if (out.transition) replay.push(out.transition)
    }
    expect(bt.transitions).toEqual(replay)
    expect(bt.episodes.length).toBe(replay.filter((t) => t.to === 'firing').length)
    expect(bt.episodes.length).toBeGreaterThan(3)
    expect(bt.firingMs).toBeGreaterThan(0)
  })
})

describe('forecast and anomaly on constructed histories', () => {
  const hour = 3_600_000
  it('predict_linear: a disk filling 1 % an hour from 70 % reaches 100 % in 30 h, not within 24 h', () => {
    const pts = Array.from({ length: 7 }, (_, i) => ({ t: i * hour, v: 70 + i }))
    const now = 6 * hour
    expect(predictLinear(pts, now + 24 * hour)).toBeCloseTo(100, 6)
    expect(predictLinear(pts, now + 23 * hour)).toBeLessThan(100)
    expect(predictLinear(pts.slice(0, 2), now)).toBeNull()
  })
  it('robust z: a spike stands out, an idle series below min_change stays quiet, one old spike does not hide the next', () => {
    const win = [10, 11, 9, 10, 12, 10, 9, 11, 10, 80].map((v, i) => ({ t: i, v }))
    expect(robustZ(win, 60, 5)!).toBeGreaterThan(10)
    expect(robustZ(win, 11, 5)).toBe(0)
    const idle = Array.from({ length: 10 }, (_, i) => ({ t: i, v: 0 }))
    expect(robustZ(idle, 0.4, 1)).toBe(0)
  })
  it('the forecast and anomaly sources read from the metrics deps, per label set', async () => {
    const hour = 3_600_000
    const now = 10 * hour
    const latest = [
      {
        id: 'host.disk_used_percent{mount=/}',
        name: 'host.disk_used_percent',
        group: 'host',
        unit: '%',
        labels: { mount: '/' },
        help: '',
        host: 'h',
        t: now,
        v: 80,
        note: null,
      },
      {
        id: 'host.disk_used_percent{mount=/data}',
        name: 'host.disk_used_percent',
        group: 'host',
        unit: '%',
        labels: { mount: '/data' },
        help: '',
        host: 'h',
        t: now,
        v: 20,
        note: null,
      },
    ] as const
    const src = metricSources({
      latest: () => latest.map((l) => ({ ...l, labels: { ...l.labels } })),
      history: async (id) => Array.from({ length: 7 }, (_, i) => ({ t: now - (6 - i) * hour, v: id.includes('data') ? 20 : 74 + i })),
      health: () => ({ overall: 'healthy', results: [], checkedAt: null, intervalS: 30 }),
      backupFacts: async () => ({
        lastFullAt: null,
        lastIncrementalAt: null,
        lastJobFailed: false,
        slotBytes: null,
        lastRestoreTestAt: null,
        lastRestoreTestFailed: false,
      }),
    })
    const forecast = src.find((s) => s.kind === 'forecast')!
    const r = await forecast.evaluate({ series: 'host.disk_used_percent', within: '24h', window: '6h' }, now)
    expect(r.map((x) => [x.labels.mount, Math.round(x.value!)])).toEqual([
      ['/', 104],
      ['/data', 20],
    ])
  })
})

describe('rules files', () => {
  const registry = new SeriesRegistry()
  const sources = new Map<string, RuleSource<unknown>>(
    metricSources({
      latest: () => [],
      history: async () => [],
      health: () => ({ overall: 'healthy', results: [], checkedAt: null, intervalS: 30 }),
      backupFacts: async () => ({
        lastFullAt: null,
        lastIncrementalAt: null,
        lastJobFailed: false,
        slotBytes: null,
        lastRestoreTestAt: null,
        lastRestoreTestFailed: false,
      }),
    }).map((s) => [s.kind, s as RuleSource<unknown>]),
  )
  const v = { sources, knowsSeries: (s: string) => registry.knows(s) }

  it("accepts the issue's JSON form", () => {
    const f = parseRulesFile(
      '{"rules": [{"name": "cpu_high", "series": "host.cpu_percent", "op": ">", "threshold": 80, "for": "5m", "severity": "warning"}]}',
      'rules.json',
      v,
    )
    expect(f.rules[0]).toMatchObject({ name: 'cpu_high', for: 300_000, op: '>', threshold: 80 })
  })

  it('refuses a bad duration, an unknown series and a duplicate name with the line and what to fix', () => {
    const yaml = (body: string) => `rules:\n  - name: ok\n    series: host.cpu_percent\n    threshold: 80\n${body}`
    expect(() => parseRulesFile(yaml('  - name: x\n    series: host.cpu_percent\n    for: 5 minutes\n'), 'r.yaml', v)).toThrow(
      /r\.yaml line 7: rule 2: "for": for must be a duration such as "30s".*Fix it and save again; the previous rules stay in force/,
    )
    expect(() => parseRulesFile(yaml('  - name: y\n    series: host.cpu_pct\n'), 'r.yaml', v)).toThrow(
      /line 6: rule "y": unknown series "host.cpu_pct"/,
    )
    expect(() => parseRulesFile(yaml('  - name: ok\n    series: host.mem_percent\n'), 'r.yaml', v)).toThrow(
      /line 5: duplicate rule name "ok"/,
    )
    expect(() => parseRulesFile(yaml('  - name: z\n    kind: nope\n'), 'r.yaml', v)).toThrow(/line 6: rule "z": unknown kind "nope"/)
    expect(() => parseRulesFile('rules: [\n', 'r.yaml', v)).toThrow(/not valid YAML or JSON/)
  })

  it('parses durations', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('0')).toBe(0)
    expect(parseDuration('5 minutes')).toBeNull()
  })
})

describe('availability', () => {
  it('reads a service never checked yet as no data, unhealthy as 1, degraded as 1 only when asked', async () => {
    const result = (status: string, checkedAt: string) => ({
      overall: 'healthy' as const,
      results: [
        { service: 'postgres', label: 'PostgreSQL', status, latencyMs: null, reason: 'r', details: {}, transport: null, checkedAt },
      ],
      checkedAt: null,
      intervalS: 30,
    })
    let snap = result('unhealthy', new Date(0).toISOString())
    const src = metricSources({
      latest: () => [],
      history: async () => [],
      health: () => snap as never,
      backupFacts: async () => ({
        lastFullAt: null,
        lastIncrementalAt: null,
        lastJobFailed: false,
        slotBytes: null,
        lastRestoreTestAt: null,
        lastRestoreTestFailed: false,
      }),
    }).find((s) => s.kind === 'availability')!
    expect((await src.evaluate({ service: 'postgres', status: 'unhealthy' }, 0))[0].value).toBeNull()
    snap = result('unhealthy', new Date().toISOString())
    expect((await src.evaluate({ service: 'postgres', status: 'unhealthy' }, 0))[0].value).toBe(1)
    snap = result('degraded', new Date().toISOString())
    expect((await src.evaluate({ service: 'postgres', status: 'unhealthy' }, 0))[0].value).toBe(0)
    expect((await src.evaluate({ service: 'postgres', status: 'degraded' }, 0))[0].value).toBe(1)
  })
})

describe('channel secrets', () => {
  it('webhook URLs (their token is in the path) and the SMTP password never reach the renderer unmasked', async () => {
    const { loadConfig } = await import('../../src/core/config/config')
    const { settingsView } = await import('../../src/core/settings/view')
    const { scrub } = await import('../../src/core/log/scrub')
    const env = {
      ALERT_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T0001/B0001/slackTokenAbcdef123456',
      ALERT_DISCORD_WEBHOOK_URL: 'https://discord.com/api/webhooks/123/discordTokenAbcdef123456',
      ALERT_WEBHOOK_URL: 'https://receiver.example/hook?token=genericTokenAbcdef123456',
      SMTP_URL: 'smtp://ops:smtpPasswordAbcdef123456@mail.example:587',
    }
    const config = loadConfig({ env, dataDir: '/nonexistent-ops-test' })
    const shown = JSON.stringify(settingsView(config, {}))
    for (const secret of ['slackTokenAbcdef123456', 'discordTokenAbcdef123456', 'genericTokenAbcdef123456', 'smtpPasswordAbcdef123456'])
      expect(shown).not.toContain(secret)
    expect(scrub(`failed to post to ${env.ALERT_SLACK_WEBHOOK_URL}`)).not.toContain('slackTokenAbcdef123456')
    expect(scrub('login smtpPasswordAbcdef123456 refused')).not.toContain('smtpPasswordAbcdef123456')
  })
})

describe('backtests of forecast, anomaly and availability rules equal the live sources replayed', () => {
  const minute = 60_000
  const meta = {
    id: 'host.disk_used_percent{mount=/}',
    name: 'host.disk_used_percent',
    group: 'host',
    unit: '%',
    labels: { mount: '/' },
    help: '',
    host: 'h',
  } as const
  const noFacts = async () => ({
    lastFullAt: null,
    lastIncrementalAt: null,
    lastJobFailed: false,
    slotBytes: null,
    lastRestoreTestAt: null,
    lastRestoreTestFailed: false,
  })
  const depsAt = (
    all: { t: number; v: number | null }[],
    t: number,
    health: SourceDeps['health'] = () => ({ overall: 'healthy', results: [], checkedAt: null, intervalS: 30 }),
  ): SourceDeps => {
    const here = all.find((p) => p.t === t)
    return {
      latest: () => [{ ...meta, labels: { ...meta.labels }, t, v: here?.v ?? null, note: null }],
      // What the store held at t: nothing after it.
      history: async (_id, a, b) => between(all, a, Math.min(b, t)),
      health,
      backupFacts: noFacts,
    }
  }
  /** The live source evaluated afresh at every stored moment, fed to the state machine. */
  async function liveReplay(kind: string, r: Rule, times: number[], deps: (t: number) => SourceDeps) {
    let s = initialState()
    const out = []
    for (const t of times) {
      const src = metricSources(deps(t)).find((x) => x.kind === kind)!
      const [reading] = await src.evaluate(src.params.parse(sourceParams(r)), t)
      const o = step(s, inputOf(reading, r, src.condition), r, t)
      s = o.state
      if (o.transition) out.push(o.transition)
    }
    return out
  }

  it('forecast: a disk filling in bursts fires when the fit crosses 100 % within 2 h, and the backtest is that replay', async () => {
    // Flat at 50 %, then +1 % a minute for 40 minutes (fit says full soon), flat again (fit says no), twice.
    const all = Array.from({ length: 300 }, (_, i) => {
      const phase = i % 150
      const base = 0
      return { t: i * minute, v: phase < 60 ? 50 + base : phase < 100 ? 50 + base + (phase - 60) : 90 + base - (phase - 100) * 0.8 }
    })
    const r = rule({
      kind: 'forecast',
      series: 'host.disk_used_percent',
      params: { within: '2h', window: '20m' },
      op: '>=',
      threshold: 100,
      for: '5m',
    })
    const src = metricSources(depsAt(all, all.at(-1)!.t)).find((x) => x.kind === 'forecast')!
    const [set] = await src.history!(src.params.parse(sourceParams(r)), 0, all.at(-1)!.t)
    expect(set.labels).toEqual({ host: 'h', mount: '/' })
    const bt = backtestReadings(r, false, set.steps, all.at(-1)!.t)
    const replay = await liveReplay(
      'forecast',
      r,
      all.map((p) => p.t),
      (t) => depsAt(all, t),
    )
    expect(bt.transitions).toEqual(replay)
    expect(bt.episodes.length).toBe(2)
    expect(bt.transitions.map((x) => x.to)).toEqual(['pending', 'firing', 'resolved', 'pending', 'firing', 'resolved'])
  })

  it('anomaly: a spike over a noisy window fires, the backtest is that replay', async () => {
    const all = Array.from({ length: 240 }, (_, i) => ({ t: i * minute, v: i >= 120 && i < 130 ? 95 : i % 53 === 7 ? null : 20 + (i % 3) }))
    const r = rule({
      kind: 'anomaly',
      series: 'host.disk_used_percent',
      params: { window: '30m', min_change: 5 },
      op: '>',
      threshold: 6,
      for: '2m',
    })
    const src = metricSources(depsAt(all, all.at(-1)!.t)).find((x) => x.kind === 'anomaly')!
    const [set] = await src.history!(src.params.parse(sourceParams(r)), 0, all.at(-1)!.t)
    const bt = backtestReadings(r, false, set.steps, all.at(-1)!.t)
    const replay = await liveReplay(
      'anomaly',
      r,
      all.map((p) => p.t),
      (t) => depsAt(all, t),
    )
    expect(bt.transitions).toEqual(replay)
    expect(bt.episodes).toHaveLength(1)
    expect(bt.episodes[0].from).toBe(122 * minute)
  })

  it('availability: the stored statuses replayed give the same transitions as the live source', async () => {
    const statuses = Array.from({ length: 60 }, (_, i) => ({
      t: i * 30_000,
      status: (i >= 10 && i < 20) || (i >= 40 && i < 42) ? ('unhealthy' as const) : ('healthy' as const),
      reason: 'probe',
    }))
    const r = rule({ kind: 'availability', params: { service: 'postgres' }, for: '1m' })
    const deps = (t: number): SourceDeps => ({
      ...depsAt([], t),
      health: () => {
        const s = statuses.find((x) => x.t === t)!
        const result = {
          service: 'postgres',
          label: 'PostgreSQL',
          status: s.status,
          latencyMs: 1,
          reason: s.reason,
          details: {},
          transport: null,
          checkedAt: new Date(t + 1).toISOString(),
          lastChangeAt: null,
        }
        return { overall: s.status, results: [result], checkedAt: null, intervalS: 30 } as unknown as HealthSnapshot
      },
      healthHistory: async () => statuses,
    })
    const src = metricSources(deps(0)).find((x) => x.kind === 'availability')!
    const [set] = await src.history!(src.params.parse(sourceParams(r)), 0, 30 * 60_000)
    const bt = backtestReadings(r, true, set.steps, 30 * 60_000)
    expect(bt.transitions).toEqual(
      await liveReplay(
        'availability',
        r,
        statuses.map((s) => s.t),
        deps,
      ),
    )
    // Ten bad checks (5 min) fire after the minute; two (30 s apart) are only pending, never firing.
    expect(bt.episodes.map((e) => [e.from / 30_000, e.to! / 30_000])).toEqual([[12, 20]])
  })

  it('backup facts say why they cannot be backtested', () => {
    const src = metricSources(depsAt([], 0)).find((x) => x.kind === 'backup')!
    expect(src.history).toBeUndefined()
    expect(src.noHistory).toMatch(/not stored/)
  })
})

describe('anomaly against the same hour of the last weeks', () => {
  const week = 7 * 86_400_000
  const hour = 3_600_000
  it('a value normal for that hour of the week stays quiet, the same value at a quiet hour stands out, tiny changes stay quiet', async () => {
    const now = 5 * week + 10 * hour // 10:00, five weeks in
    // Every day 10:00–11:00 runs at ~70 (a nightly batch); the rest at ~10; a minute apart, four weeks back.
    const all: { t: number; v: number }[] = []
    for (let t = now - 4 * week - 2 * hour; t <= now; t += 5 * 60_000) {
      const h = Math.floor((t % 86_400_000) / hour)
      all.push({ t, v: (h === 10 ? 70 : 10) + ((t / 60_000) % 3) })
    }
    const deps = (v: number): SourceDeps => ({
      latest: () => [
        { id: 'app.rps', name: 'app.rps', group: 'app', unit: 'req/min', labels: {}, help: '', host: 'h', t: now, v, note: null },
      ],
      history: async (_id, a, b) => between(all, a, b),
      health: () => ({ overall: 'healthy', results: [], checkedAt: null, intervalS: 30 }),
      backupFacts: async () => ({
        lastFullAt: null,
        lastIncrementalAt: null,
        lastJobFailed: false,
        slotBytes: null,
        lastRestoreTestAt: null,
        lastRestoreTestFailed: false,
      }),
    })
    const z = async (v: number, params: Record<string, unknown>) => {
      const src = metricSources(deps(v)).find((x) => x.kind === 'anomaly')!
      return (await src.evaluate(src.params.parse({ series: 'app.rps', ...params }), now))[0].value
    }
    // Weekly: 71 at 10:00 is what this hour always does; against the last hour (all ~10) it is an anomaly.
    expect(await z(71, { baseline: 'weekly', window: '1h', min_change: 5 })).toBeLessThan(2)
    expect(await z(71, { baseline: 'window', window: '1h', min_change: 5 })).toBeGreaterThan(10)
    // 10 at 10:00 is far from this hour's normal of the last weeks.
    expect(await z(10, { baseline: 'weekly', window: '1h', min_change: 5 })).toBeGreaterThan(10)
    // Below min_change: quiet whatever the spread.
    expect(await z(73, { baseline: 'weekly', window: '1h', min_change: 5 })).toBe(0)
    // One week back only: still a baseline of that hour.
    expect(await z(10, { baseline: 'weekly', weeks: 1, window: '1h', min_change: 5 })).toBeGreaterThan(10)
    // Refused: weeks out of range.
    expect(
      metricSources(deps(1))
        .find((x) => x.kind === 'anomaly')!
        .params.safeParse({ series: 'app.rps', baseline: 'weekly', weeks: 0 }).success,
    ).toBe(false)
  })
})
