/**
 * `examforge-ops alerts ...`: what fires and is pending (read from the ops store, so it shows what a
 * running host or agent evaluates), the rules, a backtest over stored history, silences, acknowledgements
 * and a test notification per channel.
 */
import { parseArgs } from 'node:util'
import { OpsError } from '../shared/contract'
import { handlers } from '../core/handlers'
import type { Ops } from '../core/ops'
import type { Identity } from '../core/auth/identity'
import { parseDuration, formatDuration } from '../core/alerts/duration'
import { formatTime } from '../shared/format'
import { defineCommand, toArgv, me, mustBeAdmin, who, withOps, type CliCommand } from './cli-command'

export const alertsUsage = `  alerts list [--json]      Firing and pending alerts with their rule, value and since (from the ops store).
  alerts rules [--json]     The rules in force (defaults, the UI's, ALERT_RULES_FILE) and their state.
  alerts backtest <rule> [--days N] [--json]
                            Run a threshold rule over the stored history: when it would have fired, for how long.
  alerts silence --match k=v [--match k=v ...] [--for 2h] --reason TEXT
                            Silence matching alerts (administrators); "k!=v" and "k=~regex" match too.
  alerts ack <id>           Acknowledge a firing alert (rule or rule/fingerprint): no repeats, still listed.
  alerts test <channel>     Send a test notification to a channel (desktop, webhook, slack, discord, email).`

type WithOps = <T>(fn: (ops: Ops) => Promise<T>) => Promise<T>

const usageError = () => new OpsError('bad_argument', `Usage:\n${alertsUsage}`)

export async function alertsCommand(
  rest: string[],
  withOps: WithOps,
  me: Identity,
  who: (ops: Ops) => string,
  mustBeAdmin: (a: string) => void,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      json: { type: 'boolean' },
      days: { type: 'string' },
      match: { type: 'string', multiple: true },
      for: { type: 'string' },
      reason: { type: 'string' },
    },
    allowPositionals: true,
  })
  const [sub, arg] = positionals
  const ctx = (ops: Ops) => ({ identity: me, who: who(ops) })
  const out = (v: unknown, text: string) => process.stdout.write(values.json ? JSON.stringify(v, null, 2) + '\n' : text + '\n')
  switch (sub) {
    case 'list':
      return withOps(async (ops) => {
        const r = await handlers['alerts.list'](ops, {}, ctx(ops))
        const lines = r.alerts.map(
          (a) =>
            `${a.phase.toUpperCase().padEnd(8)} ${a.rule.padEnd(20)} ${(a.text ?? String(a.value ?? '')).padEnd(16)} since ${formatTime(a.since)}  ${a.id}` +
            `${a.ackedBy ? `  (acknowledged by ${a.ackedBy})` : ''}${a.silencedBy ? '  (silenced)' : ''}`,
        )
        out(r, lines.length ? lines.join('\n') : 'Nothing is firing or pending.')
        return r.alerts.some((a) => a.phase === 'firing' && !a.silencedBy) ? 1 : 0
      })
    case 'rules':
      return withOps(async (ops) => {
        const r = await handlers['alerts.rules'](ops, {}, ctx(ops))
        out(
          r,
          r.rules
            .map(
              (x) =>
                `${x.name.padEnd(20)} ${x.kind.padEnd(13)} ${x.enabled ? '' : '(off) '}${x.origin.padEnd(8)} ${x.firing} firing, ${x.pending} pending` +
                `${x.problem ? `  — ${x.problem}` : ''}`,
            )
            .join('\n') + (r.channels.length ? `\nChannels: ${r.channels.map((c) => c.name).join(', ')}` : '\nNo channels configured.'),
        )
        return 0
      })
    case 'backtest': {
      if (!arg) throw usageError()
      const days = Number(values.days ?? '7')
      if (!Number.isFinite(days) || days <= 0 || days > 90)
        throw new OpsError('bad_argument', '--days must be a number of days from 1 to 90.')
      return withOps(async (ops) => {
        const r = await handlers['alerts.backtest'](ops, { rule: arg, days }, ctx(ops))
        const text = r
          .map((s) => {
            const eps = s.result.episodes.map(
              (e) => `  fired ${formatTime(e.from)} for ${e.to ? formatDuration(e.to - e.from) : 'until now'} (peak ${e.peak ?? '-'})`,
            )
            return `${s.series}: ${s.result.points} points, fired ${s.result.episodes.length} time(s), ${formatDuration(s.result.firingMs)} in all\n${eps.join('\n')}`
          })
          .join('\n')
        out(r, text)
        return 0
      })
    }
    case 'silence': {
      if (!values.match?.length || !values.reason)
        throw new OpsError('bad_argument', 'alerts silence needs --match k=v (one or more) and --reason "why".')
      const matchers = values.match.map((m) => {
        const x = /^([A-Za-z_][A-Za-z0-9_]*)(=~|!=|=)(.*)$/.exec(m)
        if (!x) throw new OpsError('bad_argument', `--match ${m} is not a matcher: write name=value, name!=value or name=~regex.`)
        return { name: x[1], op: x[2] as '=' | '!=' | '=~', value: x[3] }
      })
      const forMs = parseDuration(values.for ?? '2h')
      if (!forMs) throw new OpsError('bad_argument', `--for must be a duration such as 30m or 2h; it is "${values.for}".`)
      mustBeAdmin('Silencing alerts')
      return withOps(async (ops) => {
        const s = await handlers['alerts.silence'](ops, { matchers, endsAt: Date.now() + forMs, reason: values.reason! }, ctx(ops))
        out(s, `Silenced ${matchers.map((m) => `${m.name}${m.op}${m.value}`).join(', ')} until ${formatTime(s.endsAt)} (silence ${s.id}).`)
        return 0
      })
    }
    case 'ack':
      if (!arg) throw usageError()
      return withOps(async (ops) => {
        const r = await handlers['alerts.ack'](ops, { id: arg }, ctx(ops))
        out(r, `Acknowledged ${r.acknowledged} alert(s): no repeats; they stay listed until resolved.`)
        return 0
      })
    case 'test':
      if (!arg) throw usageError()
      return withOps(async (ops) => {
        const r = await handlers['alerts.test'](ops, { channel: arg }, ctx(ops))
        out(r, r.ok ? `Sent a test notification to ${arg} (${r.attempts} attempt(s)).` : `Not delivered: ${r.error}.`)
        return r.ok ? 0 : 1
      })
    default:
      throw usageError()
  }
}

