/**
 * The restore commands of `examforge-ops`: `restore` (plan, run, --undo) and `restore-test`, each one entry
 * of the command table (see cli-command.ts). A plan changes nothing; --yes runs it. Results are text for a
 * person; --json prints the plan and the job.
 */
import { describeIdentity } from '../core/auth/identity'
import { OpsError } from '../shared/contract'
import { readSecretsFile } from '../core/config/config'
import { registerSecret, urlSecrets } from '../core/log/scrub'
import { formatBytes, formatTime, plural } from '../shared/format'
import type { CheckReport, RestorePlan } from '../shared/restore'
import type { Ops } from '../core/ops'
import type { PlanInput } from '../core/restore/plan'
import { defineCommand, followJob, me, mustBeAdmin, UsageError, withOps } from './cli-command'

/** An ISO 8601 time that names its zone (Z or ±hh:mm): without one it would mean a different moment on each machine. */
const ZONED_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/i

/** --to-time as the moment it names; refused (exit 64) without a zone, with an example. */
export function parseToTime(v: string): { iso: string; zone: string } {
  const t = v.trim()
  // The operator's own date and time as the example, when they are a real one; a made-up one otherwise.
  const own = t.match(/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?/)?.[0]?.replace(' ', 'T')
  const example = `e.g. ${own && !Number.isNaN(Date.parse(`${own}Z`)) ? own : '2026-11-29T14:05:00'}Z for UTC, or with your offset like +01:00`
  if (!ZONED_TIME.test(t) || Number.isNaN(Date.parse(t.replace(' ', 'T')))) {
    if (!Number.isNaN(Date.parse(t)) && /^\d{4}-\d{2}-\d{2}/.test(t))
      throw new OpsError(
        'bad_argument',
        `--to-time "${v}" has no time zone, so it would mean a different moment on each machine: add one (${example}).`,
      )
    throw new OpsError('bad_argument', `--to-time "${v}" is not a time: use ISO 8601 with a zone (${example}).`)
  }
  const zone = /Z$/i.test(t) ? 'UTC' : `UTC${t.match(/[+-]\d{2}(:?\d{2})?$/)![0]}`
  return { iso: new Date(t.replace(' ', 'T')).toISOString(), zone }
}

export function renderPlan(p: RestorePlan, given?: { text: string; zone: string }): string {
  const lines = [
    // A point in time is shown in UTC, saying so, with the time as given and its zone beside it.
    p.point.kind === 'time' && p.point.time
      ? `Restore to ${p.point.time.replace('.000Z', 'Z')} UTC${given ? ` (given as ${given.text}, zone ${given.zone})` : ''}`
      : `Restore ${p.point.label}`,
    // A full (or safety) set restores its own moment: no range to show (its chain's later sets are not read).
    p.chain.from === p.chain.to
      ? `  as of ${formatTime(p.chain.from)}, the set's snapshot`
      : `  chain ${p.chain.fullSetId} covers ${formatTime(p.chain.from)} to ${formatTime(p.chain.to)}`,
    `  reads ${plural(p.sets.length, 'set')}, ${formatBytes(p.bytesToRead)}${p.transactions ? `; replays ${plural(p.transactions, 'transaction')}` : ''}`,
    `  into ${p.target.database} on ${p.target.server}: ${
      p.target.mode === 'replace'
        ? 'replaces the tables in one transaction, after a safety backup of them'
        : `${p.target.createsDatabase ? 'creates the database, then ' : ''}loads the schema and data into the empty database`
    }`,
    `  scope: ${p.wholeDatabase ? 'the whole database' : plural(p.tables.length, 'table')}; ${p.estimatedSeconds === null ? `time ${p.estimateBasis}` : `about ${p.estimatedSeconds} s (${p.estimateBasis})`}`,
    '',
    '  table                                      rows now     rows after',
    ...p.tables.map(
      (t) =>
        `  ${t.table.padEnd(40).slice(0, 40)} ${(t.rowsNow === null ? '-' : `${t.rowsNowExact ? '' : '~'}${t.rowsNow}`).padStart(10)} ${String(t.rowsAfter).padStart(14)}`,
    ),
    '',
    ...p.preflight.map((c) => `  ${c.status === 'ok' ? 'ok  ' : c.status === 'warning' ? 'warn' : 'FAIL'}  ${c.check}: ${c.detail}`),
    ...(p.related.length ? ['', `  Tied by foreign keys (not included): ${p.related.map((r) => `${r.table} (${r.why})`).join(', ')}`] : []),
  ]
  return lines.join('\n')
}

