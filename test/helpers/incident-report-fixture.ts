/**
 * A realistic incident report built by hand (valid against the zod schema): Redis goes down during an
 * exam, errors spike, a table is restored in place, Redis comes back. About 40 timeline entries of every
 * type, two series with thresholds, a review with action items — and secrets planted where a careless
 * report would leak them: a password, a bearer token and a card number in an error entry's data and in a note.
 */
import type { IncidentReport, TimelineEntry } from '../../src/shared/incidents'
import { incidentReport } from '../../src/shared/incidents'

/** The planted secrets: none of these strings may appear in any exported file. */
export const PLANTED = {
  password: 'Hunter2-Plant3d-pw',
  urlPassword: 'S3cretPassw0rdInUrl',
  bearer: 'tok9f8e7d6c5b4aPLANTEDbearer',
  card: '4111 1111 1111 1111',
  cardDigits: '4111111111111111',
  cardDashed: '4111-1111-1111-1111',
  apiKey: 'sk_live_PLANTEDkey123456',
} as const

export const T0 = Date.UTC(2026, 10, 30, 8, 42, 0) // 2026-11-30 08:42:00 UTC, the alert fires
const min = 60_000

export function buildIncidentFixture(over: Partial<IncidentReport> = {}): IncidentReport {
  const e: TimelineEntry[] = []
  let n = 0
  const add = (
    type: TimelineEntry['type'],
    offsetMin: number,
    title: string,
    o: Partial<Pick<TimelineEntry, 'detail' | 'level' | 'actor' | 'source' | 'data'>> = {},
  ) => {
    n++
    e.push({
      id: `${type}:${n}`,
      type,
      at: T0 + Math.round(offsetMin * min),
      title,
      detail: o.detail ?? null,
      level: o.level ?? 'info',
      actor: o.actor ?? null,
      source: o.source ?? null,
      data: o.data ?? {},
    })
  }
  const alice = 'alice@examforge.test'
  const bob = 'bob@examforge.test'
  add('health.change', -12, 'redis: ok → degraded', {
    level: 'warning',
    source: { kind: 'health', id: 'redis' },
    data: { service: 'redis', from: 'ok', to: 'degraded', message: 'latency 180 ms' },
  })
  add('alert.transition', -10, 'Alert redis_latency_high pending: p95 latency 210 ms', {
    level: 'warning',
    source: { kind: 'alert', id: 'al-1001' },
    data: { rule: 'redis_latency_high', state: 'pending', value: 210 },
  })
  add('backup', -8, 'Incremental backup inc-2026-11-30-0830 finished (412 MB)', {
    level: 'ok',
    source: { kind: 'backup_set', id: 'bs-3391' },
    data: { kind: 'incremental', bytes: 432_013_312 },
  })
  add('alert.transition', -5, 'Alert redis_latency_high firing: p95 latency 480 ms', {
    level: 'warning',
    source: { kind: 'alert', id: 'al-1001' },
    data: { rule: 'redis_latency_high', state: 'firing', value: 480 },
  })
  add('health.change', -1, 'redis: degraded → down', {
    level: 'critical',
    source: { kind: 'health', id: 'redis' },
    data: { service: 'redis', from: 'degraded', to: 'down', message: 'connect ECONNREFUSED 127.0.0.1:6379' },
  })
  add('alert.transition', 0, 'Alert redis_down firing: redis unreachable', {
    level: 'critical',
    source: { kind: 'alert', id: 'al-1002' },
    data: { rule: 'redis_down', state: 'firing', labels: { service: 'redis', env: 'prod' }, value: 0 },
  })
  add('incident.opened', 0, 'Incident opened by the firing alert redis_down', {
    level: 'critical',
    actor: 'system',
    source: { kind: 'incident', id: 'inc-42' },
    data: { origin: 'alert', rule: 'redis_down' },
  })
  add('incident.commander', 1, 'Commander set to alice@examforge.test', {
    actor: alice,
    source: { kind: 'incident', id: 'inc-42' },
    data: { commander: alice },
  })
  add('error.new_group', 1.5, 'New error: RedisConnectionError: Connection is closed', {
    level: 'critical',
    source: { kind: 'error_group', id: 'eg-77' },
    detail: `RedisConnectionError: Connection is closed\n  at SessionStore.get (session.ts:41)\n  using redis://cache:${PLANTED.urlPassword}@redis.internal:6379/0`,
    data: {
      culprit: 'SessionStore.get',
      events: 214,
      users: 138,
      password: PLANTED.password,
      connection: `postgres://exam:${PLANTED.urlPassword}@db.internal:5432/exam`,
      request: { headers: { Authorization: `Bearer ${PLANTED.bearer}`, 'X-Trace': 'abc' }, url: '/api/answers' },
      message: `Payment retry for card ${PLANTED.card} failed; header was "Bearer ${PLANTED.bearer}"`,
      extra: { note: `charge ${PLANTED.cardDigits} api=${PLANTED.apiKey}` },
    },
  })
  add('error.spike', 2, 'Error spike: 214 events in 5 min (RedisConnectionError)', {
    level: 'critical',
    source: { kind: 'error_group', id: 'eg-77' },
    data: { count: 214, intervalS: 300 },
  })
  add('incident.status', 3, 'Status: investigating', {
    actor: alice,
    source: { kind: 'incident', id: 'inc-42' },
    data: { from: null, to: 'investigating' },
  })
  add('incident.note', 4, 'Note by alice@examforge.test', {
    actor: alice,
    detail: [
      'Students see **"Session expired"** when submitting answers. Checked `redis-cli ping`: *no answer*.',
      '',
      'Tried from the bastion:',
      '',
      '```',
      `curl -H "Authorization: Bearer ${PLANTED.bearer}" https://exam.internal/health`,
      '```',
      '',
      `- the test payment used card ${PLANTED.cardDashed} (must not be in the report)`,
      `- DB url password=${PLANTED.password}`,
      '- runbook: [Redis recovery](https://wiki.examforge.test/runbooks/redis)',
      '',
      '<script>alert("note")</script> # not a heading | not | a table',
    ].join('\n'),
  })
  add('error.new_group', 5, 'New error: TimeoutError: answer save timed out after 5000 ms', {
    level: 'warning',
    source: { kind: 'error_group', id: 'eg-78' },
    data: { culprit: 'AnswerService.save', events: 41, users: 37 },
  })
  add('health.change', 6, 'web: ok → degraded', {
    level: 'warning',
    source: { kind: 'health', id: 'web' },
    data: { service: 'web', from: 'ok', to: 'degraded', message: 'p95 2.4 s' },
  })
  add('alert.transition', 6.5, 'Alert http_error_rate_high firing: 12.4 % of requests fail', {
    level: 'critical',
    source: { kind: 'alert', id: 'al-1003' },
    data: { rule: 'http_error_rate_high', state: 'firing', value: 12.4 },
  })
  add('audit', 8, 'alice@examforge.test opened the Redis health tile', {
    actor: alice,
    source: { kind: 'audit', id: 'au-5001' },
    data: { action: 'view' },
  })
  add('incident.status', 10, 'Status: investigating → identified', {
    actor: alice,
    source: { kind: 'incident', id: 'inc-42' },
    data: { from: 'investigating', to: 'identified' },
  })
  add('incident.note', 11, 'Note by bob@examforge.test', {
    actor: bob,
    detail:
      'Redis host ran out of memory (OOM killer). The `sessions` table in Postgres has stale rows from the retry storm; plan: restore it in place from the 08:30 incremental.\n\n1. stop the retry workers\n2. restore `public.sessions`\n3. restart redis with `maxmemory 2gb`',
  })
  add('settings.change', 12, 'Setting ALERT_EVAL_INTERVAL_S changed 30 → 10', {
    actor: bob,
    source: { kind: 'setting', id: 'ALERT_EVAL_INTERVAL_S' },
    data: { key: 'ALERT_EVAL_INTERVAL_S', from: '30', to: '10' },
  })
  add('settings.change', 12.5, 'Setting S3_SECRET_ACCESS_KEY changed', {
    actor: bob,
    source: { kind: 'setting', id: 'S3_SECRET_ACCESS_KEY' },
    data: { key: 'S3_SECRET_ACCESS_KEY', secret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTED' },
  })
  add('audit', 13, 'bob@examforge.test stopped the job retry-workers', {
    actor: bob,
    source: { kind: 'job', id: 'job-881' },
    data: { action: 'cancel' },
  })
  add('restore', 15, 'Restore test of backup set bs-3391 started (table public.sessions)', {
    source: { kind: 'restore', id: 'rs-220' },
    actor: bob,
    data: { mode: 'test', table: 'public.sessions' },
  })
  add('restore', 19, 'Restore test of bs-3391 passed: 48 211 rows, checksums match', {
    level: 'ok',
    source: { kind: 'restore', id: 'rs-220' },
    data: { rows: 48211, check: 'passed' },
  })
  add('restore', 21, 'Restore in place of public.sessions started', {
    level: 'warning',
    actor: bob,
    source: { kind: 'restore', id: 'rs-221' },
    data: { mode: 'in_place', table: 'public.sessions' },
  })
  add('error.regressed', 22, 'Regressed: PoolTimeoutError: timeout acquiring a connection', {
    level: 'warning',
    source: { kind: 'error_group', id: 'eg-12' },
    data: { events: 9 },
  })
  add('restore', 26, 'Restore in place of public.sessions finished: 48 211 rows', {
    level: 'ok',
    actor: bob,
    source: { kind: 'restore', id: 'rs-221' },
    data: { rows: 48211, check: 'passed' },
  })
  add('audit', 27, 'bob@examforge.test restarted redis with maxmemory 2gb', {
    actor: bob,
    source: { kind: 'audit', id: 'au-5002' },
    data: { action: 'restart' },
  })
  add('health.change', 28, 'redis: down → ok', {
    level: 'ok',
    source: { kind: 'health', id: 'redis' },
    data: { service: 'redis', from: 'down', to: 'ok' },
  })
  add('alert.transition', 28.5, 'Alert redis_down resolved', {
    level: 'ok',
    source: { kind: 'alert', id: 'al-1002' },
    data: { rule: 'redis_down', state: 'resolved' },
  })
  add('alert.transition', 29, 'Alert redis_latency_high resolved', {
    level: 'ok',
    source: { kind: 'alert', id: 'al-1001' },
    data: { rule: 'redis_latency_high', state: 'resolved' },
  })
  add('incident.status', 30, 'Status: identified → monitoring', {
    actor: alice,
    source: { kind: 'incident', id: 'inc-42' },
    data: { from: 'identified', to: 'monitoring' },
  })
  add('health.change', 31, 'web: degraded → ok', {
    level: 'ok',
    source: { kind: 'health', id: 'web' },
    data: { service: 'web', from: 'degraded', to: 'ok' },
  })
  add('alert.transition', 33, 'Alert http_error_rate_high resolved', {
    level: 'ok',
    source: { kind: 'alert', id: 'al-1003' },
    data: { rule: 'http_error_rate_high', state: 'resolved', value: 0.4 },
  })
  add('incident.note', 35, 'Note by alice@examforge.test', {
    actor: alice,
    detail: 'Error rate back under 1 %. Exam *finals* continue; extending the exam by 30 minutes for affected students (_138 users_).',
  })
  add('backup', 40, 'Full backup full-2026-11-30-0920 failed: S3 PutObject timed out', {
    level: 'warning',
    source: { kind: 'backup_set', id: 'bs-3392' },
    data: { kind: 'full', error: 'TimeoutError' },
  })
  add('backup', 48, 'Full backup full-2026-11-30-0930 finished (3.1 GB)', {
    level: 'ok',
    source: { kind: 'backup_set', id: 'bs-3393' },
    data: { kind: 'full', bytes: 3_328_599_654 },
  })
  add('audit', 52, 'alice@examforge.test exported the error group eg-77', {
    actor: alice,
    source: { kind: 'audit', id: 'au-5003' },
    data: { action: 'export' },
  })
  add('incident.status', 60, 'Status: monitoring → resolved', {
    level: 'ok',
    actor: alice,
    source: { kind: 'incident', id: 'inc-42' },
    data: { from: 'monitoring', to: 'resolved' },
  })
  add('audit', 64, 'alice@examforge.test saved the post-incident review', {
    actor: alice,
    source: { kind: 'audit', id: 'au-5004' },
    data: { action: 'review' },
  })
  add('error.spike', 66, 'Error spike: 12 events in 5 min (TimeoutError) after resolving', {
    level: 'warning',
    source: { kind: 'error_group', id: 'eg-78' },
    data: { count: 12, intervalS: 300 },
  })

  const from = T0 - 15 * min
  const to = T0 + 75 * min
  const margin = 15 * min
  const pts = (f: (m: number) => number | null): [number, number | null][] => {
    const out: [number, number | null][] = []
    for (let t = from - margin; t <= to; t += 30_000) out.push([t, f((t - T0) / min)])
    return out
  }
  const report: IncidentReport = {
    schemaVersion: 1,
    generatedAt: T0 + 90 * min,
    generatedBy: 'alice@examforge.test (desktop)',
    incident: {
      id: 'inc-42',
      title: 'Redis outage during the <Exam> finals & grading',
      severity: 'critical',
      status: 'resolved',
      commander: alice,
      openedAt: T0,
      openedBy: 'system (alert redis_down)',
      origin: 'alert',
      alertRule: 'redis_down',
      resolvedAt: T0 + 60 * min,
      statusChanges: [
        { at: T0 + 3 * min, from: null, to: 'investigating', by: alice },
        { at: T0 + 10 * min, from: 'investigating', to: 'identified', by: alice },
        { at: T0 + 30 * min, from: 'identified', to: 'monitoring', by: alice },
        { at: T0 + 60 * min, from: 'monitoring', to: 'resolved', by: alice },
      ],
      pinnedSeries: ['redis_latency_ms'],
      alerts: [
        { id: 'al-1002', rule: 'redis_down', joinedAt: T0 },
        { id: 'al-1001', rule: 'redis_latency_high', joinedAt: T0 + 30_000 },
        { id: 'al-1003', rule: 'http_error_rate_high', joinedAt: T0 + 6.5 * min },
      ],
    },
    window: { from, to, marginMs: margin },
    title: 'Redis outage during the <Exam> finals & grading',
    timeline: e,
    series: [
      {
        name: 'http_error_rate',
        unit: '%',
        points: pts((m) =>
          m < 0
            ? 0.3 + 0.1 * Math.sin(m)
            : m < 30
              ? Math.min(14, 2 + m * 1.4) * (m > 20 ? (30 - m) / 10 : 1) + 0.4
              : 0.4 + 0.05 * Math.cos(m),
        ),
        thresholds: [
          { value: 5, rule: 'http_error_rate_high', severity: 'critical' },
          { value: 2, rule: 'http_error_rate_warn', severity: 'warning' },
        ],
      },
      {
        name: 'redis_latency_ms',
        unit: 'ms',
        points: pts((m) => (m >= 0 && m < 28 ? null : m < 0 && m > -15 ? 120 + (m + 15) * 25 : 3 + Math.abs(Math.sin(m)) * 2)),
        thresholds: [{ value: 250, rule: 'redis_latency_high', severity: 'warning' }],
      },
    ],
    review: {
      summary:
        'Redis ran out of memory at 08:41 UTC during the **finals**; sessions could not be read, so students could not submit answers for 28 minutes.',
      impact: {
        durationMs: 60 * min,
        services: ['redis', 'web'],
        usersAffected: 138,
        text: '138 students saw "Session expired"; 255 error events. No answers were lost (the retry queue held them).',
      },
      rootCause: 'Redis had no `maxmemory` limit and the retry storm after a slow deploy filled memory until the OOM killer stopped it.',
      wentWell: '- The redis_down alert fired within 30 s\n- The restore test passed before the in-place restore',
      wentBadly: `- No runbook for Redis memory\n- The full backup at 09:20 failed (S3 timeout)\n- Someone pasted password=${PLANTED.password} in chat`,
      actionItems: [
        { text: 'Set maxmemory and an eviction policy on every Redis', owner: bob, due: '2026-12-04', done: true },
        { text: 'Alert on Redis memory above 80 % of maxmemory', owner: alice, due: '2026-12-07', done: false },
        { text: 'Write the Redis recovery runbook | with <b>steps</b>', owner: 'ops-team', due: '2026-12-11', done: false },
        { text: 'Investigate the S3 timeouts of full backups', owner: null, due: null, done: false },
      ],
      editedBy: alice,
      editedAt: T0 + 85 * min,
    },
    ...over,
  }
  return incidentReport.parse(report)
}
