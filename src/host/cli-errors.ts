/**
 * `examforge-ops errors …`: error groups from the ops store (list, show, resolve, ignore), the DSN for
 * SDKs, and source-map uploads for a release. These read and change the store directly; none starts
 * the ingest listener (only "serve" runs it).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { defineCommand, toArgv, withOps, type CliCommand } from './cli-command'
import type { Ops } from '../core/ops'
import { SourceMaps } from '../core/errors/sourcemaps'
import { OpsError } from '../shared/contract'
import { formatTime } from '../shared/format'
import { groupState, type ErrorGroup, type ErrorGroupDetail } from '../shared/errors'

export const errorsUsage = `  errors list [--json] [--state S] [--level L] [--release R] [--text T]
                            Error groups, newest first, each with its count of events (S: unresolved, regressed,
                            resolved, ignored).
  errors show <group> [--json]
                            One group: why its events were grouped, and its latest event (stack, breadcrumbs, request).
  errors resolve <group>... [--next-release]
  errors ignore <group>... [--for 24h | --count N]
                            Change groups' state; a resolved group that receives an event again is regressed.
  errors dsn [--upload-token]
                            The DSN to give SDKs (ERROR_INGEST_ADDR); --upload-token prints the source-map upload token.
  errors sourcemaps upload --release R <dir>
                            Keep every *.map under <dir> for release R; frames of that release are mapped at ingest.`

type WithOps = <T>(fn: (ops: Ops) => Promise<T>, sandboxActivity?: boolean, sandbox?: 'auto' | 'off') => Promise<T>

function renderList(groups: ErrorGroup[], total: number): string {
  if (!groups.length) return 'No error groups.'
  const lines = groups.map(
    (g) =>
      `${g.id}  ${g.state.padEnd(10)} ${g.level.padEnd(7)} ${String(g.count).padStart(7)} events  ${String(g.users).padStart(4)} users  ` +
      `last ${formatTime(g.lastSeen)}\n    ${g.title}${g.culprit ? `\n    in ${g.culprit}` : ''}`,
  )
  return `${lines.join('\n')}\n${groups.length} of ${total} group(s).`
}

function renderShow(d: ErrorGroupDetail): string {
  const g = d.group
  const out = [
    `${g.title}`,
    `group ${g.id}, ${g.state}, ${g.level}, ${g.count} events, ${g.users} users, first ${formatTime(g.firstSeen)}, last ${formatTime(g.lastSeen)}`,
    `releases: ${g.releases.join(', ') || '-'}   environments: ${g.environments.join(', ') || '-'}`,
    `why grouped (${d.why.method}): ${d.why.explanation}`,
  ]
  const ev = d.event
  if (ev) {
    out.push('', `latest event ${ev.eventId} at ${formatTime(ev.timestamp)}${ev.release ? `, release ${ev.release}` : ''}`)
    for (const e of ev.exceptions) {
      out.push(`${e.type}: ${e.value}`)
      for (const f of [...e.frames].reverse())
        out.push(
          `  ${f.inApp ? '*' : ' '} at ${f.function ?? '?'} (${f.filename ?? f.module ?? '?'}${f.lineno != null ? `:${f.lineno}` : ''})`,
        )
    }
    if (ev.message && !ev.exceptions.length) out.push(ev.message)
    if (ev.request) out.push(`request: ${ev.request.method ?? ''} ${ev.request.url ?? ''}`)
    if (ev.breadcrumbs.length)
      out.push(
        'breadcrumbs:',
        ...ev.breadcrumbs.map(
          (b) => `  ${b.timestamp ? formatTime(b.timestamp, { seconds: true }) : ''} [${b.category ?? ''}] ${b.message ?? ''}`,
        ),
      )
  }
  return out.join('\n')
}

/** Every file under dir ending in .map (not following links). */
function mapsUnder(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      const st = statSync(p)
      if (st.isDirectory()) walk(p)
      else if (name.endsWith('.map')) out.push(p)
    }
  }
  walk(dir)
  return out
}

const HOURS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 }

