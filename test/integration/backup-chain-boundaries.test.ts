import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { chains, readCatalog } from '../../src/core/backup/catalog'
import { withDatabase } from '../../src/core/restore/plan'
import type { Ops } from '../../src/core/ops'
import { createDatabase, query } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { restoreNow, tableRows } from '../helpers/restore'

/**
 * A table dropped and created again under the same name and shape between two backups: the change stream
 * never held the new table's rows (it was not published) nor the drop. The chain must not carry on as if
 * nothing happened (a restore would bring back the old rows and pass its check): it ends at the last set
 * before, and the next full holds the new rows.
 */
describe('a table dropped and created again within a chain', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  const ddl = `CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)`
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'recreate')
    await query(db.url, `${ddl}; INSERT INTO notes SELECT g, 'old ' || g FROM generate_series(1, 50) g`)
    ops = await openOps({ DATABASE_URL: db.url, LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-recreate-')), BACKUP_INCREMENTAL: 'on' })
  })
  afterAll(async () => {
    await ops?.close()
    await db?.drop()
  })

  it('ends the chain at the set before it, says which table and why, and the full that follows holds the new rows', async () => {
    await backupNow(ops, 'full')
    await query(db.url, `UPDATE notes SET body = 'changed' WHERE id = 1`)
    const before = await backupNow(ops, 'incremental')
    expect(before.type).toBe('incremental')
    // Dropped and made again exactly as it was, with other rows.
    await query(db.url, `BEGIN; DROP TABLE notes; ${ddl}; INSERT INTO notes SELECT g, 'new ' || g FROM generate_series(1, 30) g; COMMIT`)
    const [{ t: afterRecreate }] = await query<{ t: Date }>(db.url, `SELECT clock_timestamp() AS t`)

    const r = await backupNow(ops, 'incremental')
    // The incremental ended the chain and a full started the next one, saying so.
    expect(r.type).toBe('full')
    expect(r.note).toMatch(/public\.notes was dropped and created again since the last backup/)
    expect(r.endedChain?.coversTo).toBe(before.snapshotTime)
    const [next, old] = chains(await readCatalog(ops.backups.storage()))
    const last = old.sets.at(-1)!
    expect(last.endsChain?.cut).toMatchObject({ table: 'public.notes', time: before.snapshotTime })
    expect(last.changes?.transactions).toBe(0)
    expect(next.full.setId).toBe(r.setId)

    // Between the last set before and the new full, no chain covers: the planner says so instead of restoring old rows.
    await expect(
      ops.restores.plan({ point: { time: afterRecreate.toISOString() }, target: { kind: 'new', database: 'never' } }),
    ).rejects.toThrow(/No backup chain covers/)
    // The old chain still restores exactly to its end; the new full holds the new rows.
    const oldDb = `${new URL(db.url).pathname.slice(1)}_old`
    await restoreNow(ops, { point: { time: before.snapshotTime }, target: { kind: 'new', database: oldDb } }, oldDb)
    const oldRows = await tableRows(withDatabase(db.url, oldDb), 'public.notes')
    expect(oldRows).toHaveLength(50)
    expect(oldRows.join('\n')).toContain('changed')
    const newDb = `${new URL(db.url).pathname.slice(1)}_new`
    await restoreNow(ops, { point: { setId: r.setId }, target: { kind: 'new', database: newDb } }, newDb)
    const newRows = await tableRows(withDatabase(db.url, newDb), 'public.notes')
    expect(newRows).toHaveLength(30)
    expect(newRows.every((x) => x.includes('new '))).toBe(true)
    for (const d of [oldDb, newDb]) await query(db.url, `DROP DATABASE IF EXISTS "${d}" WITH (FORCE)`)
  }, 120_000)
})

/**
 * A full taken while a chain is live starts the next chain. The changes since the live chain's last set are
 * still in its slot: they are read into a last incremental before the slot goes, so the moments between the
 * two chains stay restorable (a new full used to drop them silently).
 */
describe('a full taken while a chain is live', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'handover')
    await query(db.url, `CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL); INSERT INTO notes VALUES (1, 'first')`)
    ops = await openOps({ DATABASE_URL: db.url, LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-handover-')), BACKUP_INCREMENTAL: 'on' })
  })
  afterAll(async () => {
    await ops?.close()
    await db?.drop()
  })

  it('closes the live chain with a last incremental first: a moment just before the new full restores, and says so', async () => {
    await backupNow(ops, 'full')
    await query(db.url, `INSERT INTO notes VALUES (2, 'in the first incremental')`)
    const inc = await backupNow(ops, 'incremental')
    await query(db.url, `INSERT INTO notes VALUES (3, 'after the last incremental')`)
    const [{ t: moment }] = await query<{ t: Date }>(db.url, `SELECT clock_timestamp() AS t`)
    await query(db.url, `INSERT INTO notes VALUES (4, 'after the moment')`)

    const full = await backupNow(ops, 'full')
    expect(full.note).toMatch(/previous chain was closed first by a last incremental \S+ \(2 transactions since /)
    const [next, old] = chains(await readCatalog(ops.backups.storage()))
    expect(next.full.setId).toBe(full.setId)
    const last = old.sets.at(-1)!
    expect(last.type).toBe('incremental')
    expect(last.parent).toBe(inc.setId)
    expect(last.endsChain).toBeUndefined()
    // The old chain reaches past the new full's snapshot: no moment between the two goes uncovered.
    expect(new Date(last.snapshot.time).getTime()).toBeGreaterThanOrEqual(new Date(full.snapshotTime).getTime())
    // Only the new chain's slot is left.
    const slots = await query<{ slot_name: string }>(
      db.url,
      `SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`,
    )
    expect(slots.map((s) => s.slot_name)).toEqual([next.full.snapshot.slot])

    const name = `${new URL(db.url).pathname.slice(1)}_at`
    await restoreNow(ops, { point: { time: moment.toISOString() }, target: { kind: 'new', database: name } }, name)
    expect(await tableRows(withDatabase(db.url, name), 'public.notes')).toEqual([
      '1\tfirst',
      '2\tin the first incremental',
      '3\tafter the last incremental',
    ])
    await query(db.url, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  }, 120_000)
})
