import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { freePort } from '../../src/core/sandbox/cluster'
import { cli } from '../helpers/cli'
import { createDatabase } from '../helpers/db'
import { startHttp } from '../helpers/http'
import { S3_CREDENTIALS } from '../helpers/s3'
import { seedExamforge } from '../helpers/seed'

describe('examforge-ops CLI', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let app: Awaited<ReturnType<typeof startHttp>>
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'cli')
    app = await startHttp((_req, res) => res.writeHead(200).end('{"status":"ok"}'))
  })
  afterAll(async () => {
    await app?.close()
    await db?.drop()
  })

  it('--help lists the commands and exits 0', async () => {
    const r = await cli(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/health \[--json\]/)
    expect(r.stdout).toMatch(/serve/)
  })

  it('health exits 0 when every configured check is healthy, and prints every check', async () => {
    // The host check must not depend on how busy the test machine is: this test sets its threshold.
    const r = await cli(['health'], {
      DATABASE_URL: db.url,
      LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'bk-')),
      HOST_LOAD_WARN_PER_CORE: '10000',
    })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    for (const label of ['PostgreSQL', 'Redis', 'Backup folder', 'S3 backups', 'Stripe', 'Web app', 'Host'])
      expect(r.stdout).toContain(label)
    expect(r.stdout).toMatch(/Redis\s+not configured/)
  })

  it('health --json exits 1 when a check is degraded', async () => {
    const r = await cli(['health', '--json'], { DATABASE_URL: db.url, APP_URL: app.url, APP_HEALTH_KEYWORD: 'never-there' })
    expect(r.code).toBe(1)
    const snap = JSON.parse(r.stdout) as { overall: string; results: { service: string; status: string }[] }
    expect(snap.overall).toBe('degraded')
    expect(snap.results.find((x) => x.service === 'app')!.status).toBe('degraded')
  })

  it('health exits 2 when a check is unhealthy, and never prints a password', async () => {
    const port = await freePort()
    const r = await cli(['health', '--json'], { DATABASE_URL: db.url, REDIS_URL: `redis://:redis-pass-778@127.0.0.1:${port}` })
    expect(r.code).toBe(2)
    const snap = JSON.parse(r.stdout) as { results: { service: string; status: string; reason: string }[] }
    expect(snap.results.find((x) => x.service === 'redis')).toMatchObject({ status: 'unhealthy' })
    expect(r.stdout + r.stderr).not.toContain('redis-pass-778')
    expect(r.stdout + r.stderr).not.toContain(new URL(db.url).password)
  })

  it('--service narrows the check and the exit code', async () => {
    const port = await freePort()
    const r = await cli(['health', '--service', 'postgres'], { DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${port}` })
    expect(r.code).toBe(0)
    expect(r.stdout).not.toContain('Redis')
    const bad = await cli(['health', '--service', 'mysql'])
    expect(bad.code).toBe(64)
    expect(bad.stderr).toMatch(/Unknown service "mysql": use one of postgres, redis/)
  })

  it('an unknown command says so and exits 64', async () => {
    const r = await cli(['backupz'])
    expect(r.code).toBe(64)
    expect(r.stderr).toMatch(/Unknown command "backupz"/)
  })
})

describe('examforge-ops backup and backups', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let dir: string
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'clibk')
    await seedExamforge(db.url, 0.05)
    dir = mkdtempSync(join(tmpdir(), 'ops-clibk-'))
  })
  afterAll(() => db?.drop())
  const env = () => ({ DATABASE_URL: db.url, LOCAL_BACKUP_PATH: dir })

  it('backup full, backups list and backups verify, with JSON and exit codes', async () => {
    const b = await cli(['backup', 'full', '--json'], env())
    expect(b.code).toBe(0)
    const done = JSON.parse(b.stdout) as { ok: boolean; result: { setId: string; tables: number; rows: number } }
    expect(done.ok).toBe(true)
    expect(done.result.tables).toBe(11)
    const list = await cli(['backups', 'list', '--json'], env())
    expect(list.code).toBe(0)
    const sets = (JSON.parse(list.stdout) as { sets: { setId: string; status: string; rows: number }[] }).sets
    expect(sets.find((s) => s.setId === done.result.setId)).toMatchObject({ status: 'complete', rows: done.result.rows })
    const human = await cli(['backups', 'list'], env())
    expect(human.stdout).toContain(done.result.setId)
    const v = await cli(['backups', 'verify', done.result.setId], env())
    expect(v.code).toBe(0)
    expect(v.stdout).toMatch(/OK: all \d+ objects/)
  })

  it('lists backups while the database is down', async () => {
    const port = await freePort()
    const r = await cli(['backups', 'list', '--json'], { DATABASE_URL: `postgres://x:y@127.0.0.1:${port}/gone`, LOCAL_BACKUP_PATH: dir })
    expect(r.code).toBe(0)
    expect((JSON.parse(r.stdout) as { sets: unknown[] }).sets.length).toBeGreaterThan(0)
  })

  it('an unknown set id, an unwritable folder and a missing bucket each say what to do', async () => {
    const unknown = await cli(['backups', 'verify', '20200101T000000Z-full-0000'], env())
    expect(unknown.code).toBe(1)
    expect(unknown.stderr + unknown.stdout).toMatch(/There is no backup set "20200101T000000Z-full-0000".*backups list/)
    const file = join(dir, 'not-a-folder')
    writeFileSync(file, 'x')
    const unwritable = await cli(['backup', 'full'], { DATABASE_URL: db.url, LOCAL_BACKUP_PATH: join(file, 'backups') })
    expect(unwritable.code).toBe(1)
    expect(unwritable.stderr).toMatch(/Cannot create .*check LOCAL_BACKUP_PATH/)
    const noBucket = await cli(['backup', 'full'], {
      DATABASE_URL: db.url,
      BACKUP_S3_BUCKET: 'no-such-bucket',
      S3_ENDPOINT: inject('s3Endpoint'),
      ...S3_CREDENTIALS,
    })
    expect(noBucket.code).toBe(1)
    expect(noBucket.stderr).toMatch(/"no-such-bucket" does not exist/)
    expect(noBucket.stderr).not.toContain(S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY + '@')
  })

  it("an unfinished set's size counts its .partial writes (what it really takes on disk)", async () => {
    // A backup killed while it wrote a chunk: a small finished object and a big unfinished one.
    const setId = '20261130T101500Z-full-0a1b'
    const setDir = join(dir, 'sets', setId)
    mkdirSync(join(setDir, 'data', 't0000'), { recursive: true })
    writeFileSync(join(setDir, 'schema.json.gz'), Buffer.alloc(6 * 1024, 1))
    writeFileSync(join(setDir, 'data', 't0000', 'c0000.copy.gz.partial'), Buffer.alloc(3 * 1024 * 1024, 2))
    const onDisk = statSync(join(setDir, 'schema.json.gz')).size + statSync(join(setDir, 'data', 't0000', 'c0000.copy.gz.partial')).size
    const list = await cli(['backups', 'list', '--json'], env())
    expect(list.code, list.stderr).toBe(0)
    const set = (
      JSON.parse(list.stdout) as { sets: { setId: string; status: string; storedBytes: number; partialBytes: number; problem: string }[] }
    ).sets.find((s) => s.setId === setId)
    expect(set).toMatchObject({ status: 'incomplete', storedBytes: onDisk, partialBytes: 3 * 1024 * 1024 })
    expect(set!.problem).toMatch(/1 unfinished write\(s\) of 3\.0 MB included in its size/)
    const human = await cli(['backups', 'list'], env())
    expect(human.stdout.split('\n').find((l) => l.startsWith(setId))).toMatch(/incomplete .* 3\.0 MB /)
  })
})

