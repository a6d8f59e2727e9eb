/**
 * The one contract both transports (Electron IPC and the host's WebSocket) are built from.
 * Adding a method is one entry here plus one core function (see src/core/handlers.ts).
 */
import { z } from 'zod'
import {
  appInfo,
  backupSetSummary,
  healthChange,
  healthResult,
  healthSnapshot,
  jobInfo,
  jobProgress,
  serviceId,
  settingView,
} from './domain'
import { restorePlan, restorePoints, restoreRecord, restoreRequest } from './restore'
import { historyResult, latestValue, seriesInfo } from './metrics'
import { alertView, backtestView, channelView, deliveryView, matcher, ruleView, silenceView, transitionView } from './alerts'
import { errorGroup, errorGroupDetail, errorListFilter } from './errors'
import { exportFormat, incidentReport, incidentReview, incidentSeverity, incidentStatus, incidentView } from './incidents'

const none = z.object({}).strict()

/** A time as milliseconds since 1970, up to the end of year 9999 (what PostgreSQL and Date both hold). */
const epochMs = z
  .number()
  .int()
  .min(0, 'must be a time in milliseconds since 1970')
  .max(253_402_300_799_999, 'must be a time in milliseconds since 1970, before the year 10000')

const retentionPlan = z.object({
  policy: z.object({ retainDays: z.number(), keepFulls: z.number() }),
  delete: z.array(
    z.object({ setId: z.string(), type: z.string(), snapshotTime: z.string().nullable(), bytes: z.number(), reason: z.string() }),
  ),
  keep: z.array(z.object({ setId: z.string(), reason: z.string() })),
  bytesFreed: z.number(),
})

