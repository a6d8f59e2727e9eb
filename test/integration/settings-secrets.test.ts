import { mkdirSync, mkdtempSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { dispatch } from '../../src/core/dispatch'
import type { Ops } from '../../src/core/ops'
import type { SettingView } from '../../src/shared/domain'
import { createDatabase, query } from '../helpers/db'
import { openOps } from '../helpers/ops'

const STRIPE_KEY = 'sk_test_confirm_me_0123456789'
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYCONFIRMKEY'

type Reply = { ok: true; value: unknown } | { ok: false; error: { code: string; message: string } }

describe('settings that say where a secret goes are as guarded as the secret', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  let password: string
  let queryUrl: string
  const call = (method: string, input: unknown) =>
    dispatch(ops, method, input, { actor: { via: 'cli', osUser: 'test-settings', email: null } }) as Promise<Reply>
  const update = (key: string, value: string | null, secret?: string) =>
    call('settings.update', secret === undefined ? { key, value } : { key, value, secret })
  const pending = async (key: string) => ((await call('settings.list', {})) as { value: SettingView[] }).value.find((s) => s.key === key)!

  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'set')
    // The password as a query parameter, which pg accepts: the console must still never show it.
    const u = new URL(db.url)
    password = decodeURIComponent(u.password)
    u.password = ''
    u.searchParams.set('password', password)
    queryUrl = u.toString()
    ops = await openOps({
      DATABASE_URL: queryUrl,
      STRIPE_SECRET_KEY: STRIPE_KEY,
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLECONFIRM01',
      AWS_SECRET_ACCESS_KEY: AWS_SECRET,
    })
  })
  afterAll(async () => {
    await ops?.close()
    await db?.drop()
  })

  it('connects with ?password= and settings.list never contains the password', async () => {
    const [row] = await query<{ ok: number }>(queryUrl, 'SELECT 1 AS ok')
    expect(row.ok).toBe(1)
    const list = await call('settings.list', {})
    expect(list.ok).toBe(true)
    const text = JSON.stringify(list)
    expect(text).not.toContain(password)
    expect(text).not.toContain(encodeURIComponent(password))
    expect((list as { value: SettingView[] }).value.find((s) => s.key === 'DATABASE_URL')!.value).toMatch(/\?password=•••$/)
  })

  it('a new STRIPE_API_BASE without the Stripe key is refused, saying what to enter; with the key it is saved', async () => {
    const without = await update('STRIPE_API_BASE', 'https://stripe-proxy.example')
    expect(without).toMatchObject({ ok: false, error: { code: 'confirmation_required' } })
    expect((without as { error: { message: string } }).error.message).toMatch(/enter STRIPE_SECRET_KEY again to confirm/)
    expect((await pending('STRIPE_API_BASE')).pending).toBeNull()

    const wrong = await update('STRIPE_API_BASE', 'https://stripe-proxy.example', 'sk_test_guessed_000000000')
    expect(wrong).toMatchObject({ ok: false, error: { code: 'confirmation_failed' } })
    expect(JSON.stringify(wrong)).not.toContain(STRIPE_KEY)
    expect((await pending('STRIPE_API_BASE')).pending).toBeNull()

    expect(await update('STRIPE_API_BASE', 'https://stripe-proxy.example', STRIPE_KEY)).toMatchObject({ ok: true })
    expect((await pending('STRIPE_API_BASE')).pending).toBe('https://stripe-proxy.example')
  })

  it('http:// is refused for a remote host and allowed on this machine', async () => {
    const evil = await update('STRIPE_API_BASE', 'http://evil.example', STRIPE_KEY)
    expect(evil).toMatchObject({ ok: false, error: { code: 'insecure_endpoint' } })
    expect((evil as { error: { message: string } }).error.message).toMatch(/must use https:\/\/ for evil\.example/)
    expect(await update('STRIPE_API_BASE', 'http://127.0.0.1:12111', STRIPE_KEY)).toMatchObject({ ok: true })
    expect(await update('S3_ENDPOINT', 'http://s3.evil.example:9000', AWS_SECRET)).toMatchObject({
      ok: false,
      error: { code: 'insecure_endpoint' },
    })
    expect(await update('APP_URL', 'http://app.evil.example')).toMatchObject({ ok: false, error: { code: 'insecure_endpoint' } })
    expect(await update('APP_URL', 'http://localhost:3000')).toMatchObject({ ok: true })
  })

  it('S3_ENDPOINT and BACKUP_S3_BUCKET need the AWS secret key; clearing an endpoint back to its default needs nothing', async () => {
    expect(await update('BACKUP_S3_BUCKET', 'someone-elses-bucket')).toMatchObject({
      ok: false,
      error: { code: 'confirmation_required' },
    })
    expect(await update('S3_ENDPOINT', 'https://s3.example.net', AWS_SECRET)).toMatchObject({ ok: true })
    expect(await update('S3_ENDPOINT', null)).toMatchObject({ ok: true })
    expect(await update('AWS_REGION', 'evil.example/')).toMatchObject({ ok: false, error: { code: 'invalid_input' } })
    expect(await update('AWS_REGION', 'eu-west-3')).toMatchObject({ ok: true })
  })

  it('the AWS credentials cannot be swapped or cleared without the current secret key (else a swap would confirm a bucket move)', async () => {
    expect(await update('AWS_SECRET_ACCESS_KEY', 'attackers-own-secret-key-0000000000000000')).toMatchObject({
      ok: false,
      error: { code: 'confirmation_required' },
    })
    expect(await update('AWS_ACCESS_KEY_ID', null)).toMatchObject({ ok: false, error: { code: 'confirmation_required' } })
    // Past the guard, the host (which stores no secrets) says where to set it instead.
    expect(await update('AWS_ACCESS_KEY_ID', null, AWS_SECRET)).toMatchObject({ ok: false, error: { code: 'secret_store_unavailable' } })
  })

  it('LOCAL_BACKUP_PATH must be a new folder or a private one of ours', async () => {
    const open = join(mkdtempSync(join(tmpdir(), 'ops-set-')), 'open')
    mkdirSync(open)
    chmodSync(open, 0o755)
    const r = await update('LOCAL_BACKUP_PATH', open)
    expect(r).toMatchObject({ ok: false, error: { code: 'unsafe_folder' } })
    expect((r as { error: { message: string } }).error.message).toMatch(/mode 755/)
    expect(await update('LOCAL_BACKUP_PATH', join(open, 'not-yet'))).toMatchObject({ ok: true })
  })

  it('moving DATABASE_URL to another server needs its current password; the same server does not', async () => {
    const elsewhere = await update('DATABASE_URL', 'postgres://postgres:x@db.evil.example/examforge')
    expect(elsewhere).toMatchObject({ ok: false, error: { code: 'confirmation_required' } })
    expect(JSON.stringify(elsewhere)).not.toContain(password)
    // Past the guard, the host (which stores no secrets) says where to set it instead.
    const confirmed = await update('DATABASE_URL', 'postgres://postgres:x@db.evil.example/examforge', password)
    expect(confirmed).toMatchObject({ ok: false, error: { code: 'secret_store_unavailable' } })
    const sameServer = new URL(db.url)
    sameServer.pathname = '/other'
    expect(await update('DATABASE_URL', sameServer.toString())).toMatchObject({ ok: false, error: { code: 'secret_store_unavailable' } })
  })

  it('the audit log has the old and new values of every attempt, and never a secret', async () => {
    const rows = await query<{ target: string; outcome: string; details: { old: string | null; new: string | null } }>(
      db.url,
      `SELECT target, outcome, details FROM ops.audit_log WHERE action = 'settings.update' ORDER BY id`,
    )
    const stripe = rows.filter((r) => r.target === 'STRIPE_API_BASE')
    expect(stripe.map((r) => r.outcome)).toEqual([
      'refused (confirmation_required)',
      'refused (confirmation_failed)',
      'saved',
      'refused (insecure_endpoint)',
      'saved',
    ])
    expect(stripe[2].details).toMatchObject({ old: 'https://api.stripe.com/', new: 'https://stripe-proxy.example/' })
    expect(stripe[3].details).toMatchObject({ new: 'http://evil.example/' })
    const db1 = rows.find((r) => r.target === 'DATABASE_URL')!
    expect(db1.details.old).toMatch(/\?password=•••$/)
    expect(db1.details.new).toBe('postgres://postgres:•••@db.evil.example/examforge')
    const all = JSON.stringify(rows)
    for (const secret of [STRIPE_KEY, AWS_SECRET, password, 'sk_test_guessed_000000000']) expect(all).not.toContain(secret)
  })
})
