/**
 * `examforge-ops`: the command table and the dispatcher. Each command is one entry (cli-command.ts):
 * its name, options, usage and run function, most in a file of their own (cli-backups.ts,
 * cli-restore.ts, cli-sandbox.ts, cli-open.ts). The dispatcher finds the command by its words, answers
 * --help, parses the arguments strictly, and turns whatever happens into one exit code; nothing reaches
 * the operator as a stack trace unless it is a bug (exit 70), and then only with OPS_DEBUG=1.
 */
import { join } from 'node:path'
import { loadConfig } from '../core/config/config'
import { createLogger } from '../core/log/logger'
import { createOps } from '../core/ops'
import { version } from '../core/version'
import { OpsError } from '../shared/contract'
import { serviceId, type HealthSnapshot } from '../shared/domain'
import { alertsCommands } from './cli-alerts'
import { errorsCommands } from './cli-errors'
import { incidentsCommands } from './cli-incidents'
import { backupCommands } from './cli-backups'
import { commandHelp, defineCommand, EXIT, parseCommandArgs, usageLine, wantsHelp, withOps, type CliCommand } from './cli-command'
import { open } from './cli-open'
import { restore, restoreTest } from './cli-restore'
import { sandboxUrl, seed } from './cli-sandbox'
import { healthExitCode, renderHealth, renderMetrics } from './format'

function rendererDir(): string {
  return process.env.OPS_RENDERER_DIR ?? join(__dirname, '..', 'renderer')
}

