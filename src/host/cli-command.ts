/**
 * One command of `examforge-ops`, and how every command's arguments are read. A command is one entry:
 * the words that name it, its options (declared once, for Node's util.parseArgs, strict), its usage text
 * and its run function. The dispatcher (cli.ts) parses every command the same way, so every command has
 * --help (its usage, exit 0, nothing run), and an unknown flag, a flag without its value or a missing
 * argument exits 64 with the command's usage line, never a stack trace.
 *
 * Exit codes: 0 success, 1 failed or not found (an OpsError explained to the operator), 2 unhealthy
 * (health only), 64 bad arguments, 70 internal error (a bug: anything that is not an OpsError).
 *
 * Adding a command: write `defineCommand({...})` in its own file (like cli-restore.ts) and add it to
 * the table in cli.ts; the overview, --help and the test that walks every command pick it up.
 */
import { parseArgs } from 'node:util'
import { describeIdentity, osIdentity, requireAdmin } from '../core/auth/identity'
import { loadConfig } from '../core/config/config'
import { createLogger } from '../core/log/logger'
import { createOps, type Ops } from '../core/ops'
import { OpsError } from '../shared/contract'
import type { JobInfo } from '../shared/domain'

export const EXIT = { ok: 0, failed: 1, unhealthy: 2, usage: 64, internal: 70 } as const

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean }
export type OptionsSpec = Record<string, OptionSpec>
export type Values<O extends OptionsSpec> = { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string }

export interface CliCommand<O extends OptionsSpec = OptionsSpec> {
  /** The words that name it: "health", "backups list". */
  name: string
  /** What follows the name in its usage line: "<set-id> [--json]". */
  synopsis: string
  /** What it does, in a sentence or two (wrapped by hand; shown in the overview and with --help). */
  description: string
  /** Its options, for util.parseArgs (strict). --help is added to every command. */
  options: O
  /** Positional arguments after the name, in order; those not marked optional are required; a variadic last one takes the rest. */
  args?: { name: string; optional?: boolean; variadic?: boolean }[]
  run(a: { values: Values<O>; args: string[] }): Promise<number>
}

/** Keeps each command's option types attached to its run function. */
export function defineCommand<O extends OptionsSpec>(c: CliCommand<O>): CliCommand {
  return c as unknown as CliCommand
}

export const usageLine = (c: Pick<CliCommand, 'name' | 'synopsis'>) => `examforge-ops ${c.name}${c.synopsis ? ` ${c.synopsis}` : ''}`

/** A command's --help text. */
export function commandHelp(c: CliCommand): string {
  return `Usage: ${usageLine(c)}\n\n${c.description
    .split('\n')
    .map((l) => `  ${l.trim()}`)
    .join('\n')}\n`
}

/** Bad arguments: exit 64 with the message and the command's usage line. */
export class UsageError extends OpsError {
  constructor(message: string) {
    super('bad_argument', message)
  }
}

/** Parse a command's arguments (strict); throws UsageError for anything it cannot accept. */
export function parseCommandArgs(c: CliCommand, argv: string[]): { values: Values<OptionsSpec>; args: string[] } {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: c.options, strict: true, allowPositionals: true })
  } catch (e) {
    // Node's messages name the flag ("Unknown option '--bogus'", "Option '--scale <value>' argument missing"):
    // keep them, without Node's advice to use "--" (it means nothing here).
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '.').replace(/[\s.]*$/, '.')
    throw new UsageError(msg)
  }
  const spec = c.args ?? []
  const missing = spec.filter((a, i) => !a.optional && parsed.positionals[i] === undefined)
  if (missing.length) throw new UsageError(`${missing.map((a) => a.name).join(' and ')} is missing.`)
  if (parsed.positionals.length > spec.length && !spec.at(-1)?.variadic)
    throw new UsageError(`Unexpected argument "${parsed.positionals[spec.length]}".`)
  // Each command's run function reads the values through the types of its own options (defineCommand).
  return { values: parsed.values as Values<OptionsSpec>, args: parsed.positionals }
}

/** --help or -h anywhere among a command's arguments (before "--"). */
/** Parsed options back as arguments, for a command that parses its own (alerts, errors) behind a table entry. */
export function toArgv(values: Record<string, unknown>): string[] {
  const out: string[] = []
  for (const [k, v] of Object.entries(values)) {
    if (v === true) out.push(`--${k}`)
    else if (typeof v === 'string') out.push(`--${k}`, v)
    else if (Array.isArray(v)) for (const x of v) out.push(`--${k}`, String(x))
  }
  return out
}

export function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--')
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h')
}

/** The CLI acts as the OS user running it (an administrator when OPS_OS_USERS maps it to one of ADMIN_EMAILS). */
export const me = osIdentity('cli')
export const who = (ops: Ops) => describeIdentity(ops.config, me)
/** Refuse before anything starts (no database opened, no sandbox started) unless the OS user is an administrator. */
export const mustBeAdmin = (action: string) => requireAdmin(loadConfig(), me, action)

/** Open the core for one command, and close it after. */
export async function withOps<T>(fn: (ops: Ops) => Promise<T>, sandboxActivity = false, sandbox: 'auto' | 'off' = 'auto'): Promise<T> {
  const log = createLogger({ level: (process.env.OPS_LOG_LEVEL as 'info') ?? 'warn' })
  const ops = await createOps({ config: loadConfig(), face: 'host', log, schedule: false, sandboxActivity, sandbox })
  try {
    return await fn(ops)
  } finally {
    await ops.close()
  }
}

/** Wait for a job, drawing its progress on a terminal; Ctrl+C cancels it cleanly. */
export async function followJob(ops: Ops, jobId: string, draw: boolean): Promise<JobInfo> {
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
