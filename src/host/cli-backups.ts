/**
 * The backup commands of `examforge-ops`: `backup full|incremental` and `backups list|verify|prune|
 * prerequisites|drop-slot`, each one entry of the command table (see cli-command.ts). Human output is
 * text for a person (local times with their zone, aligned columns); --json prints the data.
 */
import { summarise } from '../core/backup/summary'
import { OpsError } from '../shared/contract'
import { formatBytes, plural } from '../shared/format'
import { defineCommand, followJob, mustBeAdmin, who, withOps } from './cli-command'
import { changesText, renderSets } from './format'

const json = { json: { type: 'boolean' } } as const

const backup = defineCommand({
  name: 'backup',
  synopsis: 'full|incremental [--json]',
  description: `A consistent full backup to LOCAL_BACKUP_PATH or BACKUP_S3_BUCKET, or every change since the
    last set. A schema change the chain can carry (columns added or dropped, new tables with a key) goes into
    the incremental; any other makes it a full (also when there is no chain yet): the old chain then first keeps
    its changes up to the change; it says so. Slots of backups that did not finish are dropped first.`,
  options: json,
  args: [{ name: 'full|incremental' }],
  run: ({ values, args: [type] }) => {
    if (type !== 'full' && type !== 'incremental')
      throw new OpsError('bad_argument', `Unknown backup type "${type}": use "full" or "incremental".`)
    return withOps(async (ops) => {
      const { jobId } = type === 'full' ? ops.backups.startFull(who(ops)) : ops.backups.startIncremental(who(ops))
      if (!values.json) process.stderr.write(`Backing up (${type}) to ${ops.backups.storage().location}\n`)
      const info = await followJob(ops, jobId, !values.json)
      const ok = info.state === 'succeeded'
      const r = info.result as
        | {
            setId: string
            type: string
            note: string | null
            tables: number
            rows: number
            changes: { transactions: number; inserts: number; updates: number; deletes: number; truncates: number } | null
            storedBytes: number
            durationMs: number
          }
        | undefined
      if (values.json) process.stdout.write(JSON.stringify({ ok, ...info }, null, 2) + '\n')
      else if (ok && r) {
        const what =
          r.type === 'incremental' && r.changes ? changesText(r.changes) : `${plural(r.tables, 'table')}, ${plural(r.rows, 'row')}`
        process.stdout.write(
          `Backed up (${r.type}) as ${r.setId}: ${what}, ${formatBytes(r.storedBytes)} stored, in ${(r.durationMs / 1000).toFixed(1)} s.\n` +
            (r.note ? `Note: ${r.note}\n` : ''),
        )
      } else process.stderr.write(`Backup ${info.state}: ${info.error?.message}\n`)
      return ok ? 0 : 1
    })
  },
})

const list = defineCommand({
  name: 'backups list',
  synopsis: '[--json]',
  description: 'The catalog, read from the manifests in storage (works while the database is down).',
  options: json,
  run: ({ values }) =>
    withOps(
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
    ),
})

const verify = defineCommand({
  name: 'backups verify',
  synopsis: '<set-id> [--json]',
  description: `Re-read every object of a set: size, SHA-256, decryption, decompression, row digests.
    Exit 1 when an object is bad or the set does not exist.`,
  options: json,
  args: [{ name: '<set-id>' }],
  run: ({ values, args: [id] }) =>
    withOps(
      async (ops) => {
        const { jobId } = ops.backups.startVerify(id, who(ops))
        const info = await followJob(ops, jobId, !values.json)
        const report = info.result as { ok: boolean; objects: { key: string; ok: boolean; problem: string | null }[] } | undefined
        if (values.json) process.stdout.write(JSON.stringify(report ?? { ok: false, error: info.error }, null, 2) + '\n')
        else if (report) {
          for (const o of report.objects) if (!o.ok) process.stdout.write(`BAD  ${o.key}: ${o.problem}\n`)
          const bad = report.objects.filter((o) => !o.ok).length
          process.stdout.write(
            report.ok
              ? `OK: all ${plural(report.objects.length, 'object')} of ${id} verified.\n`
              : `FAILED: ${bad} of ${plural(report.objects.length, 'object')} ${bad === 1 ? 'is' : 'are'} bad.\n`,
          )
        } else process.stderr.write(`Verify ${info.state}: ${info.error?.message}\n`)
        return report?.ok ? 0 : 1
      },
      false,
      'off',
    ),
})