describe('examforge-ops acts as the OS user running it', () => {
  const { username } = userInfo()
  it('a destructive command is refused for an OS user mapped to a non-administrator, and allowed for an administrator', async () => {
    const env = { LOCAL_BACKUP_PATH: mkdtempSync(join(tmpdir(), 'ops-cliadm-')), ADMIN_EMAILS: 'ops@examforge.test' }
    const refused = await cli(['backups', 'prune', '--yes'], { ...env, OPS_OS_USERS: `${username}=dev@examforge.test` })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(
      `Deleting backups (backups prune --yes) needs an administrator, and you are signed in as ${username} <dev@examforge.test> (cli), which is not in ADMIN_EMAILS.`,
    )
    // Not mapped at all: the same, naming the OS user.
    const unmapped = await cli(['backups', 'prune', '--yes'], env)
    expect(unmapped.code).toBe(1)
    expect(unmapped.stderr).toContain(`signed in as ${username} (cli)`)
    // --as (a typed name) grants nothing.
    const typed = await cli(['restore-test', '--as', 'ops@examforge.test'], env)
    expect(typed.code).toBe(1)
    expect(typed.stderr).toMatch(/A restore test needs an administrator/)
    // Dry runs stay open to everyone.
    expect((await cli(['backups', 'prune', '--dry-run'], env)).code).toBe(0)
    const allowed = await cli(['backups', 'prune', '--yes', '--json'], { ...env, OPS_OS_USERS: `${username}=OPS@examforge.test` })
    expect(allowed.code, allowed.stderr).toBe(0)
    expect(JSON.parse(allowed.stdout)).toMatchObject({ applied: true })
  })
})
