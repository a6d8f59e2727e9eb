import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createGunzip } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { chains, readCatalog } from '../../src/core/backup/catalog'
import type { ChangeLine } from '../../src/core/backup/incremental'
import type { Manifest } from '../../src/core/backup/manifest'
import type { BackupResult } from '../../src/core/backup/service'
import { loadConfig } from '../../src/core/config/config'
import { silentLogger } from '../../src/core/log/logger'
import { createOps, type Ops } from '../../src/core/ops'
import { createDatabase, query } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { seedExamforge } from '../helpers/seed'

const root = resolve(__dirname, '../..')

async function changeLines(ops: Ops, setId: string): Promise<ChangeLine[]> {
  const m = (await readCatalog(ops.backups.storage())).find((s) => s.setId === setId)!.manifest!
  const stream = (await ops.backups.storage().get(m.objects[0].key)).pipe(createGunzip())
  let text = ''
  for await (const c of stream) text += c
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ChangeLine)
}

const slotOf = async (url: string) =>
  await query<{ slot_name: string; confirmed: string }>(
    url,
    `SELECT slot_name, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE database = current_database()`,
  )

async function dropSlotsAndDb(db: Awaited<ReturnType<typeof createDatabase>>) {
  for (const s of await slotOf(db.url)) await query(db.url, 'SELECT pg_drop_replication_slot($1)', [s.slot_name]).catch(() => {})
  await db.drop()
}

