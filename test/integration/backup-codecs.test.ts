import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { readSet } from '../../src/core/backup/catalog'
import type { Manifest } from '../../src/core/backup/manifest'
import { verifySet } from '../../src/core/backup/verify'
import type { Ops } from '../../src/core/ops'
import { LocalStorage } from '../../src/core/storage/local'
import { createDatabase, query } from '../helpers/db'
import { HARD_DATA, HARD_SCHEMA } from '../helpers/hard-schema'
import { backupNow, openOps } from '../helpers/ops'
import { databaseRows, restoreNow } from '../helpers/restore'
import { noProgress } from '../helpers/seed'

const noKeys = { key: null, passphrase: null }

/**
 * Sets written with every codec into one backup folder, the way a console that changed BACKUP_COMPRESSION
 * over time leaves them (an older gzip set beside newer zstd ones): the console as it is now configured
 * (the default, zstd) verifies and restores each of them byte-exact, and the restore check passes.
 */
describe('backup sets of every codec, side by side', () => {
  let src: Awaited<ReturnType<typeof createDatabase>>
  const folder = mkdtempSync(join(tmpdir(), 'ops-codecs-'))
  const storage = new LocalStorage(folder)
  const env = (extra: Record<string, string> = {}) => ({
    DATABASE_URL: src.url,
    LOCAL_BACKUP_PATH: folder,
    BACKUP_INCREMENTAL: 'off',
    BACKUP_CHUNK_MB: '1',
    ...extra,
  })
  // What each set was written with: BACKUP_COMPRESSION as set (none = unset, the default).
  const written = [
    { setting: 'gzip:6', codec: 'gzip', level: 6, ext: '.gz' },
    { setting: 'zstd:19', codec: 'zstd', level: 19, ext: '.zst' },
    { setting: 'none', codec: 'none', level: 0, ext: '' },
    { setting: null, codec: 'zstd', level: 3, ext: '.zst' },
  ] as const
  const sets = new Map<string | null, Manifest>()
  let ops: Ops
  let source: Record<string, string[]>
  const created: string[] = []

  beforeAll(async () => {
    src = await createDatabase(inject('pgUrl'), 'codecs')
    await query(src.url, HARD_SCHEMA)
    await query(src.url, HARD_DATA)
    // Enough rows in one table for several chunks (1 MB each) of compressible COPY text.
    await query(
      src.url,
      `CREATE TABLE app.bulk (id bigint PRIMARY KEY, body text, raw bytea);
       INSERT INTO app.bulk SELECT i, repeat('row ' || i || E'\\ttab ', 1 + i % 7), decode(md5(i::text), 'hex') FROM generate_series(1, 60000) i;`,
    )
    for (const w of written) {
      const writer = await openOps(env(w.setting ? { BACKUP_COMPRESSION: w.setting } : {}))
      try {
        const { setId } = await backupNow(writer, 'full')
        sets.set(w.setting, (await readSet(storage, setId, noKeys))!.manifest!)
      } finally {
        await writer.close()
      }
    }
    // The console as it is configured now: the default codec.
    ops = await openOps(env())
    const tables = [...sets.values()][0].tables.map((t) => `${t.schema}.${t.name}`)
    source = await databaseRows(src.url, tables)
  }, 240_000)
  afterAll(async () => {
    await ops?.close()
    for (const name of created) await query(inject('pgUrl'), `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {})
    await src?.drop()
  })

  it('each set records its codec and level, and its objects carry the codec’s extension and format', () => {
    for (const w of written) {
      const m = sets.get(w.setting)!
      expect(m.compression, String(w.setting)).toEqual({ codec: w.codec, level: w.level })
      const data = m.objects.filter((o) => o.kind === 'data')
      expect(data.length).toBeGreaterThan(3)
      for (const o of m.objects) expect(o.key.endsWith(`${o.kind === 'data' ? '.copy' : '.json'}${w.ext}`), o.key).toBe(true)
      // The stored bytes are that codec's own format (magic numbers), readable by other tools.
      const first = readFileSync(join(folder, ...data[0].key.split('/')))
      if (w.codec === 'gzip') expect(first.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]))
      if (w.codec === 'zstd') expect(first.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))
      if (w.codec === 'none') expect(first.toString('utf8', 0, 200)).toMatch(/\t/)
    }
    const size = (s: string | null) => sets.get(s)!.objects.reduce((n, o) => n + o.size, 0)
    // zstd (any level) and gzip-6 both compress; none stores the COPY text as it is.
    expect(size(null)).toBeLessThan(size('none') / 3)
    expect(size('gzip:6')).toBeLessThan(size('none') / 3)
  })

  it('the default set is zstd level 3', () => {
    expect(sets.get(null)!.compression).toEqual({ codec: 'zstd', level: 3 })
  })

  it.each(written.map((w) => [String(w.setting ?? 'default (zstd:3)'), w.setting] as const))(
    'verify re-reads the %s set: sizes, SHA-256, decompression and row digests',
    async (_label, setting) => {
      const r = await verifySet(storage, sets.get(setting)!.setId, noKeys, noProgress())
      expect(r.objects.filter((o) => !o.ok)).toEqual([])
      expect(r.ok).toBe(true)
    },
  )

  it.each(written.map((w) => [String(w.setting ?? 'default (zstd:3)'), w.setting] as const))(
    'restores the %s set into a new database byte-exact, and the restore check passes',
    async (label, setting) => {
      const m = sets.get(setting)!
      const name = `codec_${label.replace(/\W+/g, '_')}_${Date.now().toString(36)}`.slice(0, 60)
      created.push(name)
      const r = await restoreNow(ops, { point: { setId: m.setId }, target: { kind: 'new', database: name } }, name)
      expect(r.report.ok).toBe(true)
      expect(r.report.tables.every((t) => t.digestExpected && t.digestExpected === t.digestFound)).toBe(true)
      const restored = new URL(src.url)
      restored.pathname = `/${name}`
      expect(await databaseRows(restored.toString(), Object.keys(source))).toEqual(source)
    },
    120_000,
  )

  it('a damaged zstd object is named: verify reports it, and a restore refuses the set before touching anything', async () => {
    // A copy of the default set in a folder of its own, with garbage over the middle of one data object.
    const m = sets.get(null)!
    const dir = mkdtempSync(join(tmpdir(), 'ops-codecs-bad-'))
    const copy = new LocalStorage(dir)
    for (const o of (await storage.list(`sets/${m.setId}/`)).map((x) => x.key))
      await copy.put(o, Readable.from([await storage.getBuffer(o)]), new AbortController().signal)
    const victim = m.tables.find((t) => t.name === 'bulk')!.chunks[1].key
    const file = join(dir, ...victim.split('/'))
    const bytes = readFileSync(file)
    for (let i = Math.floor(bytes.length / 3); i < Math.floor(bytes.length / 3) + 2048; i++) bytes[i] ^= 0x5a
    writeFileSync(file, bytes)
    const r = await verifySet(copy, m.setId, noKeys, noProgress())
    const bad = r.objects.filter((o) => !o.ok)
    expect(bad.map((b) => b.key)).toEqual([victim])
    expect(bad[0].problem).toMatch(/^(cannot be decompressed as zstd \(.+\): it was altered or damaged|SHA-256 does not match)/)
    expect(r.ok).toBe(false)

    const other = await openOps({ DATABASE_URL: src.url, LOCAL_BACKUP_PATH: dir, BACKUP_INCREMENTAL: 'off' })
    try {
      const name = `codec_bad_${Date.now().toString(36)}`
      const { jobId } = await other.restores.start({ point: { setId: m.setId }, target: { kind: 'new', database: name } }, name, {
        actor: 'test',
      })
      const info = await other.jobs.wait(jobId)
      expect(info.state).toBe('failed')
      expect(info.error?.message).toContain(victim)
      expect(info.error?.message).toMatch(/altered or damaged/)
      expect(await query(inject('pgUrl'), `SELECT 1 FROM pg_database WHERE datname = $1`, [name])).toEqual([])
    } finally {
      await other.close()
    }
  }, 120_000)
})
