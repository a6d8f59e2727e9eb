import { mkdtempSync, writeFileSync } from 'node:fs'
import os, { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { writeBatch } from '../../src/core/metrics/store'
import { cli } from '../helpers/cli'
import { createDatabase, query } from '../helpers/db'
import { startHttp } from '../helpers/http'
import { openOps } from '../helpers/ops'

describe('examforge-ops alerts (built CLI against a real ops store)', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let hook: Awaited<ReturnType<typeof startHttp>>
  const got: Record<string, unknown>[] = []
  const dir = mkdtempSync(join(tmpdir(), 'ops-rules-'))
  const rulesFile = join(dir, 'rules.json')
  let env: Record<string, string>
  const end = Date.now()

  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'clialerts')
    hook = await startHttp((req, res) => {
      let b = ''
      req.on('data', (c) => (b += c))
      req.on('end', () => {
        got.push(JSON.parse(b))
        res.writeHead(200).end()
      })
    })
    const ops = await openOps({ DATABASE_URL: db.url }, { sandbox: 'off' })
    await ops.close()
    // A day of CPU history, one sample a minute: above 80 % for 10 minutes twice, and for 1 minute once.
    const pool = new pg.Pool({ connectionString: db.url, max: 1 })
    const samples = Array.from({ length: 24 * 60 }, (_, i) => {
      const t = end - (24 * 60 - i) * 60_000
      const high = (i >= 100 && i < 110) || (i >= 700 && i < 710) || i === 900
      return { series: 'host.cpu_percent', host: os.hostname(), t, v: high ? 95 : 30 }
    })
    await writeBatch(pool, samples)
    // Two hours of stored PostgreSQL checks, every 30 s: unhealthy for 5 minutes an hour ago.
    const checks = Array.from({ length: 240 }, (_, i) => {
      const t = end - (240 - i) * 30_000
      return { t, bad: i >= 120 && i < 130 }
    })
    await pool.query(
      `INSERT INTO ops.health_results (service, status, latency_ms, reason, details, checked_at)
       SELECT 'postgres', s, 1, 'stored', '{}'::jsonb, to_timestamp(t / 1000.0) FROM unnest($1::text[], $2::float8[]) AS x(s, t)`,
      [checks.map((c) => (c.bad ? 'unhealthy' : 'healthy')), checks.map((c) => c.t)],
    )
    await pool.end()
    writeFileSync(
      rulesFile,
      JSON.stringify({
        rules: [{ name: 'cpu_spike', series: 'host.cpu_percent', op: '>', threshold: 80, for: '2m', severity: 'critical' }],
      }),
    )
    env = { DATABASE_URL: db.url, ALERT_RULES_FILE: rulesFile, ALERT_WEBHOOK_URL: `${hook.url}/hook`, OPS_LOG_LEVEL: 'error' }
  })
  afterAll(async () => {
    await hook?.close()
    await db?.drop()
  })

  it('lists the rules in force: the defaults and the rules file', async () => {
    const r = await cli(['alerts', 'rules', '--json'], env)
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as {
      rules: { name: string; origin: string; spec: Record<string, unknown> }[]
      channels: { name: string }[]
    }
    expect(out.rules.find((x) => x.name === 'cpu_spike')).toMatchObject({ origin: 'file', spec: { for: '2m', threshold: 80 } })
    expect(out.rules.map((x) => x.name)).toEqual(expect.arrayContaining(['cpu_high', 'memory_high', 'postgres_down', 'disk_full_soon']))
    expect(out.channels.map((c) => c.name)).toContain('webhook')
    expect(r.stdout).not.toContain(hook.url)
  })

  it('backtests a rule over the stored day: twice for 8 minutes (the 1-minute blip stays pending)', async () => {
    const r = await cli(['alerts', 'backtest', 'cpu_spike', '--days', '1', '--json'], env)
    expect(r.code, r.stderr).toBe(0)
    const [s] = JSON.parse(r.stdout) as { series: string; result: { episodes: { from: number; to: number }[] } }[]
    expect(s.series).toBe('host.cpu_percent')
    expect(s.result.episodes.map((e) => (e.to - e.from) / 60_000)).toEqual([8, 8])
    const text = await cli(['alerts', 'backtest', 'cpu_spike', '--days', '1'], env)
    expect(text.stdout).toMatch(/fired 2 time\(s\), 16m in all/)
  })

  it('backtests an availability rule over the stored health checks, and says why a backup rule cannot be', async () => {
    const r = await cli(['alerts', 'backtest', 'postgres_down', '--days', '1', '--json'], env)
    expect(r.code, r.stderr).toBe(0)
    const [s] = JSON.parse(r.stdout) as { series: string; result: { episodes: { from: number; to: number }[] } }[]
    expect(s.series).toBe('service=postgres')
    // Unhealthy for 5 minutes with for: 1m: firing for the last 4.
    expect(s.result.episodes.map((e) => (e.to - e.from) / 60_000)).toEqual([4])
    const refused = await cli(['alerts', 'backtest', 'backup_slot_wal'], env)
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/past values .* are not stored, so a backup rule cannot be backtested/)
  })

  it('a bad rules file is refused with its line and what to fix; list says so and nothing fires', async () => {
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'rules:\n  - name: cpu_spike\n    series: host.cpu_percent\n    for: soon\n')
    const r = await cli(['alerts', 'list', '--json'], { ...env, ALERT_RULES_FILE: bad })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).rulesFileProblem).toMatch(/bad\.yaml line 4: rule 1: "for": for must be a duration/)
  })

  it('silences (audited), refuses an unknown alert to acknowledge, and sends a test notification', async () => {
    const s = await cli(['alerts', 'silence', '--match', 'alertname=cpu_spike', '--for', '1h', '--reason', 'maintenance window'], env)
    expect(s.code, s.stderr).toBe(0)
    expect(s.stdout).toMatch(/Silenced alertname=cpu_spike until/)
    const rows = await query<{ reason: string; created_by: string }>(db.url, 'SELECT reason, created_by FROM ops.alert_silences')
    expect(rows).toEqual([{ reason: 'maintenance window', created_by: expect.stringContaining('(cli)') }])
    expect(await query(db.url, `SELECT 1 FROM ops.audit_log WHERE action = 'alerts.silence'`)).toHaveLength(1)

    const ack = await cli(['alerts', 'ack', 'nothing_here'], env)
    expect(ack.code).toBe(1)
    expect(ack.stderr).toMatch(/No firing alert "nothing_here"/)

    const t = await cli(['alerts', 'test', 'webhook'], env)
    expect(t.code, t.stderr).toBe(0)
    expect(got).toHaveLength(1)
    expect(got[0]).toMatchObject({ version: '4', status: 'firing', groupLabels: { alertname: 'test' } })
    const none = await cli(['alerts', 'test', 'slack'], env)
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/There is no alert channel "slack"/)
  })
})
