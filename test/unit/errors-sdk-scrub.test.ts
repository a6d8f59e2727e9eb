import { describe, expect, it } from 'vitest'
import { scrubText as sdkScrub, scrubValue as sdkScrubValue } from '../../packages/error-tracker/src/scrub'
import { scrubText, scrubValue } from '../../src/core/errors/scrub'
import { parseStack } from '../../packages/error-tracker/src/stack'

// The SDK carries its own copy of the scrubbing rules (it may not import the console): they must agree.
const samples = [
  'login failed for postgres://app:hunter2@db:5432/x',
  'Authorization: Bearer abcDEF123456.xyz and basic dXNlcjpwYXNzd29yZA==',
  'card 4111 1111 1111 1111, not a card 4111 1111 1111 1112, order 1234567890123',
  'password=hunter2&user=ann&api_key=k-123 {"client_secret": "s3"} token: tok_99',
  'jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
  'mail ann@example.com from 10.0.0.1',
]

describe('the SDK scrubs exactly as the ingest does', () => {
  it.each(samples)('%s', (s) => {
    expect(sdkScrub(s, true)).toBe(scrubText(s, { emails: true, ips: false }))
    expect(sdkScrub(s, false)).toBe(scrubText(s, { emails: false, ips: false }))
  })

  it('objects: sensitive keys, header pairs', () => {
    const v = {
      headers: [
        ['Authorization', 'x'],
        ['Accept', 'y'],
      ],
      nested: { sessionId: 'a', note: 'password=p' },
      author: 'Ann',
    }
    expect(sdkScrubValue(v, true)).toEqual(scrubValue(v))
  })

  it('parses V8 stacks oldest call first, marking library frames', () => {
    const frames = parseStack(
      'Error: x\n    at gradeQuiz (/srv/app/lib/grading.js:42:7)\n    at async Server.handle (/srv/app/node_modules/next/server.js:9:1)\n    at node:internal/process/task_queues:95:5',
    )
    expect(frames.map((f) => [f.function, f.lineno, f.in_app])).toEqual([
      [undefined, 95, false],
      ['Server.handle', 9, false],
      ['gradeQuiz', 42, true],
    ])
  })
})
