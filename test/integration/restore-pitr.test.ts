import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Ops } from '../../src/core/ops'
import { createDatabase, query } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { databaseRows, restoreNow, tableRows } from '../helpers/restore'
import { foreignKeyCounts } from '../../src/shared/restore'
import { seedExamforge } from '../helpers/seed'
import { HARD_DATA, HARD_SCHEMA } from '../helpers/hard-schema'
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
  /** After the application wrote the new shapes, before the next backup: no chain covered it when a migration ended chains. */
  let gap: Moment
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
    await query(src.url, `UPDATE subscriptions SET status = 'active', "updatedAt" = now() WHERE id = 1`)
    await workload(src.url, 10)
    gap = { rows: await databaseRows(src.url, TABLES), at: await moment() }
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

  it('the backup after the migration is an incremental that carries the change through: no new full, and it says what it carried', () => {
    expect(migration.type).toBe('incremental')
    expect(migration.endedChain).toBeNull()
    expect(migration.note).toMatch(/The schema changed and the chain carries the change through \(no new full needed\)/)
    expect(migration.note).toMatch(/public\.users: column locale added/)
    expect(migration.note).toMatch(/public\.subscriptions: column currentPeriodEnd dropped/)
    expect(migration.note).toMatch(/public\.badges: joined the chain with 1 rows/)
  })

  it('restore.points shows one chain covering the moments before, across and after the migration, and what it carried', async () => {
    const points = await ops.restores.points()
    expect(points.chains).toHaveLength(1)
    const [chain] = points.chains
    expect(chain.endsAtSchemaChange).toBe(false)
    expect(new Date(chain.from) < new Date(before[0].at)).toBe(true)
    expect(new Date(chain.to) > new Date(after.at(-1)!.at)).toBe(true)
    expect(chain.note).toMatch(/Carries \d+ schema change\(s\) through, so it covers the moments before, across and after them/)
    expect(chain.note).toMatch(/public\.badges joined the chain at .*: restores to earlier moments leave it out/)
  })

  it('restores moments before the migration exactly', async () => {
    for (const [i, m] of before.entries()) {
      const { url } = await restoreTo(m.at, `b${i}`)
      expect(await databaseRows(url, TABLES), `moment ${i} before`).toEqual(m.rows)
    }
  }, 120_000)

  it('restores a moment after the migration but before its new shapes were written: every row as it was (the tables take their new shape where the stream first shows it)', async () => {
    const { url, plan } = await restoreTo(across.at, 'across')
    expect(plan.preflight.find((c) => c.check === 'Schema')).toBeUndefined()
    expect(await databaseRows(url, UNCHANGED)).toEqual(across.rows)
    expect(await columnRows(url, 'users', USERS_BEFORE)).toEqual(across.users)
    expect(await columnRows(url, 'subscriptions', SUBS_AFTER)).toEqual(across.subscriptions)
  }, 60_000)

  it('restores a moment after the new shapes were written and before the next backup (no chain covered it when migrations ended chains), table by table', async () => {
    const { url, plan } = await restoreTo(gap.at, 'gap')
    expect(plan.preflight.find((c) => c.check === 'Schema')?.detail).toMatch(
      /carries 2 schema change\(s\) through up to this moment.*public\.users: column locale added .*public\.subscriptions: column currentPeriodEnd dropped/,
    )
    expect(await databaseRows(url, TABLES)).toEqual(gap.rows)
    // The new table joined the chain at the next backup: at this moment it is not in the restore (the coverage note says so).
    expect(await query(url, `SELECT to_regclass('public.badges') AS t`)).toEqual([{ t: null }])
  }, 60_000)

  it('refuses to carry a schema change into the live database in place, and says to restore into a new one', async () => {
    const plan = await ops.restores.plan({ point: { time: after[0].at }, target: { kind: 'in-place' } })
    expect(plan.ok).toBe(false)
    expect(plan.preflight.find((c) => c.check === 'Schema')).toMatchObject({
      status: 'failed',
      detail: expect.stringMatching(/an in-place restore cannot change the live tables' schema\. Restore into a new database instead/),
    })
  })

  it('restores moments after the migration exactly, new column and new table included', async () => {
    for (const [i, m] of after.entries()) {
      const { url } = await restoreTo(m.at, `a${i}`)
      expect(await databaseRows(url, AFTER), `moment ${i} after`).toEqual(m.rows)
    }
  }, 120_000)
})

