import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { captureSchema } from '../../src/core/backup/schema-capture'
import type { Ops } from '../../src/core/ops'
import type { RestoreResult } from '../../src/core/restore/service'
import { createDatabase, query } from '../helpers/db'
import { HARD_DATA, HARD_SCHEMA } from '../helpers/hard-schema'
import { backupNow, openOps } from '../helpers/ops'
import { restoreNow, tableRows } from '../helpers/restore'
import { waitFor } from '../helpers/wait'

async function schemaOf(url: string) {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
    const s = await captureSchema(c)
    // As sets: a parallel restore creates objects (and so their oids, the capture's order) in another order.
    return { pre: [...s.pre].sort(), post: [...s.post].sort() }
  } finally {
    await c.end()
  }
}

const servers = [
  { name: 'embedded PostgreSQL 17', url: inject('pgUrl') },
  { name: "the machine's PostgreSQL 15", url: inject('systemPgUrl') },
]

describe.each(servers)('restore round trip on a hard schema ($name)', ({ url }) => {
  let src: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  let setId: string
  const created: string[] = []
  beforeAll(async () => {
    if (!url) return // the machine has no PostgreSQL of its own (CI): those tests are skipped, saying so
    src = await createDatabase(url, 'rt')
    await query(src.url, HARD_SCHEMA)
    await query(src.url, HARD_DATA)
    ops = await openOps({
      DATABASE_URL: src.url,
      LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-restore-')),
      BACKUP_INCREMENTAL: 'off',
    })
    setId = (await backupNow(ops, 'full')).setId
  })
  afterAll(async () => {
    await ops?.close()
    for (const name of created) await query(url!, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {})
    await src?.drop()
  })

  it.skipIf(!url)('restores into a new database: the same schema, and every row equal to the source, row by row', async () => {
    const name = `rt_new_${Date.now().toString(36)}`
    created.push(name)
    const plan = await ops.restores.plan({ point: { setId }, target: { kind: 'new', database: name } })
    expect(plan.ok).toBe(true)
    expect(plan.target).toMatchObject({ mode: 'load', createsDatabase: true, database: name })
    const r: RestoreResult = await restoreNow(ops, { point: { setId }, target: { kind: 'new', database: name } }, name)
    expect(r.report.ok).toBe(true)
    expect(r.report.tables.every((t) => t.digestExpected && t.digestExpected === t.digestFound)).toBe(true)
    const restored = new URL(src.url)
    restored.pathname = `/${name}`
    // Row by row: every table's rows, in a stable order, as PostgreSQL prints them.
    for (const t of plan.tables) expect(await tableRows(restored.toString(), t.table), t.table).toEqual(await tableRows(src.url, t.table))
    expect(await schemaOf(restored.toString())).toEqual(await schemaOf(src.url))
    // Every index, partitions' included, is there and valid (the captured schema lists only the parents').
    const indexes = `SELECT c.relname AS t, pg_get_indexdef(i.indexrelid) AS def, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
                      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('app', 'Billing Ünïcode') ORDER BY 1, 2`
    expect(await query(restored.toString(), indexes)).toEqual(await query(src.url, indexes))
    // Generated columns were computed again, sequences continue after the values in use, the matview is populated.
    const [acc] = await query(restored.toString(), `SELECT count(*)::int AS n FROM app.accounts WHERE doubled = score * 2`)
    expect(acc.n).toBe(300)
    const [seq] = await query(
      restored.toString(),
      `SELECT nextval(pg_get_serial_sequence('"Billing Ünïcode"."Invoice Lines"', 'id'))::int AS v`,
    )
    const [max] = await query(src.url, `SELECT max(id)::int AS m FROM "Billing Ünïcode"."Invoice Lines"`)
    expect(seq.v).toBeGreaterThan(max.m as number)
    expect((await query(restored.toString(), 'SELECT count(*)::int AS n FROM app.totals'))[0].n).toBeGreaterThan(0)
    // The insert triggers exist and did not fire during the restore.
    expect((await query(restored.toString(), `SELECT count(*)::int AS n FROM app.trigger_log`))[0].n).toBe(0)
    expect((await query(restored.toString(), `SELECT count(*)::int AS n FROM app.oddities WHERE body = 'changed by a trigger'`))[0].n).toBe(
      0,
    )
    expect((await query(restored.toString(), `SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE 'oddities_%'`))[0].n).toBe(2)
    // The database is marked as a checked restore.
    const [mark] = await query(url!, `SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1`, [name])
    expect(mark.c).toMatch(/check passed/)
  })

  it.skipIf(!url)('restores in place atomically after a safety backup, and Undo brings back what was replaced', async () => {
    const before = await tableRows(src.url, 'app.oddities')
    await query(
      src.url,
      `DELETE FROM app.oddities WHERE id > 2; UPDATE app.accounts SET balance = -1 WHERE id < 150; DELETE FROM "Billing Ünïcode"."Invoice Lines" WHERE id % 2 = 0`,
    )
    const changed = {
      oddities: await tableRows(src.url, 'app.oddities'),
      accounts: await tableRows(src.url, 'app.accounts'),
      lines: await tableRows(src.url, 'Billing Ünïcode.Invoice Lines'),
    }
    const db = new URL(src.url).pathname.slice(1)
    const plan = await ops.restores.plan({ point: { setId }, target: { kind: 'in-place' } })
    expect(plan.target.mode).toBe('replace')
    expect(plan.safetyBackup).toBe(true)
    const odd = plan.tables.find((t) => t.table === 'app.oddities')!
    expect(odd).toMatchObject({ rowsNow: 2, rowsNowExact: true, rowsAfter: 4 })
    const r = await restoreNow(ops, { point: { setId }, target: { kind: 'in-place' } }, db)
    expect(r.report.ok).toBe(true)
    expect(r.safetySetId).toMatch(/-safety-/)
    expect(await tableRows(src.url, 'app.oddities')).toEqual(before)
    expect(await tableRows(src.url, 'app.trigger_log')).toEqual([]) // the insert triggers did not fire
    // The safety backup is catalogued as such, and Undo restores it.
    const sets = await ops.backups.list()
    expect(sets.find((s) => s.setId === r.safetySetId)?.manifest?.type).toBe('safety')
    const undo = await ops.restores.undo(r.restoreId, db, { actor: 'test' })
    const info = await ops.jobs.wait(undo.jobId)
    expect(info.state, info.error?.message).toBe('succeeded')
    expect(await tableRows(src.url, 'app.oddities')).toEqual(changed.oddities)
    expect(await tableRows(src.url, 'app.accounts')).toEqual(changed.accounts)
    expect(await tableRows(src.url, 'Billing Ünïcode.Invoice Lines')).toEqual(changed.lines)
    // Both are recorded with who and what, and in the audit log.
    const history = await ops.restores.history()
    expect(history.slice(0, 2).map((h) => [h.kind, h.outcome])).toEqual([
      ['undo', 'succeeded'],
      ['restore', 'succeeded'],
    ])
    const audit = await query(
      src.url,
      `SELECT actor, action, outcome, details FROM ops.audit_log WHERE action LIKE 'restore.%' ORDER BY id`,
    )
    expect(audit.slice(-2).map((a) => `${a.actor} ${a.action}:${a.outcome}`)).toEqual([
      'test restore.run:succeeded',
      'test restore.undo:succeeded',
    ])
    expect(audit.at(-2)!.details).toMatchObject({ restoreId: r.restoreId, safetySet: r.safetySetId })
  })
})

