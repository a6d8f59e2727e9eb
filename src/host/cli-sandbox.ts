/**
 * The sandbox commands of `examforge-ops`: `seed` (regenerate the sandbox data) and `sandbox url` (the
 * running sandbox's database URL, for psql). Other CLI commands attach to a running sandbox (the host's
 * or the desktop app's) instead of starting a second one; `sandbox url` reads the same record they do.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { defaultDataDir } from '../core/config/config'
import { pgClient } from '../core/db/connect'
import { OpsError } from '../shared/contract'
import { formatBytes, plural } from '../shared/format'
import { defineCommand, followJob, mustBeAdmin, who, withOps } from './cli-command'

export const seed = defineCommand({
  name: 'seed',
  synopsis: '--scale N [--json]',
  description: `Replace all the sandbox data with freshly generated data (1 ≈ 10 MB, 200 ≈ 2 GB). Sandbox only:
    a configured DATABASE_URL is never touched. --scale is required, so a slip of the keyboard regenerates nothing.`,
  options: { scale: { type: 'string' }, json: { type: 'boolean' } },
  run: async ({ values }) => {
    if (values.scale === undefined)
      throw new OpsError(
        'bad_argument',
        'seed replaces all the sandbox data: say how much to generate with --scale N (1 ≈ 10 MB, 200 ≈ 2 GB).',
      )
    const scale = Number(values.scale)
    if (!values.scale.trim() || !Number.isFinite(scale) || scale <= 0)
      throw new OpsError('bad_argument', `--scale "${values.scale}" is not a positive number (1 ≈ 10 MB).`)
    mustBeAdmin('Regenerating the sandbox data')
    return withOps(async (ops) => {
      if (!ops.sandbox.active) throw new OpsError('not_sandbox', 'seed only runs against the sandbox: unset DATABASE_URL to use it.')
      // A fresh sandbox seeds itself at its default scale first: wait for that, then seed the asked size.
      if (ops.sandbox.seedJobId) await ops.jobs.wait(ops.sandbox.seedJobId)
      const id = ops.seed(scale, who(ops))
      const info = await followJob(ops, id, !values.json)
      const ok = info.state === 'succeeded'
      const r = info.result as { scale: number; rows: Record<string, number>; bytes: number } | undefined
      if (values.json) process.stdout.write(JSON.stringify(info, null, 2) + '\n')
      else if (ok && r) {
        const rows = Object.values(r.rows).reduce((n, x) => n + x, 0)
        process.stdout.write(
          `Seeded the sandbox at scale ${r.scale}: ${plural(Object.keys(r.rows).length, 'table')}, ${plural(rows, 'row')}, ${formatBytes(r.bytes)}.\n`,
        )
      } else process.stderr.write(`Seeding ${info.state}: ${info.error?.message}\n`)
      return ok ? 0 : 1
    }, true)
  },
})

/** The record the running sandbox writes (core/sandbox/cluster.ts: <data folder>/sandbox/running.json, 0600). */
function runningSandbox(dataDir: string): { pid: number; url: string } | null {
  const file = join(dataDir, 'sandbox', 'running.json')
  if (!existsSync(file)) return null
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; url: string }
    process.kill(r.pid, 0)
    return r
  } catch {
    return null
  }
}

export const sandboxUrl = defineCommand({
  name: 'sandbox url',
  synopsis: '[--show-password]',
  description: `Print the running sandbox's database URL, e.g. for psql "$(examforge-ops sandbox url --show-password)".
    The URL holds the sandbox's password: it is printed only to a terminal, or into a pipe or file
    with --show-password. Exit 1 when no sandbox is running (start one with "examforge-ops serve").`,
  options: { 'show-password': { type: 'boolean' } },
  run: async ({ values }) => {
    const dataDir = defaultDataDir()
    const r = runningSandbox(dataDir)
    if (!r)
      throw new OpsError(
        'no_sandbox',
        `No sandbox is running for the data folder ${dataDir}: start one with "examforge-ops serve" (or the desktop app), then ask again.`,
      )
    const c = pgClient(r.url, { connectionTimeoutMillis: 3000 })
    try {
      await c.connect()
    } catch {
      throw new OpsError('no_sandbox', `The sandbox recorded in ${dataDir} does not answer: restart it with "examforge-ops serve".`)
    } finally {
      await c.end().catch(() => {})
    }
    if (!process.stdout.isTTY && !values['show-password'])
      throw new OpsError(
        'bad_argument',
        'The sandbox URL holds its password, so it is printed only to a terminal: add --show-password to print it into a pipe or file.',
      )
    process.stdout.write(r.url + '\n')
    return 0
  },
})