export const methods = {
  'app.info': { input: none, output: appInfo },
  /** Restart the console so saved settings apply: the desktop app relaunches itself; the host says how. */
  'app.restart': { input: none, output: z.object({ restarting: z.boolean(), message: z.string() }) },
  /**
   * Save a file the console made (an incident export) where the operator chooses: the desktop app asks with the
   * system's save dialog and writes it 0600; the host answers saved: false, as the browser downloads it itself.
   */
  'app.saveFile': {
    input: z
      .object({
        fileName: z.string().trim().min(1, 'give the file a name').max(255),
        encoding: z.enum(['utf8', 'base64']),
        data: z.string().max(200_000_000),
      })
      .strict(),
    output: z.object({ saved: z.boolean(), path: z.string().nullable(), message: z.string() }),
  },
  'health.snapshot': { input: none, output: healthSnapshot },
  'health.checkNow': {
    input: z.object({ service: serviceId.optional() }).strict(),
    output: healthSnapshot,
  },
  'health.history': {
    input: z.object({ service: serviceId, limit: z.number().int().min(1).max(500).default(50) }).strict(),
    output: z.object({ results: z.array(healthResult), changes: z.array(healthChange) }),
  },
  'settings.list': { input: none, output: z.array(settingView) },
  'settings.update': {
    input: z
      .object({
        key: z.string().regex(/^[A-Z0-9_]{1,64}$/),
        value: z.string().max(4096).nullable(),
        /** The secret the setting's endpoint receives, typed again to confirm moving it (see core/settings/endpoints.ts). */
        secret: z.string().min(1).max(4096).optional(),
      })
      .strict(),
    output: z.object({ restartRequired: z.literal(true), overriddenByEnvironment: z.boolean() }),
  },
  'jobs.list': { input: none, output: z.array(jobInfo) },
  'jobs.cancel': { input: z.object({ jobId: z.string().min(1).max(64) }).strict(), output: z.object({ cancelled: z.boolean() }) },
  'backups.list': {
    input: none,
    output: z.object({ location: z.string(), sets: z.array(backupSetSummary) }),
  },
  'backups.get': {
    input: z.object({ setId: z.string().min(1).max(80) }).strict(),
    output: z.object({
      set: backupSetSummary,
      snapshotLsn: z.string().nullable(),
      server: z.string().nullable(),
      tables: z.array(
        z.object({
          schema: z.string(),
          name: z.string(),
          rows: z.number(),
          rawBytes: z.number(),
          storedBytes: z.number(),
          chunks: z.number(),
        }),
      ),
      /** An incremental's change stream: the tables it touched and when its first and last transaction committed. */
      changes: z
        .object({ tables: z.array(z.string()), firstCommitTime: z.string().nullable(), lastCommitTime: z.string().nullable() })
        .nullable()
        .default(null),
    }),
  },
  'backups.start': {
    input: z.object({ type: z.enum(['full', 'incremental']) }).strict(),
    output: z.object({ jobId: z.string() }),
  },
  'backups.prerequisites': {
    input: none,
    output: z.object({
      ok: z.boolean(),
      walLevel: z.string(),
      canReplicate: z.boolean(),
      publication: z.enum(['exists', 'will be created', 'cannot be created']),
      tablesWithoutReplicaIdentity: z.array(z.object({ table: z.string(), fix: z.string() })),
      problems: z.array(z.string()),
      notes: z.array(z.string()),
      slots: z.array(
        z.object({
          name: z.string(),
          active: z.boolean(),
          walStatus: z.string().nullable(),
          retainedBytes: z.number(),
          confirmedFlushLsn: z.string().nullable(),
          /** Used by no backup chain (a backup that did not finish left it): it holds WAL for nothing. */
          orphan: z.boolean(),
        }),
      ),
    }),
  },
  'backups.retention': { input: none, output: retentionPlan },
  'backups.prune': {
    input: z.object({ confirm: z.string().max(20) }).strict(),
    output: retentionPlan.extend({ deleted: z.array(z.string()), objects: z.number() }),
  },
  'backups.dropSlot': {
    input: z.object({ slot: z.string().regex(/^examforge_ops_[a-z0-9_]+$/), confirm: z.string().max(80) }).strict(),
    output: z.object({ dropped: z.literal(true) }),
  },
  'backups.verify': {
    input: z.object({ setId: z.string().regex(/^\d{8}T\d{6}Z-(full|incremental|safety)-[0-9a-f]{4}$/, 'not a backup set id') }).strict(),
    output: z.object({ jobId: z.string() }),
  },
  'restore.points': { input: none, output: restorePoints },
  'restore.plan': { input: restoreRequest, output: restorePlan },
  'restore.start': {
    input: restoreRequest.extend({ confirm: z.string().max(80), operator: z.string().max(254).optional() }).strict(),
    output: z.object({ jobId: z.string() }),
  },
  'restore.undo': {
    input: z.object({ restoreId: z.string().uuid(), confirm: z.string().max(80), operator: z.string().max(254).optional() }).strict(),
    output: z.object({ jobId: z.string() }),
  },
  'restore.test': { input: z.object({ operator: z.string().max(254).optional() }).strict(), output: z.object({ jobId: z.string() }) },
  'restore.history': { input: none, output: z.array(restoreRecord) },
  /** Drop the database a stopped restore created and left behind, marked incomplete; its name typed back. */
  'restore.dropIncomplete': {
    input: z.object({ restoreId: z.string().uuid(), confirm: z.string().max(80) }).strict(),
    output: z.object({ dropped: z.string() }),
  },
  'restore.get': { input: z.object({ restoreId: z.string().uuid() }).strict(), output: restoreRecord },
  'metrics.series': {
    input: none,
    output: z.object({
      series: z.array(seriesInfo),
      /** Services not configured: one line each instead of empty charts. */
      unconfigured: z.array(z.object({ group: seriesInfo.shape.group, message: z.string() })),
      host: z.string(),
      hosts: z.array(z.string()),
      intervalMs: z.number(),
    }),
  },
  'metrics.latest': { input: none, output: z.array(latestValue) },
  'metrics.history': {
    input: z
      .object({
        series: z.string().min(1).max(200),
        host: z.string().min(1).max(255).optional(),
        from: epochMs,
        to: epochMs,
        points: z.number().int().min(10).max(5000).default(1000),
      })
      .strict()
      .refine((v) => v.from < v.to, 'from must be before to'),
    output: historyResult,
  },
  'metrics.watch': { input: none, output: z.object({ intervalMs: z.number() }) },
  'errors.list': {
    input: errorListFilter,
    output: z.object({ groups: z.array(errorGroup), total: z.number() }),
  },
  'errors.get': {
    input: z.object({ groupId: z.string().min(1).max(64), eventId: z.string().max(64).optional() }).strict(),
    output: errorGroupDetail,
  },
  'errors.setState': {
    input: z
      .object({
        groupIds: z.array(z.string().min(1).max(64)).min(1).max(500),
        state: z.enum(['unresolved', 'resolved', 'ignored']),
        /** resolved: only for releases after the one current now. */
        inNextRelease: z.boolean().optional(),
        /** ignored: until this time, or until this many more events. */
        untilMs: epochMs.optional(),
        untilCount: z.number().int().min(1).max(1_000_000_000).optional(),
      })
      .strict(),
    output: z.object({ changed: z.array(z.string()) }),
  },
  /**
   * The DSN for SDKs (its key is the public half Sentry SDKs embed; the UI shows it to copy), and who takes its
   * events: this face's listener ('here': the host/agent; 'failed' when it could not start), the agent on the configured address ('agent': e.g.
   * seen from the desktop app, which runs no ingest), an ingest with another key ('other_key'), or nothing.
   */
  'errors.dsn': {
    input: none,
    output: z.object({
      dsn: z.string(),
      listening: z.boolean(),
      where: z.enum(['here', 'failed', 'agent', 'other_key', 'nothing']),
      /** Why this face's own ingest is not listening ('failed'). */
      problem: z.string().optional(),
      address: z.string(),
    }),
  },
  'errors.recent': {
    input: z.object({ sinceMs: epochMs }).strict(),
    output: z.object({ fresh: z.array(errorGroup), regressed: z.array(errorGroup) }),
  },
  /** Incidents, newest first: open ones (not resolved), resolved ones, or both. */
  'incidents.list': {
    input: z
      .object({ status: z.enum(['open', 'resolved', 'all']).default('all'), limit: z.number().int().min(1).max(1000).default(100) })
      .strict(),
    output: z.object({ incidents: z.array(incidentView) }),
  },
  /** One incident as its report: the incident, its timeline (window plus margin), charted series and review. */
  'incidents.get': { input: z.object({ id: z.string().min(1).max(64) }).strict(), output: incidentReport },
  /** Declare an incident by hand (from the Overview, an alert, an error group or a health tile). */
  'incidents.open': {
    input: z
      .object({
        title: z.string().trim().min(1, 'give the incident a title').max(200),
        severity: incidentSeverity.default('critical'),
        /** An administrator's e-mail (checked against ADMIN_EMAILS when set); defaults to whoever declares it. */
        commander: z.string().trim().max(200).optional(),
        /** What it was declared from, linked on its timeline. */
        from: z
          .object({ kind: z.enum(['alert', 'error_group', 'health']), id: z.string().min(1).max(200) })
          .strict()
          .optional(),
        note: z.string().max(20_000).optional(),
      })
      .strict(),
    output: incidentView,
  },
  'incidents.setStatus': {
    input: z.object({ id: z.string().min(1).max(64), status: incidentStatus, note: z.string().max(20_000).optional() }).strict(),
    output: incidentView,
  },
  'incidents.setCommander': {
    input: z.object({ id: z.string().min(1).max(64), commander: z.string().trim().min(1).max(200) }).strict(),
    output: incidentView,
  },
  /** An operator's timestamped Markdown note on the timeline. */
  'incidents.note': {
    input: z.object({ id: z.string().min(1).max(64), text: z.string().trim().min(1, 'write the note').max(20_000) }).strict(),
    output: z.object({ id: z.string(), at: z.number() }),
  },
  /** Pin (or unpin) a metric series to the incident's chart. */
  'incidents.pin': {
    input: z.object({ id: z.string().min(1).max(64), series: z.string().min(1).max(300), pinned: z.boolean() }).strict(),
    output: incidentView,
  },
  /** Save the post-incident review (after resolving); the pre-filled draft comes with incidents.get. */
  'incidents.saveReview': {
    input: z.object({ id: z.string().min(1).max(64), review: incidentReview.omit({ editedBy: true, editedAt: true }) }).strict(),
    output: incidentReview,
  },
  /**
   * The report in one format, for an incident or for a window with no incident declared. Text formats come
   * as utf8, the PDF as base64; the desktop app saves it through the system dialog, the browser downloads it.
   */
  'incidents.export': {
    input: z
      .object({
        id: z.string().min(1).max(64).optional(),
        from: epochMs.optional(),
        to: epochMs.optional(),
        format: exportFormat,
        /** PDF page size. */
        paper: z.enum(['A4', 'Letter']).default('A4'),
      })
      .strict()
      .refine((v) => (v.id ? v.from === undefined && v.to === undefined : v.from !== undefined && v.to !== undefined && v.from < v.to), {
        message: 'give either an incident id, or a window with from before to',
      }),
    output: z.object({
      fileName: z.string(),
      mimeType: z.string(),
      encoding: z.enum(['utf8', 'base64']),
      data: z.string(),
      bytes: z.number(),
    }),
  },
  'sandbox.seed': {
    input: z.object({ scale: z.number().min(0.01).max(1000) }).strict(),
    output: z.object({ jobId: z.string() }),
  },
  /** Firing and pending alerts (from the ops store: the same in every process on it), and who evaluates. */
  'alerts.list': {
    input: none,
    output: z.object({
      alerts: z.array(alertView),
      evaluator: z.object({
        here: z.boolean(),
        intervalMs: z.number(),
        lastEvaluationAt: z.number().nullable(),
        lastEvaluationMs: z.number().nullable(),
        problem: z.string().nullable(),
      }),
      rulesFileProblem: z.string().nullable(),
    }),
  },
  'alerts.rules': {
    input: none,
    output: z.object({
      rules: z.array(ruleView),
      kinds: z.array(z.object({ kind: z.string(), describe: z.string(), condition: z.boolean() })),
      channels: z.array(channelView),
      rulesFile: z.string().nullable(),
    }),
  },
  'alerts.history': {
    input: z.object({ limit: z.number().int().min(1).max(1000).default(100) }).strict(),
    output: z.object({ transitions: z.array(transitionView), deliveries: z.array(deliveryView) }),
  },
  'alerts.saveRule': {
    input: z.object({ rule: z.record(z.string(), z.unknown()) }).strict(),
    output: z.object({ name: z.string() }),
  },
  'alerts.deleteRule': {
    input: z.object({ name: z.string().min(1).max(80) }).strict(),
    output: z.object({ deleted: z.boolean(), disabled: z.boolean() }),
  },
  'alerts.backtest': {
    input: z
      .object({
        rule: z.union([z.string().min(1).max(80), z.record(z.string(), z.unknown())]),
        days: z.number().min(0.01).max(90).default(7),
      })
      .strict(),
    output: backtestView,
  },
  'alerts.silences': { input: none, output: z.array(silenceView) },
  'alerts.silence': {
    input: z
      .object({ matchers: z.array(matcher).min(1).max(20), endsAt: epochMs, reason: z.string().trim().min(1, 'say why').max(500) })
      .strict(),
    output: silenceView,
  },
  'alerts.expireSilence': { input: z.object({ id: z.string().uuid() }).strict(), output: z.object({ expired: z.boolean() }) },
  'alerts.ack': { input: z.object({ id: z.string().min(1).max(120) }).strict(), output: z.object({ acknowledged: z.number() }) },
  'alerts.test': {
    input: z.object({ channel: z.string().min(1).max(60) }).strict(),
    output: z.object({ ok: z.boolean(), attempts: z.number(), error: z.string().nullable() }),
  },
  'alerts.export': { input: none, output: z.object({ text: z.string() }) },
} as const