const serve = defineCommand({
  name: 'serve',
  synopsis: '[--port N]',
  description: `Start the headless host on 127.0.0.1 (browser UI, agent schedules) and print the one-time link to open.
    --port 0 picks a free port; the default is OPS_PORT or 7480.`,
  options: { port: { type: 'string' } },
  run: async ({ values }) => {
    const port = Number(values.port ?? process.env.OPS_PORT ?? 7480)
    if (!Number.isInteger(port) || port < 0 || port > 65535 || (values.port !== undefined && !values.port.trim()))
      throw new OpsError('bad_argument', `--port "${values.port ?? process.env.OPS_PORT}" is not a port number (0 picks a free one).`)
    const started = Date.now()
    const log = createLogger()
    const minutes = (key: string, fallback: number, unit: number) => {
      const v = process.env[key] ? Number(process.env[key]) : fallback
      if (!Number.isFinite(v) || v <= 0) throw new OpsError('bad_setting', `${key} must be a positive number; it is "${process.env[key]}".`)
      return v * unit
    }
    const sessions = { idleMs: minutes('OPS_SESSION_IDLE_MIN', 30, 60_000), maxMs: minutes('OPS_SESSION_MAX_H', 12, 3600_000) }
    const ops = await createOps({ config: loadConfig(), face: 'host', log, schedule: true, backupSchedule: true, errorIngest: true })
    let server
    try {
      const { startHostServer } = await import('./server')
      server = await startHostServer({
        ops,
        rendererDir: rendererDir(),
        port,
        apiToken: process.env.OPS_API_TOKEN,
        controlDir: ops.config.dataDir,
        auth: sessions,
      })
    } catch (e) {
      await ops.close()
      if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE')
        throw new OpsError('port_in_use', `Port ${port} is already in use: another console may be running. Use --port to choose another.`)
      throw e
    }
    process.stdout.write(
      `ExamForge Ops ${version} is serving on ${server.origin}${ops.sandbox.active ? ' (sandbox)' : ''}, ready in ${Date.now() - started} ms.\n` +
        `Open this one-time link in a browser (it lasts 5 minutes; "examforge-ops open" prints another):\n\n  ${server.launchUrl()}\n\n` +
        (ops.errors.ingestUrl() ? `Error ingest (SDKs' DSN: "examforge-ops errors dsn") listens on ${ops.errors.ingestUrl()}.\n` : '') +
        (process.env.OPS_API_TOKEN ? 'Programs may read through /api/call/<method> with "Authorization: Bearer $OPS_API_TOKEN". ' : '') +
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
  },
})

const health = defineCommand({
  name: 'health',
  synopsis: '[--json] [--service NAME]',
  description: `Run every health check once. Exit 0 all healthy, 1 any degraded, 2 any unhealthy.
    --service narrows the checks (and the exit code) to one of ${serviceId.options.join(', ')}.`,
  options: { json: { type: 'boolean' }, service: { type: 'string' } },
  run: async ({ values }) => {
    const service = values.service !== undefined ? serviceId.safeParse(values.service) : null
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
  },
})

const metrics = defineCommand({
  name: 'metrics',
  synopsis: '[--json]',
  description: 'The newest value of every metric series (host, database, Redis, web app), with units.',
  options: { json: { type: 'boolean' } },
  run: ({ values }) =>
    withOps(async (ops) => {
      // Rates need two samples: collect, wait a second, collect again.
      await ops.metrics.collect()
      await new Promise((r) => setTimeout(r, 1000))
      await ops.metrics.collect()
      const latest = ops.metrics.latest()
      const notConfigured = ops.metrics.unconfigured().map((u) => u.message)
      process.stdout.write(values.json ? JSON.stringify(latest, null, 2) + '\n' : renderMetrics(latest, notConfigured) + '\n')
      return 0
    }),
})

const versionCommand = defineCommand({
  name: 'version',
  synopsis: '',
  description: 'Print the version.',
  options: {},
  run: async () => {
    process.stdout.write(version + '\n')
    return 0
  },
})

const help = defineCommand({
  name: 'help',
  synopsis: '[<command>]',
  description: 'This overview, or the usage of one command ("examforge-ops help backups list").',
  options: {},
  args: [{ name: '<command>', optional: true, variadic: true }],
  run: async ({ args }) => {
    if (!args.length) {
      process.stdout.write(overview() + '\n')
      return 0
    }
    const c = commands.find((x) => x.name === args.join(' '))
    if (!c) throw new OpsError('bad_argument', `There is no command "${args.join(' ')}".`)
    process.stdout.write(commandHelp(c))
    return 0
  },
})

/**
 * Every command, in the order the overview lists them. A command of several words ("backups list") is
 * found by its words; a new capability adds its entries here (e.g. `...alertCommands`).
 */
export const commands: CliCommand[] = [
  serve,
  open,
  health,
  ...backupCommands,
  ...alertsCommands,
  ...errorsCommands,
  ...incidentsCommands,
  metrics,
  restore,
  restoreTest,
  seed,
  sandboxUrl,
  versionCommand,
  help,
]

function overview(): string {
  const entries = commands.map((c) => {
    const line = `  ${c.name}${c.synopsis ? ` ${c.synopsis}` : ''}`
    const text = c.description
      .split('\n')
      .map((l) => `${' '.repeat(28)}${l.trim()}`)
      .join('\n')
    return `${line}\n${text}`
  })
  return `examforge-ops ${version}: the ExamForge operations console

Usage: examforge-ops <command> [options]     (examforge-ops <command> --help for one command)

Commands:
${entries.join('\n')}

Configuration comes from the environment (DATABASE_URL, REDIS_URL, BACKUP_S3_BUCKET, AWS_REGION,
S3_ENDPOINT, LOCAL_BACKUP_PATH, STRIPE_SECRET_KEY, APP_URL, ...) or a 0600 file named by
OPS_SECRETS_FILE. With no DATABASE_URL, the sandbox database is used: a command attaches to the sandbox
a running "serve" (or the desktop app) started, or starts one for itself.
Destructive commands (restore, restore-test, backups prune --yes, backups drop-slot, seed) need an administrator
when ADMIN_EMAILS is set: the CLI acts as your OS user, mapped to an e-mail by OPS_OS_USERS (osuser=email).
Exit codes: 0 success, 1 failed or not found, 2 unhealthy (health), 64 bad arguments, 70 internal error.
Scheduled backups and restore tests run in "serve" (BACKUP_FULL_EVERY, BACKUP_INCREMENTAL_EVERY, RESTORE_TEST_EVERY).
The host also serves /metrics in Prometheus' text format (Authorization: Bearer $OPS_API_TOKEN).`
}

/** The command named by the first words of argv (the longest name that matches), and the rest. */
export function findCommand(argv: string[]): { command: CliCommand; rest: string[] } | null {
  let best: { command: CliCommand; rest: string[] } | null = null
  for (const c of commands) {
    const words = c.name.split(' ')
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.command.name.split(' ').length))
      best = { command: c, rest: argv.slice(words.length) }
  }
  return best
}

