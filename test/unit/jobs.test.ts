import { describe, expect, it } from 'vitest'
import { AuditLog } from '../../src/core/audit/audit'
import { OpsEvents } from '../../src/core/events'
import { JobRunner, etaEstimator } from '../../src/core/jobs/runner'
import { silentLogger } from '../../src/core/log/logger'
import type { JobProgress } from '../../src/shared/domain'
import { OpsError } from '../../src/shared/contract'

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
        await tick(300)
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

  it('shows "cancelling" at once, with no ETA, and takes the message of a job that says what its cancel left', async () => {
    const { events, jobs } = runner()
    const seen: JobProgress[] = []
    events.on('job.progress', (p) => seen.push(p))
    const id = jobs.start('restore', {}, async (_i, ctx) => {
      ctx.onProgress({ phase: 'loading', done: 10, total: 100, unit: 'rows' })
      await new Promise((r) => ctx.signal.addEventListener('abort', r))
      ctx.onProgress({ phase: 'loading', done: 11, total: 100, unit: 'rows' })
      throw new OpsError('cancelled', 'Cancelled: the new database r_new was dropped; nothing of it remains.')
    })
    await tick(20)
    jobs.cancel(id)
    expect(seen.at(-1)).toMatchObject({ jobId: id, phase: 'cancelling', etaS: null })
    const info = await jobs.wait(id)
    expect(seen.at(-1)).toMatchObject({ phase: 'cancelling', etaS: null })
    expect(info.state).toBe('cancelled')
    expect(info.error?.message).toBe('Cancelled: the new database r_new was dropped; nothing of it remains.')
  })

  it('estimates time left from the recent rate, and gives none rather than an absurd one', () => {
    const eta = etaEstimator()
    // Nothing to go on yet.
    expect(eta(5, 100, 200)).toBeNull()
    // Steady: 10 per second, 50 done after 5 s → 5 s left.
    const steady = etaEstimator()
    for (let s = 1; s <= 5; s++) steady(10 * s, 100, s * 1000)
    expect(steady(50, 100, 5000)).toBe(5)
    // Stuck (waiting for a lock): no progress in the window → no ETA.
    const stuck = etaEstimator(2000)
    stuck(10, 100, 1000)
    stuck(20, 100, 2000)
    for (let t = 2500; t < 4500; t += 500) stuck(20, 100, t)
    // Once the window holds no progress, there is no ETA (not one that grows without end).
    for (let t = 4500; t <= 8000; t += 500) expect(stuck(20, 100, t)).toBeNull()
    // Crawling: 1.1% after 2 s at a rate that would take hours → none.
    const crawl = etaEstimator()
    crawl(1_000, 100_000, 1000)
    expect(crawl(1_100, 100_000, 2000)).toBeNull()
    // A slow start does not skew it: after the window, only the recent rate counts.
    const late = etaEstimator(2000)
    late(1, 1000, 1000)
    for (let t = 60_000; t <= 64_000; t += 1000) late(100 * ((t - 60_000) / 1000 + 1), 1000, t)
    expect(late(500, 1000, 64_000)).toBe(5)
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