export function renderReport(r: CheckReport): string {
  const bad = [
    ...r.tables.filter((t) => !t.ok).map((t) => `  BAD  ${t.table}: ${t.problem}`),
    ...r.foreignKeys.filter((f) => !f.ok).map((f) => `  BAD  ${f.constraint}: ${f.note}`),
    ...r.sequences.filter((s) => !s.ok).map((s) => `  BAD  ${s.sequence}: ${s.value} < ${s.maxInUse}`),
  ]
  return [
    `Check ${r.ok ? 'passed' : 'FAILED'}: ${plural(r.tables.length, 'table')} (rows${r.tables.some((t) => t.digestExpected) ? ' and digests' : ''}), ${plural(r.foreignKeys.length, 'foreign key')}, ${plural(r.sequences.length, 'sequence')}.`,
    ...bad,
  ].join('\n')
}

/**
 * The target database URL: from --target, or from --target-secret KEY (a line KEY=url in the 0600 file
 * named by OPS_SECRETS_FILE, else the environment variable KEY), so its password stays off the command
 * line, where every local user can read it (/proc/<pid>/cmdline). A password on the command line is
 * used, with a warning that does not repeat it. Anything that is not a PostgreSQL URL is refused (exit 64).
 */
export function restoreTarget(values: { target?: string; 'target-secret'?: string }, env = process.env): string | undefined {
  if (values.target && values['target-secret']) throw new OpsError('bad_argument', 'Give either --target or --target-secret, not both.')
  let url = values.target
  if (values['target-secret']) {
    const key = values['target-secret']
    if (!/^[A-Z0-9_]{1,64}$/.test(key))
      throw new OpsError(
        'bad_argument',
        `--target-secret takes the name of a key (such as RESTORE_TARGET_URL), not "${key.slice(0, 20)}…".`,
      )
    url = (env.OPS_SECRETS_FILE ? readSecretsFile(env.OPS_SECRETS_FILE)[key] : undefined) ?? env[key]
    if (!url)
      throw new OpsError(
        'bad_argument',
        `--target-secret ${key}: there is no ${key} in ${env.OPS_SECRETS_FILE ? `the secrets file ${env.OPS_SECRETS_FILE}` : 'the environment (OPS_SECRETS_FILE is not set)'}. Add a line ${key}=postgres://user:password@host:5432/database to the 0600 file named by OPS_SECRETS_FILE.`,
      )
  }
  if (!url) return undefined
  registerSecret(url)
  const secrets = urlSecrets(url)
  for (const secret of secrets) registerSecret(secret)
  // A URL that does not parse is a mistake in the command, said without the URL (it may hold a password).
  let parsed: URL | null = null
  try {
    parsed = new URL(url)
  } catch {
    /* said below */
  }
  if (!parsed || !/^postgres(ql)?:$/.test(parsed.protocol))
    throw new UsageError(
      `${values['target-secret'] ? `The URL in ${values['target-secret']}` : '--target'} is not a PostgreSQL URL: write it as postgres://user@host:5432/database (special characters in the user or password percent-encoded, e.g. @ as %40).`,
    )
  if (values.target && secrets.length)
    process.stderr.write(
      'Warning: the --target URL holds a password, which other users of this machine can read in the process list while the restore runs. ' +
        'Leave it out and let PGPASSWORD or ~/.pgpass supply it, or pass --target-secret KEY with the URL in OPS_SECRETS_FILE.\n',
    )
  return url
}

