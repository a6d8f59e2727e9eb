import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { describeIdentity, type Identity } from '../../src/core/auth/identity'
import { handlers, type HandlerContext } from '../../src/core/handlers'
import { renderReport } from '../../src/core/incidents/report'
import type { Ops } from '../../src/core/ops'
import { incidentReport, type TimelineEntry } from '../../src/shared/incidents'
import { createDatabase, query } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { startRedis, type RedisServer } from '../helpers/redis'
import { seedExamforge } from '../helpers/seed'
import { waitFor } from '../helpers/wait'

/**
 * The issue's scripted incident on the sandbox's pieces: an ExamForge database (the sandbox schema and seed),
 * a real redis-server watched by the Redis health check, a critical availability rule on it. Redis stops, the
 * rule fires and opens an incident, the app's errors arrive (one carrying a secret in its context), a table is
 * restored in place from the morning's backup, Redis comes back and the alert resolves; the operator resolves
 * the incident. Its timeline holds every one of these, in order, each linked to its source.
 */
describe('a scripted incident: Redis stopped, errors raised, a table restored in place, Redis back', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let redis: RedisServer
  let ops: Ops
  const identity: Identity = { via: 'admin-token', osUser: null, email: 'boss@examforge.test' }
  let ctx: HandlerContext

  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'incscene')
    await seedExamforge(db.url, 0.05)
    redis = await startRedis()
    const dir = mkdtempSync(join(tmpdir(), 'ops-inc-scene-'))
    const rules = join(dir, 'rules.json')
    writeFileSync(
      rules,
      JSON.stringify({
        rules: [
          {
            name: 'redis_down',
            kind: 'availability',
            params: { service: 'redis' },
            severity: 'critical',
            annotations: { summary: 'Redis is unreachable' },
          },
        ],
      }),
    )
    ops = await openOps({
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      ERROR_INGEST_ADDR: '127.0.0.1:0',
      ALERT_RULES_FILE: rules,
      LOCAL_BACKUP_PATH: join(dir, 'backups'),
    })
    ctx = { identity, who: describeIdentity(ops.config, identity) }
    ops.alerts.leader.start()
    await waitFor(() => ops.alerts.leader.isLeader, 'the notifier lock')
  }, 120_000)
  afterAll(async () => {
    await ops?.close()
    await redis?.stop()
    await db?.drop()
  })

  const redisIs = (status: string) =>
    waitFor(
      async () => (await ops.health.checkNow('redis')).results.find((r) => r.service === 'redis')?.status === status,
      `Redis ${status}`,
      60_000,
      500,
    )

  it('opens an incident from the firing alert, and its timeline holds every event in order with links', async () => {
    const morning = await backupNow(ops, 'full')
    await redisIs('healthy')
    await ops.alerts.evaluate(Date.now())
    expect(await ops.incidents.list()).toEqual([])

    // 1. Redis stops: the health check sees it, the critical rule fires, an incident opens by itself.
    await redis.stop()
    await redisIs('unhealthy')
    await ops.alerts.evaluate(Date.now())
    const [inc] = await ops.incidents.list('open')
    expect(inc).toMatchObject({ origin: 'alert', alertRule: 'redis_down', severity: 'critical', status: 'investigating' })
    expect(inc.title).toBe('redis_down firing: Redis is unreachable')

    // 2. The app raises errors (one with a secret in its context, scrubbed at ingest).
    await ops.errors.accept(
      '1',
      Array.from({ length: 3 }, (_, i) => ({
        event_id: randomBytes(16).toString('hex'),
        level: 'error',
        user: { id: `student-${i}` },
        exception: { values: [{ type: 'ReplyError', value: 'connect ECONNREFUSED 127.0.0.1:6379' }] },
        contexts: { cache: { url: 'redis://:s3cr3t-redis-pass@10.0.0.5:6379', token: 'tok_live_abcdef123456' } },
      })),
    )
    const group = (await ops.errors.list({ text: 'ECONNREFUSED' })).groups[0]
    await handlers['incidents.note'](ops, { id: inc.id, text: 'Quizzes table damaged by the failed cache warm-up: restoring it' }, ctx)

    // 3. A table restored in place from the morning's backup (atomic, after a safety backup), with its check.
    const dbName = new URL(db.url).pathname.slice(1)
    const { jobId } = await ops.restores.start(
      { point: { setId: morning.setId }, tables: ['public.quizzes'], target: { kind: 'in-place' } },
      dbName,
      { actor: ctx.who },
    )
    const restoreJob = await ops.jobs.wait(jobId)
    expect(restoreJob.state, restoreJob.error?.message).toBe('succeeded')
    const [restore] = await query<{ id: string }>(
      db.url,
      `SELECT id FROM ops.restores WHERE kind = 'restore' ORDER BY started_at DESC LIMIT 1`,
    )

    // 4. Redis is back: healthy, the alert resolves; the operator resolves the incident.
    await redis.restart()
    await redisIs('healthy')
    await ops.alerts.evaluate(Date.now())
    expect((await ops.alerts.active()).filter((a) => a.rule === 'redis_down')).toEqual([])
    await handlers['incidents.setStatus'](ops, { id: inc.id, status: 'resolved' }, ctx)

    const report = await handlers['incidents.get'](ops, { id: inc.id }, ctx)
    expect(incidentReport.safeParse(report).success).toBe(true)
    const tl = report.timeline
    const idx = (what: string, f: (e: TimelineEntry) => boolean) => {
      const i = tl.findIndex(f)
      expect(i, `${what} in the timeline:\n${tl.map((e) => `${e.type} ${e.title}`).join('\n')}`).toBeGreaterThanOrEqual(0)
      return i
    }
    const steps = [
      idx('the morning backup', (e) => e.type === 'backup' && e.source?.id === morning.setId),
      idx('Redis unhealthy', (e) => e.type === 'health.change' && e.data.service === 'redis' && e.data.to === 'unhealthy'),
      idx('redis_down firing', (e) => e.type === 'alert.transition' && e.data.rule === 'redis_down' && e.data.to === 'firing'),
      idx('the incident opened', (e) => e.type === 'incident.opened'),
      idx('the new error group', (e) => e.type === 'error.new_group' && e.source?.id === group.id),
      idx('the note', (e) => e.type === 'incident.note'),
      idx('the restore', (e) => e.type === 'restore' && e.source?.id === restore.id),
      idx(
        'Redis healthy again',
        (e) => e.type === 'health.change' && e.data.service === 'redis' && e.data.from === 'unhealthy' && e.data.to === 'healthy',
      ),
      idx('redis_down resolved', (e) => e.type === 'alert.transition' && e.data.rule === 'redis_down' && e.data.to === 'resolved'),
      idx('resolved', (e) => e.type === 'incident.status' && e.data.to === 'resolved'),
    ]
    expect([...steps].sort((a, b) => a - b)).toEqual(steps)
    for (let i = 1; i < tl.length; i++) expect(tl[i].at).toBeGreaterThanOrEqual(tl[i - 1].at)

    const fired = tl[steps[2]]
    expect(fired).toMatchObject({ level: 'critical', source: { kind: 'alert', id: inc.alerts[0].id } })
    expect(tl[steps[4]].source).toEqual({ kind: 'error_group', id: group.id })
    const restored = tl[steps[6]]
    expect(restored).toMatchObject({ level: 'ok', actor: ctx.who })
    expect(restored.data).toMatchObject({ kind: 'restore', outcome: 'succeeded', tables: ['public.quizzes'] })
    expect(restored.data.check).toMatchObject({ ok: true, tablesFailed: 0 })
    // The safety backup the in-place restore took first is named on its entry.
    expect(restored.data.safetySetId).toEqual(expect.any(String))
    expect(restored.title).toMatch(/^Restore of public\.quizzes .* succeeded, check passed/)

    // The review's draft: the whole outage, Redis among the services, the three students.
    expect(report.review).toMatchObject({ editedBy: null, impact: { usersAffected: 3 } })
    expect(report.review!.impact.services).toContain('redis')
    expect(report.review!.impact.durationMs).toBe(report.incident!.resolvedAt! - report.incident!.openedAt)

    const all = JSON.stringify(report)
    expect(all).not.toContain('s3cr3t-redis-pass')
    expect(all).not.toContain('tok_live_abcdef123456')

    // The four formats are the report renderers' (branch incidents-report): checked here once they are merged.
    const merged = await renderReport(report, 'json', { paper: 'A4' }).then(
      () => true,
      (e: Error) => !/being built/.test(e.message),
    )
    if (merged)
      for (const format of ['json', 'md', 'html'] as const) {
        const out = await handlers['incidents.export'](ops, { id: inc.id, format, paper: 'A4' }, ctx)
        expect(out.data).not.toContain('s3cr3t-redis-pass')
        expect(out.data).not.toContain('tok_live_abcdef123456')
        expect(out.data).toContain('redis_down')
      }
  }, 300_000)
})
