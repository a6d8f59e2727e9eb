import { describe, expect, it } from 'vitest'
import { AuditLog } from '../../src/core/audit/audit'
import { OpsEvents } from '../../src/core/events'
import { JobRunner } from '../../src/core/jobs/runner'
import { silentLogger } from '../../src/core/log/logger'
import type { JobProgress } from '../../src/shared/domain'

function runner() {
  const events = new OpsEvents()
  const audit = new AuditLog({ store: () => null, log: silentLogger })
  return { events, jobs: new JobRunner({ events, log: silentLogger, store: () => null, audit }) }
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('job runner', () => {
  it('returns an id at once, reports progress with an ETA, and the result', async () => {
    const { events, jobs } = runner()
    const seen: JobProgress[] = []
    events.on('job.progress', (p) => seen.push(p))
    const id = jobs.start('count', { n: 5 }, async (input: { n: number }, ctx) => {
      for (let i = 1; i <= input.n; i++) {
        await tick(150)
        ctx.onProgress({ phase: 'counting', done: i, total: input.n, unit: 'rows' })
      }
      return { counted: input.n }
    })
    expect(jobs.get(id)?.state).toBe('running')
    const info = await jobs.wait(id)
    expect(info.state).toBe('succeeded')
    expect(info.result).toEqual({ counted: 5 })
    expect(seen.at(-1)).toMatchObject({ jobId: id, done: 5, total: 5, unit: 'rows' })
    const withEta = seen.find((p) => p.etaS !== null)
    expect(withEta).toBeDefined()
    expect(withEta!.etaS!).toBeGreaterThanOrEqual(0)
  })

  it('cancels by id, and the job ends as cancelled, not failed', async () => {
    const { jobs } = runner()
    const id = jobs.start('forever', {}, async (_i, ctx) => {
      for (;;) {
        ctx.signal.throwIfAborted()
        await tick(20)
      }
    })
    await tick(50)
    expect(jobs.cancel(id)).toBe(true)
    const info = await jobs.wait(id)
    expect(info.state).toBe('cancelled')
    expect(jobs.cancel(id)).toBe(false)
  })

  it('a failed job carries its error, scrubbed of secrets', async () => {
    const { jobs } = runner()
    const id = jobs.start('fail', {}, async () => {
      throw new Error('cannot reach postgres://app:letmein99@db/x')
    })
    const info = await jobs.wait(id)
    expect(info.state).toBe('failed')
    expect(info.error?.message).toContain('postgres://app:•••@db/x')
    expect(info.error?.message).not.toContain('letmein99')
  })

  it('drain cancels what is running', async () => {
    const { jobs } = runner()
    const id = jobs.start('long', {}, async (_i, ctx) => {
      await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))
    })
    await jobs.drain(2000)
    expect(jobs.get(id)?.state).toBe('cancelled')
  })
})