describe('incremental backups from the change stream', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  let dir: string
  const env = () => ({ DATABASE_URL: db.url, LOCAL_BACKUP_PATH: dir })
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'inc')
    await seedExamforge(db.url, 0.05)
    await query(
      db.url,
      `CREATE TABLE no_pk (a int, b text); ALTER TABLE no_pk REPLICA IDENTITY FULL; INSERT INTO no_pk VALUES (1, 'one'), (2, 'two')`,
    )
    dir = mkdtempSync(join(tmpdir(), 'ops-inc-'))
    ops = await openOps(env())
  })
  afterAll(async () => {
    await ops?.close()
    if (db) await dropSlotsAndDb(db)
  })

  let full: BackupResult
  it('with no chain yet, an incremental is a full that starts one, and says so', async () => {
    full = await backupNow(ops, 'incremental')
    expect(full.type).toBe('full')
    expect(full.note).toMatch(/no backup chain yet/)
    const slots = await slotOf(db.url)
    expect(slots).toHaveLength(1)
    const m = (await readCatalog(ops.backups.storage())).find((s) => s.setId === full.setId)!.manifest!
    expect(m.snapshot).toMatchObject({ method: 'replication-slot', slot: slots[0].slot_name })
  })

  let firstInc: BackupResult
  it('captures inserts, updates, deletes and truncates, with keys, in commit order', async () => {
    const [{ n: answers }] = await query<{ n: string }>(db.url, `SELECT count(*) AS n FROM question_responses WHERE "responseId" IN (1, 2)`)
    expect(Number(answers)).toBeGreaterThan(0)
    await query(
      db.url,
      `INSERT INTO plans (id, code, name, "priceCents") VALUES (99, 'enterprise', 'Enterprise', 49900);
       UPDATE users SET "displayName" = 'Renamed ' || id WHERE id <= 3;
       DELETE FROM quiz_responses WHERE id IN (1, 2);
       UPDATE no_pk SET b = 'uno' WHERE a = 1;
       DELETE FROM no_pk WHERE a = 2;
       TRUNCATE "AuditEvent";`,
    )
    firstInc = await backupNow(ops, 'incremental')
    expect(firstInc.type).toBe('incremental')
    expect(firstInc.changes).toMatchObject({ inserts: 1, truncates: 1 })
    expect(firstInc.changes!.updates).toBe(4)
    // Deleting two quiz responses cascades to their answers: every deleted row is in the stream (plus the no_pk row).
    expect(firstInc.changes!.deletes).toBe(2 + Number(answers) + 1)
    const lines = await changeLines(ops, firstInc.setId)
    const ins = lines.find((l) => l.op === 'insert')!
    expect(ins).toMatchObject({ table: ['public', 'plans'], new: { id: '99', code: 'enterprise', priceCents: '49900' } })
    const upd = lines.find((l) => l.op === 'update' && l.table[1] === 'users')!
    expect(upd).toMatchObject({ key: { id: '1' }, new: { displayName: 'Renamed 1' } })
    expect(lines.find((l) => l.op === 'delete' && l.table[1] === 'quiz_responses')).toMatchObject({ key: { id: '1' } })
    // REPLICA IDENTITY FULL: the whole old row identifies it.
    expect(lines.find((l) => l.op === 'update' && l.table[1] === 'no_pk')).toMatchObject({
      key: { a: '1', b: 'one' },
      new: { a: '1', b: 'uno' },
    })
    expect(lines.find((l) => l.op === 'delete' && l.table[1] === 'no_pk')).toMatchObject({ key: { a: '2', b: 'two' } })
    expect(lines.find((l) => l.op === 'truncate')).toMatchObject({ tables: [['public', 'AuditEvent']] })
    expect(lines[0].op).toBe('begin')
    expect(lines.at(-1)!.op).toBe('commit')
    expect(JSON.stringify(lines)).not.toMatch(/"ops"/)
  })

  it('advances the slot only to what the stored set holds', async () => {
    const m = (await readCatalog(ops.backups.storage())).find((s) => s.setId === firstInc.setId)!.manifest! as Manifest
    expect((await slotOf(db.url))[0].confirmed).toBe(m.snapshot.lsn)
  })

  it('a process killed after storing a set and before advancing the slot loses nothing and stores nothing twice', async () => {
    if (!existsSync(join(root, 'out/host/cli.js'))) throw new Error('The CLI is not built: run "npm run build" (npm test does it first).')
    const before = (await slotOf(db.url))[0].confirmed
    await query(db.url, `UPDATE teams SET name = 'Crash Team' WHERE id = 1`)
    const killed = await new Promise<{ code: number | null; signal: string | null }>((done) => {
      const child = spawn(process.execPath, [join(root, 'out/host/cli.js'), 'backup', 'incremental', '--json'], {
        env: { PATH: process.env.PATH!, HOME: process.env.HOME!, OPS_DATA_DIR: dir, ...env(), OPS_FAULT: 'after-stored' },
        stdio: 'ignore',
      })
      child.on('exit', (code, signal) => done({ code, signal }))
    })
    expect(killed.signal).toBe('SIGKILL')
    expect((await slotOf(db.url))[0].confirmed).toBe(before) // the slot did not move
    const chain = chains(await readCatalog(ops.backups.storage()))[0]
    const crashed = chain.sets.at(-1)!
    expect(crashed.changes!.updates).toBe(1) // the killed run's set is complete
    await query(db.url, `UPDATE teams SET name = 'After Crash' WHERE id = 2`)
    const next = await backupNow(ops, 'incremental')
    const lines = await changeLines(ops, next.setId)
    const updates = lines.filter((l) => l.op === 'update') as Extract<ChangeLine, { op: 'update' }>[]
    expect(updates.map((u) => u.new.name)).toEqual(['After Crash'])
  })

  it('a schema change since the last set turns the next incremental into a full, and says so', async () => {
    await query(db.url, `ALTER TABLE teams ADD COLUMN region text`)
    const r = await backupNow(ops, 'incremental')
    expect(r.type).toBe('full')
    expect(r.note).toMatch(/schema changed/)
    // The new chain's slot replaces the old one.
    expect(await slotOf(db.url)).toHaveLength(1)
  })

  it('Health watches the slot: healthy under the threshold, degraded over it with what to do', async () => {
    const { backupSlotProbe } = await import('../../src/core/health/probes/backup-slot')
    const signal = new AbortController().signal
    const fine = await backupSlotProbe({ url: db.url, warnBytes: 1024 ** 3 }).run(signal)
    expect(fine.status).toBe('healthy')
    expect(fine.details?.walStatus).toBe('reserved')
    await query(db.url, `INSERT INTO plans (id, code, name, "priceCents") VALUES (98, 'x', 'X', 1)`)
    const over = await backupSlotProbe({ url: db.url, warnBytes: 1 }).run(signal)
    expect(over.status).toBe('degraded')
    expect(over.reason).toMatch(/holds .* of WAL .* run an incremental backup, or drop the slot/)
  })

  it('dropping the slot needs its name typed, ends the chain, and the next backup is a full', async () => {
    const [slot] = await ops.backups.slots()
    await expect(ops.backups.dropSlot(slot.name, 'yes', 'test')).rejects.toThrow(/Type the slot's name/)
    await ops.backups.dropSlot(slot.name, slot.name, 'test')
    expect(await slotOf(db.url)).toHaveLength(0)
    const r = await backupNow(ops, 'incremental')
    expect(r.type).toBe('full')
    expect(r.note).toMatch(/slot .* is gone/)
    const audit = await query<{ outcome: string }>(db.url, `SELECT outcome FROM ops.audit_log WHERE action = 'backup.drop-slot'`)
    expect(audit.map((a) => a.outcome)).toEqual(['dropped'])
  })
})

