import { describe, expect, it } from 'vitest'
import { maskSecret, maskUrl, registerSecret, scrub } from '../../src/core/log/scrub'
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

  it('the logger scrubs message and fields', () => {
    const lines: string[] = []
    const log = createLogger({ sink: (l) => lines.push(l), level: 'debug' })
    log.error('failed to reach postgres://u:pa55word@h/db', { key: 'sk_test_zzzzzzzzzzzz' })
    expect(lines[0]).not.toContain('pa55word')
    expect(lines[0]).not.toContain('zzzzzzzzzzzz')
  })
})
