import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { cli } from '../helpers/cli'
import { createDatabase } from '../helpers/db'
import { seedExamforge } from '../helpers/seed'

/**
 * A restore's target password stays off the command line (other local users read /proc/<pid>/cmdline):
 * the built CLI warns when one is there, and PGPASSWORD, ~/.pgpass and --target-secret supply it instead.
 */
describe('examforge-ops restore --target keeps the password off the command line', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let dir: string
  let setId: string
  let password: string
  let bare: string
  const env = () => ({ DATABASE_URL: db.url, LOCAL_BACKUP_PATH: dir, BACKUP_INCREMENTAL: 'off' })
  const WARNING = /Warning: the --target URL holds a password, which other users of this machine can read/
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'clitgt')
    await seedExamforge(db.url, 0.02)
    dir = mkdtempSync(join(tmpdir(), 'ops-clitgt-'))
    const b = await cli(['backup', 'full', '--json'], env())
    expect(b.code, b.stderr).toBe(0)
    setId = (JSON.parse(b.stdout) as { result: { setId: string } }).result.setId
    // The same server as a restore target, without its password: a new database the restore would create.
    const u = new URL(db.url)
    password = decodeURIComponent(u.password)
    u.password = ''
    u.pathname = `/restored_${Math.random().toString(36).slice(2, 8)}`
    bare = u.toString()
  })
  afterAll(() => db?.drop())

  const plan = (args: string[], extra: Record<string, string> = {}) =>
    cli(['restore', '--backup', setId, ...args, '--json'], { ...env(), ...extra })
  const reachable = (stdout: string) =>
    (JSON.parse(stdout) as { plan: { ok: boolean; preflight: { check: string; status: string }[] } }).plan

  it('warns on stderr, without repeating it, when --target holds a password (in user:password@ or ?password=)', async () => {
    const inAuthority = new URL(bare)
    inAuthority.password = password
    const r = await plan(['--target', inAuthority.toString()])
    expect(r.stderr).toMatch(WARNING)
    expect(r.stderr + r.stdout).not.toContain(password)
    expect(r.code).toBe(0)
    const inQuery = await plan(['--target', `${bare}?password=${encodeURIComponent(password)}`])
    expect(inQuery.stderr).toMatch(WARNING)
    expect(inQuery.stderr + inQuery.stdout).not.toContain(password)
  })

  it('without a password the target is unreachable; PGPASSWORD supplies it, with no warning', async () => {
    const none = await plan(['--target', bare])
    expect(none.code).toBe(1)
    expect(reachable(none.stdout).ok).toBe(false)
    // As text: the failed check, and no advice to add --yes to a plan that cannot start.
    const text = await cli(['restore', '--backup', setId, '--target', bare], env())
    expect(text.code).toBe(1)
    expect(text.stdout).toMatch(/FAIL {2}Target reachable: /)
    expect(text.stdout).toContain('Nothing was changed. The restore cannot start until the checks marked FAIL above pass.')
    expect(text.stdout).not.toContain('add --yes')
    const withEnv = await plan(['--target', bare], { PGPASSWORD: password })
    expect(withEnv.stderr).not.toMatch(WARNING)
    expect(withEnv.code, withEnv.stderr).toBe(0)
    expect(reachable(withEnv.stdout).ok).toBe(true)
    // A database the restore creates gets the space check too (the server is this machine: its disk is seen).
    const space = (
      JSON.parse(withEnv.stdout) as { plan: { preflight: { check: string; status: string; detail: string }[] } }
    ).plan.preflight.find((c) => c.check === 'Space')
    expect(space).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^About \S+ \S+ is needed; \S+ \S+ is free\.$/) })
  })

  it('~/.pgpass supplies it (pg reads it when it is 0600)', async () => {
    const home = mkdtempSync(join(tmpdir(), 'ops-home-'))
    const u = new URL(bare)
    writeFileSync(join(home, '.pgpass'), `${u.hostname}:${u.port}:*:${u.username}:${password}\n`, { mode: 0o600 })
    const r = await plan(['--target', bare], { HOME: home })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).not.toMatch(WARNING)
  })

  it('--target-secret KEY reads the URL from the 0600 secrets file; a missing key says what to add', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ops-sec-')), 'secrets.env')
    const withPassword = new URL(bare)
    withPassword.password = password
    writeFileSync(file, `RESTORE_TARGET_URL=${withPassword.toString()}\n`, { mode: 0o600 })
    const r = await plan(['--target-secret', 'RESTORE_TARGET_URL'], { OPS_SECRETS_FILE: file })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).not.toMatch(WARNING)
    expect(r.stderr + r.stdout).not.toContain(password)
    const missing = await plan(['--target-secret', 'OTHER_TARGET'], { OPS_SECRETS_FILE: file })
    expect(missing.code).toBe(64)
    expect(missing.stderr).toMatch(/there is no OTHER_TARGET in the secrets file .*Add a line OTHER_TARGET=postgres:\/\//)
  })
})