/** An ExamForge-shaped Prisma schema: text ids, enums, jsonb, text[], implicit many-to-many join tables. */
const PRISMA_SCHEMA = `
CREATE TYPE "Role" AS ENUM ('STUDENT', 'TEACHER', 'ADMIN');
CREATE TABLE "User" (
  id text PRIMARY KEY, email text NOT NULL, name text, role "Role" NOT NULL DEFAULT 'STUDENT',
  tags text[] NOT NULL DEFAULT '{}', profile jsonb, "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "User_email_key" ON "User" (email);
CREATE TABLE "Course" (
  id text PRIMARY KEY, title text NOT NULL, meta jsonb NOT NULL DEFAULT '{}', topics text[],
  "ownerId" text NOT NULL REFERENCES "User" (id) ON DELETE CASCADE ON UPDATE CASCADE
);
-- Implicit many-to-many, as Prisma 5 makes them: no primary key, a unique index on (A, B).
CREATE TABLE "_CourseToUser" ("A" text NOT NULL REFERENCES "Course" (id) ON DELETE CASCADE, "B" text NOT NULL REFERENCES "User" (id) ON DELETE CASCADE);
CREATE UNIQUE INDEX "_CourseToUser_AB_unique" ON "_CourseToUser" ("A", "B");
CREATE INDEX "_CourseToUser_B_index" ON "_CourseToUser" ("B");
-- The same, after the operator chose its unique index as the replica identity.
CREATE TABLE "_Followers" ("A" text NOT NULL REFERENCES "User" (id) ON DELETE CASCADE, "B" text NOT NULL REFERENCES "User" (id) ON DELETE CASCADE);
CREATE UNIQUE INDEX "_Followers_AB_unique" ON "_Followers" ("A", "B");
ALTER TABLE "_Followers" REPLICA IDENTITY USING INDEX "_Followers_AB_unique";
INSERT INTO "User" (id, email, name, role, tags, profile)
  SELECT 'cl' || md5(g::text), 'u' || g || '@examforge.test', 'Ünïcode ' || g, (ARRAY['STUDENT','TEACHER','ADMIN'])[1 + g % 3]::"Role",
         ARRAY['t' || g % 5, 'comma,quote"'], jsonb_build_object('n', g, 'tz', 'Europe/Zürich') FROM generate_series(1, 60) g;
INSERT INTO "Course" (id, title, meta, topics, "ownerId")
  SELECT 'co' || md5(g::text), 'Course ' || g, jsonb_build_object('level', g % 4), ARRAY['sql', NULL], 'cl' || md5((1 + g % 60)::text) FROM generate_series(1, 20) g;
INSERT INTO "_CourseToUser" SELECT 'co' || md5((1 + g % 20)::text), 'cl' || md5(g::text) FROM generate_series(1, 60) g;
INSERT INTO "_Followers" SELECT 'cl' || md5(g::text), 'cl' || md5((g % 60 + 1)::text) FROM generate_series(1, 59) g;
`