const sub = (
  name: string,
  synopsis: string,
  description: string,
  options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>,
  args: { name: string }[] = [],
): CliCommand =>
  defineCommand({
    name: `alerts ${name}`,
    synopsis,
    description,
    options,
    args,
    run: ({ values, args: positional }) =>
      alertsCommand([name, ...positional, ...toArgv(values as Record<string, unknown>)], withOps, me, who, mustBeAdmin),
  })

const json = { json: { type: 'boolean' as const } }

/** The alerts commands, one table entry each (cli.ts spreads them into its table). */
export const alertsCommands: CliCommand[] = [
  sub('list', '[--json]', 'Firing and pending alerts with their rule, value and since (from the ops store).', json),
  sub('rules', '[--json]', "The rules in force (defaults, the UI's, ALERT_RULES_FILE) and their state.", json),
  sub(
    'backtest',
    '<rule> [--days N] [--json]',
    'Run a threshold rule over the stored history: when it would have fired, for how long.',
    { ...json, days: { type: 'string' } },
    [{ name: '<rule>' }],
  ),
  sub(
    'silence',
    '--match k=v [--match k=v ...] [--for 2h] --reason TEXT',
    'Silence matching alerts (administrators); "k!=v" and "k=~regex" match too.',
    { match: { type: 'string', multiple: true }, for: { type: 'string' }, reason: { type: 'string' }, ...json },
  ),
  sub('ack', '<id>', 'Acknowledge a firing alert (rule or rule/fingerprint): no repeats, still listed.', json, [{ name: '<id>' }]),
  sub('test', '<channel>', 'Send a test notification to a channel (desktop, webhook, slack, discord, email).', json, [
    { name: '<channel>' },
  ]),
]
