import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { dispatch } from '../../src/core/dispatch'
import type { Ops } from '../../src/core/ops'
import type { SettingView } from '../../src/shared/domain'
import { cli } from '../helpers/cli'
import { createDatabase } from '../helpers/db'
import { openOps } from '../helpers/ops'

type Reply = { ok: true; value: unknown } | { ok: false; error: { code: string; message: string } }

/** The values the issue saved with "Saved" and that then kept every command from starting. */
const bad: [string, string, RegExp][] = [
  ['METRICS_INTERVAL_S', '0', /METRICS_INTERVAL_S must be a number from 1 to 60; it is "0"/],
  ['METRICS_INTERVAL_S', '100000', /METRICS_INTERVAL_S must be a number from 1 to 60; it is "100000"/],
  ['HEALTH_INTERVAL_S', '-5', /HEALTH_INTERVAL_S must be a number from 1 to 3600; it is "-5"/],
  ['BACKUP_COMPRESSION', 'lz4', /BACKUP_COMPRESSION "lz4" is not known: use zstd\[:level\], gzip\[:level\] or none/],
  ['BACKUP_FULL_EVERY', 'banana', /BACKUP_FULL_EVERY must be an interval like 15m, 6h or 1d, or "off"; it is "banana"/],
  ['PROBE_TIMEOUT_MS', '1e12', /PROBE_TIMEOUT_MS must be a number from 100 to 120000; it is "1e12"/],
  ['ADMIN_EMAILS', 'garbage, ops@examforge.test', /ADMIN_EMAILS must be comma-separated e-mail addresses .*"garbage" is not one/],
]

describe('settings cannot break the console', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  const dataDir = mkdtempSync(join(tmpdir(), 'ops-data-'))
  const call = (method: string, input: unknown) =>
    dispatch(ops, method, input, { actor: { via: 'cli', osUser: 'test-settings', email: null } }) as Promise<Reply>

  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'setval')
    ops = await openOps({ DATABASE_URL: db.url }, {}, dataDir)
  })
  afterAll(async () => {
    await ops?.close()
    await db?.drop()
  })

  it('settings.update refuses each bad value with what it must be, and saves nothing', async () => {
    for (const [key, value, message] of bad) {
      const r = await call('settings.update', { key, value })
      expect(r.ok, `${key}=${value}`).toBe(false)
      if (r.ok) continue
      expect(r.error.code).toBe('invalid_input')
      expect(r.error.message).toMatch(message)
      expect(r.error.message).toMatch(/Nothing was saved/)
    }
    expect(existsSync(join(dataDir, 'settings.json'))).toBe(false)
    // A good value is saved, and clearing it (back to the default) works.
    expect((await call('settings.update', { key: 'METRICS_INTERVAL_S', value: '10' })).ok).toBe(true)
    expect(JSON.parse(readFileSync(join(dataDir, 'settings.json'), 'utf8'))).toEqual({ METRICS_INTERVAL_S: '10' })
    expect((await call('settings.update', { key: 'METRICS_INTERVAL_S', value: null })).ok).toBe(true)
    expect(JSON.parse(readFileSync(join(dataDir, 'settings.json'), 'utf8'))).toEqual({})
  })

  it('a bad settings.json does not stop a start: the CLI still runs, and settings.list flags each bad key with the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ops-cli-'))
    const file = join(dir, 'settings.json')
    writeFileSync(
      file,
      JSON.stringify({ METRICS_INTERVAL_S: '0', HEALTH_INTERVAL_S: '-5', BACKUP_FULL_EVERY: 'banana', APP_HEALTH_PATH: '/healthz' }),
      { mode: 0o600 },
    )
    const r = await cli(['health', '--service', 'postgres'], { DATABASE_URL: db.url, OPS_DATA_DIR: dir })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/PostgreSQL/)
    // The log names each bad key and the file.
    for (const key of ['METRICS_INTERVAL_S', 'HEALTH_INTERVAL_S', 'BACKUP_FULL_EVERY'])
      expect(r.stderr).toContain(`Setting ${key} in ${file}`)

    const started = await openOps({ DATABASE_URL: db.url }, {}, dir)
    try {
      const list = (await dispatch(started, 'settings.list', {}, { actor: { via: 'cli', osUser: 't', email: null } })) as {
        value: SettingView[]
      }
      const by = (k: string) => list.value.find((s) => s.key === k)!
      expect(started.config.metricsIntervalMs).toBe(5000)
      expect(started.config.healthIntervalS).toBe(30)
      expect(started.config.backup.fullEveryMs).toBeNull()
      expect(by('METRICS_INTERVAL_S')).toMatchObject({ value: '5', source: 'default', pending: null })
      expect(by('METRICS_INTERVAL_S').problem).toContain(`The settings file ${file} holds "0"`)
      expect(by('HEALTH_INTERVAL_S').problem).toMatch(/must be a number from 1 to 3600; it is "-5"/)
      expect(by('BACKUP_FULL_EVERY').problem).toMatch(/"banana"/)
      // A good value in the same file is used as before.
      expect(by('APP_HEALTH_PATH')).toMatchObject({ value: '/healthz', source: 'settings file', problem: null })
    } finally {
      await started.close()
    }
  })

  it('bad environment values still refuse to start, every one listed with where it came from', async () => {
    const r = await cli(['health'], { DATABASE_URL: db.url, METRICS_INTERVAL_S: '0', BACKUP_COMPRESSION: 'lz4' })
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/2 problems/)
    expect(r.stderr).toMatch(/METRICS_INTERVAL_S must be a number from 1 to 60; it is "0" \(from the environment\)/)
    expect(r.stderr).toMatch(/BACKUP_COMPRESSION "lz4" is not known.*\(from the environment\)/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})
