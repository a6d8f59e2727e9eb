import { describe, expect, it } from 'vitest'
import { estimateRestore } from '../../src/core/restore/estimate'

describe('the restore plan estimate', () => {
  it('is unknown, and says why, until a restore of the same kind has been timed here', () => {
    expect(estimateRestore(50e6, 'load', [])).toEqual({
      seconds: null,
      basis: 'unknown: no restore into an empty database has been timed here yet (this one will be, for the next estimate)',
    })
    // An in-place restore's time says nothing about a load's, and the reverse.
    expect(estimateRestore(50e6, 'replace', [{ mode: 'load', bytes: 10e6, durationMs: 5000 }]).seconds).toBeNull()
  })

  it('comes from the measured throughput, never below the quickest run measured', () => {
    // 37 s for 10 MB here: a 20 MB load is about 74 s, not a bench's 9 s.
    const e = estimateRestore(20e6, 'load', [{ mode: 'load', bytes: 10e6, durationMs: 37_000 }])
    expect(e.seconds).toBe(74)
    expect(e.basis).toBe('from the last restore into an empty database here (0.3 MB/s including fixed costs)')
    // A tiny restore still pays the fixed costs the quickest run paid.
    expect(estimateRestore(1000, 'load', [{ mode: 'load', bytes: 10e6, durationMs: 37_000 }]).seconds).toBe(37)
    const two = estimateRestore(30e6, 'replace', [
      { mode: 'replace', bytes: 10e6, durationMs: 10_000 },
      { mode: 'replace', bytes: 20e6, durationMs: 20_000 },
    ])
    expect(two).toMatchObject({ seconds: 30, basis: expect.stringMatching(/^from the last 2 restores in place here \(1\.0 MB\/s/) })
  })
})
