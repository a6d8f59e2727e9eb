import { spawn } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/core/config/config'
import { silentLogger } from '../../src/core/log/logger'
import { createOps, type Ops } from '../../src/core/ops'
import { settingsView } from '../../src/core/settings/view'
import { reapOrphanRedis } from '../../src/core/sandbox/redis'
import { freePort, sandboxClusterDir } from '../../src/core/sandbox/cluster'
import { query } from '../helpers/db'
import { waitFor } from '../helpers/wait'

describe('the sandbox: what a newcomer gets with no configuration at all', () => {
  let ops: Ops
  let dataDir: string
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ops-sandbox-'))
    chmodSync(dataDir, 0o755)
    ops = await createOps({
      config: loadConfig({ env: { SANDBOX_SCALE: '0.2' }, dataDir }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    await ops.jobs.wait(ops.sandbox.seedJobId!)
  })
  afterAll(async () => {
    await ops?.close()
    const cluster = sandboxClusterDir(dataDir)
    if (cluster) rmSync(cluster, { recursive: true, force: true })
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('starts an embedded PostgreSQL with wal_level=logical and says it is a sandbox', async () => {
    expect(ops.sandbox.active).toBe(true)
    expect(ops.info().sandbox.message).toMatch(/set DATABASE_URL/)
    const [row] = await query<{ wal_level: string }>(ops.databaseUrl!, `SELECT current_setting('wal_level') AS wal_level`)
    expect(row.wal_level).toBe('logical')
  })

  it('seeds an ExamForge-like schema: enums, jsonb, timestamptz, foreign keys, quoted mixed-case identifiers', async () => {
    const url = ops.databaseUrl!
    const tables = (
      await query<{ relname: string }>(url, `SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'`)
    ).map((r) => r.relname)
    for (const t of [
      'users',
      'teams',
      'team_members',
      'plans',
      'subscriptions',
      'quizzes',
      'questions',
      'question_options',
      'quiz_responses',
      'question_responses',
      'AuditEvent',
    ])
      expect(tables).toContain(t)
    const enums = await query<{ typname: string }>(
      url,
      `SELECT typname FROM pg_type WHERE typtype = 'e' AND typnamespace = 'public'::regnamespace`,
    )
    expect(enums.map((e) => e.typname).sort()).toEqual(['question_kind', 'subscription_status', 'user_role'])
    const fks = await query(url, `SELECT 1 FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace`)
    expect(fks.length).toBeGreaterThanOrEqual(12)
    const types = await query<{ data_type: string }>(
      url,
      `SELECT DISTINCT data_type FROM information_schema.columns WHERE table_schema = 'public'`,
    )
    expect(types.map((t) => t.data_type)).toEqual(expect.arrayContaining(['jsonb', 'timestamp with time zone', 'USER-DEFINED', 'numeric']))
    const [counts] = await query<{ users: string; answers: string; odd: string }>(
      url,
      `SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM question_responses) AS answers,
              (SELECT count(*) FROM "AuditEvent" WHERE strpos(payload->>'note', E'\\t') > 0 AND strpos(payload->>'note', E'\\n') > 0
                 AND strpos(payload->>'note', E'\\\\') > 0) AS odd`,
    )
    expect(Number(counts.users)).toBe(400)
    expect(Number(counts.answers)).toBe(10_000)
    expect(Number(counts.odd)).toBeGreaterThan(0)
    // Every generated foreign key points at a row that exists.
    const [orphans] = await query<{ n: string }>(
      url,
      `SELECT (SELECT count(*) FROM question_responses qr LEFT JOIN questions q ON q.id = qr."questionId" WHERE q.id IS NULL) AS n`,
    )
    expect(Number(orphans.n)).toBe(0)
    // The public schema is as a new database has it: anyone may use it (an application role can reach its tables).
    const [pub] = await query<{ usage: boolean; owner: string }>(
      url,
      `SELECT has_schema_privilege('public', 'public', 'USAGE') AS usage, nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = 'public'`,
    )
    expect(pub).toEqual({ usage: true, owner: 'pg_database_owner' })
  })

  it('runs its own Redis and a small web app beside the database, so every tile is live on a first start', async () => {
    expect(ops.info().sandbox.message).toMatch(/its own Redis and a small ExamForge-like web app, with simulated traffic/)
    const snap = await ops.health.checkAll()
    expect(snap.results.find((r) => r.service === 'redis')).toMatchObject({ status: 'healthy' })
    expect(snap.results.find((r) => r.service === 'app')).toMatchObject({ status: 'healthy' })
    // Settings say where they come from, with the Redis password masked.
    const settings = settingsView(ops.config, { REDIS_URL: ops.redisUrl, APP_URL: ops.appUrl, DATABASE_URL: ops.databaseUrl })
    expect(settings.find((x) => x.key === 'REDIS_URL')).toMatchObject({
      source: 'sandbox',
      value: expect.stringMatching(/^redis:\/\/:•••@127\.0\.0\.1:\d+/),
    })
    expect(settings.find((x) => x.key === 'APP_URL')).toMatchObject({ source: 'sandbox' })
    // The web app answers real routes from the database (its visitors keep its metrics moving).
    const { appUrl, redisUrl } = JSON.parse(readFileSync(join(dataDir, 'sandbox', 'services.json'), 'utf8')) as {
      appUrl: string
      redisUrl: string
    }
    const quiz = await fetch(`${appUrl}/api/quizzes/1`)
    expect([200, 500]).toContain(quiz.status) // one request in a hundred fails, as a real app's do
    await waitFor(
      async () => {
        await ops.metrics.collect()
        return ops.metrics.latest().find((l) => l.id === 'app.p50_ms')?.v ?? null
      },
      'web app response times',
      20_000,
    )
    // Its Redis asks for a password that is on no command line and in a file only we can read.
    expect(new URL(redisUrl).password.length).toBeGreaterThan(10)
    expect(statSync(join(dataDir, 'sandbox', 'services.json')).mode & 0o077).toBe(0)
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let cmd = ''
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      } catch {
        continue
      }
      expect(cmd).not.toContain(decodeURIComponent(new URL(redisUrl).password))
    }
  })

  it('the traffic simulator inserts, updates and deletes rows', async () => {
    const url = ops.databaseUrl!
    const stat = async () =>
      (
        await query<{ ins: string; upd: string; del: string }>(
          url,
          `SELECT sum(n_tup_ins) AS ins, sum(n_tup_upd) AS upd, sum(n_tup_del) AS del FROM pg_stat_user_tables WHERE relname IN ('quiz_responses', 'subscriptions')`,
        )
      )[0]
    const before = await stat()
    await new Promise((r) => setTimeout(r, 4500))
    const after = await stat()
    expect(Number(after.ins)).toBeGreaterThan(Number(before.ins))
    expect(Number(after.upd)).toBeGreaterThan(Number(before.upd))
    expect(Number(after.del)).toBeGreaterThan(Number(before.del))
  })

  it('regenerating at another scale is a cancellable job that keeps the old data until it completes', async () => {
    const url = ops.databaseUrl!
    const [{ n: usersBefore }] = await query<{ n: string }>(url, 'SELECT count(*) AS n FROM users')
    const id = ops.seed(5)
    await new Promise((r) => setTimeout(r, 300))
    ops.jobs.cancel(id)
    const info = await ops.jobs.wait(id)
    expect(info.state).toBe('cancelled')
    const [{ n: usersAfter }] = await query<{ n: string }>(url, 'SELECT count(*) AS n FROM users')
    expect(usersAfter).toBe(usersBefore)
    const jobs = await query<{ state: string }>(url, 'SELECT state FROM ops.jobs WHERE id = $1', [id])
    expect(jobs[0].state).toBe('cancelled')
    const audit = await query<{ outcome: string }>(url, `SELECT outcome FROM ops.audit_log WHERE target = $1`, [id])
    expect(audit[0].outcome).toBe('cancelled')
  })

  it('the sandbox does not seed a configured database', async () => {
    const other = await createOps({
      config: loadConfig({ env: { DATABASE_URL: ops.databaseUrl! }, dataDir: mkdtempSync(join(tmpdir(), 'ops-real-')) }),
      face: 'host',
      log: silentLogger,
      schedule: false,
    })
    try {
      expect(other.sandbox.active).toBe(false)
      expect(() => other.seed(1)).toThrow(/never overwritten/)
    } finally {
      await other.close()
    }
  })
})

describe('the sandbox Redis never outlives its console', () => {
  it('a start reaps the Redis servers whose consoles died without stopping them, and only those', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-reap-'))
    const start = async (name: string, owner: number) => {
      const folder = join(dir, `examforge-ops-redis-${name}`)
      mkdirSync(folder, { mode: 0o700 })
      const port = await freePort()
      writeFileSync(join(folder, 'redis.conf'), `port ${port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir ${folder}\n`)
      const child = spawn('redis-server', [join(folder, 'redis.conf')], { stdio: 'ignore' })
      writeFileSync(join(folder, 'owner.json'), JSON.stringify({ owner, pid: child.pid }))
      await waitFor(() => readlinkSync(`/proc/${child.pid}/cwd`) === folder, 'redis-server to start in its folder')
      return { folder, child }
    }
    // A console that is gone (a pid no process has), and one that is alive (this test).
    const orphan = await start('orphan', 2 ** 22 + 12345)
    const owned = await start('owned', process.pid)
    try {
      const exited = new Promise((r) => orphan.child.once('exit', r))
      expect(reapOrphanRedis(dir)).toBe(1)
      await exited
      expect(existsSync(orphan.folder)).toBe(false)
      expect(owned.child.exitCode).toBeNull()
      expect(existsSync(owned.folder)).toBe(true)
    } finally {
      orphan.child.kill('SIGKILL')
      owned.child.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
