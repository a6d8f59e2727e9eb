import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Ops } from '../../src/core/ops'
import { createDatabase } from '../helpers/db'
import { openOps } from '../helpers/ops'
import { waitFor } from '../helpers/wait'

/**
 * The two capabilities together, as in a real console: the error tracker registers its rule sources with
 * the alert engine, and the default "10 or more application errors in 5 minutes" rule fires on events the
 * ingest stored, then resolves once they are older than the window.
 */
describe('application errors page through the alert engine', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'erral')
    ops = await openOps({ DATABASE_URL: db.url, ERROR_INGEST_ADDR: '127.0.0.1:0' })
    ops.alerts.leader.start()
    await waitFor(() => ops.alerts.leader.isLeader, 'the notifier lock')
  })
  afterAll(async () => {
    await ops?.close()
    await db?.drop()
  })

  const event = (n: number) => ({
    event_id: randomBytes(16).toString('hex'),
    level: 'error',
    exception: { values: [{ type: 'TypeError', value: `Cannot read properties of undefined (reading 'quiz ${n}')` }] },
  })
  const appErrors = async () => (await ops.alerts.active()).find((a) => a.rule === 'app_errors')

  it('9 events stay quiet; the 10th makes "app_errors" fire with its value; it resolves after the window', async () => {
    await ops.errors.accept(
      '1',
      Array.from({ length: 9 }, (_, i) => event(i)),
    )
    await ops.alerts.evaluate(Date.now())
    expect(await appErrors()).toBeUndefined()
    await ops.errors.accept('1', [event(9)])
    await ops.alerts.evaluate(Date.now())
    const firing = await appErrors()
    expect(firing).toMatchObject({ phase: 'firing', value: 10 })
    expect(firing!.text).toMatch(/10 error events in 5 min/)
    // Six minutes later the events are outside the window: resolved, not silently forgotten.
    await ops.alerts.evaluate(Date.now() + 6 * 60_000)
    expect((await appErrors())?.phase ?? 'inactive').not.toBe('firing')
  })
})
