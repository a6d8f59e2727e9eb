import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { normalizeEvent } from '../../src/core/errors/event'
import { groupEvent, normalizeFile, normalizeFunction, parameterize, titleOf } from '../../src/core/errors/grouping'
import { FILTERED, luhn, scrubEvent, scrubText } from '../../src/core/errors/scrub'

const exc = (type: string, value: string, frames: Record<string, unknown>[]) =>
  normalizeEvent({ exception: { values: [{ type, value, stacktrace: { frames } }] } }, '1')

describe('grouping (Sentry order)', () => {
  it('parameterises the variable parts of a message', () => {
    expect(
      parameterize(
        'User ann@example.com (id 4411, 3f2a9c1b-0d5e-4f7a-9c1b-0d5e4f7a9c1b) failed at 2026-11-30T17:02:01Z after 350ms from 10.1.2.3 on https://x.io/a?b=1: "quiz 7" 0xdeadbeef 5f4dcc3b5aa765d61d8327deb882cf99',
      ),
    ).toBe('User <email> (id <int>, <uuid>) failed at <date> after <duration> from <ip> on <url> <quoted> <hex> <hash>')
  })

  it('the same bug with different numbers, ids and e-mails is one group; another bug is another', () => {
    const hashes = new Set<string>()
    for (let i = 0; i < 500; i++)
      hashes.add(
        groupEvent(
          normalizeEvent(
            {
              message: `Quiz ${i} for user${i}@school.org (attempt ${i * 7}, ref ${randomBytes(6).toString('hex')}, key ${String(100000000 + i * 7)}d, order ${1_000_000_000 + i * 7919}) could not be graded after ${i ** 3}ms`,
            },
            '1',
          ),
        ).hash,
      )
    expect(hashes.size).toBe(1)
    // Ids that look like other things (all digits, digits ending in the hex letter d, hex letters only) are still ids.
    const ids = ['123456789012', '12345678901d', 'a1b2c3d4e5f6', '0000000000ab', 'fbcadeefabcd'].map((id) => parameterize(`ref ${id} lost`))
    expect(new Set(ids)).toEqual(new Set(['ref <id> lost']))
    // Words are not: a-f letters alone shorter than ten stay as they are.
    expect(parameterize('cafe facade accede effaced')).toBe('cafe facade accede effaced')
    const webhooks = new Set(
      ['evt_1Pz9Qk2LmX arrived 40s late', 'evt_1Nq2x8Lk3j arrived 300s late', 'evt_k3j4h5g6f7 arrived 2 minutes late'].map(
        (m) => groupEvent(normalizeEvent({ message: `Stripe webhook ${m}` }, '1')).hash,
      ),
    )
    expect(webhooks.size).toBe(1)
    const other = groupEvent(normalizeEvent({ message: 'Team 4 has no owner' }, '1')).hash
    expect(hashes.has(other)).toBe(false)
  })

  it('groups by type and in-app frames, ignoring lines, bundler hashes and anonymous functions', () => {
    const a = exc('TypeError', 'x is undefined', [
      { filename: 'node_modules/next/server.js', function: 'run', lineno: 10, in_app: false },
      { filename: 'app:///_next/server/chunks/main.3f2a9c1b.js', function: 'Object.<anonymous>', lineno: 1, in_app: true },
      { filename: 'app:///_next/server/chunks/main.3f2a9c1b.js', function: 'gradeQuiz', lineno: 42, colno: 7, in_app: true },
    ])
    const b = exc('TypeError', 'y is undefined', [
      { filename: 'node_modules/next/server.js', function: 'other', lineno: 99, in_app: false },
      { filename: 'app:///_next/server/chunks/main.77aa00ff.js', function: 'async gradeQuiz', lineno: 57, colno: 1, in_app: true },
    ])
    const c = exc('RangeError', 'x is undefined', [
      { filename: 'app:///_next/server/chunks/main.3f2a9c1b.js', function: 'gradeQuiz', in_app: true },
    ])
    expect(groupEvent(a).hash).toBe(groupEvent(b).hash)
    expect(groupEvent(a).method).toBe('stacktrace')
    expect(groupEvent(a).explanation).toMatch(/line numbers/)
    expect(groupEvent(c).hash).not.toBe(groupEvent(a).hash)
    expect(titleOf(a).culprit).toBe('gradeQuiz (_next/server/chunks/main.js)')
  })

  it('a custom fingerprint wins, and {{ default }} extends the default', () => {
    const base = { message: 'Payment 12 failed' }
    const d = groupEvent(normalizeEvent(base, '1'))
    const f1 = groupEvent(normalizeEvent({ ...base, fingerprint: ['payments'] }, '1'))
    const f2 = groupEvent(normalizeEvent({ message: 'totally different', fingerprint: ['payments'] }, '1'))
    const f3 = groupEvent(normalizeEvent({ ...base, fingerprint: ['{{ default }}', 'stripe'] }, '1'))
    expect(f1.hash).toBe(f2.hash)
    expect(f1.method).toBe('fingerprint')
    expect(f3.hash).not.toBe(d.hash)
    expect(f3.components).toEqual([...d.components, 'stripe'])
  })

  it('normalises names', () => {
    expect(normalizeFunction('Object.<anonymous>')).toBeNull()
    expect(normalizeFunction('async Module.gradeQuiz [as grade]')).toBe('gradeQuiz')
    expect(normalizeFile('webpack:///./src/quiz.ts?abc')).toBe('src/quiz.ts')
    expect(normalizeFile('https://cdn.x.io/static/js/chunk-AB12CD34.js')).toBe('static/js/chunk.js')
  })
})

describe('scrubbing', () => {
  it('Luhn', () => {
    expect(luhn('4111111111111111')).toBe(true)
    expect(luhn('4111111111111112')).toBe(false)
  })

  it('scrubs secrets inside text, keeps ordinary numbers', () => {
    const s = scrubText(
      'login failed for postgres://app:hunter2@db:5432/x with Authorization: Bearer abcDEF123456.xyz card 4111 1111 1111 1111 password=hunter2 {"api_key": "k-123"} order 1234567890123',
    )
    expect(s).not.toMatch(/hunter2|abcDEF123456|4111 1111|k-123/)
    expect(s).toContain(FILTERED)
    expect(s).toContain('order 1234567890123')
  })

  it('scrubs sensitive keys everywhere in an event, e-mails switchable', () => {
    const ev = normalizeEvent(
      {
        message: 'x',
        request: { headers: { Authorization: 'Basic abc', Cookie: 'sid=1', 'User-Agent': 'ua' }, data: { password: 'p', name: 'n' } },
        user: { id: 'u1', email: 'a@b.org' },
        extra: { nested: { client_secret: 's' } },
        breadcrumbs: [{ message: 'token=abc123 sent', data: { session_id: 'zzz' } }],
      },
      '1',
    )
    const s = scrubEvent(ev, { emails: true, ips: false })
    expect(s.request!.headers.Authorization).toBe(FILTERED)
    expect(s.request!.headers.Cookie).toBe(FILTERED)
    expect(s.request!.headers['User-Agent']).toBe('ua')
    expect((s.request!.data as Record<string, string>).password).toBe(FILTERED)
    expect(s.user!.email).toBe(FILTERED)
    expect(JSON.stringify(s)).not.toMatch(/abc123|zzz|"s"/)
    expect(scrubEvent(ev, { emails: false, ips: false }).user!.email).toBe('a@b.org')
  })
})