export const events = {
  'health.updated': healthSnapshot,
  'health.changed': healthChange,
  'job.progress': jobProgress,
  'job.finished': jobInfo,
  /** Every collection: this host's newest value of each series. */
  'metrics.tick': z.object({ host: z.string(), t: z.number(), values: z.record(z.string(), z.number().nullable()) }),
  /** The number of firing and pending alerts changed (the window title and tray show it). */
  'alerts.changed': z.object({ firing: z.number(), pending: z.number() }),
  /** A desktop notification to show (the Electron shell's Notification, the browser's Notifications API). */
  'alerts.notify': z.object({ title: z.string(), body: z.string(), severity: z.string() }),
  /** An incident was opened, changed status, or got a note: pages showing it refresh. */
  'incidents.changed': z.object({ id: z.string(), status: incidentStatus }),
} as const

export type Methods = typeof methods
export type MethodName = keyof Methods
export type EventName = keyof typeof events
export type MethodInput<M extends MethodName> = z.input<Methods[M]['input']>
export type MethodOutput<M extends MethodName> = z.output<Methods[M]['output']>
export type EventPayload<E extends EventName> = z.output<(typeof events)[E]>

export const methodNames = Object.keys(methods) as MethodName[]
export const eventNames = Object.keys(events) as EventName[]

