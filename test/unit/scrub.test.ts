import { describe, expect, it } from 'vitest'
import { maskSecret, maskUrl, registerSecret, scrub } from '../../src/core/log/scrub'
import { loadConfig } from '../../src/core/config/config'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '../../src/core/log/logger'

describe('secrets never reach a log line or an error message', () => {
  it('removes registered secrets wherever they appear', () => {
    registerSecret('hunter2-very-secret')
    expect(scrub('auth failed for hunter2-very-secret at 10:00')).toBe('auth failed for ••• at 10:00')
  })

  it('masks passwords in URLs, Stripe keys, AWS key ids and password= pairs', () => {
    const text =
      'connect postgres://app:s3cr3t@db:5432/x and redis://:r3d1s@cache:6379 with sk_live_51HxYzAbCdEf and AKIAIOSFODNN7EXAMPLE password=topsecret&x=1'
    const out = scrub(text)
    for (const leaked of ['s3cr3t', 'r3d1s', '51HxYzAbCdEf', 'IOSFODNN7EXAMPLE', 'topsecret']) expect(out).not.toContain(leaked)
    expect(out).toContain('postgres://app:•••@db:5432/x')
    expect(out).toContain('sk_live_•••')
  })

  it('masks a URL for display without percent-encoding the mask', () => {
    expect(maskUrl('postgres://admin:p%40ss@db.internal:5432/examforge?sslmode=require')).toBe(
      'postgres://admin:•••@db.internal:5432/examforge?sslmode=require',
    )
    expect(maskUrl('redis://cache:6379')).toBe('redis://cache:6379')
    expect(maskSecret('sk_test_abcdefghijklmnop')).toBe('sk_test_•••mnop')
    expect(maskSecret('short')).toBe('•••')
  })

  it('masks password, sslpassword and sslkey given in the query string (pg accepts them there)', () => {
    expect(maskUrl('postgres://u@db.internal/examforge?password=qs-pass-123&sslmode=require')).toBe(
      'postgres://u@db.internal/examforge?password=•••&sslmode=require',
    )
    const both = maskUrl('postgres://u:auth-pass-9@db/x?sslmode=verify-full&sslpassword=keypass-77&sslkey=%2Fhome%2Fu%2Fclient.key')!
    for (const leaked of ['auth-pass-9', 'keypass-77', 'client.key']) expect(both).not.toContain(leaked)
    expect(both).toBe('postgres://u:•••@db/x?sslmode=verify-full&sslpassword=•••&sslkey=•••')
    expect(maskUrl('postgres://u@db/x?PASSWORD=Upper-Case-1')).not.toContain('Upper-Case-1')
    expect(maskUrl('postgres://u@db/x?application_name=ops')).toBe('postgres://u@db/x?application_name=ops')
  })

  it('registers a password given in the query string for scrubbing, so it is removed even on its own', () => {
    const env = {
      DATABASE_URL: 'postgres://u@db/x?password=lone-qs-secret-41',
      REDIS_URL: 'redis://cache:6379/0?password=redis-qs-secret-5',
    }
    loadConfig({ env, dataDir: mkdtempSync(join(tmpdir(), 'ops-scrub-')) })
    expect(scrub('authentication failed (lone-qs-secret-41)')).toBe('authentication failed (•••)')
    expect(scrub('NOAUTH redis-qs-secret-5')).toBe('NOAUTH •••')
  })

  it('the logger scrubs message and fields', () => {
    const lines: string[] = []
    const log = createLogger({ sink: (l) => lines.push(l), level: 'debug' })
    log.error('failed to reach postgres://u:pa55word@h/db', { key: 'sk_test_zzzzzzzzzzzz' })
    expect(lines[0]).not.toContain('pa55word')
    expect(lines[0]).not.toContain('zzzzzzzzzzzz')
  })
})