/** wal_level of a server (incrementals need logical). */
async function walLevel(url: string | null): Promise<string | null> {
  if (!url) return null
  return (await query<{ wal_level: string }>(url, 'SHOW wal_level'))[0].wal_level
}

const withWal = await Promise.all(servers.map(async (s) => ({ ...s, wal: await walLevel(s.url ?? null) })))

describe.each(withWal)('point-in-time round trip through identity and generated columns ($name)', ({ url, wal, name }) => {
  if (!url) {
    it.skip(`${name} is not running here (nothing on 127.0.0.1:5432)`, () => {})
    return
  }
  if (wal !== 'logical') {
    it.skip(`${name} runs with wal_level=${wal}: incremental backups need wal_level=logical, so only its fulls are tested (above)`, () => {})
    return
  }
  let src: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  const created: string[] = []
  const moments: { at: string; rows: Record<string, string[]> }[] = []
  let tables: string[] = []
  const rowsOf = async (u: string) => Object.fromEntries(await Promise.all(tables.map(async (t) => [t, await tableRows(u, t)] as const)))
  const now = async () => (await query<{ at: Date }>(src.url, 'SELECT clock_timestamp() AS at'))[0].at.toISOString()
  const note = async () => {
    moments.push({ at: await now(), rows: await rowsOf(src.url) })
    // The next change commits strictly after the noted moment.
    const at = moments.at(-1)!.at
    await waitFor(async () => (await now()) > at, 'the clock to pass the noted moment')
  }
  beforeAll(async () => {
    src = await createDatabase(url, 'rtpitr')
    await query(src.url, HARD_SCHEMA)
    await query(src.url, HARD_DATA)
    ops = await openOps({ DATABASE_URL: src.url, LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-rtpitr-')), BACKUP_INCREMENTAL: 'on' })
    const full = await backupNow(ops, 'full')
    expect(full.type).toBe('full')
    tables = (await ops.restores.plan({ point: { setId: full.setId }, target: { kind: 'new', database: 'not_made' } })).tables.map(
      (t) => t.table,
    )
    // Inside the first incremental: inserts, updates that leave identities alone, updates that change them, deletes.
    await query(
      src.url,
      `INSERT INTO app.accounts ("Display Name", score, meta) VALUES ('moved later', 4, '{"v": 2}'), ('stays', 5, '{}');
       INSERT INTO app.accounts ("Display Name", score) OVERRIDING SYSTEM VALUE VALUES ('chosen', 2);`,
    )
    await query(src.url, `UPDATE app.accounts SET score = score + 1, balance = balance + 1 WHERE id IN (100, 110, 120)`)
    await query(src.url, `UPDATE app.accounts SET id = DEFAULT, score = 6 WHERE "Display Name" = 'moved later'`)
    await query(src.url, `DELETE FROM app.accounts WHERE id = 130`)
    await query(
      src.url,
      `INSERT INTO app.tickets (title, net) VALUES ('default id', 10); INSERT INTO app.tickets (id, title, net) VALUES (9000, 'given id', 11);
       UPDATE app.tickets SET net = net + 1 WHERE id < 505; UPDATE app.tickets SET id = id + 1000 WHERE id = 7; DELETE FROM app.tickets WHERE id = 510`,
    )
    await query(
      src.url,
      `INSERT INTO app.codes (code, label) VALUES ('new', 'fresh'); UPDATE app.codes SET label = 'relabelled' WHERE code = 'c1';
       UPDATE app.codes SET seq = DEFAULT WHERE code = 'c2'; UPDATE app.codes SET code = 'c3b' WHERE code = 'c3'; DELETE FROM app.codes WHERE code = 'c4'`,
    )
    await note()
    expect((await backupNow(ops, 'incremental')).type).toBe('incremental')
    // Inside the second: more of the same, then changes after the last moment that must not come back.
    await query(
      src.url,
      `UPDATE app.accounts SET id = DEFAULT WHERE "Display Name" = 'stays'; UPDATE app.tickets SET title = 'renamed' WHERE id = 1007`,
    )
    await note()
    await query(src.url, `UPDATE app.codes SET seq = DEFAULT, label = 'later' WHERE code = 'c5'; DELETE FROM app.accounts WHERE id = 140`)
    await note()
    await query(src.url, `UPDATE app.accounts SET id = DEFAULT WHERE "Display Name" = 'chosen'; DELETE FROM app.tickets WHERE id = 9000`)
    expect((await backupNow(ops, 'incremental')).type).toBe('incremental')
  }, 120_000)
  afterAll(async () => {
    await ops?.close()
    for (const db of created) await query(url, `DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`).catch(() => {})
    await src?.drop()
  })

  it('restores every noted moment into a new database, table by table, identities and generated columns included', async () => {
    expect(new Set(moments.map((m) => JSON.stringify(m.rows))).size).toBe(moments.length)
    for (const [i, m] of moments.entries()) {
      const db = `rtpitr_${i}_${Date.now().toString(36)}`
      created.push(db)
      const r = await restoreNow(ops, { point: { time: m.at }, target: { kind: 'new', database: db } }, db)
      expect(r.report.ok, JSON.stringify(r.report.tables.filter((t) => !t.ok))).toBe(true)
      const u = new URL(src.url)
      u.pathname = `/${db}`
      expect(await rowsOf(u.toString()), `moment ${i}`).toEqual(m.rows)
      // Generated columns were computed by the target, not copied.
      const [g] = await query(u.toString(), `SELECT count(*) FILTER (WHERE gross <> net * 1.2)::int AS bad FROM app.tickets`)
      expect(g.bad).toBe(0)
    }
  }, 240_000)

  it('restores a moment in place (one transaction, triggers off) and the rows match', async () => {
    const m = moments[1]
    const db = new URL(src.url).pathname.slice(1)
    const r = await restoreNow(
      ops,
      { point: { time: m.at }, tables: ['app.accounts', 'app.tickets', 'app.codes'], target: { kind: 'in-place' } },
      db,
    )
    expect(r.report.ok).toBe(true)
    for (const t of ['app.accounts', 'app.tickets', 'app.codes']) expect(await tableRows(src.url, t), t).toEqual(m.rows[t])
  }, 120_000)
})