/** --tables as a list; a value that names no table is refused rather than read as "the whole database". */
export function parseTables(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined
  const tables = v
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
  if (!tables.length)
    throw new OpsError(
      'bad_argument',
      `--tables "${v}" names no table: list them (e.g. --tables users,subscriptions), or leave --tables out to restore the whole database.`,
    )
  return tables
}

const restoreOptions = {
  backup: { type: 'string' },
  'to-time': { type: 'string' },
  tables: { type: 'string' },
  target: { type: 'string' },
  'target-secret': { type: 'string' },
  undo: { type: 'string' },
  yes: { type: 'boolean' },
  json: { type: 'boolean' },
  as: { type: 'string' },
  'allow-unauthenticated': { type: 'boolean' },
} as const

export const restore = defineCommand({
  name: 'restore',
  synopsis: `(--backup <set-id> | --to-time <ISO time with zone>) [--tables a,b] [--target <database url> | --target-secret KEY]
          [--yes] [--json] [--as <note>] [--allow-unauthenticated]
       examforge-ops restore --undo <restore-id> [--yes] [--json] [--as <note>]`,
  description: `Plan a restore and print it (changes nothing); with --yes, run it. --to-time needs a zone,
    e.g. 2026-11-29T14:05:00Z or 2026-11-29T15:05:00+01:00 (the plan shows it in UTC). Without --target it
    restores in place, atomically, after a safety backup. --target restores into another
    database (created when missing); leave its password out (other users can read a command
    line) and let PGPASSWORD or ~/.pgpass supply it, or name with --target-secret a KEY whose
    value is the URL in the 0600 file OPS_SECRETS_FILE (or in the environment).
    Needs an administrator when ADMIN_EMAILS is set (your OS user, mapped by OPS_OS_USERS);
    --as adds a name to the audit record, nothing more. With an encryption key configured,
    only sets whose manifest it authenticates are restored; --allow-unauthenticated accepts
    older or unencrypted ones anyway.
    --undo undoes an in-place restore by restoring the safety backup it took (refused once undone).
    Exit 1 when the plan finds a problem, the restore fails, or the set, table, time or restore id is not found.`,
  options: restoreOptions,
  run: async ({ values }) => {
    const operator = values.as ?? process.env.OPS_OPERATOR ?? null
    if (values.undo !== undefined) {
      if (values.backup || values['to-time'] || values.tables !== undefined || values.target || values['target-secret'])
        throw new OpsError(
          'bad_argument',
          '--undo takes only a restore id (and --yes, --json, --as): it restores that restore’s safety backup.',
        )
      return undo(values.undo, !!values.yes, !!values.json, operator)
    }
    if (!!values.backup === !!values['to-time'])
      throw new OpsError('bad_argument', 'Give either --backup <set-id> or --to-time <ISO time with zone, e.g. 2026-11-29T14:05:00Z>.')
    const toTime = values['to-time'] ? parseToTime(values['to-time']) : null
    const given = toTime ? { text: values['to-time']!.trim(), zone: toTime.zone } : undefined
    const tables = parseTables(values.tables)
    const target = restoreTarget(values)
    const input: PlanInput = {
      point: values.backup ? { setId: values.backup } : { time: toTime!.iso },
      tables,
      target: target ? { kind: 'url', url: target } : { kind: 'in-place' },
      ...(values['allow-unauthenticated'] ? { allowUnauthenticated: true } : {}),
    }
    if (values.yes) mustBeAdmin('Restoring')
    return withOps(async (ops) => {
      const plan = await ops.restores.plan(input)
      if (!values.yes) {
        process.stdout.write(
          values.json
            ? JSON.stringify({ applied: false, plan }, null, 2) + '\n'
            : `${renderPlan(plan, given)}\n\n${plan.ok ? 'Nothing was changed: add --yes to restore.' : 'Nothing was changed. The restore cannot start until the checks marked FAIL above pass.'}\n`,
        )
        return plan.ok ? 0 : 1
      }
      const { jobId } = await ops.restores.start(input, plan.target.database, { operator, actor: describeIdentity(ops.config, me) })
      if (!values.json) process.stderr.write(`${renderPlan(plan, given)}\n\nRestoring...\n`)
      return finish(ops, jobId, plan, !!values.json)
    })
  },
})

