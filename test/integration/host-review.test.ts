/**
 * Regressions from the independent security review of the host and the CLI (after the hardening
 * pass): each test is an attack that worked before its fix. Loopback only, bounded.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { loadConfig } from '../../src/core/config/config'
import { silentLogger } from '../../src/core/log/logger'
import { createOps, type Ops } from '../../src/core/ops'
import { startHostServer, type HostServer } from '../../src/host/server'
import { cli } from '../helpers/cli'
import { createDatabase, query } from '../helpers/db'
import { call, signIn, tabSocket, wsOpen } from '../helpers/host'

const ADMIN = 'admin-token-review-aaaaaaaaaaaa'
const DEV = 'dev-token-review-bbbbbbbbbbbbbb'
const bearer = (t: string) => ({ authorization: `Bearer ${t}` })

/** A program squatting a loopback port: it records what it is sent and answers like a host would, with its own link. */
async function squatter(): Promise<{ server: Server; origin: string; seen: { auth: string | undefined; url: string | undefined }[] }> {
  const seen: { auth: string | undefined; url: string | undefined }[] = []
  const server = createServer((req, res) => {
    seen.push({ auth: req.headers.authorization, url: req.url })
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify({ ok: true, value: { url: 'http://phish.example/?token=x', expiresInS: 300 } }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

describe('examforge-ops open does not trust a stale control file or whatever answers on its port', () => {
  let trap: Awaited<ReturnType<typeof squatter>>
  beforeAll(async () => {
    trap = await squatter()
  })
  afterAll(() => new Promise<void>((r) => trap.server.close(() => r())))

  it('a host.json left by a dead host: nothing (no local secret, no administrator token) is sent to its old port', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid // a process that has exited
    const dataDir = mkdtempSync(join(tmpdir(), 'ops-stale-'))
    const port = Number(new URL(trap.origin).port)
    writeFileSync(
      join(dataDir, 'host.json'),
      JSON.stringify({ pid: dead, port, origin: trap.origin, secret: 'old-local-secret-0123456789' }),
      { mode: 0o600 },
    )
    const plain = await cli(['open'], { OPS_DATA_DIR: dataDir })
    expect(plain.code).toBe(1)
    expect(plain.stderr).toMatch(/left by a console host that is no longer running .*examforge-ops serve/)
    const asToken = await cli(['open', '--as-token'], { OPS_DATA_DIR: dataDir, OPS_TOKEN: ADMIN })
    expect(asToken.code).toBe(1)
    expect(asToken.stderr).toMatch(/no longer running/)
    expect(asToken.stderr).not.toContain(ADMIN)
    expect(trap.seen).toEqual([])
  })

  it('a link pointing away from the host asked is never printed', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ops-squat-'))
    const port = Number(new URL(trap.origin).port)
    // The pid is alive (this test's), as when a pid is reused by another process.
    writeFileSync(join(dataDir, 'host.json'), JSON.stringify({ pid: process.pid, port, origin: trap.origin, secret: 's' }), {
      mode: 0o600,
    })
    const r = await cli(['open'], { OPS_DATA_DIR: dataDir })
    expect(r.code).toBe(1)
    expect(r.stdout).not.toContain('phish.example')
    expect(r.stderr).toMatch(/is not the console host/)
  })
})