const prune = defineCommand({
  name: 'backups prune',
  synopsis: '[--dry-run] [--yes] [--json]',
  description: `Retention (BACKUP_RETAIN_DAYS, BACKUP_KEEP_FULLS): lists what goes; --yes deletes it.
    A set another kept set depends on is never deleted.`,
  options: { yes: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, ...json },
  run: ({ values }) => {
    const apply = !!values.yes && !values['dry-run']
    if (apply) mustBeAdmin('Deleting backups (backups prune --yes)')
    return withOps(
      async (ops) => {
        const r = apply ? await ops.backups.prune('delete', who(ops)) : await ops.backups.retentionPlan()
        if (values.json) process.stdout.write(JSON.stringify({ applied: apply, ...r }, null, 2) + '\n')
        else {
          const head = `Retention: keep ${r.policy.retainDays} days and the newest ${r.policy.keepFulls} full chain(s).`
          const lines = r.delete.map((d) => `  ${d.setId}  ${formatBytes(d.bytes)}  ${d.reason}`).join('\n')
          process.stdout.write(
            `${head}\n${r.delete.length ? `${apply ? 'Deleted' : 'Would delete'} ${r.delete.length} set(s), ${formatBytes(r.bytesFreed)}:\n${lines}` : 'Nothing to delete.'}\n` +
              (!apply && r.delete.length ? 'Nothing was deleted: add --yes to delete these.\n' : ''),
          )
        }
        return 0
      },
      false,
      'off',
    )
  },
})

const prerequisites = defineCommand({
  name: 'backups prerequisites',
  synopsis: '[--json]',
  description: `What incremental backups need (wal_level, privilege, publication, replica identities).
    Exit 1 when something is missing.`,
  options: json,
  run: ({ values }) =>
    withOps(async (ops) => {
      const p = await ops.backups.prerequisites()
      const slots = await ops.backups.slots()
      if (values.json) process.stdout.write(JSON.stringify({ ...p, slots }, null, 2) + '\n')
      else {
        process.stdout.write(
          p.ok
            ? 'Incremental backups are possible.\n'
            : `Incremental backups are not possible yet:\n${p.problems.map((x) => `- ${x}`).join('\n')}\n`,
        )
        for (const n of p.notes) process.stdout.write(`Note: ${n}\n`)
        for (const s of slots)
          process.stdout.write(
            `slot ${s.name}: ${s.walStatus}, retains ${formatBytes(s.retainedBytes)}${s.active ? ', active' : ''}${s.orphan ? `, used by no backup chain (a backup that did not finish left it): drop it with "examforge-ops backups drop-slot ${s.name} --yes"` : ''}\n`,
          )
      }
      return p.ok ? 0 : 1
    }),
})

const dropSlot = defineCommand({
  name: 'backups drop-slot',
  synopsis: '<slot> [--yes]',
  description: `Drop the chain's replication slot (its chain ends; the next backup is a full). Without --yes it
    says what it would drop and exits 1; an unknown slot exits 1.`,
  options: { yes: { type: 'boolean' } },
  args: [{ name: '<slot>' }],
  run: ({ values, args: [name] }) => {
    if (values.yes) mustBeAdmin('Dropping a replication slot')
    return withOps(async (ops) => {
      const slot = (await ops.backups.slots()).find((s) => s.name === name)
      if (!slot) throw new OpsError('unknown_slot', `There is no slot "${name}" of ExamForge Ops in this database.`)
      if (!values.yes) {
        process.stdout.write(
          `Would drop ${name} (retaining ${formatBytes(slot.retainedBytes)} of WAL). Its chain ends and the next backup is a full. Add --yes to do it.\n`,
        )
        return 1
      }
      await ops.backups.dropSlot(name, name, who(ops))
      process.stdout.write(`Dropped ${name}. The next backup will be a full one.\n`)
      return 0
    })
  },
})

export const backupCommands = [backup, list, verify, prune, prerequisites, dropSlot]
