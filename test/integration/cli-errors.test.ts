import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SourceMapGenerator } from 'source-map'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Ops } from '../../src/core/ops'
import type { ErrorGroup, ErrorGroupDetail } from '../../src/shared/errors'
import { cli } from '../helpers/cli'
import { createDatabase } from '../helpers/db'
import { openOps } from '../helpers/ops'

describe('CLI: errors list|show|resolve|ignore|dsn|sourcemaps upload', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let ops: Ops
  let env: Record<string, string>
  const dataDir = mkdtempSync(join(tmpdir(), 'ops-cli-errors-'))

  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'clierr')
    env = { DATABASE_URL: db.url, OPS_DATA_DIR: dataDir }
    ops = await openOps({ DATABASE_URL: db.url, ERROR_INGEST_ADDR: '127.0.0.1:0' }, { sandbox: 'off', errorIngest: true }, dataDir)
    const post = (ev: unknown) =>
      fetch(`${ops.errors.ingestUrl()}/api/1/store/?sentry_key=${ops.errors.keys().key}`, { method: 'POST', body: JSON.stringify(ev) })
    for (let i = 0; i < 7; i++) await post({ message: `Invite ${i} bounced for parent${i}@home.org`, level: 'warning' })
    await post({
      exception: {
        values: [
          {
            type: 'TypeError',
            value: 'x is undefined',
            stacktrace: { frames: [{ filename: 'lib/a.ts', function: 'load', lineno: 3, in_app: true }] },
          },
        ],
      },
    })
  })
  afterAll(async () => {
    await ops?.close()
    await db?.drop()
  })

  it('lists groups with their counts, filters by state, shows one, resolves and ignores', async () => {
    const list = await cli(['errors', 'list', '--json'], env)
    expect(list.code).toBe(0)
    const groups = (JSON.parse(list.stdout) as { groups: ErrorGroup[] }).groups
    const invite = groups.find((g) => g.title.startsWith('Invite'))!
    expect(invite.count).toBe(7)
    expect(groups.length).toBe(2)
    const text = await cli(['errors', 'list'], env)
    expect(text.stdout).toMatch(/7 events/)
    const show = await cli(['errors', 'show', invite.id, '--json'], env)
    expect((JSON.parse(show.stdout) as ErrorGroupDetail).why.method).toBe('message')
    expect((await cli(['errors', 'show', invite.id], env)).stdout).toMatch(/why grouped \(message\)/)
    expect((await cli(['errors', 'resolve', invite.id], env)).code).toBe(0)
    const resolved = JSON.parse((await cli(['errors', 'list', '--json', '--state', 'resolved'], env)).stdout) as { groups: ErrorGroup[] }
    expect(resolved.groups.map((g) => g.id)).toEqual([invite.id])
    const other = groups.find((g) => g !== invite)!
    expect((await cli(['errors', 'ignore', other.id, '--count', '5'], env)).code).toBe(0)
    expect((await ops.errors.list({ state: 'ignored' })).groups.map((g) => g.id)).toEqual([other.id])
    const bad = await cli(['errors', 'resolve', 'nope'], env)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/no error group "nope"/)
    expect((await cli(['errors', 'list', '--state', 'sideways'], env)).code).toBe(64)
  })

  it('prints the DSN (its key kept 0600 in the data folder) and uploads source maps, refusing a bad one whole', async () => {
    const dsn = await cli(['errors', 'dsn'], env)
    expect(dsn.stdout.trim()).toBe(`http://${ops.errors.keys().key}@127.0.0.1:7481/1`)
    expect(statSync(join(dataDir, 'errors', 'ingest.json')).mode & 0o777).toBe(0o600)
    expect(statSync(join(dataDir, 'errors')).mode & 0o777).toBe(0o700)
    const dir = mkdtempSync(join(tmpdir(), 'ops-maps-'))
    mkdirSync(join(dir, 'chunks'))
    const gen = new SourceMapGenerator({ file: 'main.js' })
    gen.addMapping({ generated: { line: 1, column: 1 }, original: { line: 2, column: 0 }, source: 'src/a.ts', name: 'load' })
    writeFileSync(join(dir, 'main.abc123.js.map'), gen.toString())
    writeFileSync(join(dir, 'chunks', 'broken.js.map'), '{"version": 2}')
    const refused = await cli(['errors', 'sourcemaps', 'upload', '--release', 'web@9', dir], env)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/broken\.js\.map is not a version 3 source map\. Nothing was uploaded\./)
    expect(ops.errors.sourceMaps.list('web@9')).toEqual([])
    writeFileSync(join(dir, 'chunks', 'broken.js.map'), gen.toString())
    const ok = await cli(['errors', 'sourcemaps', 'upload', '--release', 'web@9', dir], env)
    expect(ok.stdout).toMatch(/Uploaded 2 source map\(s\) for web@9/)
    expect(ops.errors.sourceMaps.list('web@9').sort()).toEqual(['broken.js.map', 'main.abc123.js.map'])
  })
})
