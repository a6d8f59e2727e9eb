import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { to as copyTo } from 'pg-copy-streams'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { readCatalog } from '../../src/core/backup/catalog'
import { parseCompression } from '../../src/core/backup/compression'
import { resolveKey } from '../../src/core/backup/crypto'
import { RowDigest } from '../../src/core/backup/digest'
import { runFullBackup, STABLE_SESSION, type BackupOptions } from '../../src/core/backup/full'
import { qname } from '../../src/core/db/sql'
import { manifestKey, newSetId, type Manifest } from '../../src/core/backup/manifest'
import { verifySet } from '../../src/core/backup/verify'
import { silentLogger } from '../../src/core/log/logger'
import { LocalStorage } from '../../src/core/storage/local'
import { S3Storage } from '../../src/core/storage/s3'
import { createS3Client } from '../../src/core/storage/s3-client'
import type { BackupStorage } from '../../src/core/storage/storage'
import { createDatabase, query } from '../helpers/db'
import { S3_CREDENTIALS, TEST_BUCKET } from '../helpers/s3'
import { noProgress, seedExamforge } from '../helpers/seed'

/** A fresh COPY of a table, digested the same way the backup does. */
async function liveDigest(url: string, schema: string, name: string, columns: string[]): Promise<string> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  await c.query(STABLE_SESSION)
  const d = new RowDigest()
  const stream = c.query(copyTo(`COPY (SELECT ${columns.map((x) => `"${x}"`).join(', ')} FROM ${qname(schema, name)}) TO STDOUT`))
  for await (const chunk of stream) d.update(chunk as Buffer)
  await c.end()
  return d.value()
}

const storages: { name: string; make: () => BackupStorage }[] = [
  { name: 'a local folder', make: () => new LocalStorage(mkdtempSync(join(tmpdir(), 'ops-bk-'))) },
  {
    name: 'S3 (s3rver)',
    make: () =>
      new S3Storage({
        client: () =>
          createS3Client(
            {
              bucket: TEST_BUCKET,
              region: 'us-east-1',
              endpoint: inject('s3Endpoint'),
              prefix: '',
              accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID,
              secretAccessKey: S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
            },
            10_000,
          ),
        bucket: TEST_BUCKET,
        prefix: `t-${Math.random().toString(36).slice(2, 8)}/`,
      }),
  },
]

