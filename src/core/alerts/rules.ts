/**
 * The rule model: what an administrator writes in the editor or a rules file (ALERT_RULES_FILE), validated
 * with zod. A rule names its kind (a registered RuleSource: "threshold" by default), the kind's parameters
 * (a threshold rule's `series` and `host` may sit at the top level, as in the issue's form), the comparison,
 * `for` and `keep_firing_for`, what "no data" and "the check failed" mean, severity, labels, annotations
 * and channels. Durations are strings ("5m"); the parsed rule carries milliseconds too.
 */
import { z } from 'zod'
import { formatDuration, parseDuration } from './duration'

export const severities = ['critical', 'warning', 'info'] as const
export const comparisons = ['>', '>=', '<', '<=', '==', '!='] as const
/** What a missing value or a failed check does: keep the state as it is, count as the condition holding, or as OK. */
export const gapChoices = ['keep', 'alert', 'ok'] as const

const duration = (what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? v * 1000 : parseDuration(v)
    if (ms === null || !Number.isFinite(ms) || ms < 0) {
      ctx.addIssue({ code: 'custom', message: `${what} must be a duration such as "30s", "5m", "4h" or "1d"; it is "${v}"` })
      return z.NEVER
    }
    return ms
  })

export const ruleName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_.:-]{0,79}$/, 'a rule name is a letter followed by letters, digits, "_", ".", ":" or "-" (at most 80)')

/** A rule as written (rules file, editor, defaults). */
export const ruleInput = z
  .object({
    name: ruleName,
    kind: z.string().min(1).max(60).default('threshold'),
    series: z.string().min(1).max(200).optional(),
    host: z.string().min(1).max(255).optional(),
    params: z.record(z.string(), z.unknown()).default({}),
    op: z.enum(comparisons).default('>'),
    threshold: z.number().finite().default(0),
    for: duration('for').default(0),
    keep_firing_for: duration('keep_firing_for').default(0),
    severity: z.enum(severities).default('warning'),
    labels: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a label name is letters, digits and "_"'), z.string().max(500))
      .default({}),
    annotations: z.record(z.string(), z.string().max(2000)).default({}),
    channels: z.array(z.string().min(1).max(60)).optional(),
    no_data: z.enum(gapChoices).default('keep'),
    on_error: z.enum(gapChoices).default('keep'),
    enabled: z.boolean().default(true),
  })
  .strict()

export type RuleInput = z.input<typeof ruleInput>
export type Rule = z.output<typeof ruleInput>

/** Where a rule came from: the built-in defaults, the UI (stored in ops), or the rules file. */
export type RuleOrigin = 'default' | 'ui' | 'file'

/** The parameters handed to the rule's source: `params`, with a top-level series/host folded in. */
export function sourceParams(rule: Rule): Record<string, unknown> {
  return { ...rule.params, ...(rule.series ? { series: rule.series } : {}), ...(rule.host ? { host: rule.host } : {}) }
}

export function compare(op: Rule['op'], value: number, threshold: number): boolean {
  switch (op) {
    case '>':
      return value > threshold
    case '>=':
      return value >= threshold
    case '<':
      return value < threshold
    case '<=':
      return value <= threshold
    case '==':
      return value === threshold
    case '!=':
      return value !== threshold
  }
}

/** A rule back in the form people write (durations as text, defaults left out), for export and the editor. */
export function ruleToFile(rule: Rule): Record<string, unknown> {
  const out: Record<string, unknown> = { name: rule.name }
  if (rule.kind !== 'threshold') out.kind = rule.kind
  if (rule.series) out.series = rule.series
  if (rule.host) out.host = rule.host
  if (Object.keys(rule.params).length) out.params = rule.params
  out.op = rule.op
  out.threshold = rule.threshold
  if (rule.for) out.for = formatDuration(rule.for)
  if (rule.keep_firing_for) out.keep_firing_for = formatDuration(rule.keep_firing_for)
  out.severity = rule.severity
  if (Object.keys(rule.labels).length) out.labels = rule.labels
  if (Object.keys(rule.annotations).length) out.annotations = rule.annotations
  if (rule.channels) out.channels = rule.channels
  if (rule.no_data !== 'keep') out.no_data = rule.no_data
  if (rule.on_error !== 'keep') out.on_error = rule.on_error
  if (!rule.enabled) out.enabled = false
  return out
}

/**
 * The defaults, on from the first start and editable (a UI or file rule of the same name replaces one).
 * Rules whose source has nothing to watch yet (errors before any arrive, backups before any are scheduled)
 * read "no data", which they keep as inactive.
 */
export function defaultRules(o: { slotWarnMb: number; backupsScheduled: boolean }): RuleInput[] {
  const rules: RuleInput[] = [
    {
      name: 'cpu_high',
      series: 'host.cpu_percent',
      op: '>',
      threshold: 80,
      for: '5m',
      severity: 'warning',
      annotations: { summary: 'CPU at {{value}} % on {{host}}' },
    },
    {
      name: 'memory_high',
      series: 'host.mem_percent',
      op: '>',
      threshold: 85,
      for: '3m',
      severity: 'warning',
      annotations: { summary: 'Memory at {{value}} % on {{host}}' },
    },
    {
      name: 'postgres_down',
      kind: 'availability',
      params: { service: 'postgres', status: 'unhealthy' },
      op: '>',
      threshold: 0,
      for: '1m',
      severity: 'critical',
      annotations: { summary: 'PostgreSQL is not answering' },
    },
    {
      name: 'app_errors',
      kind: 'errors.count',
      params: { minutes: 5 },
      op: '>=',
      threshold: 10,
      severity: 'warning',
      annotations: { summary: '{{value}} application errors in 5 minutes' },
    },
    {
      name: 'backup_slot_wal',
      kind: 'backup',
      params: { fact: 'slot_wal_mb' },
      op: '>',
      threshold: o.slotWarnMb,
      severity: 'warning',
      annotations: { summary: 'The backup slot holds {{value}} MB of WAL' },
    },
    {
      name: 'disk_full_soon',
      kind: 'forecast',
      series: 'host.disk_used_percent',
      params: { within: '24h', window: '6h' },
      op: '>=',
      threshold: 100,
      for: '10m',
      severity: 'warning',
      annotations: { summary: 'Disk {{mount}} on {{host}} is forecast full within 24 h' },
    },
  ]
  if (o.backupsScheduled)
    rules.push({
      name: 'backup_missing',
      kind: 'backup',
      params: { fact: 'hours_since_full' },
      op: '>',
      threshold: 26,
      severity: 'critical',
      annotations: { summary: 'No successful full backup for {{value}} hours' },
    })
  return rules
}