/** Random Prisma-like writes, each its own transaction; `step` makes every burst distinct. */
async function prismaWorkload(url: string, step: number, migrated = false): Promise<void> {
  const n = () => 1 + Math.floor(Math.random() * 60)
  const id = (k: number) => `'cl' || md5('${k}')`
  await query(
    url,
    `INSERT INTO "User" (id, email, name, tags, profile) VALUES ('new${step}', 'new${step}@examforge.test', 'Step ${step}', '{a,b}', '{"s": ${step}}')`,
  )
  await query(url, `UPDATE "User" SET tags = tags || ARRAY['s${step}'], profile = profile || '{"seen": ${step}}' WHERE id = ${id(n())}`)
  await query(
    url,
    `UPDATE "Course" SET meta = meta || '{"edited": ${step}}'${migrated ? '' : `, topics = ARRAY['s${step}']`} WHERE id = 'co' || md5('${1 + (step % 20)}')`,
  )
  await query(url, `INSERT INTO "_CourseToUser" VALUES ('co' || md5('${1 + (step % 20)}'), 'new${step}') ON CONFLICT DO NOTHING`)
  await query(url, `DELETE FROM "_CourseToUser" WHERE ctid IN (SELECT ctid FROM "_CourseToUser" ORDER BY random() LIMIT 1)`)
  await query(url, `INSERT INTO "_Followers" VALUES ('new${step}', ${id(n())}) ON CONFLICT DO NOTHING`)
  await query(url, `DELETE FROM "_Followers" WHERE ctid IN (SELECT ctid FROM "_Followers" ORDER BY random() LIMIT 1)`)
}