/** Run the CLI; every outcome is an exit code (see cli-command.ts), never a thrown error. */
export async function main(argv: string[]): Promise<number> {
  const [first] = argv
  if (first === undefined || first === '--help' || first === '-h') argv = ['help']
  if (first === '--version') argv = ['version']
  const found = findCommand(argv)
  let command: CliCommand | undefined
  try {
    if (!found) {
      // A group's word alone ("backups", "sandbox"): its sub-commands.
      const group = commands.filter((c) => c.name.startsWith(`${argv[0]} `))
      if (group.length) {
        const list = group.map((c) => `  ${usageLine(c)}`).join('\n')
        const sub = argv[1]
        const asked = sub === undefined || sub === '--help' || sub === '-h'
        const out = `${asked || sub.startsWith('-') ? '' : `Unknown command "${argv[0]} ${sub}".\n`}Usage:\n${list}\n`
        if (asked && sub !== undefined) {
          process.stdout.write(out)
          return EXIT.ok
        }
        process.stderr.write(out)
        return EXIT.usage
      }
      process.stderr.write(
        `Unknown command "${argv[0]}". Commands: ${commands.map((c) => c.name).join(', ')}.\nSee "examforge-ops help".\n`,
      )
      return EXIT.usage
    }
    command = found.command
    if (wantsHelp(found.rest)) {
      process.stdout.write(commandHelp(command))
      return EXIT.ok
    }
    const parsed = parseCommandArgs(command, found.rest)
    return await command.run(parsed)
  } catch (e) {
    return exitFor(e, command)
  }
}

/** An error as the operator sees it: bad arguments 64 (with the usage line), explained failures 1, bugs 70. */
function exitFor(e: unknown, command: CliCommand | undefined): number {
  if (e instanceof OpsError || (e as Error)?.name === 'OpsError') {
    const err = e as OpsError
    if (err.code === 'bad_argument') {
      process.stderr.write(
        `examforge-ops: ${err.message}\nUsage: ${command ? usageLine(command) : 'examforge-ops <command> [options]'}\n` +
          `See "examforge-ops ${command ? `${command.name} ` : ''}--help".\n`,
      )
      return EXIT.usage
    }
    process.stderr.write(`examforge-ops: ${err.message}\n`)
    return EXIT.failed
  }
  const err = e as Error
  process.stderr.write(
    `examforge-ops: internal error: ${err?.message ?? String(e)}\n` +
      (process.env.OPS_DEBUG
        ? `${err?.stack ?? ''}\n`
        : 'This is a bug in ExamForge Ops; run again with OPS_DEBUG=1 to see where it happened.\n'),
  )
  return EXIT.internal
}

// Run when executed (node out/host/cli.js); not when imported (bin/examforge-ops.cjs, scripts, tests).
if (typeof require !== 'undefined' && require.main === module) {
  void main(process.argv.slice(2)).then((code) => exitWhenWritten(code))
}

/**
 * Exit once stdout and stderr have taken everything written: process.exit() alone cuts output still queued
 * for a pipe (a thousand sets' `backups list --json` is more than a pipe holds).
 */
export function exitWhenWritten(code: number): void {
  let left = 2
  const done = () => {
    if (--left === 0) process.exit(code)
  }
  process.stdout.write('', done)
  process.stderr.write('', done)
}
