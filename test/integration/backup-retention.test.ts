import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { readCatalog } from '../../src/core/backup/catalog'
import { createDatabase, query } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { S3_CREDENTIALS, TEST_BUCKET } from '../helpers/s3'
import { seedExamforge } from '../helpers/seed'
import { waitFor } from '../helpers/wait'

const root = resolve(__dirname, '../..')

const backup = async (ops: Parameters<typeof backupNow>[0], type: 'full' | 'incremental') => (await backupNow(ops, type)).setId

describe('retention really deletes, and only what it previewed', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'ret')
    await seedExamforge(db.url, 0.02)
  })
  afterAll(async () => {
    await db.drop()
  })

  const storages = {
    folder: () => ({ LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-ret-')) }),
    S3: () => ({ BACKUP_S3_BUCKET: TEST_BUCKET, S3_ENDPOINT: inject('s3Endpoint'), S3_PREFIX: `ret-${Date.now()}/`, ...S3_CREDENTIALS }),
  }
  for (const [name, storageEnv] of Object.entries(storages)) {
    it(`on ${name}: keeps the newest chain, deletes the older one's objects, and the catalog agrees`, async () => {
      const env = { DATABASE_URL: db.url, BACKUP_RETAIN_DAYS: '0', BACKUP_KEEP_FULLS: '1', ...storageEnv() }
      const ops = await openOps(env)
      try {
        const oldFull = await backup(ops, 'full')
        await query(db.url, `UPDATE users SET "displayName" = 'x' WHERE id = 1`)
        const oldInc = await backup(ops, 'incremental')
        const newFull = await backup(ops, 'full')
        // oldInc found no chain and was a full that started one; newFull closed that chain with a last incremental first.
        const sets = await readCatalog(ops.backups.storage())
        const closing = sets.find((x) => x.manifest?.parent === oldInc)
        expect(closing?.manifest?.type).toBe('incremental')
        const old = [oldFull, oldInc, closing!.setId].sort()
        const plan = await ops.backups.retentionPlan()
        expect(plan.delete.map((d) => d.setId).sort()).toEqual(old)
        expect((await readCatalog(ops.backups.storage())).length).toBe(4) // the preview deleted nothing
        await expect(ops.backups.prune('yes', 'test')).rejects.toThrow(/Type "delete"/)
        const r = await ops.backups.prune('delete', 'test')
        expect(r.deleted.sort()).toEqual(old)
        const left = await ops.backups.storage().list('sets/')
        expect(left.every((o) => o.key.startsWith(`sets/${newFull}/`))).toBe(true)
        expect(left.length).toBeGreaterThan(3)
        const audit = await query<{ outcome: string }>(db.url, `SELECT outcome FROM ops.audit_log WHERE action = 'backup.prune'`)
        expect(audit.map((a) => a.outcome)).toContain('deleted')
        // A prune with nothing left to delete is recorded as such, not as "deleted".
        expect((await ops.backups.prune('delete', 'test')).deleted).toEqual([])
        const again = await query<{ outcome: string }>(
          db.url,
          `SELECT outcome FROM ops.audit_log WHERE action = 'backup.prune' ORDER BY id DESC LIMIT 1`,
        )
        expect(again[0].outcome).toBe('nothing to delete')
      } finally {
        await ops.close()
      }
    })
  }

  it('the CLI previews with --dry-run and without --yes, and deletes with --yes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-retcli-'))
    const env = { DATABASE_URL: db.url, LOCAL_BACKUP_PATH: dir, BACKUP_RETAIN_DAYS: '0', BACKUP_KEEP_FULLS: '1', BACKUP_INCREMENTAL: 'off' }
    const ops = await openOps(env)
    const first = await backup(ops, 'full')
    await backup(ops, 'full')
    await ops.close()
    const cli = (args: string[]) =>
      new Promise<{ code: number; out: string }>((done) => {
        const child = spawn(process.execPath, [join(root, 'out/host/cli.js'), ...args], {
          env: { PATH: process.env.PATH!, HOME: process.env.HOME!, OPS_DATA_DIR: dir, ...env },
        })
        let out = ''
        child.stdout.on('data', (d) => (out += d))
        child.stderr.on('data', (d) => (out += d))
        child.on('close', (code) => done({ code: code ?? -1, out }))
      })
    const dry = await cli(['backups', 'prune', '--dry-run'])
    expect(dry.out).toContain(`Would delete 1 set(s)`)
    expect(dry.out).toContain(first)
    const noYes = await cli(['backups', 'prune'])
    expect(noYes.out).toMatch(/Nothing was deleted: add --yes/)
    const yes = await cli(['backups', 'prune', '--yes', '--json'])
    expect(yes.code).toBe(0)
    expect((JSON.parse(yes.out) as { deleted: string[] }).deleted).toEqual([first])
  })

  it('the agent takes scheduled backups', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-sched-'))
    const ops = await openOps({ DATABASE_URL: db.url, LOCAL_BACKUP_PATH: dir, BACKUP_INCREMENTAL_EVERY: '1s' }, { backupSchedule: true })
    try {
      // The first scheduled incremental starts a chain with a full; the next ones follow it.
      await waitFor(
        async () => (await readCatalog(ops.backups.storage())).filter((s) => s.status === 'complete').length >= 2,
        'two scheduled backups',
        20_000,
      )
      const sets = await readCatalog(ops.backups.storage())
      expect(sets.map((s) => s.type)).toContain('full')
      expect(sets.map((s) => s.type)).toContain('incremental')
      const jobs = await query<{ kind: string }>(db.url, `SELECT DISTINCT action AS kind FROM ops.audit_log WHERE actor = 'schedule'`)
      expect(jobs.map((j) => j.kind)).toContain('job.backup.incremental')
    } finally {
      await ops.close()
    }
  })
})
