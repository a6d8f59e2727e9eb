/**
 * Domain types shared by core, the transports and the renderer.
 * Pure TypeScript + zod: no Node, DOM or Electron imports.
 */
import { z } from 'zod'

export const healthStatus = z.enum(['healthy', 'degraded', 'unhealthy', 'not_configured'])
export type HealthStatus = z.infer<typeof healthStatus>

export const serviceId = z.enum(['postgres', 'redis', 'storage', 's3', 'stripe', 'app', 'host', 'backup_slot', 'error_ingest'])
export type ServiceId = z.infer<typeof serviceId>

export const detailValue = z.union([z.string(), z.number(), z.boolean(), z.null()])

/** How a service's connection travels (null for a service reached without a network connection). */
export const healthTransport = z.object({
  encrypted: z.boolean(),
  /** The peer's certificate was checked against a trusted CA and names the host connected to. */
  verified: z.boolean(),
  /** The connection stays on this machine (127.0.0.0/8, ::1, localhost, a Unix socket). */
  loopback: z.boolean(),
  detail: z.string(),
})
export type HealthTransport = z.infer<typeof healthTransport>

export const healthResult = z.object({
  service: serviceId,
  label: z.string(),
  status: healthStatus,
  latencyMs: z.number().nullable(),
  reason: z.string(),
  details: z.record(z.string(), detailValue),
  transport: healthTransport.nullable(),
  checkedAt: z.string(),
  /** When the status last flipped (ISO time), null when it has not changed since the console started watching. */
  lastChangeAt: z.string().nullable(),
})
export type HealthResult = z.infer<typeof healthResult>

export const healthChange = z.object({
  service: serviceId,
  from: healthStatus.nullable(),
  to: healthStatus,
  reason: z.string(),
  at: z.string(),
})
export type HealthChange = z.infer<typeof healthChange>

export const healthSnapshot = z.object({
  overall: healthStatus,
  results: z.array(healthResult),
  checkedAt: z.string().nullable(),
  intervalS: z.number(),
  /** Whether alerts are being evaluated: the reason they are not (the ops store unreachable), else null. */
  alerts: z.object({ problem: z.string().nullable() }).optional(),
})
export type HealthSnapshot = z.infer<typeof healthSnapshot>

/** Worst-of ordering used for the overall status and for CLI exit codes. */
export const statusRank: Record<HealthStatus, number> = {
  not_configured: 0,
  healthy: 1,
  degraded: 2,
  unhealthy: 3,
}

export function overallStatus(results: { status: HealthStatus }[]): HealthStatus {
  let worst: HealthStatus = 'not_configured'
  for (const r of results) if (statusRank[r.status] > statusRank[worst]) worst = r.status
  return worst
}

export const jobState = z.enum(['running', 'succeeded', 'failed', 'cancelled'])
export type JobState = z.infer<typeof jobState>

export const jobProgress = z.object({
  jobId: z.string(),
  phase: z.string(),
  done: z.number(),
  total: z.number().nullable(),
  unit: z.enum(['rows', 'bytes', 'tables', 'objects', 'steps']),
  etaS: z.number().nullable(),
  message: z.string().optional(),
})
export type JobProgress = z.infer<typeof jobProgress>

export const jobInfo = z.object({
  id: z.string(),
  kind: z.string(),
  state: jobState,
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  progress: jobProgress.nullable(),
  result: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
})
export type JobInfo = z.infer<typeof jobInfo>

/** A setting as the renderer sees it: secrets are masked and never leave core. */
export const settingView = z.object({
  key: z.string(),
  label: z.string(),
  value: z.string().nullable(),
  secret: z.boolean(),
  source: z.enum(['environment', 'settings file', 'secret store', 'sandbox', 'default', 'unset']),
  /** A value saved in the settings file that takes effect at the next start (null when none). */
  pending: z.string().nullable(),
  /** Why the value saved for this key could not be used at start (the console runs with its default), or null. */
  problem: z.string().nullable(),
  /**
   * Where the setting sends a secret (or the backups): what a change from the console must confirm
   * (confirmWith, typed again), why, or that only the environment may change it. Null for other settings.
   */
  guard: z.object({ confirmWith: z.string().nullable(), why: z.string(), environmentOnly: z.boolean() }).nullable(),
})
export type SettingView = z.infer<typeof settingView>

export const appInfo = z.object({
  version: z.string(),
  face: z.enum(['electron', 'host']),
  sandbox: z.object({
    active: z.boolean(),
    message: z.string(),
  }),
  database: z.string().nullable(),
  hostname: z.string(),
  /** Pages the later capabilities fill; the UI marks them as coming rather than faking them. */
  capabilities: z.record(z.string(), z.boolean()),
})
export type AppInfo = z.infer<typeof appInfo>

export const backupSetSummary = z.object({
  setId: z.string(),
  /** tampered: the manifest failed its authentication check (see README, Backups): never offered for restore. */
  status: z.enum(['complete', 'incomplete', 'unreadable', 'tampered']),
  type: z.enum(['full', 'incremental', 'safety', 'unknown']),
  /** authenticated: its manifest's MAC was checked with the configured key; unauthenticated: it has none; unchecked: no key to check it. */
  authenticity: z.enum(['authenticated', 'unauthenticated', 'unchecked']).nullable(),
  parent: z.string().nullable(),
  snapshotTime: z.string().nullable(),
  durationMs: z.number().nullable(),
  tables: z.number(),
  rows: z.number(),
  rawBytes: z.number(),
  /** Bytes in storage, unfinished writes (local .partial files, S3 multipart uploads in progress) included. */
  storedBytes: z.number(),
  /** Of storedBytes, what unfinished writes hold. */
  partialBytes: z.number().default(0),
  objects: z.number(),
  compression: z.string().nullable(),
  encrypted: z.boolean(),
  lastModified: z.string(),
  problem: z.string().nullable(),
  /** When a restore test last proved this set restorable (null: never). */
  provenAt: z.string().nullable(),
  /**
   * A safety backup no restore needs: taken by an in-place restore that then failed or was cancelled (the
   * database was left as it was). Never offered for undo; retention deletes it.
   */
  orphanedSafety: z.boolean().default(false),
  changes: z
    .object({ transactions: z.number(), inserts: z.number(), updates: z.number(), deletes: z.number(), truncates: z.number() })
    .nullable(),
})
export type BackupSetSummary = z.infer<typeof backupSetSummary>

export const verifyReport = z.object({
  setId: z.string(),
  ok: z.boolean(),
  checkedBytes: z.number(),
  objects: z.array(z.object({ key: z.string(), ok: z.boolean(), problem: z.string().nullable() })),
})
