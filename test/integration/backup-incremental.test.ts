import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { chains, readCatalog } from '../../src/core/backup/catalog'
import { decompressor } from '../../src/core/backup/compression'
import { runIncremental, type ChangeLine } from '../../src/core/backup/incremental'
import { schemaHash } from '../../src/core/backup/full'
import { captureSchema } from '../../src/core/backup/schema-capture'
import { parseCompression } from '../../src/core/backup/compression'
import { newSetId } from '../../src/core/backup/manifest'
import pg from 'pg'
import type { Manifest } from '../../src/core/backup/manifest'
import type { BackupResult } from '../../src/core/backup/service'
import { loadConfig } from '../../src/core/config/config'
import { silentLogger } from '../../src/core/log/logger'
import { createOps, type Ops } from '../../src/core/ops'
import { createDatabase, query } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { seedExamforge } from '../helpers/seed'
import { cli } from '../helpers/cli'
import { waitFor } from '../helpers/wait'

const root = resolve(__dirname, '../..')

async function changeLines(ops: Ops, setId: string): Promise<ChangeLine[]> {
  const m = (await readCatalog(ops.backups.storage())).find((s) => s.setId === setId)!.manifest!
  // In the set's own codec (zstd by default; gzip and none too).
  const stored = await ops.backups.storage().get(m.objects.find((o) => o.kind === 'changes')!.key)
  const codec = decompressor(m.compression)
  const stream = codec ? stored.pipe(codec) : stored
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
    await db?.drop()
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

  it('a column added is carried through by the chain: the change stream says where, and how to take the restored table there', async () => {
    await query(db.url, `UPDATE teams SET name = 'before region' WHERE id = 1`)
    await query(db.url, `ALTER TABLE teams ADD COLUMN region text; UPDATE teams SET region = 'eu' WHERE id = 2`)
    const r = await backupNow(ops, 'incremental')
    expect(r.type).toBe('incremental')
    expect(r.endedChain).toBeNull()
    expect(r.note).toMatch(
      /The schema changed and the chain carries the change through \(no new full needed\): public\.teams: column region added/,
    )
    const lines = await changeLines(ops, r.setId)
    // The statement comes just before the first row of the new shape, after the row written before it.
    const ops_ = lines.map((l) => l.op).filter((o) => o !== 'begin' && o !== 'commit')
    expect(ops_).toEqual(['update', 'ddl', 'update'])
    expect(lines.find((l) => l.op === 'ddl')).toMatchObject({
      table: ['public', 'teams'],
      added: ['region'],
      dropped: [],
      statements: ['ALTER TABLE public.teams ADD COLUMN region text'],
    })
  })

  it('a column added before the next incremental but first written after it is carried by the set that sees its first row', async () => {
    await query(db.url, `ALTER TABLE teams ADD COLUMN tier text NOT NULL DEFAULT 'basic'`)
    const first = await backupNow(ops, 'incremental')
    expect(first.type).toBe('incremental')
    const m = (await readCatalog(ops.backups.storage())).find((s) => s.setId === first.setId)!.manifest!
    expect(m.schemaChange?.pending?.['public.teams']?.add.tier).toEqual([
      `ALTER TABLE public.teams ADD COLUMN tier text DEFAULT 'basic'`,
      'ALTER TABLE public.teams ALTER COLUMN tier DROP DEFAULT',
      "ALTER TABLE public.teams ALTER COLUMN tier SET DEFAULT 'basic'::text",
      'ALTER TABLE public.teams ALTER COLUMN tier SET NOT NULL',
    ])
    await query(db.url, `UPDATE teams SET tier = 'gold' WHERE id = 1`)
    const second = await backupNow(ops, 'incremental')
    expect(second.type).toBe('incremental')
    const ddl = (await changeLines(ops, second.setId)).find((l) => l.op === 'ddl')
    expect(ddl).toMatchObject({ table: ['public', 'teams'], added: ['tier'] })
    const after = (await readCatalog(ops.backups.storage())).find((s) => s.setId === second.setId)!.manifest!
    expect(after.schemaChange?.pending).toBeUndefined()
  })

  it('a schema change the chain cannot carry (a column retyped) turns the next incremental into a full, and says why', async () => {
    await query(db.url, `ALTER TABLE teams ALTER COLUMN slug TYPE varchar(300)`)
    const r = await backupNow(ops, 'incremental')
    expect(r.type).toBe('full')
    expect(r.note).toMatch(/schema changed .*not carried through: the column slug of public\.teams changed \(its type/)
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
      await db.drop()
    }
  })
})

