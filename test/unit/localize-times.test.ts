import { describe, expect, it } from 'vitest'
import { formatTime, localizeTimes } from '../../src/shared/format'

describe('localizeTimes: labels built in core read as local time with their zone', () => {
  it('replaces every ISO moment (milliseconds, Z or an offset) and leaves the rest of the text alone', () => {
    const label = 'full backup 20261130T171130Z-full-0382 (2026-11-30T17:11:31.456Z)'
    const out = localizeTimes(label, { timeZone: 'Europe/Berlin' })
    expect(out).toBe(`full backup 20261130T171130Z-full-0382 (${formatTime('2026-11-30T17:11:31.456Z', { timeZone: 'Europe/Berlin' })})`)
    expect(out).not.toMatch(/\d{4}-\d\d-\d\dT/)
    expect(out).toMatch(/18:11:31|6:11:31/) // Berlin is an hour ahead of UTC in November
    expect(localizeTimes('point in time 2026-11-30T18:00:00+01:00', { timeZone: 'UTC' })).toMatch(/5:00:00|17:00:00/)
    // The set id's compact stamp is not an ISO moment and stays as it is.
    expect(localizeTimes('20261130T171130Z-full-0382')).toBe('20261130T171130Z-full-0382')
  })
})
