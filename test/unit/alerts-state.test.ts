import { describe, expect, it } from 'vitest'
import { backtestPoints } from '../../src/core/alerts/backtest'
import { parseDuration } from '../../src/core/alerts/duration'
import { predictLinear, robustZ } from '../../src/core/alerts/fit'
import { metricSources } from '../../src/core/alerts/sources'
import { parseRulesFile } from '../../src/core/alerts/rules-file'
import { ruleInput, type Rule } from '../../src/core/alerts/rules'
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