export async function errorsCommand(args: string[], withOps: WithOps): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      json: { type: 'boolean' },
      state: { type: 'string' },
      level: { type: 'string' },
      release: { type: 'string' },
      text: { type: 'string' },
      'next-release': { type: 'boolean' },
      for: { type: 'string' },
      count: { type: 'string' },
      'upload-token': { type: 'boolean' },
    },
    allowPositionals: true,
  })
  const [sub, ...rest] = positionals
  const print = (v: unknown, text: string) => process.stdout.write((values.json ? JSON.stringify(v, null, 2) : text) + '\n')
  switch (sub) {
    case 'list': {
      const state = values.state ? groupState.safeParse(values.state) : null
      if (state && !state.success) throw new OpsError('bad_argument', `--state must be one of ${groupState.options.join(', ')}.`)
      return withOps(async (ops) => {
        const r = await ops.errors.list({ state: state?.data, level: values.level, release: values.release, text: values.text, limit: 500 })
        print(r, renderList(r.groups, r.total))
        return 0
      }, false)
    }
    case 'show': {
      if (!rest[0]) throw new OpsError('bad_argument', 'Usage: examforge-ops errors show <group> [--json]')
      return withOps(async (ops) => {
        const d = await ops.errors.show(rest[0])
        print(d, renderShow(d))
        return 0
      })
    }
    case 'resolve':
    case 'ignore': {
      if (!rest.length) throw new OpsError('bad_argument', `Usage: examforge-ops errors ${sub} <group>...`)
      let untilMs: number | undefined
      if (values.for) {
        const m = /^(\d+)([mhd])$/.exec(values.for)
        if (!m) throw new OpsError('bad_argument', '--for takes a duration such as 30m, 24h or 7d.')
        untilMs = Date.now() + Number(m[1]) * HOURS[m[2]]
      }
      const untilCount = values.count ? Number(values.count) : undefined
      if (untilCount !== undefined && (!Number.isInteger(untilCount) || untilCount < 1))
        throw new OpsError('bad_argument', '--count takes a whole number of events, 1 or more.')
      return withOps(async (ops) => {
        const changed = await ops.errors.setState(
          rest,
          sub === 'resolve' ? { state: 'resolved', inNextRelease: values['next-release'] } : { state: 'ignored', untilMs, untilCount },
        )
        await ops.audit.record({ actor: 'cli', action: `errors.${sub}`, target: changed.join(','), outcome: 'succeeded' })
        print({ changed }, `${sub === 'resolve' ? 'Resolved' : 'Ignored'} ${changed.join(', ')}.`)
        return 0
      })
    }
    case 'dsn':
      return withOps(
        async (ops) => {
          if (values['upload-token']) print({ uploadToken: ops.errors.keys().uploadToken }, ops.errors.keys().uploadToken)
          else print({ dsn: ops.errors.dsn() }, ops.errors.dsn())
          return 0
        },
        false,
        'off',
      )
    case 'sourcemaps': {
      const dir = rest[1]
      if (rest[0] !== 'upload' || !dir || !values.release)
        throw new OpsError('bad_argument', 'Usage: examforge-ops errors sourcemaps upload --release R <dir>')
      let maps: string[]
      try {
        maps = mapsUnder(dir)
      } catch (e) {
        throw new OpsError('bad_argument', `Cannot read ${dir}: ${(e as Error).message}`)
      }
      if (!maps.length) throw new OpsError('bad_argument', `There are no .map files under ${dir}: build with source maps on, then upload.`)
      return withOps(
        async (ops) => {
          // Every map checked before any is kept: a bad one means none is uploaded.
          const texts = maps.map((m) => {
            const text = readFileSync(m, 'utf8')
            try {
              SourceMaps.check(relative(dir, m), text)
            } catch (e) {
              throw new OpsError('bad_sourcemap', `${(e as Error).message} Nothing was uploaded.`)
            }
            return text
          })
          maps.forEach((m, i) => ops.errors.sourceMaps.save(values.release!, m, texts[i]))
          print(
            { release: values.release, uploaded: maps.map((m) => relative(dir, m)) },
            `Uploaded ${maps.length} source map(s) for ${values.release}.`,
          )
          return 0
        },
        false,
        'off',
      )
    }
    default:
      throw new OpsError('bad_argument', `Usage:\n${errorsUsage}`)
  }
}

const entry = (
  name: string,
  synopsis: string,
  description: string,
  options: Record<string, { type: 'string' | 'boolean' }>,
  args: { name: string; variadic?: boolean }[] = [],
): CliCommand =>
  defineCommand({
    name: `errors ${name}`,
    synopsis,
    description,
    options,
    args,
    run: ({ values, args: positional }) =>
      errorsCommand([...name.split(' '), ...positional, ...toArgv(values as Record<string, unknown>)], withOps),
  })

const json = { json: { type: 'boolean' as const } }

/** The errors commands, one table entry each (cli.ts spreads them into its table). */
export const errorsCommands: CliCommand[] = [
  entry(
    'list',
    '[--json] [--state S] [--level L] [--release R] [--text T]',
    'Error groups, newest first, each with its count of events (S: unresolved, regressed, resolved, ignored).',
    { ...json, state: { type: 'string' }, level: { type: 'string' }, release: { type: 'string' }, text: { type: 'string' } },
  ),
  entry('show', '<group> [--json]', 'One group: why its events were grouped, and its latest event (stack, breadcrumbs, request).', json, [
    { name: '<group>' },
  ]),
  entry(
    'resolve',
    '<group>... [--next-release] [--json]',
    'Resolve groups (or only in the next release); a resolved group that receives an event again is regressed.',
    { ...json, 'next-release': { type: 'boolean' } },
    [{ name: '<group>', variadic: true }],
  ),
  entry(
    'ignore',
    '<group>... [--for 24h | --count N] [--json]',
    'Ignore groups, for a time or until N more events.',
    { ...json, for: { type: 'string' }, count: { type: 'string' } },
    [{ name: '<group>', variadic: true }],
  ),
  entry(
    'dsn',
    '[--upload-token] [--json]',
    'The DSN to give SDKs (ERROR_INGEST_ADDR); --upload-token prints the source-map upload token.',
    { ...json, 'upload-token': { type: 'boolean' } },
  ),
  entry(
    'sourcemaps upload',
    '--release R <dir> [--json]',
    'Keep every *.map under <dir> for release R; frames of that release are mapped at ingest.',
    { ...json, release: { type: 'string' } },
    [{ name: '<dir>' }],
  ),
]
