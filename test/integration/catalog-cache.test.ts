import { DeleteObjectsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { readCatalog, readSet } from '../../src/core/backup/catalog'
import { ManifestCache, withManifestCache } from '../../src/core/backup/catalog-cache'
import { manifestKey, type Manifest } from '../../src/core/backup/manifest'
import { LocalStorage } from '../../src/core/storage/local'
import { S3Storage } from '../../src/core/storage/s3'
import type { BackupStorage } from '../../src/core/storage/storage'
import { createS3Client } from '../../src/core/storage/s3-client'
import { openOps } from '../helpers/ops'
import { objectsOf, syntheticManifest } from '../helpers/manifests'
import { S3_CREDENTIALS, TEST_BUCKET } from '../helpers/s3'

const s3Config = () => ({
  bucket: TEST_BUCKET,
  prefix: '',
  region: 'us-east-1',
  endpoint: inject('s3Endpoint'),
  accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID,
  secretAccessKey: S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
})

/** The storage as the catalog sees it, counting the manifests it fetches (every call goes to the real store). */
function counted(storage: BackupStorage): { storage: BackupStorage; fetched: string[] } {
  const fetched: string[] = []
  const proxy = new Proxy(storage, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown
      if (prop === 'getTagged')
        return (key: string) => {
          fetched.push(key)
          return target.getTagged(key)
        }
      if (prop === 'getBuffer')
        return (key: string) => {
          fetched.push(key)
          return target.getBuffer(key)
        }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
  return { storage: proxy, fetched }
}

const ids = (n: number, type: 'full' | 'incremental' = 'full') =>
  Array.from({ length: n }, (_, i) => `2026010${i + 1}T030000Z-${type}-${randomBytes(2).toString('hex')}`)

async function writeSet(storage: BackupStorage, m: Manifest): Promise<void> {
  for (const o of objectsOf(m.setId, m.type as 'full' | 'incremental')) await storage.putSmall(o.key, o.body)
  await storage.putSmall(manifestKey(m.setId), JSON.stringify(m))
}

const fullAt = (setId: string, day: number, key?: Buffer) =>
  syntheticManifest({ setId, type: 'full', parent: null, time: new Date(Date.UTC(2026, 0, day, 3)), key })

describe('the catalog cache: manifests fetched once per tag, changes behind its back noticed', () => {
  const cacheRoot = mkdtempSync(join(tmpdir(), 'ops-catalog-cache-'))
  const s3Prefix = `catalog-${Date.now()}/`
  let sdk: S3Client | null = null
  afterAll(() => sdk?.destroy())

  const stores: Record<
    string,
    () => Promise<{
      storage: BackupStorage
      remove: (keys: string[]) => Promise<void>
      replace: (key: string, body: string) => Promise<void>
    }>
  > = {
    // Deleted and replaced with the SDK directly, as another machine or a bucket lifecycle rule would.
    S3: async () => {
      sdk ??= await createS3Client(s3Config())
      const client = sdk
      const storage = new S3Storage({ client: () => createS3Client(s3Config()), bucket: TEST_BUCKET, prefix: s3Prefix })
      return {
        storage,
        remove: async (keys) => {
          await client.send(
            new DeleteObjectsCommand({ Bucket: TEST_BUCKET, Delete: { Objects: keys.map((k) => ({ Key: s3Prefix + k })) } }),
          )
        },
        replace: async (key, body) => {
          await client.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: s3Prefix + key, Body: body }))
        },
      }
    },
    // Deleted and rewritten in place (same inode) with plain file calls.
    folder: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ops-catalog-folder-'))
      return {
        storage: new LocalStorage(dir),
        remove: async (keys) => {
          const { rmSync } = await import('node:fs')
          for (const k of keys) rmSync(join(dir, k))
        },
        replace: async (key, body) => writeFileSync(join(dir, key), body),
      }
    },
  }

  for (const [name, open] of Object.entries(stores)) {
    it(`on ${name}`, async () => {
      const { storage: real, remove, replace } = await open()
      const cache = new ManifestCache(cacheRoot, real.location)
      const { storage, fetched } = counted(real)
      withManifestCache(storage, cache)
      const [a, b, c] = ids(3)
      for (const [i, id] of [a, b, c].entries()) await writeSet(real, fullAt(id, i + 1))

      // Cold: each manifest fetched once, and cached in a private folder.
      const first = await readCatalog(storage)
      expect(first.map((s) => [s.setId, s.status])).toEqual([
        [c, 'complete'],
        [b, 'complete'],
        [a, 'complete'],
      ])
      expect(fetched.sort()).toEqual([a, b, c].map(manifestKey).sort())
      expect(statSync(cache.dir).mode & 0o777).toBe(0o700)
      const files = readdirSync(cache.dir)
      expect(files).toHaveLength(3)
      for (const f of files) expect(statSync(join(cache.dir, f)).mode & 0o777).toBe(0o600)

      // Warm: nothing fetched, the same catalog; one set alone (the restore planner's readSet) too.
      fetched.length = 0
      const second = await readCatalog(storage)
      expect(second).toEqual(first)
      expect((await readSet(storage, b))?.manifest).toEqual(first.find((s) => s.setId === b)!.manifest)
      expect(fetched).toEqual([])

      // Behind its back: b's objects deleted, c's manifest replaced by another (a later snapshot).
      await remove((await real.list(`sets/${b}/`)).map((o) => o.key))
      const later = fullAt(c, 20)
      await replace(manifestKey(c), JSON.stringify(later))
      const third = await readCatalog(storage)
      expect(third.map((s) => s.setId)).toEqual([c, a])
      expect(third[0].manifest?.snapshot.time).toBe(later.snapshot.time)
      expect(fetched).toEqual([manifestKey(c)]) // only the replaced manifest, a not again
      expect(readdirSync(cache.dir)).toHaveLength(2) // b's and c's old file gone, c's new one kept

      // Replaced by garbage: unreadable, not the cached good one.
      await replace(manifestKey(a), '{"not": "a manifest"')
      expect((await readCatalog(storage)).find((s) => s.setId === a)?.status).toBe('unreadable')
    })
  }

  it('never lets a cached manifest skip its authentication check', async () => {
    const key = randomBytes(32)
    const keys = { key: key.toString('hex'), passphrase: null }
    const real = new LocalStorage(mkdtempSync(join(tmpdir(), 'ops-catalog-auth-')))
    const cache = new ManifestCache(cacheRoot, real.location)
    const storage = withManifestCache(real, cache)
    const [a] = ids(1)
    const genuine = fullAt(a, 1, key)
    await writeSet(storage, genuine)
    expect((await readCatalog(storage, keys))[0]).toMatchObject({ status: 'complete', authenticity: 'authenticated' })

    // Whoever edits the cached bytes (one row count) gets what editing the stored manifest would: tampered
    // (read by the next console, a new process: nothing of it in memory).
    const [file] = readdirSync(cache.dir).filter((f) => f.startsWith(a))
    const edited = JSON.parse(readFileSync(join(cache.dir, file), 'utf8')) as Manifest
    edited.tables[0].rows += 1
    writeFileSync(join(cache.dir, file), JSON.stringify(edited))
    const next = withManifestCache(new LocalStorage(real.location), new ManifestCache(cacheRoot, real.location))
    const read = (await readCatalog(next, keys))[0]
    expect(read.status).toBe('tampered')
    expect(read.manifest).toBeNull()
    expect(read.problem).toMatch(/failed its authentication check/)
    // And readSet (the restore planner's) refuses it as well.
    expect((await readSet(next, a, keys))?.status).toBe('tampered')
    // The same in memory: the catalog that read it first still authenticates what it parsed, at every read.
    expect((await readCatalog(storage, keys))[0].status).toBe('complete')
    expect((await readCatalog(storage, { key: randomBytes(32).toString('hex'), passphrase: null }))[0].authenticity).toBe('unchecked')
  })

  it("is the app's: ops.backups.list() caches in the data folder, shared with the restore planner", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ops-catalog-data-'))
    const prefix = `catalog-app-${Date.now()}/`
    const ops = await openOps(
      { BACKUP_S3_BUCKET: TEST_BUCKET, S3_ENDPOINT: inject('s3Endpoint'), S3_PREFIX: prefix, ...S3_CREDENTIALS },
      {},
      dataDir,
    )
    try {
      const [a, b] = ids(2)
      await writeSet(ops.backups.storage(), fullAt(a, 1))
      await writeSet(
        ops.backups.storage(),
        syntheticManifest({ setId: b, type: 'incremental', parent: a, time: new Date(Date.UTC(2026, 0, 1, 4)) }),
      )
      expect((await ops.backups.list()).map((s) => s.setId)).toEqual([b, a])
      const dirs = readdirSync(join(dataDir, 'catalog-cache'))
      expect(dirs).toHaveLength(1)
      expect(readdirSync(join(dataDir, 'catalog-cache', dirs[0])).sort()).toEqual(
        expect.arrayContaining([expect.stringMatching(new RegExp(`^${a}\\.`)), expect.stringMatching(new RegExp(`^${b}\\.`))]),
      )
      const points = await ops.restores.points()
      expect(points.chains.map((c) => c.sets.map((s) => s.setId))).toEqual([[a, b]])
    } finally {
      await ops.close()
    }
  })
})