describe('incremental prerequisites', () => {
  it('a table without a replica identity does not stop a chain: it is left out of the publication, listed with its fix, and keeps working', async () => {
    const db = await createDatabase(inject('pgUrl'), 'pre')
    await query(
      db.url,
      `CREATE TABLE "Keyless Table" (v int); INSERT INTO "Keyless Table" VALUES (1); CREATE TABLE keyed (id int PRIMARY KEY);
       CREATE PUBLICATION examforge_ops FOR ALL TABLES;`, // as earlier versions made it
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
      expect(p.ok).toBe(true)
      expect(p.tablesWithoutReplicaIdentity).toEqual([
        { table: 'public."Keyless Table"', fix: 'ALTER TABLE public."Keyless Table" REPLICA IDENTITY FULL;  -- or add a primary key' },
      ])
      expect(p.notes.join(' ')).toMatch(/backed up by full backups only .*public."Keyless Table"/)
      const r = await backupNow(ops, 'incremental')
      expect(r.type).toBe('full')
      expect(r.fullsOnly).toEqual(['public."Keyless Table"'])
      expect(r.note).toMatch(/backed up by full backups only .*public."Keyless Table"/)
      expect(await slotOf(db.url)).toHaveLength(1)
      // The old publication FOR ALL TABLES was replaced by one that holds only tables with a replica identity.
      expect(await publishedTables(db.url)).toEqual({ all: false, tables: ['public.keyed'] })
      await query(db.url, `UPDATE "Keyless Table" SET v = 2; DELETE FROM "Keyless Table" WHERE v = 2; INSERT INTO keyed VALUES (1)`)
      const inc = await backupNow(ops, 'incremental')
      expect(inc.type).toBe('incremental')
      expect(inc.fullsOnly).toEqual(['public."Keyless Table"'])
      expect(inc.note).toMatch(/backed up by full backups only/)
      expect(inc.changes).toMatchObject({ inserts: 1, updates: 0, deletes: 0 })
      const { backupSlotProbe } = await import('../../src/core/health/probes/backup-slot')
      const health = await backupSlotProbe({ url: db.url, warnBytes: 1024 ** 3 }).run(new AbortController().signal)
      expect(health.status).toBe('healthy')
      expect(health.reason).toMatch(/backed up by full backups only .*public."Keyless Table"/)
    } finally {
      await ops.close()
      await db.drop()
    }
  })
})

async function publishedTables(url: string) {
  const [pub] = await query<{ all: boolean }>(url, `SELECT puballtables AS all FROM pg_publication WHERE pubname = 'examforge_ops'`)
  const tables = await query<{ t: string }>(
    url,
    `SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = 'examforge_ops' ORDER BY 1`,
  )
  return { all: pub?.all ?? null, tables: tables.map((t) => t.t) }
}