describe('full backups', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'bk')
    await seedExamforge(db.url, 0.3)
    await query(
      db.url,
      `CREATE SCHEMA "Ünïcode Schema";
       CREATE TABLE "Ünïcode Schema"."Mixed Case ""Quoted""" (id int, "Größe" text, raw bytea, note text, gen int GENERATED ALWAYS AS (id * 2) STORED);
       INSERT INTO "Ünïcode Schema"."Mixed Case ""Quoted""" (id, "Größe", raw, note)
       SELECT i, E'tab\\there\\nnew line \\\\ backslash', decode(md5(i::text) || '00ff0a0d5c', 'hex'), CASE WHEN i % 3 = 0 THEN NULL WHEN i % 3 = 1 THEN '' ELSE 'x' END
         FROM generate_series(1, 500) i;`,
    )
  })
  afterAll(() => db?.drop())

  const options = (storage: BackupStorage, extra: Partial<BackupOptions> = {}): BackupOptions => ({
    databaseUrl: db.url,
    storage,
    compression: parseCompression('gzip:6'),
    encryption: null,
    parallelism: 2,
    chunkBytes: 256 * 1024,
    log: silentLogger,
    ...extra,
  })

  for (const s of storages) {
    describe(`to ${s.name}`, () => {
      let storage: BackupStorage
      let m: Manifest
      beforeAll(async () => {
        storage = s.make()
        m = await runFullBackup(newSetId('full'), options(storage), noProgress())
      })

      it('records every table with rows and digests that match a fresh read of the database', async () => {
        const live = await query<{ schema: string; name: string }>(
          db.url,
          `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'ops') AND n.nspname NOT LIKE 'pg\\_%'`,
        )
        expect(m.tables.map((t) => `${t.schema}.${t.name}`).sort()).toEqual(live.map((t) => `${t.schema}.${t.name}`).sort())
        for (const t of m.tables) {
          const [{ n }] = await query<{ n: string }>(db.url, `SELECT count(*) AS n FROM ${qname(t.schema, t.name)}`)
          expect(t.rows, `${t.schema}.${t.name} rows`).toBe(Number(n))
          expect(t.digest, `${t.schema}.${t.name} digest`).toBe(await liveDigest(db.url, t.schema, t.name, t.columns))
        }
        const big = m.tables.find((t) => t.name === 'question_responses')!
        expect(big.chunks.length).toBeGreaterThan(3)
        const quoted = m.tables.find((t) => t.schema === 'Ünïcode Schema')!
        expect(quoted.columns).toEqual(['id', 'Größe', 'raw', 'note'])
      })

      it('writes the manifest last, with checksums, sequences, snapshot and server identity', async () => {
        expect(m.formatVersion).toBe(1)
        expect(m.snapshot.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/)
        expect(m.server.versionNum).toBeGreaterThan(100000)
        expect(m.sequences.find((q) => q.name === 'users_id_seq')).toBeTruthy()
        expect(m.objects.find((o) => o.kind === 'schema')).toBeTruthy()
        const stored = await storage.list(`sets/${m.setId}/`)
        for (const o of m.objects) expect(stored.find((x) => x.key === o.key)?.size).toBe(o.size)
        expect(JSON.stringify(m)).not.toContain(new URL(db.url).password)
        const cat = await readCatalog(storage)
        expect(cat.find((c) => c.setId === m.setId)?.status).toBe('complete')
      })

      it('verify re-reads every object and passes', async () => {
        const r = await verifySet(storage, m.setId, { key: null, passphrase: null }, noProgress())
        expect(r.ok).toBe(true)
        // Every stored object of the set, the manifest included: the count the set's listing shows.
        expect(r.objects).toHaveLength(m.objects.length + 1)
        expect(r.objects.map((o) => o.key).sort()).toEqual((await storage.list(`sets/${m.setId}/`)).map((o) => o.key).sort())
      })
    })
  }

  it('verify names the object with a flipped byte', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-bk-'))
    const storage = new LocalStorage(dir)
    const m = await runFullBackup(newSetId('full'), options(storage), noProgress())
    const victim = m.tables.find((t) => t.name === 'users')!.chunks[0].key
    const file = join(dir, ...victim.split('/'))
    const bytes = readFileSync(file)
    bytes[Math.floor(bytes.length / 2)] ^= 0x01
    writeFileSync(file, bytes)
    const r = await verifySet(storage, m.setId, { key: null, passphrase: null }, noProgress())
    expect(r.ok).toBe(false)
    const bad = r.objects.filter((o) => !o.ok)
    expect(bad.map((b) => b.key)).toEqual([victim])
    expect(bad[0].problem).toMatch(/altered or damaged/)
  })

  it('encrypts client-side; verify needs the right key and says when it is wrong', async () => {
    const storage = new LocalStorage(mkdtempSync(join(tmpdir(), 'ops-bk-')))
    const encryption = resolveKey({ key: null, passphrase: 'correct horse battery staple' })
    const m = await runFullBackup(newSetId('full'), options(storage, { encryption }), noProgress())
    expect(m.encryption).toMatchObject({ algorithm: 'aes-256-gcm', kdf: 'scrypt' })
    expect(JSON.stringify(m)).not.toContain('correct horse')
    const raw = await storage.getBuffer(m.tables.find((t) => t.name === 'users')!.chunks[0].key)
    expect(raw.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(false) // not a readable gzip stream
    expect((await verifySet(storage, m.setId, { key: null, passphrase: 'correct horse battery staple' }, noProgress())).ok).toBe(true)
    await expect(verifySet(storage, m.setId, { key: null, passphrase: 'wrong' }, noProgress())).rejects.toThrow(/passphrase is wrong/)
    await expect(verifySet(storage, m.setId, { key: null, passphrase: null }, noProgress())).rejects.toThrow(
      /set BACKUP_ENCRYPTION_PASSPHRASE/,
    )
  })

  it('a cancelled backup writes no manifest and leaves nothing that looks like a backup', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-bk-'))
    const storage = new LocalStorage(dir)
    const controller = new AbortController()
    const setId = newSetId('full')
    let progressed = 0
    const run = runFullBackup(setId, options(storage, { chunkBytes: 64 * 1024, parallelism: 3 }), {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.unit === 'bytes' && p.done > 0 && ++progressed === 1) controller.abort(new Error('cancelled by test'))
      },
    })
    await expect(run).rejects.toThrow()
    expect(await storage.exists(manifestKey(setId))).toBe(false)
    // Not even its folder: a cancelled set leaves nothing behind (with several connections still copying when it stopped).
    expect(existsSync(join(dir, ...manifestKey(setId).split('/').slice(0, -1)))).toBe(false)
    expect(existsSync(join(dir, 'sets')) ? readdirSync(join(dir, 'sets')) : []).toEqual([])
    const cat = await readCatalog(storage)
    expect(cat.filter((c) => c.status === 'complete')).toHaveLength(0)
    // The next backup succeeds.
    const m = await runFullBackup(newSetId('full'), options(storage), noProgress())
    expect((await readCatalog(storage)).find((c) => c.setId === m.setId)?.status).toBe('complete')
  })

  it('a dropped database connection fails the backup clearly and writes no manifest', async () => {
    const storage = new LocalStorage(mkdtempSync(join(tmpdir(), 'ops-bk-')))
    const setId = newSetId('full')
    let killed = false
    const run = runFullBackup(setId, options(storage, { chunkBytes: 64 * 1024, parallelism: 1 }), {
      signal: new AbortController().signal,
      onProgress: (p) => {
        if (!killed && p.unit === 'bytes' && p.done > 0) {
          killed = true
          void query(
            db.url,
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'examforge-ops:backup%' AND datname = current_database()`,
          )
        }
      },
    })
    await expect(run).rejects.toThrow(/terminat|connection/i)
    expect(await storage.exists(manifestKey(setId))).toBe(false)
  })

  it('is one consistent snapshot across tables and chunks while writers move rows between them', async () => {
    await query(
      db.url,
      `CREATE TABLE ledger_a (id int PRIMARY KEY, pad text); CREATE TABLE ledger_b (id int PRIMARY KEY, pad text);
       INSERT INTO ledger_a SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 20000) i;`,
    )
    // Each transaction moves ten rows from a to b: a + b is always 20000 in any consistent view.
    let moving = true
    const mover = (async () => {
      const c = new pg.Client({ connectionString: db.url })
      await c.connect()
      for (let i = 0; moving && i < 2000; i++) {
        await c.query(
          `WITH moved AS (DELETE FROM ledger_a WHERE id IN (SELECT id FROM ledger_a ORDER BY random() LIMIT 10) RETURNING *) INSERT INTO ledger_b SELECT * FROM moved`,
        )
      }
      await c.end()
    })()
    await new Promise((r) => setTimeout(r, 200))
    const storage = new LocalStorage(mkdtempSync(join(tmpdir(), 'ops-bk-')))
    const m = await runFullBackup(newSetId('full'), options(storage, { chunkBytes: 32 * 1024 }), noProgress())
    moving = false
    await mover
    const a = m.tables.find((t) => t.name === 'ledger_a')!
    const b = m.tables.find((t) => t.name === 'ledger_b')!
    expect(a.chunks.length).toBeGreaterThan(2)
    expect(a.rows + b.rows).toBe(20000)
    expect(b.rows).toBeGreaterThan(0)
  })

  it('holds off a TRUNCATE until the snapshot is read, so no table is seen empty', async () => {
    await query(db.url, `CREATE TABLE trunc_me AS SELECT i FROM generate_series(1, 5000) i`)
    const storage = new LocalStorage(mkdtempSync(join(tmpdir(), 'ops-bk-')))
    let truncate: Promise<unknown> | null = null
    const m = await runFullBackup(newSetId('full'), options(storage, { parallelism: 1, chunkBytes: 32 * 1024 }), {
      signal: new AbortController().signal,
      onProgress: (p) => {
        if (!truncate && p.phase === 'capturing schema') truncate = query(db.url, 'TRUNCATE trunc_me')
      },
    })
    expect(m.tables.find((t) => t.name === 'trunc_me')!.rows).toBe(5000)
    await truncate
    const [{ n }] = await query<{ n: string }>(db.url, 'SELECT count(*) AS n FROM trunc_me')
    expect(Number(n)).toBe(0)
  })
})
