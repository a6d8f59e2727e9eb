/**
 * `examforge-ops incidents …`: list, declare, note, move the status of incidents, show one's timeline, and
 * export an incident (or a window with none declared) as PDF, HTML, Markdown or JSON. These read and change
 * the ops store directly, as the running host or agent sees it. An export is written atomically (a 0600
 * temporary file renamed into place), and never over an existing file unless --force.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, linkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { handlers, type HandlerContext } from '../core/handlers'
import type { Ops } from '../core/ops'
import { OpsError } from '../shared/contract'
import { formatTime } from '../shared/format'
import { exportFormat, incidentSeverity, incidentStatus, type IncidentReport, type IncidentView } from '../shared/incidents'
import { columns } from './format'
import { defineCommand, me, who, withOps, type CliCommand } from './cli-command'

const ctx = (ops: Ops): HandlerContext => ({ identity: me, who: who(ops) })

const ZONED = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/i
const UNIT: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * A moment given on the command line: ISO 8601 with its zone ("2026-11-30T14:05Z", "…+01:00"), "now", or
 * a time before now ("2h", "90m ago", "-1d"). Refused with an example otherwise (exit 64).
 */
export function parseMoment(v: string, flag: string, now = Date.now()): number {
  const t = v.trim()
  if (/^now$/i.test(t)) return now
  const rel = /^-?\s*(\d+(?:\.\d+)?)\s*([smhd])(?:\s+ago)?$/i.exec(t)
  if (rel) return now - Number(rel[1]) * UNIT[rel[2].toLowerCase()]
  if (ZONED.test(t) && !Number.isNaN(Date.parse(t.replace(' ', 'T')))) return Date.parse(t.replace(' ', 'T'))
  if (/^\d{4}-\d{2}-\d{2}/.test(t) && !Number.isNaN(Date.parse(t)))
    throw new OpsError(
      'bad_argument',
      `${flag} "${v}" has no time zone, so it would mean a different moment on each machine: add one (e.g. ${t.slice(0, 16).replace(' ', 'T')}Z for UTC, or an offset like +01:00).`,
    )
  throw new OpsError(
    'bad_argument',
    `${flag} "${v}" is not a time: give ISO 8601 with a zone (2026-11-30T14:05Z), "now", or how long ago (2h, 90m ago, 1d).`,
  )
}

/**
 * Write `data` to `out` atomically, 0600: a temporary file beside it, then linked into place (which fails if
 * `out` exists: nothing is overwritten silently) or, with force, renamed over it.
 */
export function writeExport(out: string, data: Buffer, force: boolean): string {
  const file = resolve(out)
  const dir = dirname(file)
  if (!existsSync(dir)) throw new OpsError('bad_argument', `The folder ${dir} does not exist: create it, or choose another --out.`)
  if (existsSync(file)) {
    if (statSync(file).isDirectory())
      throw new OpsError('bad_argument', `--out ${out} is a folder: give a file name, e.g. ${join(out, 'incident.pdf')}.`)
    if (!force) throw new OpsError('file_exists', `${out} already exists: choose another --out, or add --force to replace it.`)
  }
  const tmp = join(dir, `.${basename(file)}.${randomBytes(4).toString('hex')}.partial`)
  try {
    writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' })
    chmodSync(tmp, 0o600) // whatever the umask
    if (force) renameSync(tmp, file)
    else {
      try {
        linkSync(tmp, file)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST')
          throw new OpsError('file_exists', `${out} already exists: choose another --out, or add --force to replace it.`)
        throw e
      }
    }
  } finally {
    rmSync(tmp, { force: true })
  }
  return file
}

