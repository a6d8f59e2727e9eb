import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { readCatalog } from '../../src/core/backup/catalog'
import { parseCompression, zstdAvailable } from '../../src/core/backup/compression'
import { openOps } from '../helpers/ops'
import { createDatabase } from '../helpers/db'
import { startS3, S3_CREDENTIALS, TEST_BUCKET } from '../helpers/s3'
import { seedExamforge } from '../helpers/seed'

const root = resolve(__dirname, '../..')

describe('backups that fail part-way', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'fail')
    await seedExamforge(db.url, 0.5)
  })
  afterAll(() => db?.drop())

  it('a killed backup process leaves no manifest; the set shows as incomplete, cleanup removes it, the next backup succeeds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-kill-'))
    const env = { DATABASE_URL: db.url, LOCAL_BACKUP_PATH: dir, BACKUP_INCREMENTAL: 'off', BACKUP_CHUNK_MB: '1', BACKUP_PARALLELISM: '1' }
    const killed = await new Promise<string | null>((done) => {
      const child = spawn(process.execPath, [join(root, 'out/host/cli.js'), 'backup', 'full'], {
        env: { PATH: process.env.PATH!, HOME: process.env.HOME!, OPS_DATA_DIR: dir, ...env },
      })
      // Kill it once it has started writing data.
      const timer = setInterval(() => {
        const sets = (() => {
          try {
            return readdirSync(join(dir, 'sets'))
          } catch {
            return []
          }
        })()
        if (sets.length && readdirSync(join(dir, 'sets', sets[0])).includes('data')) {
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
    const ops = await openOps(env, {}, dir)
    try {
      const before = await readCatalog(ops.backups.storage())
      expect(before).toHaveLength(1)
      expect(before[0].status).toBe('incomplete')
      expect(before[0].problem).toMatch(/never offered for restore/)
      const cleaned = await ops.backups.cleanup(0)
      expect(cleaned.removedSets).toEqual([before[0].setId])
      const { jobId } = ops.backups.startFull('test')
      expect((await ops.jobs.wait(jobId)).state).toBe('succeeded')
      const after = await readCatalog(ops.backups.storage())
      expect(after.map((s) => s.status)).toEqual(['complete'])
    } finally {
      await ops.close()
    }
  })

  it('S3 going away mid-backup fails with what happened and writes no manifest', async () => {
    const s3 = await startS3(mkdtempSync(join(tmpdir(), 'ops-s3gone-')))
    const env = {
      DATABASE_URL: db.url,
      BACKUP_S3_BUCKET: TEST_BUCKET,
      S3_ENDPOINT: s3.endpoint,
      ...S3_CREDENTIALS,
      BACKUP_INCREMENTAL: 'off',
      BACKUP_CHUNK_MB: '1',
      BACKUP_PARALLELISM: '1',
    }
    const ops = await openOps(env)
    try {
      const { jobId } = ops.backups.startFull('test')
      let closed = false
      ops.events.on('job.progress', (p) => {
        if (!closed && p.jobId === jobId && p.done > 0) {
          closed = true
          void s3.close()
        }
      })
      const info = await ops.jobs.wait(jobId)
      expect(info.state).toBe('failed')
      expect(info.error?.message).toMatch(/S3 endpoint could not be reached|ECONNREFUSED|socket|S3 request failed/)
      expect(info.error?.message).not.toContain(S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY + '@')
    } finally {
      await ops.close()
    }
  })
})

describe('compression', () => {
  it('zstd is detected at run time: on a Node without it, asking for it says what to do', () => {
    if (zstdAvailable()) expect(parseCompression('zstd:3')).toEqual({ codec: 'zstd', level: 3 })
    else
      expect(() => parseCompression('zstd')).toThrow(
        /has no zstd; use BACKUP_COMPRESSION=gzip, or run the console on Node.js 22.15 or later/,
      )
    expect(() => parseCompression('brotli')).toThrow(/not known/)
    expect(parseCompression(undefined)).toEqual({ codec: 'gzip', level: 6 })
  })
})
