import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, type Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import { gunzipSync, gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { objectAad } from '../../src/core/backup/authenticity'
import { readCatalog } from '../../src/core/backup/catalog'
import { parseCompression, type CompressionParams } from '../../src/core/backup/compression'
import { zstdNapi } from '../../src/core/deps/lazy'
import { decryptStream, encryptStream, resolveKey } from '../../src/core/backup/crypto'
import { runFullBackup } from '../../src/core/backup/full'
import { manifestKey, newSetId, type Manifest } from '../../src/core/backup/manifest'
import { silentLogger } from '../../src/core/log/logger'
import { LocalStorage } from '../../src/core/storage/local'
import { summarise } from '../../src/core/backup/summary'
import type { VerifyReport } from '../../src/core/backup/verify'
import type { Ops } from '../../src/core/ops'
import type { BackupStorage } from '../../src/core/storage/storage'
import { cli } from '../helpers/cli'
import { createDatabase, query } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { databaseRows, restoreNow } from '../helpers/restore'
import { S3_CREDENTIALS, TEST_BUCKET } from '../helpers/s3'
import { noProgress, seedExamforge } from '../helpers/seed'

/**
 * What someone who can write to the backup storage, but has not the key, can do to an encrypted set,
 * and what the console does about it: edit or copy a manifest, swap or copy objects, replace the set by an
 * unencrypted one. Each is refused by name, before the target is touched. Old sets stay restorable.
 */
const TABLES = ['public.users', 'public.teams', 'public.subscriptions', 'public.quizzes', 'public.questions', 'public.quiz_responses']
const KEY = randomBytes(32).toString('hex')

const storages = [
  { name: 'a local folder', env: () => ({ LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-auth-')) }) },
  {
    name: 'S3 (s3rver)',
    env: () => ({
      BACKUP_S3_BUCKET: TEST_BUCKET,
      S3_ENDPOINT: inject('s3Endpoint'),
      S3_PREFIX: `auth-${randomBytes(3).toString('hex')}/`,
      ...S3_CREDENTIALS,
    }),
  },
]

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

async function through(b: Buffer, t: Transform): Promise<Buffer> {
  const out: Buffer[] = []
  await pipeline(Readable.from([b]), t, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }))
  return Buffer.concat(out)
}

async function readManifest(storage: BackupStorage, setId: string): Promise<Manifest & Record<string, unknown>> {
  return JSON.parse((await storage.getBuffer(manifestKey(setId))).toString('utf8'))
}
const writeManifest = (storage: BackupStorage, m: object) =>
  storage.putSmall(manifestKey((m as Manifest).setId), JSON.stringify(m, null, 2))

async function verify(ops: Ops, setId: string): Promise<VerifyReport> {
  const info = await ops.jobs.wait(ops.backups.startVerify(setId, 'test').jobId)
  if (info.state !== 'succeeded') throw new Error(`verify ${info.state}: ${info.error?.message}`)
  return info.result as VerifyReport
}

describe.each(storages)('authenticated encrypted backup sets in $name', ({ env: storageEnv }) => {
  let src: Awaited<ReturnType<typeof createDatabase>>
  /** The console with BACKUP_ENCRYPTION_KEY, and the same console without it (same storage). */
  let ops: Ops
  let plain: Ops
  let storage: BackupStorage
  const created: string[] = []
  const dbName = () => new URL(src.url).pathname.slice(1)
  const urlOf = (name: string) => {
    const u = new URL(src.url)
    u.pathname = `/${name}`
    return u.toString()
  }
  const newDatabase = () => {
    const name = `auth_${randomBytes(4).toString('hex')}`
    created.push(name)
    return name
  }
  /** Change the source, so an in-place restore of any set would show; returns its rows now. */
  const change = async () => {
    await query(src.url, `UPDATE users SET "displayName" = 'changed ' || md5(random()::text) WHERE id % 3 = 0`)
    return databaseRows(src.url, TABLES)
  }
  const pwned = async () =>
    (await query<{ n: number }>(src.url, `SELECT count(*)::int AS n FROM pg_class WHERE relname = 'pwned'`))[0].n > 0

  beforeAll(async () => {
    src = await createDatabase(inject('pgUrl'), 'auth')
    await seedExamforge(src.url, 0.05)
    const env = { DATABASE_URL: src.url, BACKUP_CHUNK_MB: '1', ...storageEnv() }
    ops = await openOps({ ...env, BACKUP_ENCRYPTION_KEY: KEY })
    plain = await openOps(env)
    storage = ops.backups.storage()
  }, 60_000)
  afterAll(async () => {
    await ops?.close()
    await plain?.close()
    if (!src) return
    for (const name of created) await query(inject('pgUrl'), `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {})
    await src.drop()
  })

  it('round trip: an encrypted full and incremental are written as format 2, authenticated, and restore exactly', async () => {
    const full = await backupNow(ops, 'incremental') // no chain yet: a full that starts one
    expect(full.type).toBe('full')
    await query(src.url, `UPDATE teams SET name = name || ' renamed' WHERE id % 2 = 0; DELETE FROM quiz_responses WHERE id % 7 = 0`)
    const inc = await backupNow(ops, 'incremental')
    expect(inc.type).toBe('incremental')
    const expected = await databaseRows(src.url, TABLES)
    for (const id of [full.setId, inc.setId]) {
      const m = await readManifest(storage, id)
      expect(m.formatVersion).toBe(2)
      expect(m.auth).toMatchObject({ algorithm: 'hmac-sha256', kdf: 'hkdf-sha256' })
      expect(m.auth!.mac).not.toContain(KEY)
    }
    const listed = await ops.backups.list()
    expect(listed.filter((s) => [full.setId, inc.setId].includes(s.setId)).map((s) => [s.status, s.authenticity, s.problem])).toEqual([
      ['complete', 'authenticated', null],
      ['complete', 'authenticated', null],
    ])
    expect((await verify(ops, inc.setId)).ok).toBe(true)
    const name = newDatabase()
    const plan = await ops.restores.plan({ point: { setId: inc.setId }, target: { kind: 'new', database: name } })
    expect(plan.preflight.find((c) => c.check === 'Authenticity')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/passed/) })
    const r = await restoreNow(ops, { point: { setId: inc.setId }, target: { kind: 'new', database: name } }, name)
    expect(r.report.ok).toBe(true)
    expect(await databaseRows(urlOf(name), TABLES)).toEqual(expected)
  }, 120_000)

  it('an edited manifest (its schema object and table list) is listed as tampered and refused by name; the target is untouched', async () => {
    const { setId } = await backupNow(ops, 'full')
    const current = await change()
    const m = await readManifest(storage, setId)
    // The attacker stores a schema of their own and points the manifest at it, and drops a table from the list.
    const evil = Buffer.from(gzipSync(JSON.stringify({ pre: ['CREATE TABLE public.pwned (x int)'], post: [] })))
    const evilKey = `sets/${setId}/schema.json.gz`
    await storage.putSmall(evilKey, evil)
    const schemaObj = m.objects.find((o) => o.kind === 'schema')!
    Object.assign(schemaObj, { key: evilKey, size: evil.length, sha256: sha256(evil) })
    m.tables = m.tables.filter((t) => t.name !== 'users')
    await writeManifest(storage, m)

    const listed = summarise((await ops.backups.list()).find((s) => s.setId === setId)!)
    expect(listed.status).toBe('tampered')
    expect(listed.problem).toContain(`sets/${setId}/manifest.json failed its authentication check`)
    expect(listed.problem).toMatch(/restore another set/)
    const report = await verify(ops, setId)
    expect(report.ok).toBe(false)
    expect(report.objects.map((o) => o.key)).toEqual([manifestKey(setId)])
    await expect(ops.restores.start({ point: { setId }, target: { kind: 'in-place' } }, dbName(), { actor: 'test' })).rejects.toThrow(
      `The set ${setId} cannot be restored: The manifest sets/${setId}/manifest.json failed its authentication check`,
    )
    expect(await pwned()).toBe(false)
    expect(await databaseRows(src.url, TABLES)).toEqual(current)
    // Nor does a point in time reach it.
    const points = await ops.restores.points()
    expect(points.chains.flatMap((c) => c.sets.map((s) => s.setId))).not.toContain(setId)
  }, 60_000)

  it("another set's valid manifest copied over a set's own is refused: it describes another set", async () => {
    const a = await backupNow(ops, 'full')
    const b = await backupNow(ops, 'full')
    await storage.putSmall(manifestKey(b.setId), await storage.getBuffer(manifestKey(a.setId)))
    const listed = (await ops.backups.list()).find((s) => s.setId === b.setId)!
    expect(listed.status).toBe('tampered')
    expect(listed.problem).toContain(`describes another set (${a.setId})`)
    await expect(ops.restores.plan({ point: { setId: b.setId }, target: { kind: 'in-place' } })).rejects.toThrow(/describes another set/)
  }, 60_000)

  it('objects swapped within a set, or copied from another set, are named by verify and refused by restore before the target is touched', async () => {
    const { setId } = await backupNow(ops, 'full')
    const other = await backupNow(ops, 'full')
    const current = await change()
    const m = await readManifest(storage, setId)
    // Two data objects of about the same size, swapped.
    const data = m.objects.filter((o) => o.kind === 'data').sort((x, y) => x.size - y.size)
    let pair = [data[0], data[1]]
    for (let i = 1; i < data.length; i++) if (data[i].size - data[i - 1].size < pair[1].size - pair[0].size) pair = [data[i - 1], data[i]]
    const [a, b] = pair
    const [bytesA, bytesB] = [await storage.getBuffer(a.key), await storage.getBuffer(b.key)]
    await storage.putSmall(a.key, bytesB)
    await storage.putSmall(b.key, bytesA)
    let report = await verify(ops, setId)
    expect(report.objects.filter((o) => !o.ok).map((o) => o.key)).toEqual([a.key, b.key].sort())
    for (const o of report.objects.filter((x) => !x.ok))
      expect(o.problem).toMatch(/does not belong here \(copied from another set, or from another place in this one\)/)
    // Refused by the preflight (an object's size or SHA-256 differs from what the manifest records for
    // that place) or, when both pass, by the decryption bound to the object's place: named either way.
    const refused = await ops.restores.start({ point: { setId }, target: { kind: 'in-place' } }, dbName(), { actor: 'test' }).then(
      async ({ jobId }) => (await ops.jobs.wait(jobId)).error?.message ?? 'not refused',
      (e: Error) => e.message,
    )
    expect(refused).toMatch(new RegExp(`sets/${setId}/data/\\S+ .*(does not belong to this set|altered or damaged)`))
    expect(refused).toMatch(/Nothing was restored|Choose another backup set/)
    expect(await databaseRows(src.url, TABLES)).toEqual(current)

    // Put them back; then copy the same object of the other set (same key, same table, same size class) over one.
    await storage.putSmall(a.key, bytesA)
    await storage.putSmall(b.key, bytesB)
    expect((await verify(ops, setId)).ok).toBe(true)
    const theirs = a.key.replace(setId, other.setId)
    await storage.putSmall(a.key, await storage.getBuffer(theirs))
    report = await verify(ops, setId)
    expect(report.objects.filter((o) => !o.ok).map((o) => [o.key, o.problem])).toEqual([
      [a.key, expect.stringMatching(/failed its authentication check: it does not belong here/)],
    ])
    const again = await ops.jobs.wait(
      (await ops.restores.start({ point: { setId }, target: { kind: 'in-place' } }, dbName(), { actor: 'test' })).jobId,
    )
    expect(again.state).toBe('failed')
    expect(again.error?.message).toContain(`The object ${a.key} of set ${setId} does not match its manifest`)
    expect(await databaseRows(src.url, TABLES)).toEqual(current)
  }, 90_000)

  it("an encrypted set's manifest replaced by a plausible unencrypted one is refused while a key is configured", async () => {
    const { setId } = await backupNow(ops, 'full')
    const decoy = await backupNow(plain, 'full') // a real unencrypted set, whose objects the attacker reuses
    const current = await change()
    const d = await readManifest(storage, decoy.setId)
    const rename = (k: string) => k.replace(`sets/${decoy.setId}/`, `sets/${setId}/`)
    for (const o of d.objects) {
      let bytes = await storage.getBuffer(o.key)
      if (o.kind === 'schema') {
        const schema = JSON.parse(unpack(d.compression, bytes).toString('utf8'))
        schema.pre.push('CREATE TABLE public.pwned (x int)')
        bytes = pack(d.compression, JSON.stringify(schema))
        Object.assign(o, { size: bytes.length, sha256: sha256(bytes) })
      }
      o.key = rename(o.key)
      await storage.putSmall(o.key, bytes)
    }
    for (const t of d.tables) for (const c of t.chunks) c.key = rename(c.key)
    const forged = { ...d, setId }
    expect(forged.encryption).toBeNull()
    expect(forged.formatVersion).toBe(1)
    await writeManifest(storage, forged)

    const listed = summarise((await ops.backups.list()).find((s) => s.setId === setId)!)
    expect(listed).toMatchObject({ status: 'complete', authenticity: 'unauthenticated', encrypted: false })
    expect(listed.problem).toMatch(/^Unauthenticated: written without encryption/)
    const refused = `The restore needs a set whose manifest is not authenticated: ${setId} (not encrypted)`
    await expect(ops.restores.plan({ point: { setId }, target: { kind: 'in-place' } })).rejects.toThrow(refused)
    await expect(ops.restores.start({ point: { setId }, target: { kind: 'in-place' } }, dbName(), { actor: 'test' })).rejects.toThrow(
      refused,
    )
    // Its schema (with the attacker's DDL) was never executed, and the target is as it was.
    expect(await pwned()).toBe(false)
    expect(await databaseRows(src.url, TABLES)).toEqual(current)
  }, 90_000)

  it('old sets stay restorable: unencrypted ones with encryption off; with a key configured, only when acknowledged', async () => {
    // An unencrypted set, written exactly as before this change (format 1, no MAC).
    const old = await backupNow(plain, 'full')
    const expected = await databaseRows(src.url, TABLES)
    const m = await readManifest(storage, old.setId)
    expect(m.formatVersion).toBe(1)
    expect(m.auth).toBeUndefined()
    expect((await plain.backups.list()).find((s) => s.setId === old.setId)).toMatchObject({
      status: 'complete',
      authenticity: 'unauthenticated',
      problem: null,
    })
    const name = newDatabase()
    const r = await restoreNow(plain, { point: { setId: old.setId }, target: { kind: 'new', database: name } }, name)
    expect(r.report.ok).toBe(true)
    expect(await databaseRows(urlOf(name), TABLES)).toEqual(expected)

    // An encrypted set as written before version 2: objects without associated data, a manifest without a MAC.
    const enc = await backupNow(ops, 'full')
    const legacy = await readManifest(storage, enc.setId)
    const key = Buffer.from(KEY, 'hex')
    for (const o of legacy.objects) {
      const inner = await through(await storage.getBuffer(o.key), decryptStream(key, o.key, objectAad(enc.setId, o.key)))
      const bytes = await through(inner, encryptStream(key))
      await storage.putSmall(o.key, bytes)
      Object.assign(o, { size: bytes.length, sha256: sha256(bytes) })
    }
    delete legacy.auth
    await writeManifest(storage, { ...legacy, formatVersion: 1 })
    const listed = summarise((await ops.backups.list()).find((s) => s.setId === enc.setId)!)
    expect(listed).toMatchObject({ status: 'complete', authenticity: 'unauthenticated', encrypted: true })
    expect(listed.problem).toMatch(/^Unauthenticated: written before format version 2/)
    const target = newDatabase()
    await expect(ops.restores.plan({ point: { setId: enc.setId }, target: { kind: 'new', database: target } })).rejects.toThrow(
      `${enc.setId} (written before format version 2)`,
    )
    // The old unencrypted set too, while a key is configured.
    await expect(ops.restores.plan({ point: { setId: old.setId }, target: { kind: 'new', database: target } })).rejects.toThrow(
      /--allow-unauthenticated/,
    )
    const input = { point: { setId: enc.setId }, target: { kind: 'new' as const, database: target }, allowUnauthenticated: true }
    const plan = await ops.restores.plan(input)
    expect(plan.preflight.find((c) => c.check === 'Authenticity')).toMatchObject({ status: 'warning' })
    const back = await restoreNow(ops, input, target)
    expect(back.report.ok).toBe(true)
    expect(await databaseRows(urlOf(target), TABLES)).toEqual(expected)
  }, 120_000)
})

/** What an attacker with the storage's write access does to an object in the set's own codec (zstd by default, gzip or none). */
const unpack = (c: CompressionParams, b: Buffer): Buffer =>
  c.codec === 'gzip' ? gunzipSync(b) : c.codec === 'zstd' ? zstdNapi().decompress(b) : b
const pack = (c: CompressionParams, text: string): Buffer =>
  c.codec === 'gzip' ? gzipSync(text) : c.codec === 'zstd' ? zstdNapi().compress(Buffer.from(text)) : Buffer.from(text)

describe('with a passphrase, through the CLI', () => {
  const PASSPHRASE = 'correct horse battery staple'
  let src: Awaited<ReturnType<typeof createDatabase>>
  let dir: string
  let storage: BackupStorage
  const ids: { good: string; edited: string; plain: string } = { good: '', edited: '', plain: '' }
  beforeAll(async () => {
    src = await createDatabase(inject('pgUrl'), 'authcli')
    await seedExamforge(src.url, 0.02)
    dir = mkdtempSync(join(tmpdir(), 'ops-auth-cli-'))
    storage = new LocalStorage(dir)
    const full = async (encrypted: boolean) =>
      (
        await runFullBackup(
          newSetId('full'),
          {
            databaseUrl: src.url,
            storage,
            compression: parseCompression('gzip:1'),
            // Each encrypted set gets its own scrypt salt, so its own key.
            encryption: encrypted ? resolveKey({ key: null, passphrase: PASSPHRASE }) : null,
            log: silentLogger,
          },
          noProgress(),
        )
      ).setId
    ids.good = await full(true)
    ids.edited = await full(true)
    ids.plain = await full(false)
    const m = await readManifest(storage, ids.edited)
    m.tables[0].rows += 1
    await writeManifest(storage, m)
  }, 60_000)
  afterAll(() => src?.drop())

  it('the catalog authenticates each set with its own passphrase-derived key', async () => {
    const cat = await readCatalog(storage, { key: null, passphrase: PASSPHRASE })
    const by = (id: string) => cat.find((s) => s.setId === id)!
    expect([by(ids.good).status, by(ids.good).authenticity]).toEqual(['complete', 'authenticated'])
    expect(by(ids.edited).status).toBe('tampered')
    expect([by(ids.plain).status, by(ids.plain).authenticity]).toEqual(['complete', 'unauthenticated'])
    // The MAC covers the manifest's content, not its layout: re-serialised (keys in another order, no spacing) it still holds.
    const reversed = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reversed)
        : v && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reversed(x)]),
            )
          : v
    await storage.putSmall(manifestKey(ids.good), JSON.stringify(reversed(await readManifest(storage, ids.good))))
    expect((await readCatalog(storage, { key: null, passphrase: PASSPHRASE })).find((s) => s.setId === ids.good)?.authenticity).toBe(
      'authenticated',
    )
    // Without the passphrase nothing can be checked: the encrypted sets are listed as such, not as tampered.
    const blind = await readCatalog(storage)
    expect(blind.find((s) => s.setId === ids.edited)).toMatchObject({ status: 'complete', authenticity: 'unchecked' })
  })

  it('lists, verifies and refuses by name; --allow-unauthenticated plans an unauthenticated set with a warning', async () => {
    const env = { DATABASE_URL: src.url, LOCAL_BACKUP_PATH: dir, BACKUP_ENCRYPTION_PASSPHRASE: PASSPHRASE }
    const list = await cli(['backups', 'list'], env)
    expect(list.code, list.stderr).toBe(0)
    const line = (id: string) => list.stdout.split('\n').find((l) => l.startsWith(id)) ?? ''
    expect(line(ids.good)).toMatch(/complete .*encrypted, authenticated/)
    expect(line(ids.edited)).toMatch(/tampered .*failed its authentication check/)
    expect(line(ids.plain)).toMatch(/Unauthenticated: written without encryption/)
    const verified = await cli(['backups', 'verify', ids.edited], env)
    expect(verified.code).toBe(1)
    expect(verified.stdout).toContain(`BAD  sets/${ids.edited}/manifest.json: The manifest sets/${ids.edited}/manifest.json failed`)
    const tampered = await cli(['restore', '--backup', ids.edited], env)
    expect(tampered.code, tampered.stderr).toBe(1)
    expect(tampered.stderr).toContain(`The set ${ids.edited} cannot be restored: The manifest sets/${ids.edited}/manifest.json failed`)
    const refused = await cli(['restore', '--backup', ids.plain], env)
    expect(refused.code, refused.stderr).toBe(1)
    expect(refused.stderr).toContain(`${ids.plain} (not encrypted)`)
    const allowed = await cli(['restore', '--backup', ids.plain, '--allow-unauthenticated'], env)
    expect(allowed.code, allowed.stderr).toBe(0)
    expect(allowed.stdout).toMatch(/warn {2}Authenticity: Not authenticated, restored as acknowledged/)
    expect(allowed.stdout).toContain('Nothing was changed')
  }, 120_000)
})