function undo(id: string, yes: boolean, json: boolean, operator: string | null): Promise<number> {
  if (!id.trim()) throw new OpsError('bad_argument', '--undo needs the id of a restore (the CLI printed it; the Restore page lists them).')
  if (yes) mustBeAdmin('Undoing a restore')
  return withOps(async (ops) => {
    const rec = await ops.restores.record(id)
    if (!rec) throw new OpsError('unknown_restore', `There is no restore "${id}": see the Restore page's history.`)
    if (rec.undoneBy)
      throw new OpsError(
        'already_undone',
        `Restore ${rec.id} was already undone by ${rec.undoneBy}: there is nothing left to undo. To return to what it put there, undo ${rec.undoneBy} instead.`,
      )
    if (!rec.safetySetId || rec.outcome !== 'succeeded')
      throw new OpsError(
        'no_undo',
        `Restore ${rec.id} ${rec.outcome === 'succeeded' ? 'replaced no tables (it has no safety backup)' : `did not succeed (${rec.outcome}): the database was left as it was`}, so there is nothing to undo.`,
      )
    if (!yes) {
      process.stdout.write(
        `Would undo restore ${rec.id} (${rec.point} into ${rec.target}) by restoring its safety backup ${rec.safetySetId}. Add --yes to do it.\n`,
      )
      return 0
    }
    const { jobId, plan } = await ops.restores.undo(rec.id, rec.plan?.target.database ?? '', {
      operator,
      actor: describeIdentity(ops.config, me),
    })
    return finish(ops, jobId, plan, json)
  })
}

async function finish(ops: Ops, jobId: string, plan: RestorePlan, json: boolean): Promise<number> {
  const info = await followJob(ops, jobId, !json)
  const ok = info.state === 'succeeded'
  const r = info.result as { restoreId: string; report: CheckReport; safetySetId: string | null; durationMs: number } | undefined
  if (json) process.stdout.write(JSON.stringify({ ok, plan, job: info }, null, 2) + '\n')
  else if (ok && r)
    process.stdout.write(
      `Restored ${plan.point.label} into ${plan.target.database} in ${(r.durationMs / 1000).toFixed(1)} s (restore ${r.restoreId}).\n${renderReport(r.report)}\n` +
        (r.safetySetId ? `Safety backup: ${r.safetySetId}. Undo with: examforge-ops restore --undo ${r.restoreId} --yes\n` : ''),
    )
  else process.stderr.write(`Restore ${info.state}: ${info.error?.message}\n`)
  return ok ? 0 : 1
}

export const restoreTest = defineCommand({
  name: 'restore-test',
  synopsis: '[--json] [--as <note>]',
  description: `Restore the newest backup chain into a scratch database, check it, drop it, and record
    the set as proven restorable. Exit 1 when it fails.`,
  options: { json: { type: 'boolean' }, as: { type: 'string' } },
  run: async ({ values }) => {
    mustBeAdmin('A restore test')
    return withOps(async (ops) => {
      const { jobId } = ops.restores.startTest({
        operator: values.as ?? process.env.OPS_OPERATOR ?? null,
        actor: describeIdentity(ops.config, me),
      })
      const info = await followJob(ops, jobId, !values.json)
      const ok = info.state === 'succeeded'
      const r = info.result as { report: CheckReport; durationMs: number; target: string } | undefined
      if (values.json) process.stdout.write(JSON.stringify({ ok, job: info }, null, 2) + '\n')
      else if (ok && r)
        process.stdout.write(
          `Restore test passed in ${(r.durationMs / 1000).toFixed(1)} s (scratch database dropped).\n${renderReport(r.report)}\n`,
        )
      else process.stderr.write(`Restore test ${info.state}: ${info.error?.message}\n`)
      return ok ? 0 : 1
    })
  },
})
