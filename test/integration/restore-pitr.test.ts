import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Ops } from '../../src/core/ops'
import { createDatabase, query } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { databaseRows, restoreNow } from '../helpers/restore'
import { seedExamforge } from '../helpers/seed'
import { waitFor } from '../helpers/wait'
import type { BackupResult } from '../../src/core/backup/service'

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

/** Rows of a table limited to some columns, as PostgreSQL prints them, sorted. */
async function columnRows(url: string, table: string, columns: string[]): Promise<string[]> {
  const cols = columns.map((c) => `coalesce("${c}"::text, 'NULL')`).join(', ')
  const rows = await query<{ r: string }>(url, `SELECT concat_ws('|', ${cols}) AS r FROM ${table}`)
  return rows.map((x) => x.r).sort()
}

describe('a migration in the middle of a workload', () => {
  let src: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  const created: string[] = []
  const USERS_BEFORE = ['id', 'email', 'displayName', 'role', 'profile', 'createdAt', 'lastSeenAt']
  const SUBS_AFTER = ['id', 'teamId', 'planId', 'status', 'stripeSubscriptionId', 'createdAt', 'updatedAt']
  const UNCHANGED = ['public.quiz_responses', 'public.question_responses', 'public.AuditEvent', 'public.teams']
  const AFTER = [...TABLES, 'public.badges']
  type Moment = { at: string; rows: Record<string, string[]> }
  const before: Moment[] = []
  let across: Moment & { users: string[]; subscriptions: string[] }
  let gap: string
  const after: Moment[] = []
  let migration: BackupResult
  const now = async () => (await query<{ at: Date }>(src.url, 'SELECT clock_timestamp() AS at'))[0].at
  /** The time now, once the clock has moved on a few milliseconds (restores compare commit times by the millisecond). */
  const moment = async () => {
    const at = await now()
    await waitFor(async () => (await now()).getTime() > at.getTime() + 2, 'the clock to move on')
    return at.toISOString()
  }
  beforeAll(async () => {
    src = await createDatabase(inject('pgUrl'), 'migr')
    await seedExamforge(src.url, 0.03)
    ops = await openOps({ DATABASE_URL: src.url, LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-migr-')), BACKUP_INCREMENTAL: 'on' })
    await backupNow(ops, 'full')
    for (let step = 0; step < 3; step++) {
      await workload(src.url, step)
      const rows = await databaseRows(src.url, TABLES)
      before.push({ at: await moment(), rows })
      if (step === 0) expect((await backupNow(ops, 'incremental')).type).toBe('incremental')
    }
    // The migration, in one transaction as Prisma runs it: a column added, a table added, a column dropped.
    await query(
      src.url,
      `BEGIN;
       ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'en';
       CREATE TABLE badges (id serial PRIMARY KEY, "userId" bigint NOT NULL REFERENCES users (id), name text NOT NULL);
       ALTER TABLE subscriptions DROP COLUMN "currentPeriodEnd";
       COMMIT;`,
    )
    // Writes to tables the migration did not touch: still the old chain's.
    await query(
      src.url,
      `UPDATE teams SET name = name || ' (migrated)' WHERE id <= 2; DELETE FROM quiz_responses WHERE id IN (SELECT id FROM quiz_responses ORDER BY id LIMIT 2)`,
    )
    across = {
      rows: await databaseRows(src.url, UNCHANGED),
      users: await columnRows(src.url, 'users', USERS_BEFORE),
      subscriptions: await columnRows(src.url, 'subscriptions', SUBS_AFTER),
      at: await moment(),
    }
    // The application, deployed with the migration, writes the new shapes.
    await query(
      src.url,
      `UPDATE users SET locale = 'de', "displayName" = 'Neu' WHERE id = 1; INSERT INTO badges ("userId", name) VALUES (1, 'pioneer')`,
    )
    await workload(src.url, 10)
    gap = await moment()
    migration = await backupNow(ops, 'incremental')
    for (let step = 20; step < 22; step++) {
      await workload(src.url, step)
      await query(
        src.url,
        `INSERT INTO badges ("userId", name) VALUES (2, 'step ${step}'); UPDATE users SET locale = 'fr' WHERE id = ${step - 17}`,
      )
      const rows = await databaseRows(src.url, AFTER)
      after.push({ at: await moment(), rows })
      expect((await backupNow(ops, 'incremental')).type).toBe('incremental')
    }
  }, 180_000)
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

  const restoreTo = async (at: string, label: string) => {
    const name = `migr_${label}_${Date.now().toString(36)}`
    created.push(name)
    const plan = await ops.restores.plan({ point: { time: at }, target: { kind: 'new', database: name } })
    const r = await restoreNow(ops, { point: { time: at }, target: { kind: 'new', database: name } }, name)
    expect(r.report.ok, JSON.stringify(r.report.tables.filter((t) => !t.ok))).toBe(true)
    const u = new URL(src.url)
    u.pathname = `/${name}`
    return { url: u.toString(), plan }
  }

  it('the backup after the migration ends the old chain with every change before the first row of a new shape, then starts a new one', () => {
    expect(migration.type).toBe('full')
    expect(migration.endedChain).toMatchObject({ reason: expect.stringMatching(/the schema changed: public\.users its columns changed/) })
    expect(migration.note).toMatch(
      /The old chain's last incremental \S+ keeps every change up to .* so every moment up to there stays restorable/,
    )
    expect(new Date(migration.endedChain!.coversTo) >= new Date(across.at)).toBe(true)
    expect(new Date(migration.endedChain!.coversTo) < new Date(gap)).toBe(true)
  })

  it('restore.points shows both chains, where the old one ends and the moments no backup covers', async () => {
    const points = await ops.restores.points()
    expect(points.chains).toHaveLength(2)
    const [newer, older] = points.chains
    expect(older.endsAtSchemaChange).toBe(true)
    expect(older.to).toBe(migration.endedChain!.coversTo)
    expect(older.note).toMatch(
      new RegExp(
        `Ends at a schema change .*restorable up to ${older.to}; the next chain starts at ${newer.from}, and moments between cannot be restored`,
      ),
    )
    expect(newer.endsAtSchemaChange).toBe(false)
    expect(newer.from).toBe(migration.snapshotTime)
  })

  it('restores moments before the migration exactly', async () => {
    for (const [i, m] of before.entries()) {
      const { url } = await restoreTo(m.at, `b${i}`)
      expect(await databaseRows(url, TABLES), `moment ${i} before`).toEqual(m.rows)
    }
  }, 120_000)

  it('restores a moment after the migration but before its new shapes were written: every row as it was, in the old chain’s schema', async () => {
    const { url, plan } = await restoreTo(across.at, 'across')
    expect(plan.preflight.find((c) => c.check === 'Schema')?.detail).toMatch(/ends at a schema change .* schema of its full backup/)
    expect(await databaseRows(url, UNCHANGED)).toEqual(across.rows)
    expect(await columnRows(url, 'users', USERS_BEFORE)).toEqual(across.users)
    expect(await columnRows(url, 'subscriptions', SUBS_AFTER)).toEqual(across.subscriptions)
  }, 60_000)

  it('says plainly that moments between the end of the old chain and the new full are not covered', async () => {
    await expect(ops.restores.plan({ point: { time: gap }, target: { kind: 'new', database: 'never_made' } })).rejects.toThrow(
      /No backup chain covers .* The backups cover: .+ to .+; .+ to .+\./,
    )
  })

  it('restores moments after the migration exactly, new column and new table included', async () => {
    for (const [i, m] of after.entries()) {
      const { url } = await restoreTo(m.at, `a${i}`)
      expect(await databaseRows(url, AFTER), `moment ${i} after`).toEqual(m.rows)
    }
  }, 120_000)
})
