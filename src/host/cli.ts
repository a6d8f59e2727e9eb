import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { describeIdentity, osIdentity, requireAdmin } from '../core/auth/identity'
import { loadConfig } from '../core/config/config'
import { createLogger } from '../core/log/logger'
import { createOps, type Ops } from '../core/ops'
import { version } from '../core/version'
import { OpsError } from '../shared/contract'
import { serviceId, type HealthSnapshot } from '../shared/domain'
import { healthExitCode, renderHealth, renderMetrics, renderSets } from './format'
import { summarise } from '../core/backup/summary'
import { formatBytes } from '../core/health/probe'
import { restoreCommand, restoreTestCommand, restoreUsage } from './cli-restore'
import { openCommand, openUsage } from './cli-open'
import { errorsCommand, errorsUsage } from './cli-errors'

/** The CLI acts as the OS user running it (an administrator when OPS_OS_USERS maps it to one of ADMIN_EMAILS). */
const me = osIdentity('cli')
const who = (ops: Ops) => describeIdentity(ops.config, me)
/** Refuse before anything starts (no database opened, no sandbox started) unless the OS user is an administrator. */
const mustBeAdmin = (action: string) => requireAdmin(loadConfig(), me, action)

const usage = () => `examforge-ops ${version}: the ExamForge operations console

Usage: examforge-ops <command> [options]

Commands:
  serve [--port N]          Start the headless host on 127.0.0.1 (browser UI, agent schedules) and print the URL to open.
${openUsage}
  health [--json] [--service NAME]
                            Run every health check once. Exit 0 all healthy, 1 any degraded, 2 any unhealthy.
  backup full|incremental [--json]
                            A consistent full backup to LOCAL_BACKUP_PATH or BACKUP_S3_BUCKET, or every change since the
                            last set (a full instead when there is no chain yet or the schema changed; it says so).
  backups list [--json]     The catalog, read from the manifests in storage (works while the database is down).
  backups verify <set-id> [--json]
                            Re-read every object of a set: size, SHA-256, decryption, decompression, row digests.
  backups prune [--dry-run] [--yes] [--json]
                            Retention (BACKUP_RETAIN_DAYS, BACKUP_KEEP_FULLS): lists what goes; --yes deletes it.
                            A set another kept set depends on is never deleted.
  backups prerequisites [--json]
                            What incremental backups need (wal_level, privilege, publication, replica identities).
  backups drop-slot <slot> --yes
                            Drop the chain's replication slot (its chain ends; the next backup is a full).
  metrics [--json]          The newest value of every metric series (host, database, Redis, web app), with units.
${restoreUsage}
${errorsUsage}
  seed --scale N            Regenerate the sandbox data (1 ≈ 10 MB, 200 ≈ 2 GB). Sandbox only.
  help                      This text.

Configuration comes from the environment (DATABASE_URL, REDIS_URL, BACKUP_S3_BUCKET, AWS_REGION,
S3_ENDPOINT, LOCAL_BACKUP_PATH, STRIPE_SECRET_KEY, APP_URL, ...) or a 0600 file named by
OPS_SECRETS_FILE. With no DATABASE_URL, the embedded sandbox database is used.
Destructive commands (restore, restore-test, backups prune --yes, backups drop-slot, seed) need an administrator
when ADMIN_EMAILS is set: the CLI acts as your OS user, mapped to an e-mail by OPS_OS_USERS (osuser=email).
Exit codes: 0 success, 1 failed (or a check found a problem), 2 unhealthy, 64 bad arguments, 70 internal error.
Scheduled backups and restore tests run in "serve" (BACKUP_FULL_EVERY, BACKUP_INCREMENTAL_EVERY, RESTORE_TEST_EVERY).
The host also serves /metrics in Prometheus' text format (Authorization: Bearer $OPS_API_TOKEN).`

function rendererDir(): string {
  return process.env.OPS_RENDERER_DIR ?? join(__dirname, '..', 'renderer')
}

async function withOps<T>(fn: (ops: Ops) => Promise<T>, sandboxActivity = false, sandbox: 'auto' | 'off' = 'auto'): Promise<T> {
  const log = createLogger({ level: (process.env.OPS_LOG_LEVEL as 'info') ?? 'warn' })
  const ops = await createOps({ config: loadConfig(), face: 'host', log, schedule: false, sandboxActivity, sandbox })
  try {
    return await fn(ops)
  } finally {
    await ops.close()
  }
}

