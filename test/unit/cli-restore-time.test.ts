import { describe, expect, it } from 'vitest'
import { parseToTime } from '../../src/host/cli-restore'

describe('restore --to-time', () => {
  it('takes ISO 8601 with a zone, and says the zone it read', () => {
    expect(parseToTime('2026-11-29T15:05:00+01:00')).toEqual({ iso: '2026-11-29T14:05:00.000Z', zone: 'UTC+01:00' })
    expect(parseToTime('2026-11-29 14:05Z')).toEqual({ iso: '2026-11-29T14:05:00.000Z', zone: 'UTC' })
  })
  it('without a zone: refused, the example is the operator’s own time with one', () => {
    expect(() => parseToTime('2026-11-29T14:05:00')).toThrow(/has no time zone.*e\.g\. 2026-11-29T14:05:00Z for UTC/)
  })
  it('not a time: refused, and the example is a real time, never the bad input again', () => {
    let message = ''
    try {
      parseToTime('2026-13-45T99:00:00Z')
    } catch (e) {
      message = (e as Error).message
    }
    expect(message).toMatch(
      /^--to-time "2026-13-45T99:00:00Z" is not a time: use ISO 8601 with a zone \(e\.g\. 2026-11-29T14:05:00Z for UTC/,
    )
    expect(message.split('2026-13-45T99').length).toBe(2) // only where it quotes the input
  })
})