describe('an ExamForge-shaped Prisma schema through a migration', () => {
  let src: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  const created: string[] = []
  const OLD = ['public.User', 'public.Course', 'public._CourseToUser', 'public._Followers']
  const NEW = ['public.User', 'public.Course', 'public._CourseToUser', 'public._Followers', 'public.Enrollment']
  let atFull: Record<string, string[]>
  const before: { at: string; rows: Record<string, string[]> }[] = []
  const after: { at: string; rows: Record<string, string[]> }[] = []
  let migration: BackupResult
  const now = async () => (await query<{ at: Date }>(src.url, 'SELECT clock_timestamp() AS at'))[0].at
  const moment = async () => {
    const at = await now()
    await waitFor(async () => (await now()).getTime() > at.getTime() + 2, 'the clock to move on')
    return at.toISOString()
  }
  beforeAll(async () => {
    src = await createDatabase(inject('pgUrl'), 'prisma')
    await query(src.url, PRISMA_SCHEMA)
    ops = await openOps({ DATABASE_URL: src.url, LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-prisma-')), BACKUP_INCREMENTAL: 'on' })
    const full = await backupNow(ops, 'full')
    expect(full.fullsOnly).toEqual(['public."_CourseToUser"'])
    atFull = await databaseRows(src.url, OLD)
    for (let step = 0; step < 2; step++) {
      await prismaWorkload(src.url, step)
      before.push({ rows: await databaseRows(src.url, OLD), at: await moment() })
      expect((await backupNow(ops, 'incremental')).type).toBe('incremental')
    }
    await prismaWorkload(src.url, 2)
    // A Prisma migration in the middle of the workload.
    await query(
      src.url,
      `BEGIN;
       ALTER TABLE "User" ADD COLUMN "locale" text;
       ALTER TYPE "Role" ADD VALUE 'OWNER' BEFORE 'ADMIN';
       CREATE TABLE "Enrollment" (id text PRIMARY KEY, "userId" text NOT NULL REFERENCES "User" (id), "courseId" text NOT NULL REFERENCES "Course" (id), at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP);
       ALTER TABLE "Course" DROP COLUMN topics;
       COMMIT;`,
    )
    await query(
      src.url,
      `UPDATE "User" SET locale = 'de', role = 'OWNER' WHERE id = 'new2'; INSERT INTO "Enrollment" (id, "userId", "courseId") VALUES ('e1', 'new2', 'co' || md5('1'))`,
    )
    migration = await backupNow(ops, 'incremental')
    for (let step = 10; step < 12; step++) {
      await prismaWorkload(src.url, step, true)
      await query(src.url, `INSERT INTO "Enrollment" (id, "userId", "courseId") VALUES ('e${step}', 'new${step}', 'co' || md5('2'))`)
      after.push({ rows: await databaseRows(src.url, NEW), at: await moment() })
      expect((await backupNow(ops, 'incremental')).type).toBe('incremental')
    }
  }, 180_000)
  afterAll(async () => {
    await ops?.close()
    for (const name of created) await query(inject('pgUrl'), `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {})
    await src?.drop()
  })

  const restoreTo = async (at: string, label: string) => {
    const name = `prisma_${label}_${Date.now().toString(36)}`
    created.push(name)
    const plan = await ops.restores.plan({ point: { time: at }, target: { kind: 'new', database: name } })
    const r = await restoreNow(ops, { point: { time: at }, target: { kind: 'new', database: name } }, name)
    expect(r.report.ok, JSON.stringify(r.report.tables.filter((t) => !t.ok))).toBe(true)
    const u = new URL(src.url)
    u.pathname = `/${name}`
    return { url: u.toString(), plan }
  }

  it('the chain carried the migration through; the join table without a key is named as backed up by fulls only', () => {
    expect(migration.type).toBe('incremental')
    expect(migration.note).toMatch(/public\.User: column locale added/)
    expect(migration.note).toMatch(/public\."Role": enum value\(s\) OWNER added/)
    expect(migration.note).toMatch(/public\.Enrollment: joined the chain with 1 rows/)
    expect(migration.fullsOnly).toEqual(['public."_CourseToUser"'])
  })

  it('restores moments before the migration table by table; the join table without a key comes back as of the full, and the plan says so', async () => {
    for (const [i, m] of before.entries()) {
      const { url, plan } = await restoreTo(m.at, `b${i}`)
      expect(plan.preflight.find((c) => c.check === 'Change stream coverage')?.detail).toMatch(
        /public\._CourseToUser is not in the change stream/,
      )
      for (const t of OLD) {
        const expected = t === 'public._CourseToUser' ? atFull[t] : m.rows[t]
        expect(await tableRows(url, t), `${t} at moment ${i}`).toEqual(expected)
      }
    }
  }, 120_000)

  it('restores moments after the migration table by table, the new column and table included', async () => {
    for (const [i, m] of after.entries()) {
      const { url } = await restoreTo(m.at, `a${i}`)
      for (const t of NEW) {
        // The join table without a key: as of the chain's full.
        const expected = t === 'public._CourseToUser' ? atFull[t] : m.rows[t]
        expect(await tableRows(url, t), `${t} at moment ${i} after`).toEqual(expected)
      }
    }
  }, 120_000)
})

describe('the hard schema through a migration the chain carries', () => {
  let src: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  const created: string[] = []
  let tables: string[] = []
  const moments: { label: string; at: string; tables: string[]; rows: Record<string, string[]> }[] = []
  let migration: BackupResult
  const now = async () => (await query<{ at: Date }>(src.url, 'SELECT clock_timestamp() AS at'))[0].at
  const note = async (label: string, list: string[]) => {
    const rows = await databaseRows(src.url, list)
    const at = await now()
    await waitFor(async () => (await now()).getTime() > at.getTime() + 2, 'the clock to move on')
    moments.push({ label, at: at.toISOString(), tables: list, rows })
  }
  beforeAll(async () => {
    src = await createDatabase(inject('pgUrl'), 'hardmigr')
    await query(src.url, HARD_SCHEMA)
    await query(src.url, HARD_DATA)
    ops = await openOps({
      DATABASE_URL: src.url,
      LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-hardmigr-')),
      BACKUP_INCREMENTAL: 'on',
    })
    const full = await backupNow(ops, 'full')
    tables = (await ops.restores.plan({ point: { setId: full.setId }, target: { kind: 'new', database: 'not_made' } })).tables.map(
      (t) => t.table,
    )
    await query(
      src.url,
      `INSERT INTO app.accounts ("Display Name", score, meta) VALUES ('before', 4, '{"v": 2}');
       UPDATE app.tickets SET net = net + 1 WHERE id < 505; UPDATE app.codes SET label = 'relabelled' WHERE code = 'c1'`,
    )
    await note('before', tables)
    expect((await backupNow(ops, 'incremental')).type).toBe('incremental')
    // A migration on tables with identity and generated columns, a policy, a trigger, an index replica identity:
    // a column added with a default, one dropped, a new enum and a new table with an identity and a generated column.
    await query(
      src.url,
      `BEGIN;
       ALTER TABLE app.accounts ADD COLUMN region text NOT NULL DEFAULT 'eu';
       ALTER TABLE app.tickets DROP COLUMN title;
       ALTER TABLE app.codes ADD COLUMN note text;
       CREATE TYPE app.tier AS ENUM ('free', 'pro');
       CREATE TABLE app.plans (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tier app.tier NOT NULL, price numeric(8, 2),
                               gross numeric GENERATED ALWAYS AS (price * 1.2) STORED, account_id bigint REFERENCES app.accounts (id));
       COMMIT;`,
    )
    await query(src.url, `INSERT INTO app.plans (tier, price, account_id) VALUES ('free', 0, 100), ('pro', 9.99, 110)`)
    await query(
      src.url,
      `UPDATE app.accounts SET region = 'us', score = 3 WHERE id = 100; INSERT INTO app.accounts ("Display Name", score, region) VALUES ('after', 2, 'apac');
       INSERT INTO app.tickets (net) VALUES (77); UPDATE app.tickets SET id = id + 1000 WHERE id = 7;
       UPDATE app.codes SET note = 'noted', seq = DEFAULT WHERE code = 'c2'`,
    )
    await note('gap', tables)
    migration = await backupNow(ops, 'incremental')
    const withNew = [...tables, 'app.plans']
    await query(
      src.url,
      `INSERT INTO app.plans (tier, price) VALUES ('pro', 19); UPDATE app.plans SET price = 1 WHERE tier = 'free';
       DELETE FROM app.accounts WHERE id = 120; UPDATE app.codes SET code = 'c3b', note = 'moved' WHERE code = 'c3'`,
    )
    await note('after', withNew)
    expect((await backupNow(ops, 'incremental')).type).toBe('incremental')
  }, 180_000)
  afterAll(async () => {
    await ops?.close()
    for (const name of created) await query(inject('pgUrl'), `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {})
    await src?.drop()
  })

  it('carries the migration: an incremental, not a full', () => {
    expect(migration.type).toBe('incremental')
    expect(migration.note).toMatch(/app\.accounts: column region added/)
    expect(migration.note).toMatch(/app\.tickets: column title dropped/)
    expect(migration.note).toMatch(/app\.plans: joined the chain with 2 rows/)
  })

  it('restores moments before, across and after it table by table: identities, generated columns and the new table included', async () => {
    for (const m of moments) {
      const name = `hardmigr_${m.label}_${Date.now().toString(36)}`
      created.push(name)
      const r = await restoreNow(ops, { point: { time: m.at }, target: { kind: 'new', database: name } }, name)
      expect(r.report.ok, JSON.stringify(r.report.tables.filter((t) => !t.ok))).toBe(true)
      const u = new URL(src.url)
      u.pathname = `/${name}`
      for (const t of m.tables) expect(await tableRows(u.toString(), t), `${t} at ${m.label}`).toEqual(m.rows[t])
      if (m.label === 'after') {
        // The new table's generated column was computed by the target; its key and foreign key are there.
        const [g] = await query(u.toString(), `SELECT count(*) FILTER (WHERE gross <> price * 1.2)::int AS bad FROM app.plans`)
        expect(g.bad).toBe(0)
        const keys = await query<{ c: string }>(
          u.toString(),
          `SELECT conname AS c FROM pg_constraint WHERE conrelid = 'app.plans'::regclass ORDER BY 1`,
        )
        expect(keys.map((k) => k.c)).toEqual(['plans_account_id_fkey', 'plans_pkey'])
      }
    }
  }, 180_000)
})
