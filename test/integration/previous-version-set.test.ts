import { chmodSync, cpSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { verifySet } from '../../src/core/backup/verify'
import type { Ops } from '../../src/core/ops'
import { LocalStorage } from '../../src/core/storage/local'
import { createDatabase, query } from '../helpers/db'
import { openOps } from '../helpers/ops'
import { databaseRows, restoreNow } from '../helpers/restore'
import { noProgress } from '../helpers/seed'

/**
 * A set written by the version before zstd became the default (examforge-ops 0.1.0 at commit 45cc647, gzip:6,
 * manifest format 1), kept as it was written in test/fixtures/previous-version-set with the SQL that made its
 * source (seed.sql: an enum, an identity column, text ids, numeric, arrays, jsonb, bytea, NULLs, a tab and a newline
 * inside a key). The console as it is now (zstd by default) lists it, verifies it and restores it byte-exact.
 */
const fixture = join(__dirname, '..', 'fixtures', 'previous-version-set')
const setId = '20261130T225328Z-full-fe49'

/** A private copy of the fixture (the local storage wants 0700 folders and 0600 files, which git does not keep). */
function privateCopy(): string {
  const folder = mkdtempSync(join(tmpdir(), 'ops-prev-'))
  cpSync(join(fixture, 'sets'), join(folder, 'sets'), { recursive: true })
  const walk = (p: string) => {
    if (statSync(p).isDirectory()) {
      chmodSync(p, 0o700)
      for (const e of readdirSync(p)) walk(join(p, e))
    } else chmodSync(p, 0o600)
  }
  walk(folder)
  return folder
}

describe('a gzip set written by the previous version', () => {
  let src: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  const folder = privateCopy()
  const created: string[] = []
  beforeAll(async () => {
    src = await createDatabase(inject('pgUrl'), 'prevsrc')
    await query(src.url, readFileSync(join(fixture, 'seed.sql'), 'utf8'))
    ops = await openOps({ DATABASE_URL: src.url, LOCAL_BACKUP_PATH: folder, BACKUP_INCREMENTAL: 'off' })
  }, 120_000)
  afterAll(async () => {
    await ops?.close()
    for (const name of created) await query(inject('pgUrl'), `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {})
    await src?.drop()
  })

  it('is listed as a complete gzip set, and verify re-reads it whole', async () => {
    const set = (await ops.backups.list()).find((s) => s.setId === setId)
    expect(set?.manifest?.compression).toEqual({ codec: 'gzip', level: 6 })
    expect(set?.manifest?.tool.version).toBe('0.1.0')
    const r = await verifySet(new LocalStorage(folder), setId, { key: null, passphrase: null }, noProgress())
    expect(r.objects.filter((o) => !o.ok)).toEqual([])
    expect(r.ok).toBe(true)
  })

  it('restores into a new database byte-exact, and the restore check passes with its digests', async () => {
    const name = `prev_${Date.now().toString(36)}`
    created.push(name)
    const r = await restoreNow(ops, { point: { setId }, target: { kind: 'new', database: name } }, name)
    expect(r.report.ok).toBe(true)
    expect(r.report.tables.map((t) => t.table).sort()).toEqual(['public.members', 'public.teams'])
    expect(r.report.tables.every((t) => t.digestExpected && t.digestExpected === t.digestFound)).toBe(true)
    const restored = new URL(src.url)
    restored.pathname = `/${name}`
    const tables = ['public.teams', 'public.members']
    expect(await databaseRows(restored.toString(), tables)).toEqual(await databaseRows(src.url, tables))
  }, 120_000)
})