describe('tables created while a chain runs', () => {
  it('a new table without a key keeps its updates and deletes in production, is reported, and one with a key is added to the publication', async () => {
    const db = await createDatabase(inject('pgUrl'), 'newtab')
    await seedExamforge(db.url, 0.02)
    const ops = await openOps({
      DATABASE_URL: db.url,
      LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-newtab-')),
      BACKUP_INCREMENTAL: 'on',
    })
    try {
      expect((await backupNow(ops, 'full')).fullsOnly).toEqual([])
      // As a Prisma migration makes an implicit many-to-many table: no primary key.
      await query(
        db.url,
        `CREATE TABLE "_UserTeams" ("A" int NOT NULL, "B" int NOT NULL); CREATE UNIQUE INDEX "_UserTeams_AB" ON "_UserTeams" ("A", "B")`,
      )
      await query(db.url, `INSERT INTO "_UserTeams" VALUES (1, 1), (2, 1)`)
      await query(db.url, `UPDATE "_UserTeams" SET "B" = 2 WHERE "A" = 1; DELETE FROM "_UserTeams" WHERE "A" = 2`)
      await query(db.url, `CREATE TABLE badges (id int PRIMARY KEY, name text); INSERT INTO badges VALUES (1, 'first')`)
      // A new table without a replica identity cannot be followed: the chain ends and a full starts the next.
      const r = await backupNow(ops, 'incremental')
      expect(r.type).toBe('full')
      expect(r.fullsOnly).toEqual(['public."_UserTeams"'])
      // The fix offered uses the unique index the table already has.
      expect((await ops.backups.prerequisites()).tablesWithoutReplicaIdentity).toEqual([
        {
          table: 'public."_UserTeams"',
          fix: 'ALTER TABLE public."_UserTeams" REPLICA IDENTITY USING INDEX "_UserTeams_AB";  -- or add a primary key',
        },
      ])
      expect(r.note).toMatch(/public."_UserTeams"/)
      expect((await publishedTables(db.url)).tables).toContain('public.badges')
      expect((await publishedTables(db.url)).tables).not.toContain('public._UserTeams')
      // Still fine after the backup, and in the next incremental.
      await query(db.url, `UPDATE "_UserTeams" SET "B" = 3; DELETE FROM "_UserTeams"; UPDATE badges SET name = 'renamed'`)
      const inc = await backupNow(ops, 'incremental')
      expect(inc.type).toBe('incremental')
      expect(inc.changes).toMatchObject({ updates: 1, deletes: 0 })
      expect(inc.fullsOnly).toEqual(['public."_UserTeams"'])
      const { backupSlotProbe } = await import('../../src/core/health/probes/backup-slot')
      const health = await backupSlotProbe({ url: db.url, warnBytes: 1024 ** 3 }).run(new AbortController().signal)
      expect(health.reason).toMatch(/public."_UserTeams"/)
    } finally {
      await ops.close()
      await db.drop()
    }
  })
})

