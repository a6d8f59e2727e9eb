import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { loadConfig } from '../core/config/config'
import { createLogger } from '../core/log/logger'
import { createOps, type Ops } from '../core/ops'
import { version } from '../core/version'
import { OpsError } from '../shared/contract'
import { serviceId, type HealthSnapshot } from '../shared/domain'
import { healthExitCode, renderHealth } from './format'
import { startHostServer } from './server'

const usage = `examforge-ops ${version}: the ExamForge operations console

Usage: examforge-ops <command> [options]

Commands:
  serve [--port N]          Start the headless host on 127.0.0.1 (browser UI, agent schedules) and print the URL to open.
  health [--json] [--service NAME]
                            Run every health check once. Exit 0 all healthy, 1 any degraded, 2 any unhealthy.
  seed --scale N            Regenerate the sandbox data (1 ≈ 10 MB, 200 ≈ 2 GB). Sandbox only.
  help                      This text.

Configuration comes from the environment (DATABASE_URL, REDIS_URL, BACKUP_S3_BUCKET, AWS_REGION,
S3_ENDPOINT, LOCAL_BACKUP_PATH, STRIPE_SECRET_KEY, APP_URL, ...) or a 0600 file named by
OPS_SECRETS_FILE. With no DATABASE_URL, the embedded sandbox database is used.
Coming in later releases: backup, backups, restore, restore-test, metrics.`

function rendererDir(): string {
  return process.env.OPS_RENDERER_DIR ?? join(__dirname, '..', 'renderer')
}

async function withOps<T>(fn: (ops: Ops) => Promise<T>, sandboxActivity = false): Promise<T> {
  const log = createLogger({ level: (process.env.OPS_LOG_LEVEL as 'info') ?? 'warn' })
  const ops = await createOps({ config: loadConfig(), face: 'host', log, schedule: false, sandboxActivity })
  try {
    return await fn(ops)
  } finally {
    await ops.close()
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv
  switch (command) {
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage + '\n')
      return 0
    case '--version':
    case 'version':
      process.stdout.write(version + '\n')
      return 0
    case 'health': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' }, service: { type: 'string' } } })
      const service = values.service ? serviceId.safeParse(values.service) : null
      if (service && !service.success)
        throw new OpsError('bad_argument', `Unknown service "${values.service}": use one of ${serviceId.options.join(', ')}.`)
      const snap: HealthSnapshot = await withOps(async (ops) => {
        await ops.health.checkAll()
        return ops.health.snapshot()
      })
      const results = service ? snap.results.filter((r) => r.service === service.data) : snap.results
      const shown = { ...snap, results }
      process.stdout.write(values.json ? JSON.stringify(shown, null, 2) + '\n' : renderHealth(shown, process.stdout.isTTY) + '\n')
      return healthExitCode(results)
    }
    case 'seed': {
      const { values } = parseArgs({ args: rest, options: { scale: { type: 'string' }, json: { type: 'boolean' } } })
      const scale = Number(values.scale ?? '1')
      if (!Number.isFinite(scale) || scale <= 0) throw new OpsError('bad_argument', '--scale must be a positive number (1 ≈ 10 MB).')
      return withOps(async (ops) => {
        if (!ops.sandbox.active) throw new OpsError('not_sandbox', 'seed only runs against the sandbox: unset DATABASE_URL to use it.')
        // A fresh sandbox seeds itself at its default scale first: wait for that, then seed the asked size.
        if (ops.sandbox.seedJobId) await ops.jobs.wait(ops.sandbox.seedJobId)
        const id = ops.seed(scale, 'cli')
        const off = ops.events.on('job.progress', (p) => {
          if (p.jobId === id && process.stderr.isTTY)
            process.stderr.write(`\r${p.phase}: ${p.done}/${p.total} ${p.unit}${p.etaS != null ? `, ETA ${p.etaS}s` : ''}   `)
        })
        const info = await ops.jobs.wait(id)
        off()
        if (process.stderr.isTTY) process.stderr.write('\n')
        process.stdout.write(
          (values.json ? JSON.stringify(info, null, 2) : `${info.state}: ${JSON.stringify(info.result ?? info.error)}`) + '\n',
        )
        return info.state === 'succeeded' ? 0 : 1
      }, true)
    }
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: { port: { type: 'string' } } })
      const started = Date.now()
      const log = createLogger()
      const ops = await createOps({ config: loadConfig(), face: 'host', log, schedule: true })
      const port = Number(values.port ?? process.env.OPS_PORT ?? 7480)
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new OpsError('bad_argument', '--port must be a port number (0 picks a free one).')
      let server
      try {
        server = await startHostServer({ ops, rendererDir: rendererDir(), port, apiToken: process.env.OPS_API_TOKEN })
      } catch (e) {
        await ops.close()
        if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE')
          throw new OpsError('port_in_use', `Port ${port} is already in use: another console may be running. Use --port to choose another.`)
        throw e
      }
      process.stdout.write(
        `ExamForge Ops ${version} is serving on ${server.origin}${ops.sandbox.active ? ' (sandbox)' : ''}, ready in ${Date.now() - started} ms.\n` +
          `Open this one-time link in a browser:\n\n  ${server.launchUrl()}\n\n` +
          (process.env.OPS_API_TOKEN ? 'Programs may call /api/call/<method> with "Authorization: Bearer $OPS_API_TOKEN". ' : '') +
          'Press Ctrl+C to stop.\n',
      )
      await new Promise<void>((resolve) => {
        const stop = () => resolve()
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      })
      process.stdout.write('Stopping: finishing running jobs...\n')
      await server.close()
      await ops.close()
      return 0
    }
    default:
      process.stderr.write(`Unknown command "${command}".\n\n${usage}\n`)
      return 64
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      const msg = e instanceof OpsError ? e.message : `Unexpected error: ${(e as Error)?.stack ?? String(e)}`
      process.stderr.write(`examforge-ops: ${msg}\n`)
      process.exit(e instanceof OpsError && e.code === 'bad_argument' ? 64 : 70)
    },
  )
}
