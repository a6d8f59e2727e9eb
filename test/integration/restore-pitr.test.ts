import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Ops } from '../../src/core/ops'
import { createDatabase, query } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { databaseRows, restoreNow } from '../helpers/restore'
import { foreignKeyCounts } from '../../src/shared/restore'
import { seedExamforge } from '../helpers/seed'

const TABLES = [
  'public.users',
  'public.subscriptions',
  'public.quiz_responses',
  'public.question_responses',
  'public.AuditEvent',
  'public.teams',
]

/** One burst of ExamForge-like writes, chosen at random: inserts, updates, deletes (with cascades), now and then a truncate. */
async function workload(url: string, step: number): Promise<void> {
  const r = () => Math.random()
  const sql: string[] = []
  for (let i = 0; i < 3 + Math.floor(r() * 4); i++) {
    const pick = r()
    if (pick < 0.35)
      sql.push(`WITH q AS (INSERT INTO quiz_responses ("quizId", "userId", "submittedAt", score, metadata)
                 SELECT (SELECT id FROM quizzes ORDER BY random() LIMIT 1), (SELECT id FROM users ORDER BY random() LIMIT 1), now(), ${Math.round(r() * 100)}, '{"step": ${step}, "s": "tab\\there"}'
                 RETURNING id, "quizId")
               INSERT INTO question_responses ("responseId", "questionId", answer, "isCorrect")
               SELECT q.id, qs.id, '{"choice": 2}', true FROM q JOIN questions qs ON qs."quizId" = q."quizId" LIMIT 2`)
    else if (pick < 0.6)
      sql.push(
        `UPDATE subscriptions SET status = 'past_due', "updatedAt" = now() WHERE id IN (SELECT id FROM subscriptions ORDER BY random() LIMIT ${1 + Math.floor(r() * 5)})`,
      )
    else if (pick < 0.8)
      sql.push(`DELETE FROM quiz_responses WHERE id IN (SELECT id FROM quiz_responses ORDER BY random() LIMIT ${1 + Math.floor(r() * 3)})`)
    else if (pick < 0.95)
      sql.push(`UPDATE users SET "displayName" = "displayName" || ' ✓' WHERE id IN (SELECT id FROM users ORDER BY random() LIMIT 2)`)
    else sql.push(`TRUNCATE "AuditEvent"`)
  }
  // Several transactions per burst, as an application makes them.
  for (const s of sql) await query(url, s)
}

