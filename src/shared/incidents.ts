/**
 * Incidents as the UI, the CLI, programs and the exported reports see them (core/incidents holds the
 * store, the timeline builder and the report renderers). Everything here is already scrubbed in core.
 *
 * The JSON export is `incidentReport` itself: a documented, versioned schema (`schemaVersion`), its
 * `timeline` in time order, every entry with its type, time, source id and data. docs/incidents.md
 * describes each field; a change that is not purely additive bumps `INCIDENT_REPORT_SCHEMA_VERSION`.
 */
import { z } from 'zod'

export const INCIDENT_REPORT_SCHEMA_VERSION = 1

export const incidentSeverity = z.enum(['critical', 'warning', 'info'])
export type IncidentSeverity = z.infer<typeof incidentSeverity>

/** The order an incident moves through (it may skip steps; resolved can be reopened to investigating). */
export const incidentStatus = z.enum(['investigating', 'identified', 'monitoring', 'resolved'])
export type IncidentStatus = z.infer<typeof incidentStatus>

/** What a timeline entry is, which also says which page its link opens. */
export const timelineEntryType = z.enum([
  'incident.opened',
  'incident.status', // a status change (who, from, to)
  'incident.commander', // commander set or changed
  'incident.note', // an operator's note (Markdown)
  'alert.transition', // pending / firing / resolved, with rule, labels, value
  'health.change', // a service's state changed (from → to, message)
  'error.new_group', // first event of a group inside the window
  'error.regressed', // a resolved group got an event again
  'error.spike', // a group's events per interval crossed its spike rule, or a burst seen in the counts
  'backup', // a backup set (full / incremental) finished or failed
  'restore', // a restore or restore test, with its check result
  'settings.change', // an audit record of a settings change
  'audit', // any other audit record (who did what)
])
export type TimelineEntryType = z.infer<typeof timelineEntryType>

/** Where an entry links back to: the alert, the error group, the backup set, the restore, the setting. */
export const sourceRef = z.object({
  kind: z.enum(['alert', 'alert_rule', 'error_group', 'backup_set', 'restore', 'health', 'setting', 'audit', 'incident', 'job']),
  id: z.string(),
})
export type SourceRef = z.infer<typeof sourceRef>

export const timelineEntry = z.object({
  /** Stable within the report: "<type>:<source row id>". */
  id: z.string(),
  type: timelineEntryType,
  /** Milliseconds since 1970. */
  at: z.number(),
  /** One line a person reads ("Alert redis_down firing: redis unreachable"). */
  title: z.string(),
  /** Optional longer text; Markdown for notes. */
  detail: z.string().nullable(),
  /** critical | warning | info | ok: drives the colour of the marker. */
  level: z.enum(['critical', 'warning', 'info', 'ok']),
  /** Who did it, for people's actions (audit, notes, status changes); null for what the system saw. */
  actor: z.string().nullable(),
  source: sourceRef.nullable(),
  /** The entry's own fields (rule, labels, value, from/to, set id, rows …), already scrubbed. */
  data: z.record(z.string(), z.unknown()),
})
export type TimelineEntry = z.infer<typeof timelineEntry>

export const statusChange = z.object({
  at: z.number(),
  from: incidentStatus.nullable(),
  to: incidentStatus,
  by: z.string(),
})

export const actionItem = z.object({
  text: z.string().min(1).max(2000),
  owner: z.string().max(200).nullable(),
  /** YYYY-MM-DD. */
  due: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'a due date is YYYY-MM-DD')
    .nullable(),
  done: z.boolean().default(false),
})
export type ActionItem = z.infer<typeof actionItem>

/** The post-incident review: pre-filled from the timeline after resolving, then edited by the operator. */
export const incidentReview = z.object({
  summary: z.string().max(20_000),
  impact: z.object({
    durationMs: z.number().nullable(),
    services: z.array(z.string()),
    /** Distinct users in the error groups' events within the window, where error data says; null when unknown. */
    usersAffected: z.number().nullable(),
    text: z.string().max(20_000),
  }),
  rootCause: z.string().max(20_000),
  wentWell: z.string().max(20_000),
  wentBadly: z.string().max(20_000),
  actionItems: z.array(actionItem).max(200),
  /** Set once an operator saved it; null while it is only the pre-filled draft. */
  editedBy: z.string().nullable(),
  editedAt: z.number().nullable(),
})
export type IncidentReview = z.infer<typeof incidentReview>

export const incidentView = z.object({
  id: z.string(),
  title: z.string(),
  severity: incidentSeverity,
  status: incidentStatus,
  commander: z.string().nullable(),
  openedAt: z.number(),
  openedBy: z.string(),
  /** 'alert' when opened by a firing alert (then `alertRule` says which), 'manual' when declared. */
  origin: z.enum(['alert', 'manual']),
  alertRule: z.string().nullable(),
  resolvedAt: z.number().nullable(),
  statusChanges: z.array(statusChange),
  /** Metric series the operator pinned to the incident's chart, besides those of its alerts. */
  pinnedSeries: z.array(z.string()),
  /** Alerts that joined the incident (their ids), in the order they joined. */
  alerts: z.array(z.object({ id: z.string(), rule: z.string(), joinedAt: z.number() })),
})
export type IncidentView = z.infer<typeof incidentView>

/** One charted series over the window, with the thresholds of the alerts on it. */
export const reportSeries = z.object({
  name: z.string(),
  unit: z.string().nullable(),
  points: z.array(z.tuple([z.number(), z.number().nullable()])),
  thresholds: z.array(z.object({ value: z.number(), rule: z.string(), severity: z.string() })),
})
export type ReportSeries = z.infer<typeof reportSeries>

/** The report: what every export format is rendered from, and the JSON export itself. */
export const incidentReport = z.object({
  schemaVersion: z.literal(INCIDENT_REPORT_SCHEMA_VERSION),
  generatedAt: z.number(),
  generatedBy: z.string(),
  /** The incident, or null for an export of a window with no incident declared. */
  incident: incidentView.nullable(),
  window: z.object({ from: z.number(), to: z.number(), marginMs: z.number() }),
  title: z.string(),
  timeline: z.array(timelineEntry),
  series: z.array(reportSeries),
  review: incidentReview.nullable(),
})
export type IncidentReport = z.infer<typeof incidentReport>

export const exportFormat = z.enum(['pdf', 'html', 'md', 'json'])
export type ExportFormat = z.infer<typeof exportFormat>
