import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/core/config/config'
import { settingsView } from '../../src/core/settings/view'
import { describeIdentity, isAdmin } from '../../src/core/auth/identity'
import { scrub } from '../../src/core/log/scrub'

const dir = () => mkdtempSync(join(tmpdir(), 'ops-config-'))

describe('configuration', () => {
  it('reads the environment, with defaults for what is unset', () => {
    const c = loadConfig({ env: { DATABASE_URL: 'postgres://u:p@h/db', BACKUP_RETAIN_DAYS: '30' }, dataDir: dir() })
    expect(c.databaseUrl).toBe('postgres://u:p@h/db')
    expect(c.opsDatabaseUrl).toBe('postgres://u:p@h/db')
    expect(c.backupRetainDays).toBe(30)
    expect(c.healthIntervalS).toBe(30)
    expect(c.sources.DATABASE_URL).toBe('environment')
    expect(c.sources.REDIS_URL).toBe('unset')
  })

  it('the environment wins over the settings file, and the settings file never supplies a secret', () => {
    const d = dir()
    writeFileSync(
      join(d, 'settings.json'),
      JSON.stringify({ APP_URL: 'http://from-file', STRIPE_SECRET_KEY: 'sk_test_fromfile000', BACKUP_S3_BUCKET: 'b1' }),
    )
    const c = loadConfig({ env: { APP_URL: 'http://from-env' }, dataDir: d })
    expect(c.app.url).toBe('http://from-env')
    expect(c.s3.bucket).toBe('b1')
    expect(c.sources.BACKUP_S3_BUCKET).toBe('settings file')
    expect(c.stripe.secretKey).toBeNull()
  })

  it('refuses a secrets file that other users can read, and says how to fix it', () => {
    const d = dir()
    const f = join(d, 'secrets.env')
    writeFileSync(f, 'STRIPE_SECRET_KEY=sk_test_fromfile1234\n')
    chmodSync(f, 0o644)
    expect(() => loadConfig({ env: { OPS_SECRETS_FILE: f }, dataDir: d })).toThrow(/chmod 600/)
    chmodSync(f, 0o600)
    const c = loadConfig({ env: { OPS_SECRETS_FILE: f }, dataDir: d })
    expect(c.stripe.secretKey).toBe('sk_test_fromfile1234')
    expect(c.sources.STRIPE_SECRET_KEY).toBe('secret store')
  })

  it('rejects a bad number with what to do', () => {
    expect(() => loadConfig({ env: { HEALTH_INTERVAL_S: 'often' }, dataDir: dir() })).toThrow(
      /HEALTH_INTERVAL_S must be a number from 1 to 3600/,
    )
  })

  it('timeouts: BACKUP_LOCK_TIMEOUT is a duration (default 60 s), DB_CONNECT_TIMEOUT_S seconds (default 10); a wait that never ends is refused', () => {
    const d = loadConfig({ env: {}, dataDir: dir() })
    expect(d.backup.lockTimeoutMs).toBe(60_000)
    expect(d.connectTimeoutMs).toBe(10_000)
    const c = loadConfig({ env: { BACKUP_LOCK_TIMEOUT: '2s', DB_CONNECT_TIMEOUT_S: '3' }, dataDir: dir() })
    expect(c.backup.lockTimeoutMs).toBe(2000)
    expect(c.connectTimeoutMs).toBe(3000)
    expect(loadConfig({ env: { BACKUP_LOCK_TIMEOUT: '5m' }, dataDir: dir() }).backup.lockTimeoutMs).toBe(300_000)
    expect(loadConfig({ env: { BACKUP_LOCK_TIMEOUT: '90' }, dataDir: dir() }).backup.lockTimeoutMs).toBe(90_000)
    for (const bad of ['off', 'forever', '0s'])
      expect(() => loadConfig({ env: { BACKUP_LOCK_TIMEOUT: bad }, dataDir: dir() })).toThrow(
        /BACKUP_LOCK_TIMEOUT must be a duration like 30s, 2m or 1h/,
      )
  })

  it('the settings view masks every secret', () => {
    const c = loadConfig({
      env: {
        DATABASE_URL: 'postgres://app:dbpass123@db:5432/examforge',
        REDIS_URL: 'redis://:redispass9@cache:6379',
        STRIPE_SECRET_KEY: 'sk_live_abcdefghijkl1234',
        AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      },
      dataDir: dir(),
    })
    const json = JSON.stringify(settingsView(c))
    for (const secret of ['dbpass123', 'redispass9', 'abcdefghijkl', 'wJalrXUtnFEMI']) expect(json).not.toContain(secret)
    expect(json).toContain('postgres://app:•••@db:5432/examforge')
    expect(json).toContain('sk_live_•••1234')
  })

  it('administrators come from OPS_API_TOKENS and OPS_OS_USERS; each token is scrubbed from logs; a malformed pair names no token', () => {
    const c = loadConfig({
      env: {
        ADMIN_EMAILS: 'Ops@ExamForge.test',
        OPS_API_TOKENS: 'ops@examforge.test=tok-admin-1111111111, dev@examforge.test = tok-dev-2222222222',
        OPS_OS_USERS: 'alice=OPS@examforge.test,bob=bob@examforge.test',
      },
      dataDir: dir(),
    })
    expect(c.apiTokens).toEqual([
      { email: 'ops@examforge.test', token: 'tok-admin-1111111111' },
      { email: 'dev@examforge.test', token: 'tok-dev-2222222222' },
    ])
    expect(scrub('got tok-dev-2222222222 and tok-admin-1111111111')).toBe('got ••• and •••')
    const alice = { via: 'cli', osUser: 'alice', email: null } as const
    expect(isAdmin(c, alice)).toBe(true)
    expect(describeIdentity(c, alice)).toBe('alice <ops@examforge.test> (cli)')
    expect(isAdmin(c, { via: 'cli', osUser: 'bob', email: null })).toBe(false)
    expect(isAdmin(c, { via: 'program-token', osUser: null, email: null })).toBe(false)
    expect(() => loadConfig({ env: { OPS_API_TOKENS: 'ops@examforge.test tok-secret-333333333' }, dataDir: dir() })).toThrow(
      /OPS_API_TOKENS must be comma-separated name=value pairs/,
    )
    try {
      loadConfig({ env: { OPS_API_TOKENS: 'ops@examforge.test tok-secret-333333333' }, dataDir: dir() })
    } catch (e) {
      expect((e as Error).message).not.toContain('tok-secret')
    }
  })
})