describe('point-in-time restore', () => {
  let src: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  const moments: { at: string; rows: Record<string, string[]> }[] = []
  const created: string[] = []
  let fullId: string
  beforeAll(async () => {
    src = await createDatabase(inject('pgUrl'), 'pitr')
    await seedExamforge(src.url, 0.03)
    ops = await openOps({ DATABASE_URL: src.url, LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-pitr-')), BACKUP_INCREMENTAL: 'on' })
    fullId = (await backupNow(ops, 'full')).setId
    // Random moments across two incrementals: note the exact state at each.
    for (let step = 0; step < 6; step++) {
      await workload(src.url, step)
      await new Promise((r) => setTimeout(r, 30))
      const [{ at }] = await query<{ at: Date }>(src.url, 'SELECT clock_timestamp() AS at')
      moments.push({ at: at.toISOString(), rows: await databaseRows(src.url, TABLES) })
      await new Promise((r) => setTimeout(r, 30))
      if (step === 2) await backupNow(ops, 'incremental')
    }
    await workload(src.url, 99) // changes after the last moment that must not come back
    const inc = await backupNow(ops, 'incremental')
    expect(inc.type).toBe('incremental')
  }, 120_000)
  afterAll(async () => {
    await ops?.close()
    for (const name of created) await query(inject('pgUrl'), `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {})
    for (const s of await query<{ slot_name: string }>(
      src.url,
      `SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`,
    ))
      await query(src.url, 'SELECT pg_drop_replication_slot($1)', [s.slot_name]).catch(() => {})
    await src?.drop()
  })

  it('restores to each noted moment exactly', async () => {
    // Every moment is a different state, so restoring to the wrong one cannot pass.
    expect(new Set(moments.map((m) => JSON.stringify(m.rows))).size).toBe(moments.length)
    const planned: number[] = []
    for (const [i, m] of moments.entries()) {
      const name = `pitr_${i}_${Date.now().toString(36)}`
      created.push(name)
      const plan = await ops.restores.plan({ point: { time: m.at }, target: { kind: 'new', database: name } })
      expect(plan.point.kind).toBe('time')
      expect(plan.sets[0].setId).toBe(fullId)
      planned.push(plan.sets.length)
      const r = await restoreNow(ops, { point: { time: m.at }, target: { kind: 'new', database: name } }, name)
      expect(r.report.ok, JSON.stringify(r.report.tables.filter((t) => !t.ok))).toBe(true)
      // The plan's "rows after" matched what came back.
      for (const t of plan.tables) expect(r.report.tables.find((x) => x.table === t.table)?.rowsFound).toBe(t.rowsAfter)
      const u = new URL(src.url)
      u.pathname = `/${name}`
      expect(await databaseRows(u.toString(), TABLES), `moment ${i} at ${m.at}`).toEqual(m.rows)
      await query(inject('pgUrl'), `DROP DATABASE "${name}" WITH (FORCE)`)
    }
    // The moments span both incrementals of the chain.
    expect(planned.slice(0, 3)).toEqual([2, 2, 2])
    expect(planned.slice(3)).toEqual([3, 3, 3])
  }, 180_000)

  it('restores chosen tables in place to a moment, and says which foreign keys tie them to others', async () => {
    const m = moments[3]
    const plan = await ops.restores.plan({ point: { time: m.at }, tables: ['subscriptions'], target: { kind: 'in-place' } })
    expect(plan.tables.map((t) => t.table)).toEqual(['public.subscriptions'])
    expect(plan.related.map((r) => r.table).sort()).toEqual(['public.plans', 'public.teams'])
    expect(plan.available.find((a) => a.table === 'public.subscriptions')?.references.sort()).toEqual(['public.plans', 'public.teams'])
    const users = await databaseRows(src.url, ['public.users'])
    const db = new URL(src.url).pathname.slice(1)
    const r = await restoreNow(ops, { point: { time: m.at }, tables: ['subscriptions'], target: { kind: 'in-place' } }, db)
    expect(r.report.ok).toBe(true)
    expect(r.report.foreignKeys.map((f) => f.constraint).sort()).toEqual(['subscriptions_planId_fkey', 'subscriptions_teamId_fkey'])
    expect(await databaseRows(src.url, ['public.subscriptions'])).toEqual({ 'public.subscriptions': m.rows['public.subscriptions'] })
    expect(await databaseRows(src.url, ['public.users'])).toEqual(users) // other tables untouched
  })

  it('reports what it checked: digests only where the backup has them, foreign keys it could not check not counted as holding', async () => {
    // The newest incremental as the point (a set, not a time), two tables only, into a new database.
    const inc = (await ops.backups.list()).filter((s) => s.manifest?.type === 'incremental').sort((a, b) => (a.setId < b.setId ? 1 : -1))[0]
    const name = `pitr_set_${Date.now().toString(36)}`
    created.push(name)
    const request = { point: { setId: inc.setId }, tables: ['subscriptions', 'teams'], target: { kind: 'new' as const, database: name } }
    const r = await restoreNow(ops, request, name)
    expect(r.report.ok).toBe(true)
    // A set point is not "a point in time": the rows were counted because incrementals were replayed.
    expect(r.report.countOnly).toMatch(/incremental/)
    expect(r.report.countOnly).not.toMatch(/point in time/)
    expect(r.report.tables.every((t) => t.digestExpected === null)).toBe(true)
    // subscriptions → teams is checked; subscriptions → plans cannot be (plans was not restored), and is counted as such.
    const byName = Object.fromEntries(r.report.foreignKeys.map((f) => [f.constraint, f]))
    expect(byName['subscriptions_teamId_fkey']).toMatchObject({ checked: true, ok: true })
    expect(byName['subscriptions_planId_fkey']).toMatchObject({ checked: false })
    const n = foreignKeyCounts(r.report)
    expect(n.checked + n.notChecked).toBe(r.report.foreignKeys.length)
    expect(n.notChecked).toBe(r.report.foreignKeys.filter((f) => f.note?.startsWith('not checked')).length)
    expect(n.notChecked).toBeGreaterThan(0)
    expect(n.hold).toBe(n.checked)
    // A time point says so; the full set alone compares digests (countOnly null).
    const t = `pitr_time_${Date.now().toString(36)}`
    created.push(t)
    const rt = await restoreNow(ops, { point: { time: moments[4].at }, tables: ['teams'], target: { kind: 'new', database: t } }, t)
    expect(rt.report.countOnly).toMatch(/point in time/)
    const f = `pitr_full_${Date.now().toString(36)}`
    created.push(f)
    const rf = await restoreNow(ops, { point: { setId: fullId }, tables: ['teams'], target: { kind: 'new', database: f } }, f)
    expect(rf.report.countOnly).toBeNull()
    expect(rf.report.tables.every((x) => x.digestExpected && x.digestExpected === x.digestFound)).toBe(true)
  })

  it('refuses a time outside every chain, naming the ranges that exist', async () => {
    await expect(
      ops.restores.plan({ point: { time: '2001-01-01T00:00:00Z' }, target: { kind: 'new', database: 'never_made' } }),
    ).rejects.toThrow(/No backup chain covers 2001-01-01T00:00:00.000Z\. The backups cover: .+ to .+/)
  })

  it('rejects unknown tables and identifiers shaped like SQL by name, before anything runs', async () => {
    await expect(ops.restores.plan({ point: { setId: fullId }, tables: ['nope'], target: { kind: 'in-place' } })).rejects.toThrow(
      /The backup holds no table "nope"/,
    )
    await expect(
      ops.restores.plan({ point: { setId: fullId }, tables: ['users; DROP TABLE users; --'], target: { kind: 'in-place' } }),
    ).rejects.toThrow(/no table "users; DROP TABLE users; --"/)
    expect((await query(src.url, `SELECT count(*)::int AS n FROM users`))[0].n).toBeGreaterThan(0)
  })
})