describe('a slot only when incrementals are in use', () => {
  it('a full asked for on its own holds no WAL back; with incrementals scheduled, a full starts a chain', async () => {
    const db = await createDatabase(inject('pgUrl'), 'noslot')
    await seedExamforge(db.url, 0.02)
    const backups = mkdtempSync(join(tmpdir(), 'ops-noslot-'))
    try {
      const plain = await openOps({ DATABASE_URL: db.url, LOCAL_BACKUP_PATH: backups })
      try {
        const r = await backupNow(plain, 'full')
        expect(r.type).toBe('full')
        expect(await slotOf(db.url)).toHaveLength(0)
      } finally {
        await plain.close()
      }
      // Scheduled incrementals (not started here: schedules run only in the agent) make every full start a chain.
      const scheduled = await openOps({ DATABASE_URL: db.url, LOCAL_BACKUP_PATH: backups, BACKUP_INCREMENTAL_EVERY: '1h' })
      try {
        await backupNow(scheduled, 'full')
        expect(await slotOf(db.url)).toHaveLength(1)
      } finally {
        await scheduled.close()
      }
      // Once a chain is followed, a full asked for on its own moves it forward (a new slot replaces the old).
      const again = await openOps({ DATABASE_URL: db.url, LOCAL_BACKUP_PATH: backups })
      try {
        const before = (await slotOf(db.url))[0].slot_name
        await backupNow(again, 'full')
        const after = await slotOf(db.url)
        expect(after).toHaveLength(1)
        expect(after[0].slot_name).not.toBe(before)
      } finally {
        await again.close()
      }
    } finally {
      await dropSlotsAndDb(db)
    }
  })
})

describe('incremental prerequisites', () => {
  it('lists every table without a replica identity with the exact fix, and a full still works without a chain', async () => {
    const db = await createDatabase(inject('pgUrl'), 'pre')
    await query(
      db.url,
      `CREATE TABLE "Keyless Table" (v int); INSERT INTO "Keyless Table" VALUES (1); CREATE TABLE keyed (id int PRIMARY KEY)`,
    )
    const ops = await createOps({
      config: loadConfig({
        env: { DATABASE_URL: db.url, LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-pre-')) },
        dataDir: mkdtempSync(join(tmpdir(), 'ops-d-')),
      }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    try {
      const p = await ops.backups.prerequisites()
      expect(p.ok).toBe(false)
      expect(p.tablesWithoutReplicaIdentity).toEqual([
        { table: 'public."Keyless Table"', fix: 'ALTER TABLE public."Keyless Table" REPLICA IDENTITY FULL;  -- or add a primary key' },
      ])
      const r = await backupNow(ops, 'incremental')
      expect(r.type).toBe('full')
      expect(r.note).toMatch(/not possible yet: .*REPLICA IDENTITY FULL/)
      expect(await slotOf(db.url)).toHaveLength(0)
      const { backupSlotProbe } = await import('../../src/core/health/probes/backup-slot')
      expect((await backupSlotProbe({ url: db.url, warnBytes: 1 }).run(new AbortController().signal)).status).toBe('not_configured')
      // No publication was created, so the keyless table's updates keep working.
      await query(db.url, `UPDATE "Keyless Table" SET v = 2`)
    } finally {
      await ops.close()
      await dropSlotsAndDb(db)
    }
  })
})