describe('one parser per setting, for the loader and for settings.update', () => {
  it('checkSettingValue accepts what the loader accepts and refuses the rest with what it must be', async () => {
    const { checkSettingValue } = await import('../../src/core/config/parse')
    const ok: [string, string][] = [
      ['METRICS_INTERVAL_S', '1'],
      ['METRICS_INTERVAL_S', '60'],
      ['HEALTH_INTERVAL_S', '30'],
      ['BACKUP_COMPRESSION', 'gzip:9'],
      ['BACKUP_COMPRESSION', 'none'],
      ['BACKUP_FULL_EVERY', '24h'],
      ['BACKUP_FULL_EVERY', 'off'],
      ['PROBE_TIMEOUT_MS', '5000'],
      ['ADMIN_EMAILS', 'a@examforge.com, B@examforge.com'],
      ['BACKUP_INCREMENTAL', 'on'],
      ['SANDBOX_TRAFFIC', 'off'],
      ['APP_HEALTH_PATH', '/healthz'],
    ]
    for (const [k, v] of ok) {
      expect(() => checkSettingValue(k, v), `${k}=${v}`).not.toThrow()
      expect(() => loadConfig({ env: { [k]: v }, dataDir: dir() }), `${k}=${v}`).not.toThrow()
    }
    const bad: [string, string, RegExp][] = [
      ['METRICS_INTERVAL_S', '0', /from 1 to 60; it is "0"/],
      ['METRICS_INTERVAL_S', '100000', /from 1 to 60/],
      ['HEALTH_INTERVAL_S', '-5', /from 1 to 3600/],
      ['BACKUP_COMPRESSION', 'lz4', /"lz4" is not known/],
      ['BACKUP_COMPRESSION', 'gzip:12', /gzip level must be 1 to 9/],
      ['BACKUP_FULL_EVERY', 'banana', /interval like 15m/],
      ['PROBE_TIMEOUT_MS', '1e12', /from 100 to 120000/],
      ['ADMIN_EMAILS', 'garbage', /"garbage" is not one/],
      ['OPS_OS_USERS', 'alice', /name=value pairs/],
      ['BACKUP_INCREMENTAL', 'sometimes', /must be auto, on, off/],
      ['SANDBOX_TRAFFIC', 'maybe', /must be on, off/],
      ['APP_HEALTH_PATH', 'health', /starting with "\/"/],
      ['S3_SSE', 'rot13', /AES256/],
      ['APP_URL', 'not a url', /must be a URL/],
      ['BACKUP_LOCK_TIMEOUT', 'forever', /duration like 30s/],
    ]
    for (const [k, v, m] of bad) {
      expect(() => checkSettingValue(k, v), `${k}=${v}`).toThrow(m)
      expect(() => loadConfig({ env: { [k]: v }, dataDir: dir() }), `${k}=${v}`).toThrow(m)
    }
    // Clearing (back to the default) is always allowed.
    expect(() => checkSettingValue('METRICS_INTERVAL_S', null)).not.toThrow()
  })

  it('the loader lists every bad environment value at once, each with where it came from', () => {
    let message = ''
    try {
      loadConfig({ env: { METRICS_INTERVAL_S: '0', HEALTH_INTERVAL_S: '-5', BACKUP_FULL_EVERY: 'banana' }, dataDir: dir() })
    } catch (e) {
      message = (e as Error).message
    }
    expect(message).toMatch(/^The configuration has 3 problems: /)
    for (const k of ['METRICS_INTERVAL_S', 'HEALTH_INTERVAL_S', 'BACKUP_FULL_EVERY']) expect(message).toMatch(new RegExp(`${k} .*\\(from the environment\\)`))
  })

  it('a bad settings file starts anyway: bad keys at their defaults, each listed with the file; good keys kept', () => {
    const d = dir()
    writeFileSync(
      join(d, 'settings.json'),
      JSON.stringify({ METRICS_INTERVAL_S: '0', BACKUP_COMPRESSION: 'lz4', ADMIN_EMAILS: 'garbage', BACKUP_RETAIN_DAYS: '30' }),
    )
    const c = loadConfig({ env: {}, dataDir: d })
    expect(c.metricsIntervalMs).toBe(5000)
    expect(c.backup.compression).toBe('zstd:3')
    expect(c.adminEmails).toEqual([])
    expect(c.backupRetainDays).toBe(30)
    expect(c.problems.map((p) => p.key).sort()).toEqual(['ADMIN_EMAILS', 'BACKUP_COMPRESSION', 'METRICS_INTERVAL_S'])
    expect(c.problems.every((p) => p.file === join(d, 'settings.json'))).toBe(true)
    const view = settingsView(c)
    expect(view.find((s) => s.key === 'BACKUP_COMPRESSION')!.problem).toMatch(/holds "lz4", which cannot be used/)
    expect(view.find((s) => s.key === 'BACKUP_RETAIN_DAYS')!.problem).toBeNull()
    // An environment value is not overridden by the file's fallback, and a file that is not JSON starts with defaults.
    writeFileSync(join(d, 'settings.json'), '{ not json')
    const c2 = loadConfig({ env: {}, dataDir: d })
    expect(c2.fileProblem).toMatch(/is not valid JSON/)
    expect(c2.metricsIntervalMs).toBe(5000)
  })
})