export type ErrorBody = { code: string; message: string }
export type Reply<T> = { ok: true; value: T } | { ok: false; error: ErrorBody }

/** Electron channel names are derived from the contract, never written by hand. */
export const ipcChannel = (method: MethodName): string => `ops:call:${method}`
export const IPC_EVENT_CHANNEL = 'ops:event'

/** The client side every face implements: the renderer depends on this alone. */
export interface ApiClient {
  call<M extends MethodName>(method: M, input: MethodInput<M>): Promise<MethodOutput<M>>
  on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void
}

/** An error a person reads: what happened, why, what to do. Code is stable for programs. */
export class OpsError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = 'OpsError'
  }
}

/** Parse the input of a call, turning a zod failure into a readable error. */
export function parseInput<M extends MethodName>(method: M, raw: unknown): z.output<Methods[M]['input']> {
  if (!(method in methods)) throw new OpsError('unknown_method', `There is no method "${String(method)}".`)
  const res = methods[method].input.safeParse(raw ?? {})
  if (!res.success) {
    const issue = res.error.issues[0]
    const where = issue?.path.length ? ` at "${issue.path.join('.')}"` : ''
    throw new OpsError('invalid_input', `Invalid input for ${method}${where}: ${issue?.message ?? 'rejected'}.`)
  }
  return res.data as z.output<Methods[M]['input']>
}

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(methods, name)
}
