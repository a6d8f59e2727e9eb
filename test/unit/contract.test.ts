import { describe, expect, it } from 'vitest'
import { events, methodNames, methods, parseInput } from '../../src/shared/contract'
import { overallStatus } from '../../src/shared/domain'
import { handlers } from '../../src/core/handlers'
import { healthExitCode } from '../../src/host/format'

describe('the contract', () => {
  it('has one core handler for every method, and no handler without a method', () => {
    expect(Object.keys(handlers).sort()).toEqual([...methodNames].sort())
  })

  it('validates input before core sees it, with a readable message', () => {
    expect(() => parseInput('health.checkNow', { service: 'mysql' })).toThrow(/Invalid input for health.checkNow at "service"/)
    expect(() => parseInput('health.snapshot', { extra: 1 })).toThrow(/Invalid input/)
    expect(() => parseInput('jobs.cancel', {})).toThrow(/jobId/)
    expect(parseInput('health.history', { service: 'redis' })).toEqual({ service: 'redis', limit: 50 })
    expect(() => parseInput('nope' as never, {})).toThrow(/no method "nope"/)
  })

  it('every event and method has schemas', () => {
    for (const m of Object.values(methods)) {
      expect(m.input.safeParse).toBeTypeOf('function')
      expect(m.output.safeParse).toBeTypeOf('function')
    }
    expect(Object.keys(events)).toContain('job.progress')
  })
})

describe('overall status and CLI exit codes', () => {
  it('is the worst configured status; not configured never makes it worse', () => {
    expect(overallStatus([{ status: 'healthy' }, { status: 'not_configured' }])).toBe('healthy')
    expect(overallStatus([{ status: 'healthy' }, { status: 'degraded' }])).toBe('degraded')
    expect(overallStatus([{ status: 'degraded' }, { status: 'unhealthy' }])).toBe('unhealthy')
  })
  it('exits 0 healthy, 1 degraded, 2 unhealthy', () => {
    expect(healthExitCode([{ status: 'healthy' }, { status: 'not_configured' }])).toBe(0)
    expect(healthExitCode([{ status: 'healthy' }, { status: 'degraded' }])).toBe(1)
    expect(healthExitCode([{ status: 'degraded' }, { status: 'unhealthy' }])).toBe(2)
  })
})
