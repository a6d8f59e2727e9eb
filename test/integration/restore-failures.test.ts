import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { dispatch } from '../../src/core/dispatch'
import type { Ops } from '../../src/core/ops'
import { createDatabase, query } from '../helpers/db'
import { backupNow, openOps } from '../helpers/ops'
import { databaseRows, restoreNow } from '../helpers/restore'
import { seedExamforge } from '../helpers/seed'
import { waitFor } from '../helpers/wait'

const root = resolve(__dirname, '../..')
const TABLES = [
  'public.users',
  'public.teams',
  'public.subscriptions',
  'public.quizzes',
  'public.questions',
  'public.quiz_responses',
  'public.question_responses',
]

function cli(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [join(root, 'out/host/cli.js'), ...args], {
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, OPS_DATA_DIR: mkdtempSync(join(tmpdir(), 'ops-cli-')), ...env },
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((ok) =>
    child.on('close', (code, signal) => ok({ code, signal, stdout, stderr })),
  )
  return { child, done }
}

describe('restores that fail, are refused or are killed', () => {
  let src: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  let dir: string
  let setId: string
  let env: Record<string, string>
  /** The state the database is in (it differs from the backup, so any partial restore would show). */
  let current: Record<string, string[]>
  const dbName = () => new URL(src.url).pathname.slice(1)
  beforeAll(async () => {
    if (!existsSync(join(root, 'out/host/cli.js'))) throw new Error('The CLI is not built: run "npm run build" (npm test does it first).')
    src = await createDatabase(inject('pgUrl'), 'rfail')
    await seedExamforge(src.url, 0.3)
    dir = mkdtempSync(join(tmpdir(), 'ops-rfail-'))
    env = { DATABASE_URL: src.url, LOCAL_BACKUP_PATH: dir, BACKUP_INCREMENTAL: 'off', BACKUP_CHUNK_MB: '1' }
    ops = await openOps(env)
    setId = (await backupNow(ops, 'full')).setId
    await query(
      src.url,
      `DELETE FROM quiz_responses WHERE id % 3 = 0; UPDATE users SET "displayName" = 'changed' WHERE id % 4 = 0; DELETE FROM subscriptions WHERE id % 5 = 0`,
    )
    current = await databaseRows(src.url, TABLES)
  }, 60_000)
  afterAll(async () => {
    await ops?.close()
    await src?.drop()
  })

  it('the plan gives no time before any restore was timed here, rather than a made-up one', async () => {
    const plan = await ops.restores.plan({ point: { setId }, target: { kind: 'new', database: 'never_made_estimate' } })
    expect(plan.estimatedSeconds).toBeNull()
    expect(plan.estimateBasis).toMatch(/^unknown: no restore into an empty database has been timed here yet/)
  })

  it('a killed restore process leaves the database exactly as it was, at every point it was killed', async () => {
    // How long a whole in-place restore takes through the CLI, to kill it at random points within.
    const t0 = Date.now()
    const first = cli(['restore', '--backup', setId, '--yes', '--json'], env)
    const firstResult = await first.done
    expect(firstResult.code, firstResult.stderr).toBe(0)
    const whole = Date.now() - t0
    const restoredState = await databaseRows(src.url, TABLES)
    expect(restoredState).not.toEqual(current)
    // Put the changed state back (the safety backup of that restore holds it), then kill restores of the backup.
    const firstId = JSON.parse(firstResult.stdout).job.result.restoreId as string
    const undo = await ops.restores.undo(firstId, dbName(), { actor: 'test' })
    const undone = await ops.jobs.wait(undo.jobId)
    expect(undone.state).toBe('succeeded')
    expect(await databaseRows(src.url, TABLES)).toEqual(current)
    // An undo already done is not offered or accepted again: the record says which undo did it.
    const undoId = (undone.result as { restoreId: string }).restoreId
    expect((await ops.restores.history()).find((h) => h.id === firstId)?.undoneBy).toBe(undoId)
    await expect(ops.restores.undo(firstId, dbName(), { actor: 'test' })).rejects.toThrow(
      new RegExp(`Restore ${firstId} was already undone by ${undoId}: .*undo ${undoId} instead`),
    )
    const again = await cli(['restore', '--undo', firstId], env).done
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(new RegExp(`Restore ${firstId} was already undone by ${undoId}`))
    expect(again.stdout).not.toMatch(/Would undo/)
    expect(await databaseRows(src.url, TABLES)).toEqual(current)
    const started = async () =>
      // Running, or already found interrupted by the next run's start.
      (await query<{ n: number }>(src.url, `SELECT count(*)::int AS n FROM ops.restores WHERE outcome IN ('running', 'interrupted')`))[0].n
    const startedBefore = await started()
    // Kill points after the run recorded itself, as shares of a whole run (its start-up included, so these land
    // from early in the load to around its commit).
    const points = [0.05, 0.2, 0.35, 0.5, 0.65, 0.85].map((f) => Math.round(whole * (f + (Math.random() - 0.5) * 0.1)))
    let committed = 0
    for (const ms of points) {
      // Kill inside the restore, not in the CLI's start-up (which on a loaded machine can take most of `whole`):
      // wait until this run has recorded itself (or ended), then let it run for its share of the time.
      const before = await started()
      const run = cli(['restore', '--backup', setId, '--yes'], env)
      let ended = false
      void run.done.then(() => (ended = true))
      await waitFor(async () => ended || (await started()) > before, 'the restore to record itself as running', 60_000, 20)
      await new Promise((r) => setTimeout(r, ms))
      run.child.kill('SIGKILL')
      const r = await run.done
      // All or nothing: a run that committed before the kill (it may be killed while it finishes its
      // bookkeeping) restored the backup entirely; any other left the database exactly as it was.
      const state = await databaseRows(src.url, TABLES)
      if (r.code === 0 || JSON.stringify(state) === JSON.stringify(restoredState)) {
        expect(state, `${r.code === 0 ? 'finished' : `killed after ${ms} ms, after its commit`}`).toEqual(restoredState)
        committed++
        // Put the changed state back from the safety backup that run took.
        const safety = (await ops.restores.points()).safety.sort((a, b) => b.snapshotTime.localeCompare(a.snapshotTime))[0]
        const back = await restoreNow(ops, { point: { setId: safety.setId }, target: { kind: 'in-place' } }, dbName())
        expect(back.report.ok).toBe(true)
        expect(await databaseRows(src.url, TABLES)).toEqual(current)
      } else expect(state, `killed after ${ms} ms`).toEqual(current)
    }
    expect(committed).toBeLessThan(points.length) // most kills landed before the commit
    // Most kills landed inside the restore (it had recorded itself as running), not before it began.
    expect((await started()) - startedBefore).toBeGreaterThanOrEqual(3)
    // The history tells the truth about them: interrupted, not running forever.
    const history = await ops.restores.history()
    expect(history.filter((h) => h.outcome === 'running')).toEqual([])
    expect(history.filter((h) => h.outcome === 'interrupted').length).toBeGreaterThanOrEqual(3)
    expect(history.find((h) => h.outcome === 'interrupted')?.error).toMatch(/ended \(killed or crashed\) before it recorded the outcome/)
    // Nothing is left holding locks: the next restore succeeds.
    const r = await restoreNow(ops, { point: { setId }, target: { kind: 'in-place' } }, dbName())
    expect(r.report.ok).toBe(true)
    const back = await ops.restores.undo(r.restoreId, dbName(), { actor: 'test' })
    expect((await ops.jobs.wait(back.jobId)).state).toBe('succeeded')
  }, 180_000)

  it('a killed restore reads "interrupted" in ops.restores and ops.jobs as soon as any face starts', async () => {
    const running = async () => ({
      restores: await query<{ id: string }>(src.url, `SELECT id FROM ops.restores WHERE outcome = 'running'`),
      jobs: await query<{ id: string }>(src.url, `SELECT id FROM ops.jobs WHERE kind = 'restore' AND state = 'running'`),
    })
    await ops.restores.history() // earlier runs' records are settled
    expect(await running()).toEqual({ restores: [], jobs: [] })
    const run = cli(['restore', '--backup', setId, '--yes'], env)
    const seen = (await waitFor(
      async () => {
        const r = await running()
        return r.restores.length && r.jobs.length ? r : null
      },
      'the restore to be recorded as running',
      30_000,
      20,
    ))!
    run.child.kill('SIGKILL')
    expect((await run.done).signal).toBe('SIGKILL')
    // Nobody has looked yet: the records still say running.
    expect(await running()).toEqual(seen)
    const face = await openOps(env)
    try {
      // Starting a face is enough: no one read the history.
      expect(await running()).toEqual({ restores: [], jobs: [] })
      const [rec] = await query<{ outcome: string; error: string }>(src.url, `SELECT outcome, error FROM ops.restores WHERE id = $1`, [
        seen.restores[0].id,
      ])
      expect(rec).toMatchObject({ outcome: 'interrupted', error: expect.stringMatching(/ended \(killed or crashed\)/) })
      const [job] = await query<{ state: string; error: { code: string; message: string }; finished_at: Date | null }>(
        src.url,
        `SELECT state, error, finished_at FROM ops.jobs WHERE id = $1`,
        [seen.jobs[0].id],
      )
      expect(job.state).toBe('interrupted')
      expect(job.error).toMatchObject({
        code: 'interrupted',
        message: expect.stringMatching(/ended \(killed or crashed\) before it recorded/),
      })
      expect(job.finished_at).not.toBeNull()
      // A job that is alive is never taken for an interrupted one.
      const { jobId } = face.restores.startTest({ actor: 'test' })
      await waitFor(
        async () => (await query(src.url, `SELECT 1 FROM ops.jobs WHERE id = $1 AND state = 'running'`, [jobId])).length,
        'the test job to be recorded',
        20_000,
        20,
      )
      await ops.restores.history()
      expect(await query(src.url, `SELECT state FROM ops.jobs WHERE id = $1`, [jobId])).toEqual([{ state: 'running' }])
      expect((await face.jobs.wait(jobId)).state).toBe('succeeded')
    } finally {
      await face.close()
    }
    // All or nothing: killed this early it had not committed; if it had, put the changed state back.
    if (JSON.stringify(await databaseRows(src.url, TABLES)) !== JSON.stringify(current)) {
      const safety = (await ops.restores.points()).safety.sort((a, b) => b.snapshotTime.localeCompare(a.snapshotTime))[0]
      await restoreNow(ops, { point: { setId: safety.setId }, target: { kind: 'in-place' } }, dbName())
    }
    expect(await databaseRows(src.url, TABLES)).toEqual(current)
  }, 120_000)

  it('a dropped connection mid-restore leaves the database unchanged and says what happened', async () => {
    const { jobId } = await ops.restores.start({ point: { setId }, target: { kind: 'in-place' } }, dbName(), { actor: 'test' })
    await waitFor(async () => ops.jobs.get(jobId)?.progress?.phase.startsWith('loading') ?? false, 'the restore to be loading', 20_000, 5)
    await query(
      src.url,
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'examforge-ops:restore' AND datname = current_database()`,
    )
    const info = await ops.jobs.wait(jobId)
    expect(info.state).toBe('failed')
    expect(info.error?.message).toMatch(/The database is unchanged/)
    expect(await databaseRows(src.url, TABLES)).toEqual(current)
    // Its safety backup is named by the failed record, and orphaned: the database was left as it was.
    const [rec] = await ops.restores.history()
    expect(rec).toMatchObject({ outcome: 'failed', safetySetId: expect.stringMatching(/-safety-/) })
    expect((await ops.backups.orphanedSafety(await ops.backups.list())).get(rec.safetySetId!)).toMatch(/^the restore that took it failed/)
  }, 60_000)

  const exists = async (name: string) => (await query(src.url, `SELECT 1 FROM pg_database WHERE datname = $1`, [name])).length > 0

  it('a dropped connection mid-load into a new database drops the database it created, and says exactly that', async () => {
    const name = `rfail_new_${Date.now().toString(36)}`
    try {
      const { jobId } = await ops.restores.start({ point: { setId }, target: { kind: 'new', database: name } }, name, { actor: 'test' })
      await waitFor(async () => ops.jobs.get(jobId)?.progress?.phase.startsWith('loading') ?? false, 'the restore to be loading', 20_000, 5)
      expect(await exists(name)).toBe(true)
      await query(
        src.url,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'examforge-ops:restore%'`,
        [name],
      )
      const info = await ops.jobs.wait(jobId)
      expect(info.state).toBe('failed')
      expect(info.error?.message).toMatch(/^The restore failed: /)
      expect(info.error?.message).toMatch(
        new RegExp(`The database ${name} it had created was dropped: nothing of this restore remains\\.$`),
      )
      expect(await exists(name)).toBe(false)
      const [rec] = await ops.restores.history()
      expect(rec).toMatchObject({ outcome: 'failed', error: info.error?.message })
    } finally {
      await query(src.url, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    }
  }, 60_000)

  it('cancel mid-load into a new database drops the database it created; the job and the record say so in one wording', async () => {
    const name = `rcancel_new_${Date.now().toString(36)}`
    try {
      const { jobId } = await ops.restores.start({ point: { setId }, target: { kind: 'new', database: name } }, name, { actor: 'test' })
      await waitFor(async () => ops.jobs.get(jobId)?.progress?.phase.startsWith('loading') ?? false, 'the restore to be loading', 20_000, 5)
      expect(await exists(name)).toBe(true)
      ops.jobs.cancel(jobId)
      const info = await ops.jobs.wait(jobId)
      expect(info.state).toBe('cancelled')
      const said = `The restore was cancelled by the operator. The database ${name} it had created was dropped: nothing of this restore remains.`
      expect(info.error?.message).toBe(said)
      expect(await exists(name)).toBe(false)
      const [rec] = await ops.restores.history()
      expect(rec).toMatchObject({ outcome: 'cancelled', error: said })
    } finally {
      await query(src.url, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    }
  }, 60_000)

  it('a restore killed mid-load into a new database leaves it marked incomplete: the history offers it, and one call drops it', async () => {
    const name = `rkill_new_${Date.now().toString(36)}`
    const u = new URL(src.url)
    const password = decodeURIComponent(u.password)
    u.password = ''
    u.pathname = `/${name}`
    try {
      const run = cli(['restore', '--backup', setId, '--target', u.toString(), '--yes'], { ...env, PGPASSWORD: password })
      await waitFor(
        async () =>
          (
            await query(
              src.url,
              `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'examforge-ops:restore-%' AND state = 'active'`,
              [name],
            )
          ).length > 0,
        'the CLI restore to be loading the new database',
        30_000,
        20,
      )
      run.child.kill('SIGKILL')
      await run.done
      // The server ends the killed process's session (and its lock) when it notices the socket closed.
      const rec = (await waitFor(
        async () => (await ops.restores.history()).find((h) => h.target.startsWith(`${name}@`) && h.outcome !== 'running'),
        'the killed restore to read as interrupted',
        30_000,
        50,
      ))!
      expect(rec).toMatchObject({ outcome: 'interrupted', leftover: name })
      const call = (input: unknown) =>
        dispatch(ops, 'restore.dropIncomplete', input, { actor: { via: 'cli', osUser: 'test', email: null } }) as Promise<{
          ok: boolean
          value?: { dropped: string }
          error?: { message: string }
        }>
      expect((await call({ restoreId: rec.id, confirm: 'wrong' })).error?.message).toMatch(`Type the database's name (${name})`)
      expect((await call({ restoreId: rec.id, confirm: name })).value).toEqual({ dropped: name })
      expect(await exists(name)).toBe(false)
      expect((await ops.restores.history()).find((h) => h.id === rec.id)?.leftover).toBeNull()
      // Never a database that is not a stopped restore's, marked incomplete.
      expect((await call({ restoreId: rec.id, confirm: name })).error?.message).toMatch(/is gone, or no longer marked incomplete/)
    } finally {
      await query(src.url, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    }
  }, 90_000)

  it('the agent runs restore tests on RESTORE_TEST_EVERY', async () => {
    const agent = await openOps({ ...env, RESTORE_TEST_EVERY: '2s' }, { backupSchedule: true })
    try {
      const before = (await agent.restores.history()).filter((h) => h.kind === 'restore-test').length
      await waitFor(
        async () => (await agent.restores.history()).filter((h) => h.kind === 'restore-test' && h.outcome === 'succeeded').length > before,
        'a scheduled restore test',
        30_000,
        200,
      )
      const [rec] = (await agent.restores.history()).filter((h) => h.kind === 'restore-test')
      expect(rec.actor).toBe('schedule')
    } finally {
      await agent.close()
    }
  }, 60_000)

  it('cancel mid-restore rolls everything back', async () => {
    const { jobId } = await ops.restores.start({ point: { setId }, target: { kind: 'in-place' } }, dbName(), { actor: 'test' })
    await waitFor(async () => ops.jobs.get(jobId)?.progress?.phase.startsWith('loading') ?? false, 'the restore to be loading', 20_000, 5)
    ops.jobs.cancel(jobId)
    const info = await ops.jobs.wait(jobId)
    expect(info.state).toBe('cancelled')
    expect(await databaseRows(src.url, TABLES)).toEqual(current)
    const [rec] = await ops.restores.history()
    expect(rec.outcome).toBe('cancelled')
    // One wording for the cancel, in the job and in the record (never a library's "The operation was aborted").
    expect(info.error?.message).toBe('The restore was cancelled by the operator. The database is unchanged (everything was rolled back).')
    expect(rec.error).toBe(info.error?.message)
    // Its safety backup was stored before the tables were touched, and the record names it: an orphan, since the
    // database was left as it was. It is marked in the catalog, not offered for undo, and retention deletes it.
    expect(rec.safetySetId).toMatch(/-safety-/)
    const list = await cli(['backups', 'list', '--json'], env).done
    const listed = (JSON.parse(list.stdout) as { sets: { setId: string; orphanedSafety: boolean }[] }).sets
    expect(listed.find((x) => x.setId === rec.safetySetId)).toMatchObject({ orphanedSafety: true })
    expect(listed.find((x) => x.setId === setId)).toMatchObject({ orphanedSafety: false })
    expect((await ops.restores.points()).safety.map((x) => x.setId)).not.toContain(rec.safetySetId)
    await expect(ops.restores.undo(rec.id, dbName(), { actor: 'test' })).rejects.toThrow(
      /Only a restore that replaced tables and succeeded/,
    )
    const plan = await ops.backups.retentionPlan()
    expect(plan.delete.find((d) => d.setId === rec.safetySetId)?.reason).toMatch(
      /^orphaned safety backup: the restore that took it was cancelled, so the database was left as it was/,
    )
    expect(plan.delete.map((d) => d.setId)).not.toContain(setId)
    // A safety set no record names (as before records named them at once) is matched to the restore that ran then.
    await query(src.url, `UPDATE ops.restores SET safety_set_id = NULL WHERE id = $1`, [rec.id])
    expect((await ops.backups.orphanedSafety(await ops.backups.list())).get(rec.safetySetId!)).toMatch(/was cancelled/)
  }, 60_000)

  it('a corrupted object is refused before the target is touched, and named', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'ops-corrupt-'))
    const ops2 = await openOps({ ...env, LOCAL_BACKUP_PATH: copy })
    try {
      const id = (await backupNow(ops2, 'full')).setId
      const m = (await ops2.backups.list()).find((s) => s.setId === id)!.manifest!
      const victim = m.objects.filter((o) => o.kind === 'data').sort((a, b) => b.size - a.size)[0]
      const file = join(copy, victim.key)
      const bytes = readFileSync(file)
      bytes[Math.floor(bytes.length / 2)] ^= 0x01
      writeFileSync(file, bytes)
      await query(src.url, `UPDATE teams SET name = name || '!' WHERE id = 1`)
      const before = await databaseRows(src.url, TABLES)
      const { jobId } = await ops2.restores.start({ point: { setId: id }, target: { kind: 'in-place' } }, dbName(), { actor: 'test' })
      const info = await ops2.jobs.wait(jobId)
      expect(info.state).toBe('failed')
      expect(info.error?.message).toContain(victim.key)
      expect(info.error?.message).toMatch(/altered or damaged/)
      expect(await databaseRows(src.url, TABLES)).toEqual(before)
      await query(src.url, `UPDATE teams SET name = left(name, -1) WHERE id = 1`)

      // The preview runs the SHA-256 check it claims (the set is small), in the wizard and in the CLI without --yes.
      const plan = await ops2.restores.plan({ point: { setId: id }, target: { kind: 'in-place' } })
      expect(plan.ok).toBe(false)
      expect(plan.preflight.find((c) => c.check === 'Backup objects')).toMatchObject({
        status: 'failed',
        detail: expect.stringMatching(
          new RegExp(`${victim.key.replace(/[.]/g, '\\.')} .*does not match its manifest \\(SHA-256 differs\\)`),
        ),
      })
      const preview = await cli(['restore', '--backup', id], { ...env, LOCAL_BACKUP_PATH: copy }).done
      expect(preview.code).toBe(1)
      expect(preview.stdout).toContain(`FAIL  Backup objects: The object ${victim.key} of set ${id} does not match its manifest`)
      expect(preview.stdout).not.toMatch(/ok {2}Backup objects/)
      // Where it would read too much for a preview, it says the check runs at start instead of claiming it.
      const large = await ops2.restores.prepare({ point: { setId: id }, target: { kind: 'in-place' } }, undefined, 1024)
      expect(large.plan.preflight.find((c) => c.check === 'Backup objects')?.detail).toMatch(
        /all present with their recorded sizes; their SHA-256 is not checked in the preview \(too much to read\) but when the restore starts, before the target is touched/,
      )

      // Into a new database: it fails before creating it, and says that (not "incomplete and marked").
      const name = `r_corrupt_${Date.now().toString(36)}`
      const r = await ops2.restores.start({ point: { setId: id }, target: { kind: 'new', database: name } }, name, { actor: 'test' })
      const failed = await ops2.jobs.wait(r.jobId)
      expect(failed.state).toBe('failed')
      expect(failed.error?.message).toMatch(
        new RegExp(`altered or damaged.* Nothing was changed: the database ${name} was not created\\.$`),
      )
      expect(failed.error?.message).not.toMatch(/incomplete and marked so/)
      expect(await query(src.url, `SELECT 1 FROM pg_database WHERE datname = $1`, [name])).toEqual([])
    } finally {
      await ops2.close()
    }
  }, 60_000)

  it('a wrong key is named as such', async () => {
    const encDir = mkdtempSync(join(tmpdir(), 'ops-enc-'))
    const a = await openOps({ ...env, LOCAL_BACKUP_PATH: encDir, BACKUP_ENCRYPTION_KEY: 'a'.repeat(64) })
    const id = (await backupNow(a, 'full')).setId
    await a.close()
    const b = await openOps({ ...env, LOCAL_BACKUP_PATH: encDir, BACKUP_ENCRYPTION_KEY: 'b'.repeat(64) })
    try {
      await expect(b.restores.plan({ point: { setId: id }, target: { kind: 'new', database: 'never_made' } })).rejects.toThrow(
        /The encryption key is wrong for this backup/,
      )
    } finally {
      await b.close()
    }
  }, 60_000)

  it('restores need the target database typed back, and an administrator when ADMIN_EMAILS is set (a typed name grants nothing)', async () => {
    await expect(ops.restores.start({ point: { setId }, target: { kind: 'in-place' } }, 'wrong', { actor: 'test' })).rejects.toThrow(
      `Type the target database's name (${dbName()})`,
    )
    const guarded = await openOps({
      ...env,
      ADMIN_EMAILS: 'ops@examforge.test, lead@examforge.test',
      OPS_OS_USERS: 'alice=lead@examforge.test',
    })
    const { dispatch } = await import('../../src/core/dispatch')
    try {
      const stranger = { via: 'cli', osUser: 'mallory', email: null } as const
      const start = { point: { setId }, target: { kind: 'in-place' }, confirm: dbName(), operator: 'lead@examforge.test' }
      const refused = await dispatch(guarded, 'restore.start', start, { actor: stranger })
      expect(refused).toMatchObject({ ok: false, error: { code: 'forbidden' } })
      expect(!refused.ok && refused.error.message).toMatch(/signed in as mallory \(cli\), which is not in ADMIN_EMAILS/)
      // An administrator (an OS user mapped by OPS_OS_USERS) may: a restore test, recorded with who did it.
      const alice = { via: 'desktop', osUser: 'alice', email: null } as const
      const r = await dispatch(guarded, 'restore.test', { operator: 'Alice L.' }, { actor: alice })
      expect(r.ok, JSON.stringify(r)).toBe(true)
      const info = await guarded.jobs.wait((r as { ok: true; value: { jobId: string } }).value.jobId)
      expect(info.state, info.error?.message).toBe('succeeded')
      const [rec] = await guarded.restores.history()
      expect(rec).toMatchObject({
        kind: 'restore-test',
        outcome: 'succeeded',
        actor: 'alice <lead@examforge.test> (desktop), typed "Alice L."',
        provenSetId: setId,
      })
    } finally {
      await guarded.close()
    }
    expect(await databaseRows(src.url, TABLES)).toEqual(current)
  }, 60_000)

  it('the restore test restores into a scratch database, checks it, drops it, and the set shows as proven', async () => {
    const { jobId } = ops.restores.startTest({ actor: 'test' })
    const info = await ops.jobs.wait(jobId)
    expect(info.state, info.error?.message).toBe('succeeded')
    const scratch = (info.result as { target: string }).target.split('@')[0]
    // Timed now: the next plan into an empty database is estimated from this installation's own throughput.
    const next = await ops.restores.plan({ point: { setId }, target: { kind: 'new', database: 'never_made_estimate' } })
    expect(next.estimatedSeconds).toBeGreaterThan(0)
    expect(next.estimateBasis).toMatch(
      /^from the last (restore|\d+ restores) into an empty database here \([\d.]+ MB\/s including fixed costs\)$/,
    )
    expect(scratch).toMatch(/^examforge_ops_restore_test_/)
    expect(await query(inject('pgUrl'), `SELECT 1 FROM pg_database WHERE datname = $1`, [scratch])).toEqual([])
    const proven = await ops.restores.proven()
    expect(proven.get(setId)).toBeTruthy()
    // The CLI shows it too, and exits 0.
    const r = await cli(['restore-test', '--json'], env).done
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).job.result.report.ok).toBe(true)
  }, 60_000)

  it('the CLI prints the plan and changes nothing without --yes', async () => {
    const r = await cli(['restore', '--backup', setId, '--tables', 'users,subscriptions'], env).done
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/replaces the tables in one transaction, after a safety backup/)
    expect(r.stdout).toMatch(/public\.users\s+\d+\s+\d+/)
    expect(r.stdout).toMatch(/Tied by foreign keys \(not included\): .*public\.teams/)
    expect(r.stdout).toMatch(/Nothing was changed: add --yes to restore/)
    expect(await databaseRows(src.url, TABLES)).toEqual(current)
    const bad = await cli(['restore', '--to-time', '1999-01-01T00:00:00Z'], env).done
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/No backup chain covers 1999-01-01T00:00:00.000Z/)
    // A time without a zone would mean another moment on another machine: refused, with an example.
    const noZone = await cli(['restore', '--to-time', '2026-11-29T14:05:00'], env).done
    expect(noZone.code).toBe(64)
    expect(noZone.stderr).toMatch(
      /--to-time "2026-11-29T14:05:00" has no time zone, so it would mean a different moment on each machine: add one \(e\.g\. 2026-11-29T14:05:00Z for UTC, or with your offset like \+01:00\)/,
    )
    expect((await cli(['restore', '--to-time', 'yesterday noon'], env).done).code).toBe(64)
    // With a zone it is that moment; the plan's first line says it in UTC and how it was given.
    const at = (await ops.backups.list()).find((x) => x.setId === setId)!.manifest!.snapshot.time
    const given = new Date(Date.parse(at) + 3_600_000).toISOString().replace('Z', '+01:00')
    const zoned = await cli(['restore', '--to-time', given], env).done
    expect(zoned.code, zoned.stderr).toBe(0)
    expect(zoned.stdout.split('\n')[0]).toBe(`Restore to ${at.replace('.000Z', 'Z')} UTC (given as ${given}, zone UTC+01:00)`)
    const usage = await cli(['restore'], env).done
    expect(usage.code).toBe(64)
  }, 60_000)
})