/** Wait for a job, drawing its progress on a terminal; Ctrl+C cancels it cleanly. */
async function followJob(ops: Ops, jobId: string, draw: boolean) {
  const tty = draw && process.stderr.isTTY
  const off = ops.events.on('job.progress', (p) => {
    if (p.jobId !== jobId || !tty) return
    const pct = p.total ? ` ${Math.floor((100 * p.done) / p.total)}%` : ''
    process.stderr.write(`\r\x1b[K${p.phase}${pct} ${p.message ?? ''}${p.etaS != null ? ` ETA ${p.etaS}s` : ''}`)
  })
  const cancel = () => {
    process.stderr.write('\nCancelling...\n')
    ops.jobs.cancel(jobId)
  }
  process.once('SIGINT', cancel)
  try {
    return await ops.jobs.wait(jobId)
  } finally {
    off()
    process.off('SIGINT', cancel)
    if (tty) process.stderr.write('\r\x1b[K')
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv
  switch (command) {
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage() + '\n')
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
    case 'backup': {
      const { values, positionals } = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, allowPositionals: true })
      const type = positionals[0]
      if (type !== 'full' && type !== 'incremental')
        throw new OpsError('bad_argument', 'Usage: examforge-ops backup full|incremental [--json]')
      return withOps(async (ops) => {
        const { jobId } = type === 'full' ? ops.backups.startFull(who(ops)) : ops.backups.startIncremental(who(ops))
        if (!values.json) process.stderr.write(`Backing up (${type}) to ${ops.backups.storage().location}\n`)
        const info = await followJob(ops, jobId, !values.json)
        const ok = info.state === 'succeeded'
        const r = info.result as { setId: string; type: string; note: string | null } | undefined
        if (values.json) process.stdout.write(JSON.stringify({ ok, ...info }, null, 2) + '\n')
        else if (ok)
          process.stdout.write(
            `Backed up (${r!.type}) as ${r!.setId}: ${JSON.stringify(info.result)}\n${r!.note ? `Note: ${r!.note}\n` : ''}`,
          )
        else process.stderr.write(`Backup ${info.state}: ${info.error?.message}\n`)
        return ok ? 0 : 1
      })
    }
    case 'backups': {
      // Sub-commands parse their own flags; here only the sub-command and --json are read.
      const { values, positionals } = parseArgs({
        args: rest,
        options: { json: { type: 'boolean' } },
        allowPositionals: true,
        strict: false,
      })
      const [sub, id] = positionals
      if (sub === 'list')
        return withOps(
          async (ops) => {
            const proven = await ops.restores.proven()
            const catalog = await ops.backups.list()
            const orphans = await ops.backups.orphanedSafety(catalog)
            const sets = catalog.map((s) => summarise(s, proven.get(s.setId) ?? null, orphans.has(s.setId)))
            process.stdout.write(
              values.json
                ? JSON.stringify({ location: ops.backups.storage().location, sets }, null, 2) + '\n'
                : renderSets(ops.backups.storage().location, sets) + '\n',
            )
            return 0
          },
          false,
          'off',
        )
      if (sub === 'verify') {
        if (!id) throw new OpsError('bad_argument', 'Usage: examforge-ops backups verify <set-id> [--json]')
        return withOps(
          async (ops) => {
            const { jobId } = ops.backups.startVerify(id, who(ops))
            const info = await followJob(ops, jobId, !values.json)
            const report = info.result as { ok: boolean; objects: { key: string; ok: boolean; problem: string | null }[] } | undefined
            if (values.json) process.stdout.write(JSON.stringify(report ?? { ok: false, error: info.error }, null, 2) + '\n')
            else if (report) {
              for (const o of report.objects) if (!o.ok) process.stdout.write(`BAD  ${o.key}: ${o.problem}\n`)
              process.stdout.write(
                report.ok
                  ? `OK: all ${report.objects.length} objects of ${id} verified.\n`
                  : `FAILED: ${report.objects.filter((o) => !o.ok).length} of ${report.objects.length} objects are bad.\n`,
              )
            } else process.stderr.write(`Verify ${info.state}: ${info.error?.message}\n`)
            return report?.ok ? 0 : 1
          },
          false,
          'off',
        )
      }
      if (sub === 'prerequisites')
        return withOps(async (ops) => {
          const p = await ops.backups.prerequisites()
          const slots = await ops.backups.slots()
          if (values.json) process.stdout.write(JSON.stringify({ ...p, slots }, null, 2) + '\n')
          else {
            process.stdout.write(
              p.ok
                ? 'Incremental backups are possible.\n'
                : `Incremental backups are not possible yet:\n${p.problems.map((x) => `- ${x}`).join('\n')}\n`,
            )
            for (const s of slots)
              process.stdout.write(`slot ${s.name}: ${s.walStatus}, retains ${formatBytes(s.retainedBytes)}${s.active ? ', active' : ''}\n`)
          }
          return p.ok ? 0 : 1
        })
      if (sub === 'prune') {
        const { values: v2 } = parseArgs({
          args: rest,
          options: { yes: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
          allowPositionals: true,
        })
        const apply = v2.yes && !v2['dry-run']
        if (apply) mustBeAdmin('Deleting backups (backups prune --yes)')
        return withOps(
          async (ops) => {
            const r = apply ? await ops.backups.prune('delete', who(ops)) : await ops.backups.retentionPlan()
            if (v2.json) process.stdout.write(JSON.stringify({ applied: !!apply, ...r }, null, 2) + '\n')
            else {
              const head = `Retention: keep ${r.policy.retainDays} days and the newest ${r.policy.keepFulls} full chain(s).`
              const list = r.delete.map((d) => `  ${d.setId}  ${formatBytes(d.bytes)}  ${d.reason}`).join('\n')
              process.stdout.write(
                `${head}\n${r.delete.length ? `${apply ? 'Deleted' : 'Would delete'} ${r.delete.length} set(s), ${formatBytes(r.bytesFreed)}:\n${list}` : 'Nothing to delete.'}\n` +
                  (!apply && r.delete.length ? 'Nothing was deleted: add --yes to delete these.\n' : ''),
              )
            }
            return 0
          },
          false,
          'off',
        )
      }
      if (sub === 'drop-slot') {
        const { values: v2, positionals: p2 } = parseArgs({
          args: rest,
          options: { yes: { type: 'boolean' }, json: { type: 'boolean' } },
          allowPositionals: true,
        })
        const name = p2[1]
        if (!name) throw new OpsError('bad_argument', 'Usage: examforge-ops backups drop-slot <slot-name> --yes')
        if (v2.yes) mustBeAdmin('Dropping a replication slot')
        return withOps(async (ops) => {
          const slot = (await ops.backups.slots()).find((s) => s.name === name)
          if (!slot) throw new OpsError('unknown_slot', `There is no slot "${name}" of ExamForge Ops in this database.`)
          if (!v2.yes) {
            process.stdout.write(
              `Would drop ${name} (retaining ${formatBytes(slot.retainedBytes)} of WAL). Its chain ends and the next backup is a full. Add --yes to do it.\n`,
            )
            return 1
          }
          await ops.backups.dropSlot(name, name, who(ops))
          process.stdout.write(`Dropped ${name}. The next backup will be a full one.\n`)
          return 0
        })
      }
      throw new OpsError(
        'bad_argument',
        'Usage: examforge-ops backups list|verify <set-id>|prune [--dry-run] [--yes]|prerequisites|drop-slot <slot> --yes [--json]',
      )
    }
    case 'metrics': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } } })
      return withOps(async (ops) => {
        // Rates need two samples: collect, wait a second, collect again.
        await ops.metrics.collect()
        await new Promise((r) => setTimeout(r, 1000))
        await ops.metrics.collect()
        const latest = ops.metrics.latest()
        const notConfigured = ops.metrics.unconfigured().map((u) => u.message)
        process.stdout.write(values.json ? JSON.stringify(latest, null, 2) + '\n' : renderMetrics(latest, notConfigured) + '\n')
        return 0
      })
    }
    case 'restore':
      return restoreCommand(rest, withOps, followJob, me, mustBeAdmin)
    case 'restore-test':
      return restoreTestCommand(rest, withOps, followJob, me, mustBeAdmin)
    case 'open':
      return openCommand(rest)
    case 'errors':
      return errorsCommand(rest, withOps)
    case 'seed': {
      const { values } = parseArgs({ args: rest, options: { scale: { type: 'string' }, json: { type: 'boolean' } } })
      const scale = Number(values.scale ?? '1')
      if (!Number.isFinite(scale) || scale <= 0) throw new OpsError('bad_argument', '--scale must be a positive number (1 ≈ 10 MB).')
      mustBeAdmin('Regenerating the sandbox data')
      return withOps(async (ops) => {
        if (!ops.sandbox.active) throw new OpsError('not_sandbox', 'seed only runs against the sandbox: unset DATABASE_URL to use it.')
        // A fresh sandbox seeds itself at its default scale first: wait for that, then seed the asked size.
        if (ops.sandbox.seedJobId) await ops.jobs.wait(ops.sandbox.seedJobId)
        const id = ops.seed(scale, who(ops))
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
      const minutes = (key: string, fallback: number, unit: number) => {
        const v = process.env[key] ? Number(process.env[key]) : fallback
        if (!Number.isFinite(v) || v <= 0)
          throw new OpsError('bad_setting', `${key} must be a positive number; it is "${process.env[key]}".`)
        return v * unit
      }
      const sessions = { idleMs: minutes('OPS_SESSION_IDLE_MIN', 30, 60_000), maxMs: minutes('OPS_SESSION_MAX_H', 12, 3600_000) }
      const ops = await createOps({ config: loadConfig(), face: 'host', log, schedule: true, backupSchedule: true, errorIngest: true })
      const port = Number(values.port ?? process.env.OPS_PORT ?? 7480)
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new OpsError('bad_argument', '--port must be a port number (0 picks a free one).')
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
    }
    default:
      process.stderr.write(`Unknown command "${command}".\n\n${usage()}\n`)
      return 64
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      const msg = e instanceof OpsError ? e.message : `Unexpected error: ${(e as Error)?.stack ?? String(e)}`
      process.stderr.write(`examforge-ops: ${msg}\n`)
      // An OpsError is a failure explained to the operator (1), or bad arguments (64); anything else is a bug (70).
      process.exit(e instanceof OpsError ? (e.code === 'bad_argument' ? 64 : 1) : 70)
    },
  )
}
