import { chmodSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { localStorageProbe } from '../../src/core/health/probes/storage'
import { createLogger } from '../../src/core/log/logger'
import type { Ops } from '../../src/core/ops'
import { createDatabase } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { seedExamforge } from '../helpers/seed'

/** Every folder and file under dir, with its permission bits. */
function modes(dir: string): { path: string; dir: boolean; mode: number }[] {
  const out: { path: string; dir: boolean; mode: number }[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    out.push({ path: p, dir: e.isDirectory(), mode: statSync(p).mode & 0o777 })
    if (e.isDirectory()) out.push(...modes(p))
  }
  return out
}

describe('local backups are private to the user who takes them', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  let backups: string
  const umask = process.umask()
  beforeAll(async () => {
    // The usual umask, under which plain mkdir/writeFile give 0755 folders and 0644 files.
    process.umask(0o022)
    db = await createDatabase(inject('pgUrl'), 'priv')
    await seedExamforge(db.url, 0.02)
    backups = join(mkdtempSync(join(tmpdir(), 'ops-priv-')), 'backups')
    ops = await openOps({ DATABASE_URL: db.url, LOCAL_BACKUP_PATH: backups })
  })
  afterAll(async () => {
    process.umask(umask)
    await ops?.close()
    await db?.drop()
  })

  it('a full backup into a new folder leaves every folder 0700 and every file 0600, whatever the umask', async () => {
    await backupNow(ops, 'full')
    const all = [{ path: backups, dir: true, mode: statSync(backups).mode & 0o777 }, ...modes(backups)]
    expect(all.filter((e) => !e.dir).length).toBeGreaterThan(3)
    expect(all.filter((e) => e.dir && e.mode !== 0o700)).toEqual([])
    expect(all.filter((e) => !e.dir && e.mode !== 0o600)).toEqual([])
  })

  it('the storage probe is healthy on a 0700 folder and degraded, saying what to do, on a 0755 one', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ops-priv-')), 'open')
    const probe = localStorageProbe({ path: dir, minFreeBytes: 1 })
    const first = await probe.run(new AbortController().signal)
    expect(first.status).toBe('healthy')
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    chmodSync(dir, 0o755)
    const open = await probe.run(new AbortController().signal)
    expect(open.status).toBe('degraded')
    expect(open.reason).toBe(
      `The backup folder ${dir} can be read by other users (mode 755), and backups hold user rows: run "chmod 700 ${dir}".`,
    )
  })

  it('the console says so at start when the backup folder is open to others', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ops-priv-')), 'open')
    mkdirSync(dir)
    chmodSync(dir, 0o755)
    const lines: string[] = []
    const other = await openOps(
      { DATABASE_URL: db.url, LOCAL_BACKUP_PATH: dir },
      { log: createLogger({ sink: (l) => lines.push(l), level: 'warn' }) },
    )
    await other.close()
    expect(lines.filter((l) => l.includes(`The backup folder ${dir} can be read by other users (mode 755)`))).toHaveLength(1)
  })

  it('an existing folder is not changed behind the operator’s back, only reported', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ops-priv-')), 'shared')
    mkdirSync(dir, { mode: 0o750 })
    chmodSync(dir, 0o750)
    const r = await localStorageProbe({ path: dir, minFreeBytes: 1 }).run(new AbortController().signal)
    expect(r.status).toBe('degraded')
    expect(statSync(dir).mode & 0o777).toBe(0o750)
  })
})
