import { mkdtempSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { dispatch } from '../../src/core/dispatch'
import type { Ops } from '../../src/core/ops'
import type { HealthResult } from '../../src/shared/domain'
import { createDatabase } from '../helpers/db'
import { openOps } from '../helpers/ops'

const actor = { actor: { via: 'cli' as const, osUser: 'test', email: null } }

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

const dsnOf = async (ops: Ops) => {
  const r = (await dispatch(ops, 'errors.dsn', {}, actor)) as {
    ok: true
    value: { dsn: string; listening: boolean; where: string; address: string; problem?: string }
  }
  expect(r.ok).toBe(true)
  return r.value
}
const ingestHealth = async (ops: Ops): Promise<HealthResult> =>
  (await ops.health.checkOne('error_ingest')).results.find((r) => r.service === 'error_ingest')!

describe('where error events go, seen from each face; the ingest health tile', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  const opened: Ops[] = []
  const open = async (env: Record<string, string>, ingest: boolean, dataDir?: string) => {
    const ops = await openOps(
      { DATABASE_URL: db.url, HOST_LOAD_WARN_PER_CORE: '1000', ...env },
      { sandbox: 'off', errorIngest: ingest, face: ingest ? 'host' : 'electron' },
      dataDir,
    )
    opened.push(ops)
    return ops
  }
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'errfaces')
  })
  afterAll(async () => {
    for (const o of opened) await o.close().catch(() => {})
    await db?.drop()
  })

  it('the desktop face, which runs no ingest: says nothing listens, then that the agent does, or that its key differs', async () => {
    const port = await freePort()
    const dataDir = mkdtempSync(join(tmpdir(), 'ops-data-'))
    const desktop = await open({ ERROR_INGEST_ADDR: `127.0.0.1:${port}` }, false, dataDir)
    expect(desktop.errors.ingestUrl()).toBeNull()
    expect(await dsnOf(desktop)).toMatchObject({ listening: false, where: 'nothing', address: `127.0.0.1:${port}` })
    // Its Health page does not claim an ingest it does not run.
    expect((await ingestHealth(desktop)).status).toBe('not_configured')

    // The agent on this machine, with the same data folder (so the same DSN key), starts listening there.
    const agent = await open({ ERROR_INGEST_ADDR: `127.0.0.1:${port}` }, true, dataDir)
    expect(await dsnOf(agent)).toMatchObject({ listening: true, where: 'here', address: `127.0.0.1:${port}` })
    const seen = await dsnOf(desktop)
    expect(seen).toMatchObject({ listening: true, where: 'agent' })
    expect(seen.dsn).toBe((await dsnOf(agent)).dsn)

    // A desktop app with another data folder has another key: the DSN it would show is not the agent's.
    const stranger = await open({ ERROR_INGEST_ADDR: `127.0.0.1:${port}` }, false)
    expect(await dsnOf(stranger)).toMatchObject({ listening: false, where: 'other_key' })
  })

  it('health: healthy while listening, degraded while it sheds with 429, down when it cannot listen', async () => {
    const ops = await open({ ERROR_INGEST_ADDR: '127.0.0.1:0', ERROR_INGEST_RATE: '2' }, true)
    // Configured as port 0: the Errors page names the port it really listens on.
    expect((await dsnOf(ops)).address).toBe(new URL(ops.errors.ingestUrl()!).host)
    const ok = await ingestHealth(ops)
    expect(ok.status).toBe('healthy')
    expect(ok.reason).toMatch(/^Listening on http:\/\/127\.0\.0\.1:\d+; 0 events accepted in the last 5 minutes, none refused\.$/)

    const key = ops.errors.keys().key
    const statuses: number[] = []
    for (let i = 0; i < 12; i++)
      statuses.push(
        (
          await fetch(`${ops.errors.ingestUrl()}/api/1/store/?sentry_key=${key}`, {
            method: 'POST',
            body: JSON.stringify({ message: `flood ${i}` }),
          })
        ).status,
      )
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(4)
    const refused = statuses.filter((s) => s === 429).length
    expect(refused).toBeGreaterThan(0)
    const shed = await ingestHealth(ops)
    expect(shed.status).toBe('degraded')
    expect(shed.reason).toContain(
      `${refused} request${refused === 1 ? '' : 's'} refused with 429 (a client sends more than ERROR_INGEST_RATE events/s)`,
    )
    expect(shed.details).toMatchObject({ refused429: refused, acceptedEvents: 12 - refused })

    // Another process holds the address: the console starts, and the tile says the ingest is down and why.
    const squatter: Server = createServer()
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()))
    try {
      const port = (squatter.address() as { port: number }).port
      const blocked = await open({ ERROR_INGEST_ADDR: `127.0.0.1:${port}` }, true)
      expect(blocked.errors.ingestUrl()).toBeNull()
      const down = await ingestHealth(blocked)
      expect(down.status).toBe('unhealthy')
      expect(down.reason).toMatch(new RegExp(`not listening: it could not listen on 127\\.0\\.0\\.1:${port} \\(.*EADDRINUSE.*\\)`))
      // and the Errors page says so instead of offering a DSN as if it were served.
      const said = await dsnOf(blocked)
      expect(said).toMatchObject({ listening: false, where: 'failed' })
      expect(said.problem).toMatch(/EADDRINUSE/)
    } finally {
      squatter.close()
    }
  })
})
