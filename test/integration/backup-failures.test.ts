import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import pg from 'pg'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { readCatalog } from '../../src/core/backup/catalog'
import { LocalStorage } from '../../src/core/storage/local'
import { openOps } from '../helpers/ops'
import { createDatabase } from '../helpers/db'
import { startS3, S3_CREDENTIALS, TEST_BUCKET } from '../helpers/s3'
import { seedExamforge } from '../helpers/seed'
import { cli } from '../helpers/cli'
import { waitFor } from '../helpers/wait'

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

describe('a database server that accepts connections but never answers', () => {
  /** A real TCP server on loopback that accepts and then says nothing (as a hung server or a black-holing proxy does). */
  let server: ReturnType<typeof createServer>
  const sockets = new Set<Socket>()
  let url: string
  beforeAll(async () => {
    server = createServer((s) => {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => sockets.delete(s))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as { port: number }).port
    url = `postgres://backup:never-sent-s3cret@127.0.0.1:${port}/examforge`
  })
  afterAll(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((r) => server?.close(r))
  })

  for (const args of [
    ['backup', 'full'],
    ['backups', 'prerequisites'],
  ])
    it(`"${args.join(' ')}" fails within the connect timeout and says what to check`, async () => {
      const t0 = Date.now()
      const r = await cli(args, {
        DATABASE_URL: url,
        DB_CONNECT_TIMEOUT_S: '2',
        LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-hang-')),
      })
      const took = Date.now() - t0
      expect(r.code, r.stdout + r.stderr).toBe(1)
      expect(r.stderr).toMatch(/PostgreSQL at 127\.0\.0\.1:\d+ did not answer within 2 s \(DB_CONNECT_TIMEOUT_S\): check that DATABASE_URL/)
      expect(r.stdout + r.stderr).not.toContain('never-sent-s3cret')
      // The ops store's own connect (5 s) and ours (2 s), plus starting the CLI: never the hang it was.
      expect(took).toBeLessThan(40_000)
    }, 60_000)
})

describe('a backup that meets a lock held by another session', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'lockw')
    await seedExamforge(db.url, 0.05)
  })
  afterAll(() => db?.drop())

  it('says which pid it waits for and what it runs, goes on when the lock is gone, and ends at BACKUP_LOCK_TIMEOUT leaving nothing', async () => {
    const holder = new pg.Client({ connectionString: db.url, application_name: 'migration' })
    await holder.connect()
    const pid = (await holder.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number
    await holder.query('BEGIN')
    await holder.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE')
    await holder.query(`SELECT 'migrating users' AS step`)
    const dir = mkdtempSync(join(tmpdir(), 'ops-lockw-'))
    const base = { DATABASE_URL: db.url, LOCAL_BACKUP_PATH: dir, BACKUP_INCREMENTAL: 'off' }
    try {
      // A wait that ends: the progress names the holder while it holds the lock; the backup then completes.
      const patient = await openOps({ ...base, BACKUP_LOCK_TIMEOUT: '60s' })
      try {
        const messages: string[] = []
        const { jobId } = patient.backups.startFull('test')
        patient.events.on('job.progress', (p) => {
          if (p.jobId === jobId && p.message) messages.push(`${p.phase}: ${p.message}`)
        })
        await waitFor(() => messages.find((m) => m.includes(`held by pid ${pid}`)), 'the progress to name the lock holder', 30_000, 50)
        expect(messages.find((m) => m.includes(`held by pid ${pid}`))).toMatch(
          new RegExp(
            `^waiting for a lock: waiting for a lock on users held by pid ${pid}: SELECT 'migrating users' AS step \\(idle in transaction\\)`,
          ),
        )
        await holder.query('COMMIT')
        const info = await patient.jobs.wait(jobId)
        expect(info.state, info.error?.message).toBe('succeeded')
      } finally {
        await patient.close()
      }
      const before = readdirSync(join(dir, 'sets')).sort()
      expect(before).toHaveLength(1)

      // A wait that does not end: BACKUP_LOCK_TIMEOUT=2s stops it with what to do, and nothing is written.
      await holder.query('BEGIN')
      await holder.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE')
      await holder.query(`SELECT 'migrating users again' AS step`)
      const hurried = await openOps({ ...base, BACKUP_LOCK_TIMEOUT: '2s' })
      try {
        const t0 = Date.now()
        const { jobId } = hurried.backups.startFull('test')
        const info = await hurried.jobs.wait(jobId)
        expect(Date.now() - t0).toBeLessThan(20_000)
        expect(info.state).toBe('failed')
        expect(info.error?.code).toBe('lock_timeout')
        expect(info.error?.message).toMatch(
          new RegExp(
            `^The backup waited 2 s \\(BACKUP_LOCK_TIMEOUT\\) for a lock on users held by pid ${pid} \\(SELECT 'migrating users again' AS step, idle in transaction\\) and stopped; nothing was written\\. .*pg_terminate_backend\\(${pid}\\).*raise BACKUP_LOCK_TIMEOUT`,
          ),
        )
      } finally {
        await hurried.close()
      }
      expect(readdirSync(join(dir, 'sets')).sort()).toEqual(before)
      expect((await readCatalog(new LocalStorage(dir))).map((s) => s.status)).toEqual(['complete'])
    } finally {
      await holder.query('ROLLBACK').catch(() => {})
      await holder.end()
    }
  }, 120_000)
})