const ago = (ms: number) => {
  const m = Math.round(ms / 60_000)
  return m < 60 ? `${m} min` : m < 48 * 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${Math.floor(m / 1440)} d`
}

function renderList(list: IncidentView[]): string {
  if (!list.length) return 'No incidents.'
  const rows = list.map((i) => [
    i.id,
    i.status,
    i.severity,
    formatTime(i.openedAt),
    i.resolvedAt ? `lasted ${ago(i.resolvedAt - i.openedAt)}` : `open ${ago(Date.now() - i.openedAt)}`,
    i.commander ?? '-',
    i.title,
  ])
  return columns([['ID', 'STATUS', 'SEVERITY', 'OPENED', 'DURATION', 'COMMANDER', 'TITLE'], ...rows]).join('\n')
}

function renderReport(r: IncidentReport): string {
  const i = r.incident
  const head = i
    ? [
        `${i.title}`,
        `${i.id}  ${i.severity}, ${i.status}, opened ${formatTime(i.openedAt)} by ${i.openedBy}${i.resolvedAt ? `, resolved ${formatTime(i.resolvedAt)}` : ''}`,
        `commander: ${i.commander ?? '-'}${i.alerts.length ? `   alerts: ${[...new Set(i.alerts.map((a) => a.rule))].join(', ')}` : ''}`,
      ]
    : [r.title]
  const lines = r.timeline.map(
    (e) =>
      `${formatTime(e.at)}  ${e.level.padEnd(8)} ${e.title}${e.actor ? `  — ${e.actor}` : ''}${e.source ? `  [${e.source.kind} ${e.source.id}]` : ''}`,
  )
  return [
    ...head,
    '',
    `Timeline (${r.timeline.length} entries, from ${formatTime(r.window.from)} to ${formatTime(r.window.to)}):`,
    ...lines,
  ].join('\n')
}

const json = { json: { type: 'boolean' as const } }

export const incidentsCommands: CliCommand[] = [
  defineCommand({
    name: 'incidents list',
    synopsis: '[--status open|resolved|all] [--json]',
    description: 'Incidents, newest first: id, status, severity, when opened, how long, commander, title.',
    options: { ...json, status: { type: 'string' } },
    async run({ values }) {
      const status = values.status ?? 'all'
      if (!['open', 'resolved', 'all'].includes(status)) throw new OpsError('bad_argument', '--status must be open, resolved or all.')
      return withOps(async (ops) => {
        const r = await handlers['incidents.list'](ops, { status: status as 'all', limit: 1000 }, ctx(ops))
        process.stdout.write((values.json ? JSON.stringify(r.incidents, null, 2) : renderList(r.incidents)) + '\n')
        return 0
      })
    },
  }),
  defineCommand({
    name: 'incidents open',
    synopsis: '--title TEXT [--severity critical|warning|info] [--commander EMAIL] [--note TEXT] [--json]',
    description: `Declare an incident (status investigating); prints its id. The commander (default: you, when you may
      be one) must be in ADMIN_EMAILS when that is set.`,
    options: { ...json, title: { type: 'string' }, severity: { type: 'string' }, commander: { type: 'string' }, note: { type: 'string' } },
    async run({ values }) {
      if (!values.title?.trim())
        throw new OpsError('bad_argument', '--title is missing: say what is happening, e.g. --title "Exams cannot be submitted".')
      if (values.title.length > 200)
        throw new OpsError('bad_argument', '--title is longer than 200 characters: shorten it, and put the rest in --note.')
      const severity = incidentSeverity.safeParse(values.severity ?? 'critical')
      if (!severity.success) throw new OpsError('bad_argument', `--severity must be one of ${incidentSeverity.options.join(', ')}.`)
      return withOps(async (ops) => {
        const v = await handlers['incidents.open'](
          ops,
          { title: values.title!.trim(), severity: severity.data, commander: values.commander, note: values.note },
          ctx(ops),
        )
        if (values.json) process.stdout.write(JSON.stringify(v, null, 2) + '\n')
        else {
          process.stdout.write(`${v.id}\n`)
          process.stderr.write(`Opened ${v.severity} incident ${v.id}: ${v.title} (commander: ${v.commander ?? 'none yet'}).\n`)
        }
        return 0
      })
    },
  }),
  defineCommand({
    name: 'incidents show',
    synopsis: '<id> [--json]',
    description: "An incident and its timeline (the report's contents); --json prints the report as the JSON export.",
    options: json,
    args: [{ name: '<id>' }],
    async run({ values, args }) {
      return withOps(async (ops) => {
        const r = await handlers['incidents.get'](ops, { id: args[0] }, ctx(ops))
        process.stdout.write((values.json ? JSON.stringify(r, null, 2) : renderReport(r)) + '\n')
        return 0
      })
    },
  }),
  defineCommand({
    name: 'incidents note',
    synopsis: '<id> <text>',
    description: "Add a timestamped note (Markdown) to an incident's timeline; quote the text, or give it as several words.",
    options: json,
    args: [{ name: '<id>' }, { name: '<text>', variadic: true }],
    async run({ values, args }) {
      const [id, ...words] = args
      const text = words.join(' ').trim()
      if (!text) throw new OpsError('bad_argument', '<text> is empty: write the note, e.g. incidents note inc-1a2b3c4d "Redis restarted".')
      return withOps(async (ops) => {
        const n = await handlers['incidents.note'](ops, { id, text }, ctx(ops))
        process.stdout.write(values.json ? JSON.stringify(n) + '\n' : `Noted on ${id} at ${formatTime(n.at)}.\n`)
        return 0
      })
    },
  }),
  defineCommand({
    name: 'incidents status',
    synopsis: '<id> <investigating|identified|monitoring|resolved> [--note TEXT]',
    description: 'Move an incident to a status (a resolved one can be reopened); recorded with who and when.',
    options: { ...json, note: { type: 'string' } },
    args: [{ name: '<id>' }, { name: '<status>' }],
    async run({ values, args }) {
      const s = incidentStatus.safeParse(args[1])
      if (!s.success)
        throw new OpsError('bad_argument', `<status> must be one of ${incidentStatus.options.join(', ')}; it is "${args[1]}".`)
      return withOps(async (ops) => {
        const v = await handlers['incidents.setStatus'](ops, { id: args[0], status: s.data, note: values.note }, ctx(ops))
        process.stdout.write(values.json ? JSON.stringify(v, null, 2) + '\n' : `${v.id} is ${v.status}.\n`)
        return 0
      })
    },
  }),
  defineCommand({
    name: 'incidents resolve',
    synopsis: '<id> [--note TEXT]',
    description: 'Resolve an incident (its review is then pre-filled on the Incidents page).',
    options: { ...json, note: { type: 'string' } },
    args: [{ name: '<id>' }],
    async run({ values, args }) {
      return withOps(async (ops) => {
        const v = await handlers['incidents.setStatus'](ops, { id: args[0], status: 'resolved', note: values.note }, ctx(ops))
        process.stdout.write(
          values.json
            ? JSON.stringify(v, null, 2) + '\n'
            : `${v.id} is resolved after ${ago((v.resolvedAt ?? Date.now()) - v.openedAt)}.\n`,
        )
        return 0
      })
    },
  }),
  defineCommand({
    name: 'incidents export',
    synopsis: '[<id>] [--from TIME --to TIME] --format pdf|html|md|json --out FILE [--paper A4|Letter] [--force]',
    description: `Write an incident's report, or a window's with no incident declared (--from and --to: ISO with a zone,
      "now", or "2h ago"), as PDF, HTML, Markdown or JSON. The file is written whole (0600), and an existing one
      is kept unless --force.`,
    options: {
      format: { type: 'string' },
      out: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      paper: { type: 'string' },
      force: { type: 'boolean' },
    },
    args: [{ name: '<id>', optional: true }],
    async run({ values, args }) {
      const format = exportFormat.safeParse(values.format)
      if (!format.success) throw new OpsError('bad_argument', `--format must be one of ${exportFormat.options.join(', ')}.`)
      if (!values.out) throw new OpsError('bad_argument', '--out is missing: name the file to write, e.g. --out incident.pdf.')
      const paper = values.paper ?? 'A4'
      if (paper !== 'A4' && paper !== 'Letter') throw new OpsError('bad_argument', '--paper must be A4 or Letter.')
      const id = args[0]
      let window: { from: number; to: number } | null = null
      if (id) {
        if (values.from || values.to) throw new OpsError('bad_argument', 'Give either an incident id or --from and --to, not both.')
      } else {
        if (!values.from || !values.to)
          throw new OpsError('bad_argument', 'Give an incident id, or a window with both --from and --to (e.g. --from "3h ago" --to now).')
        const now = Date.now()
        window = { from: parseMoment(values.from, '--from', now), to: parseMoment(values.to, '--to', now) }
        if (window.from >= window.to) throw new OpsError('bad_argument', '--from must be before --to.')
      }
      if (existsSync(values.out) && !values.force)
        throw new OpsError('file_exists', `${values.out} already exists: choose another --out, or add --force to replace it.`)
      return withOps(async (ops) => {
        const r = await handlers['incidents.export'](
          ops,
          { ...(id ? { id } : window!), format: format.data, paper: paper as 'A4' },
          ctx(ops),
        )
        const file = writeExport(values.out!, Buffer.from(r.data, r.encoding === 'base64' ? 'base64' : 'utf8'), !!values.force)
        process.stdout.write(`Wrote ${file} (${r.bytes} bytes, ${format.data}).\n`)
        return 0
      })
    },
  }),
]
