import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { LEADER_LOCK } from '../../src/core/alerts/leader'
import { createDatabase, query } from '../helpers/db'
import { startHttp } from '../helpers/http'
import { waitFor } from '../helpers/wait'

const root = resolve(__dirname, '../..')

/**
 * Two real hosts (`examforge-ops serve`, built) on one ops store: exactly one notifies; killing it (SIGKILL,
 * no goodbye) hands the notifier lock to the other within an interval, which neither re-sends the firing
 * alert nor misses its resolution. The series is the watched database's connection count, moved by opening
 * real connections.
 */
describe('two hosts on one ops store', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let hook: Awaited<ReturnType<typeof startHttp>>
  const received: { status: string; alerts: { labels: Record<string, string> }[] }[] = []
  const hosts: ChildProcess[] = []
  /** What each host printed, for a failure's message. */
  const outputs: string[] = []
  const extra: pg.Client[] = []

  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'twohosts')
    hook = await startHttp((req, res) => {
      let b = ''
      req.on('data', (c) => (b += c))
      req.on('end', () => {
        received.push(JSON.parse(b))
        res.writeHead(200).end()
      })
    })
  })
  afterAll(async () => {
    await Promise.all(extra.map((c) => c.end().catch(() => {})))
    for (const h of hosts)
      if (h.exitCode === null && h.signalCode === null) {
        const exited = new Promise((r) => h.once('exit', r))
        h.kill('SIGKILL')
        await exited
      }
    await hook?.close()
    await db?.drop()
  })

  /** Start a host; nothing watches it (no console page): the notifier keeps collection at the interval itself. */
  function startHost(env: Record<string, string>): Promise<ChildProcess> {
    const h = spawn(process.execPath, [join(root, 'out/host/cli.js'), 'serve', '--port', '0'], {
      cwd: root,
      env: { PATH: process.env.PATH!, HOME: process.env.HOME!, OPS_DATA_DIR: mkdtempSync(join(tmpdir(), 'ops-host-')), ...env },
    })
    hosts.push(h)
    let out = ''
    const i = outputs.push('') - 1
    h.stdout!.on('data', (d) => (outputs[i] = out += d))
    h.stderr!.on('data', (d) => (outputs[i] = out += d))
    return waitFor(() => /is serving on/.test(out), 'the host to start', 60_000).then(
      () => h,
      (e: Error) => {
        throw new Error(`${e.message}: ${out}`)
      },
    )
  }

  /** The backend pid holding the notifier lock, or null. */
  const holder = async () =>
    (
      await query<{ pid: number }>(
        db.url,
        `SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
           AND l.objsubid = 1 AND l.objid::bigint = (hashtext($1)::bigint & 4294967295)`,
        [LEADER_LOCK],
      )
    )[0]?.pid ?? null
  const clientCount = async () =>
    (await query<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend'`))[0].n

  it('one notifier; after SIGKILL of the holder the other takes over within an interval and sends no duplicate', async () => {
    const rules = join(mkdtempSync(join(tmpdir(), 'ops-rules-')), 'rules.json')
    const env = {
      DATABASE_URL: db.url,
      ALERT_RULES_FILE: rules,
      ALERT_WEBHOOK_URL: `${hook.url}/am`,
      ALERT_GROUP_WAIT: '0s',
      ALERT_GROUP_INTERVAL: '0s',
      ALERT_DESKTOP: 'off',
      METRICS_INTERVAL_S: '1',
      HOST_LOAD_WARN_PER_CORE: '10000',
    }
    writeFileSync(rules, JSON.stringify({ rules: [{ name: 'many_connections', series: 'pg.connections', op: '>', threshold: 10_000 }] }))
    const a = await startHost(env)
    const aLock = await waitFor(() => holder(), 'the first host to take the notifier lock')
    await startHost(env)
    // Both run; only the first holds the lock.
    await new Promise((r) => setTimeout(r, 1500))
    const threshold = (await clientCount()) + 10
    writeFileSync(rules, JSON.stringify({ rules: [{ name: 'many_connections', series: 'pg.connections', op: '>', threshold }] }))
    expect(await holder(), `the lock moved while both ran; the hosts said:\n${outputs.join('\n---\n')}`).toBe(aLock)

    for (let i = 0; i < 30; i++) {
      const c = new pg.Client({ connectionString: db.url })
      await c.connect()
      extra.push(c)
    }
    const firing = () => received.filter((r) => r.status === 'firing' && r.alerts[0].labels.alertname === 'many_connections')
    await waitFor(() => firing().length === 1, 'the firing notification', 60_000)

    const killedAt = Date.now()
    a.kill('SIGKILL')
    const bLock = await waitFor(async () => {
      const h = await holder()
      return h !== null && h !== aLock ? h : null
    }, 'the second host to take over')
    // Within one retry interval (1 s) plus the time the server takes to notice the dead session.
    expect(Date.now() - killedAt).toBeLessThan(5000)
    expect(bLock).not.toBe(aLock)

    // The new notifier keeps evaluating the still-firing alert for a while: nothing is sent again.
    await new Promise((r) => setTimeout(r, 4000))
    expect(firing()).toHaveLength(1)

    await Promise.all(extra.splice(0).map((c) => c.end()))
    await waitFor(() => received.some((r) => r.status === 'resolved'), 'the resolved notice from the new notifier', 60_000)
    await new Promise((r) => setTimeout(r, 2000))
    expect(received.filter((r) => r.alerts[0].labels.alertname === 'many_connections').map((r) => r.status)).toEqual(['firing', 'resolved'])
  }, 180_000)
})