describe('a full without a chain', () => {
  it('says that point-in-time restore needs incrementals, how to turn them on and what their slot costs (CLI)', async () => {
    const db = await createDatabase(inject('pgUrl'), 'nochain')
    await seedExamforge(db.url, 0.02)
    try {
      const out = await cli(['backup', 'full'], { DATABASE_URL: db.url, LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-nochain-')) })
      expect(out.code, out.stderr).toBe(0)
      expect(out.stdout).toMatch(
        /Note: This full backup started no chain, so it restores only its own moment: point-in-time restore needs incremental backups\./,
      )
      expect(out.stdout).toMatch(/BACKUP_INCREMENTAL_EVERY=15m .* BACKUP_INCREMENTAL=on/)
      expect(out.stdout).toMatch(/keeps the WAL written between two incrementals on the database server: about [\d.]+ [KMG]?B an hour/)
      expect(await slotOf(db.url)).toHaveLength(0)
      // Turned off on purpose: nothing to say.
      const off = await cli(['backup', 'full', '--json'], {
        DATABASE_URL: db.url,
        LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-nochain-')),
        BACKUP_INCREMENTAL: 'off',
      })
      expect(JSON.parse(off.stdout).result.note).toBeNull()
    } finally {
      await db.drop()
    }
  })
})

describe('slots of backups that did not finish', () => {
  it('a full killed mid-way leaves its slot: Health names it with the WAL it holds, and the next backup drops it, never the chain’s', async () => {
    const db = await createDatabase(inject('pgUrl'), 'orphan')
    await seedExamforge(db.url, 0.3)
    const dir = mkdtempSync(join(tmpdir(), 'ops-orphan-'))
    const env = { DATABASE_URL: db.url, LOCAL_BACKUP_PATH: dir, BACKUP_INCREMENTAL: 'on', BACKUP_CHUNK_MB: '1', BACKUP_PARALLELISM: '1' }
    const ops = await openOps(env)
    try {
      await backupNow(ops, 'full')
      const [live] = await slotOf(db.url)
      // A second full, killed once it has started writing data: its new slot stays behind.
      const killed = await new Promise<string | null>((done) => {
        const child = spawn(process.execPath, [join(root, 'out/host/cli.js'), 'backup', 'full'], {
          env: { PATH: process.env.PATH!, HOME: process.env.HOME!, OPS_DATA_DIR: mkdtempSync(join(tmpdir(), 'ops-orphan-d-')), ...env },
          stdio: 'ignore',
        })
        const timer = setInterval(() => {
          const running = readdirSync(join(dir, 'sets')).filter((s) => !existsSync(join(dir, 'sets', s, 'manifest.json')))
          if (running.some((s) => existsSync(join(dir, 'sets', s, 'data')))) {
            clearInterval(timer)
            child.kill('SIGKILL')
          }
        }, 5)
        child.on('exit', (_c, signal) => {
          clearInterval(timer)
          done(signal)
        })
      })
      expect(killed).toBe('SIGKILL')
      const slots = await slotOf(db.url)
      expect(slots).toHaveLength(2)
      const orphan = slots.find((s) => s.slot_name !== live.slot_name)!.slot_name
      // Its sessions end once the server notices the process is gone.
      await waitFor(async () => (await ops.backups.slots()).find((s) => s.name === orphan)?.orphan, 'the killed backup’s sessions to end')
      expect((await ops.backups.slots()).find((s) => s.name === live.slot_name)?.orphan).toBe(false)
      await query(db.url, `UPDATE users SET "displayName" = 'while orphaned' WHERE id = 1`)
      const { backupSlotProbe } = await import('../../src/core/health/probes/backup-slot')
      const health = await backupSlotProbe({ url: db.url, warnBytes: 1024 ** 3, catalog: () => ops.backups.list() }).run(
        new AbortController().signal,
      )
      expect(health.status).toBe('degraded')
      expect(health.reason).toMatch(
        new RegExp(
          `The slot ${orphan} is used by no backup chain .* holds [\\d.]+ [KMG]?B of WAL: drop it on the Backups page .*drop-slot`,
        ),
      )
      expect(health.details?.orphans).toMatch(orphan)
      // The next backup (an incremental of the live chain) drops it, and says so.
      const inc = await backupNow(ops, 'incremental')
      expect(inc.type).toBe('incremental')
      expect(inc.changes!.updates).toBe(1)
      expect(inc.droppedSlots.map((d) => d.name)).toEqual([orphan])
      expect(inc.note).toMatch(new RegExp(`Dropped the replication slot ${orphan} .* that a backup which did not finish left behind`))
      expect((await slotOf(db.url)).map((s) => s.slot_name)).toEqual([live.slot_name])
      const audit = await query<{ target: string }>(db.url, `SELECT target FROM ops.audit_log WHERE action = 'backup.drop-orphan-slot'`)
      expect(audit.map((a) => a.target)).toEqual([orphan])
      expect(
        (await backupSlotProbe({ url: db.url, warnBytes: 1024 ** 3, catalog: () => ops.backups.list() }).run(new AbortController().signal))
          .status,
      ).toBe('healthy')
    } finally {
      await ops.close()
      await db.drop()
    }
  }, 120_000)
})

describe('a table that changes shape while an incremental reads the stream', () => {
  it('stores nothing of the new shape: a normal incremental stops and says the chain must end; a final one stops just before it', async () => {
    const db = await createDatabase(inject('pgUrl'), 'shape')
    await seedExamforge(db.url, 0.02)
    const ops = await openOps({
      DATABASE_URL: db.url,
      LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-shape-')),
      BACKUP_INCREMENTAL: 'on',
    })
    try {
      await backupNow(ops, 'full')
      const chain = chains(await readCatalog(ops.backups.storage()))[0]
      await query(db.url, `UPDATE teams SET name = 'before the change' WHERE id = 1`)
      await query(db.url, `ALTER TABLE teams ADD COLUMN region text`)
      await query(db.url, `UPDATE teams SET region = 'eu' WHERE id = 2`)
      // As if the schema check had run just after the change: the parent's hash is the current schema's.
      const c = new pg.Client({ connectionString: db.url })
      await c.connect()
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
      const current = schemaHash(await captureSchema(c))
      await c.end()
      const o = {
        databaseUrl: db.url,
        storage: ops.backups.storage(),
        compression: parseCompression('gzip:1'),
        encryption: null,
        full: chain.full,
        parent: { ...chain.full, schemaHash: current },
      }
      const ctx = { signal: new AbortController().signal, onProgress: () => {} }
      await expect(runIncremental(newSetId('incremental'), o, ctx)).rejects.toMatchObject({
        endable: true,
        message: expect.stringMatching(/the table public\.teams changed while it was read: its columns changed: region added/),
      })
      // Nothing of it is left in storage (its upload was ended and removed).
      expect((await readCatalog(ops.backups.storage())).map((s) => s.type)).toEqual(['full'])
      const last = await runIncremental(newSetId('incremental'), { ...o, final: true }, ctx)
      expect(last.endsChain?.cut).toMatchObject({ table: 'public.teams', change: expect.stringMatching(/region/) })
      expect(last.changes).toMatchObject({ transactions: 1, updates: 1 })
    } finally {
      await ops.close()
      await db.drop()
    }
  }, 60_000)
})

describe('a backup role that may not change the publication', () => {
  it('still takes the full, starts no chain, and says what to grant', async () => {
    const db = await createDatabase(inject('pgUrl'), 'role')
    const role = `bk_${Math.random().toString(36).slice(2, 8)}`
    await query(
      db.url,
      `CREATE TABLE keyed (id int PRIMARY KEY, v text); INSERT INTO keyed VALUES (1, 'a');
       CREATE PUBLICATION examforge_ops;
       CREATE ROLE ${role} LOGIN REPLICATION PASSWORD 'backup-pw'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`,
    )
    const u = new URL(db.url)
    u.username = role
    u.password = 'backup-pw'
    const ops = await openOps({
      DATABASE_URL: u.toString(),
      OPS_DATABASE_URL: db.url,
      LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-role-')),
      BACKUP_INCREMENTAL: 'on',
    })
    try {
      const r = await backupNow(ops, 'full')
      expect(r.type).toBe('full')
      expect(r.tables).toBe(1)
      expect(r.note).toMatch(
        /not possible yet: The publication examforge_ops could not be updated .*must own it and the tables it publishes/,
      )
      expect(await slotOf(db.url)).toHaveLength(0)
    } finally {
      await ops.close()
      await db.drop()
      await query(inject('pgUrl'), `DROP ROLE IF EXISTS ${role}`).catch(() => {})
    }
  }, 60_000)
})

describe('the agent and a migration', () => {
  it('ends the chain soon after a schema change, without waiting for the next scheduled incremental', async () => {
    const db = await createDatabase(inject('pgUrl'), 'watch')
    await seedExamforge(db.url, 0.02)
    const env = { DATABASE_URL: db.url, LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-watch-')), BACKUP_INCREMENTAL: 'on' }
    const ops = await openOps(env)
    let agent: Ops | null = null
    try {
      await backupNow(ops, 'full')
      // The agent, started once the chain exists (it reads the catalog after its own backups and every two
      // minutes). Incrementals every hour: only the schema watch can act within the test.
      agent = await openOps({ ...env, BACKUP_INCREMENTAL_EVERY: '1h', BACKUP_SCHEMA_WATCH: '1s' }, { backupSchedule: true })
      await query(db.url, `UPDATE teams SET name = 'before' WHERE id = 1`)
      // A change the chain cannot carry (a column retyped): the old chain ends just before its first row.
      await query(db.url, `ALTER TABLE teams ALTER COLUMN slug TYPE varchar(300); UPDATE teams SET slug = 'eu' WHERE id = 2`)
      const two = (await waitFor(
        async () => {
          const list = chains(await readCatalog(ops.backups.storage()))
          return list.length === 2 ? list : null
        },
        'a new chain after the schema change',
        60_000,
      ))!
      const old = two[1].sets.at(-1)!
      expect(old.type).toBe('incremental')
      expect(old.endsChain?.cut?.table).toBe('public.teams')
      expect(old.changes).toMatchObject({ updates: 1 }) // the change before the new shape is kept
      // The old chain's slot is dropped once the new full is stored (a moment after its manifest is listed).
      await waitFor(
        async () => (await slotOf(db.url)).map((s) => s.slot_name).join() === two[0].full.snapshot.slot,
        'only the new chain’s slot',
        30_000,
      )
    } finally {
      await agent?.close()
      await ops.close()
      await db.drop()
    }
  }, 90_000)
})

describe('the agent and a migration the chain carries', () => {
  it('carries it soon after it happens: a new table joins the chain (publication and snapshot) within the watch interval, and the chain goes on', async () => {
    const db = await createDatabase(inject('pgUrl'), 'watchcarry')
    await seedExamforge(db.url, 0.02)
    const env = { DATABASE_URL: db.url, LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-watchcarry-')), BACKUP_INCREMENTAL: 'on' }
    const ops = await openOps(env)
    let agent: Ops | null = null
    try {
      await backupNow(ops, 'full')
      agent = await openOps({ ...env, BACKUP_INCREMENTAL_EVERY: '1h', BACKUP_SCHEMA_WATCH: '1s' }, { backupSchedule: true })
      await query(db.url, `CREATE TABLE badges (id int PRIMARY KEY, name text); INSERT INTO badges VALUES (1, 'first'), (2, 'second')`)
      const set = (await waitFor(
        async () => {
          const list = chains(await readCatalog(ops.backups.storage()))
          const last = list[0]?.sets.at(-1)
          return list.length === 1 && last?.created?.length ? last : null
        },
        'the new table to join the chain',
        60_000,
      ))!
      expect(set.type).toBe('incremental')
      expect(set.created).toMatchObject([{ table: 'public.badges', rows: 2 }])
      expect(set.schemaChange?.summary).toEqual(
        expect.arrayContaining([expect.stringMatching(/^public\.badges: joined the chain with 2 rows/)]),
      )
      expect((await publishedTables(db.url)).tables).toContain('public.badges')
      // From here on the stream follows it.
      await query(db.url, `UPDATE badges SET name = 'renamed' WHERE id = 1`)
      const next = await backupNow(ops, 'incremental')
      expect(next.type).toBe('incremental')
      expect(next.changes).toMatchObject({ updates: 1, tables: ['public.badges'] })
    } finally {
      await agent?.close()
      await ops.close()
      await db.drop()
    }
  }, 90_000)
})

describe('a table that cannot be added to the publication right now', () => {
  it('does not wait behind the lock: the full goes on without a chain, says why, and the next backup starts one', async () => {
    const db = await createDatabase(inject('pgUrl'), 'publock')
    await seedExamforge(db.url, 0.02)
    const ops = await openOps({
      DATABASE_URL: db.url,
      LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-publock-')),
      BACKUP_INCREMENTAL: 'on',
    })
    // As a long VACUUM, ANALYZE or CREATE INDEX CONCURRENTLY would: readers pass, adding the table to a publication waits.
    const holder = new pg.Client({ connectionString: db.url })
    await holder.connect()
    try {
      await query(db.url, `CREATE TABLE badges (id int PRIMARY KEY, name text)`)
      await holder.query(`BEGIN; LOCK TABLE badges IN SHARE UPDATE EXCLUSIVE MODE`)
      const t0 = Date.now()
      const r = await backupNow(ops, 'full')
      expect(Date.now() - t0).toBeLessThan(60_000)
      expect(r.type).toBe('full')
      expect(r.note).toMatch(
        /not possible yet: The publication examforge_ops could not be updated \(canceling statement due to lock timeout\): another session holds a lock .* the next backup tries again/,
      )
      expect(await slotOf(db.url)).toHaveLength(0)
      await holder.query('ROLLBACK')
      const next = await backupNow(ops, 'incremental')
      expect(next.type).toBe('full')
      expect(await slotOf(db.url)).toHaveLength(1)
      expect((await publishedTables(db.url)).tables).toContain('public.badges')
    } finally {
      await holder.end().catch(() => {})
      await ops.close()
      await db.drop()
    }
  }, 90_000)
})
