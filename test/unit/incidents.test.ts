import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/core/config/config'
import { checkSettingValue } from '../../src/core/config/parse'
import { draftReview, formatSpan, servicesOf } from '../../src/core/incidents/review'
import { scrubEntries } from '../../src/core/incidents/timeline'
import { registerSecret } from '../../src/core/log/scrub'
import type { TimelineEntry } from '../../src/shared/incidents'

const entry = (over: Partial<TimelineEntry>): TimelineEntry => ({
  id: 'audit:1',
  type: 'audit',
  at: 0,
  title: 'x',
  detail: null,
  level: 'info',
  actor: null,
  source: null,
  data: {},
  ...over,
})

describe('incident settings', () => {
  it('defaults: critical opens, 15 min join window, 30 min margin', () => {
    const c = loadConfig({ env: {}, dataDir: '/nonexistent-ops-test' })
    expect(c.incidents).toEqual({ autoOpenSeverities: ['critical'], joinWindowMs: 15 * 60_000, marginMs: 30 * 60_000 })
  })
  it('lists of severities, "none", 0 for never joining; anything else refused saying what it must be', () => {
    const c = loadConfig({
      env: { INCIDENT_AUTO_OPEN_SEVERITIES: 'Critical, warning', INCIDENT_JOIN_WINDOW: '0', INCIDENT_TIMELINE_MARGIN: '1h' },
      dataDir: '/nonexistent-ops-test',
    })
    expect(c.incidents).toEqual({ autoOpenSeverities: ['critical', 'warning'], joinWindowMs: 0, marginMs: 3_600_000 })
    expect(loadConfig({ env: { INCIDENT_AUTO_OPEN_SEVERITIES: 'none' }, dataDir: '/x' }).incidents.autoOpenSeverities).toEqual([])
    expect(() => checkSettingValue('INCIDENT_AUTO_OPEN_SEVERITIES', 'critical,page')).toThrow(
      /comma-separated severities \(critical, warning, info\), or "none".*"page" is not one/,
    )
    expect(() => checkSettingValue('INCIDENT_JOIN_WINDOW', 'soon')).toThrow(/INCIDENT_JOIN_WINDOW must be a duration like 30s, 2m or 1h/)
    expect(() => checkSettingValue('INCIDENT_TIMELINE_MARGIN', '48h')).toThrow(/from 0 s to 24 h/)
  })
})

describe('scrubbing a timeline in one pass', () => {
  it('removes secrets in titles, details and nested data, and never reaches across two texts', () => {
    registerSecret('planted-secret-9f8e7d')
    const entries = [
      entry({ title: 'connect postgres://app:hunter2@db/exams failed', detail: 'token=abc123def and planted-secret-9f8e7d' }),
      entry({
        id: 'audit:2',
        title: 'user:',
        data: { details: { url: 'redis://:pw-in-url@cache:6379', list: ['sk_live_abcdefghijkl', 'ok text'] }, mail: 'ops@examforge.test' },
      }),
    ]
    scrubEntries(entries)
    const all = JSON.stringify(entries)
    for (const s of ['hunter2', 'abc123def', 'planted-secret-9f8e7d', 'pw-in-url', 'sk_live_abcdefghijkl']) expect(all).not.toContain(s)
    // Texts around the secrets are kept, and a text is never swallowed by a pattern starting in another one.
    expect(entries[0].title).toBe('connect postgres://app:•••@db/exams failed')
    expect(entries[1].title).toBe('user:')
    expect(entries[1].data.mail).toBe('ops@examforge.test')
    expect((entries[1].data.details as { list: string[] }).list[1]).toBe('ok text')
  })
})

describe('review draft', () => {
  it('spans, services from health and alert labels', () => {
    expect(formatSpan(45_000)).toBe('45 s')
    expect(formatSpan(5 * 60_000)).toBe('5 min')
    expect(formatSpan(65 * 60_000)).toBe('1 h 5 min')
    expect(formatSpan(26 * 3_600_000)).toBe('1 d 2 h')
    const tl = [
      entry({ type: 'health.change', data: { service: 'redis', to: 'unhealthy' } }),
      entry({ type: 'health.change', data: { service: 'stripe', to: 'healthy' } }),
      entry({ type: 'alert.transition', data: { to: 'firing', labels: { service: 'app', host: 'h1' } } }),
      entry({ type: 'alert.transition', data: { to: 'resolved', labels: { service: 'quiet' } } }),
    ]
    expect(servicesOf(tl)).toEqual(['app', 'redis'])
    const d = draftReview(
      {
        id: 'inc-1',
        title: 'Redis down',
        severity: 'critical',
        status: 'resolved',
        commander: 'boss@examforge.test',
        openedAt: Date.parse('2026-11-30T10:00:00Z'),
        openedBy: 'alerts',
        origin: 'alert',
        alertRule: 'redis_down',
        resolvedAt: Date.parse('2026-11-30T10:42:00Z'),
        statusChanges: [],
        pinnedSeries: [],
        alerts: [{ id: 'redis_down/ab', rule: 'redis_down', joinedAt: 0 }],
        declaredFrom: null,
        lastActivityAt: 0,
        review: null,
      },
      tl,
      null,
    )
    expect(d.summary).toBe(
      'Redis down: a critical incident lasting 42 min, from 2026-11-30 10:00 to 2026-11-30 10:42 UTC. Alerts: redis_down. Commander: boss@examforge.test.',
    )
    expect(d.impact).toEqual({
      durationMs: 42 * 60_000,
      services: ['app', 'redis'],
      usersAffected: null,
      text: 'Duration 42 min. Services affected: app, redis.',
    })
  })
})
