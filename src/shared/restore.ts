/** The restore wizard's contract types: requests, plan, check report, history. */
import { z } from 'zod'

const setId = z.string().regex(/^\d{8}T\d{6}Z-(full|incremental|safety)-[0-9a-f]{4}$/, 'not a backup set id')
/** A database name the wizard may create or write to: plain identifiers only. */
export const databaseName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, 'a database name is letters, digits, "_" and "-", starting with a letter or "_"')

export const restorePoint = z.union([z.object({ setId }).strict(), z.object({ time: z.string().datetime({ offset: true }) }).strict()])
export type RestorePoint = z.infer<typeof restorePoint>

/** Where to: the database being watched (in place), another database on the same server, or a new one there. */
export const restoreTarget = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('in-place') }).strict(),
  z.object({ kind: z.literal('existing'), database: databaseName }).strict(),
  z.object({ kind: z.literal('new'), database: databaseName }).strict(),
])
export type RestoreTargetInput = z.infer<typeof restoreTarget>

export const restoreRequest = z
  .object({
    point: restorePoint,
    /** Table names ("schema.table" or "table"); omitted: the whole database. */
    tables: z.array(z.string().min(1).max(200)).max(2000).optional(),
    target: restoreTarget,
    /** With an encryption key configured: restore sets whose manifest is not authenticated anyway (written before format version 2, or without encryption). */
    allowUnauthenticated: z.boolean().optional(),
  })
  .strict()
export type RestoreRequest = z.infer<typeof restoreRequest>

export const preflightCheck = z.object({
  check: z.string(),
  status: z.enum(['ok', 'warning', 'failed']),
  detail: z.string(),
})
export type PreflightCheck = z.infer<typeof preflightCheck>

export const restorePlan = z.object({
  point: z.object({ kind: z.enum(['set', 'time']), label: z.string(), setId: z.string().nullable(), time: z.string().nullable() }),
  chain: z.object({ fullSetId: z.string(), from: z.string(), to: z.string() }),
  sets: z.array(z.object({ setId: z.string(), type: z.string(), snapshotTime: z.string(), storedBytes: z.number() })),
  bytesToRead: z.number(),
  /** Transactions replayed from the change stream. */
  transactions: z.number(),
  target: z.object({
    kind: z.enum(['in-place', 'existing', 'new', 'url']),
    database: z.string(),
    /** host:port only: never credentials. */
    server: z.string(),
    /** replace: the target's tables are replaced in one transaction (safety backup first). load: schema, then data into an empty database. */
    mode: z.enum(['replace', 'load']),
    createsDatabase: z.boolean(),
  }),
  wholeDatabase: z.boolean(),
  tables: z.array(
    z.object({
      table: z.string(),
      rowsNow: z.number().nullable(),
      rowsNowExact: z.boolean(),
      rowsAfter: z.number(),
      bytes: z.number(),
    }),
  ),
  /** Every table of the backup, with the foreign keys that tie it to others (for choosing a scope). */
  available: z.array(z.object({ table: z.string(), rows: z.number(), references: z.array(z.string()), referencedBy: z.array(z.string()) })),
  /** Tables outside the scope that foreign keys tie to it: the wizard offers to include them. */
  related: z.array(z.object({ table: z.string(), why: z.string() })),
  safetyBackup: z.boolean(),
  /** From the throughput of earlier restores here (core/restore/estimate.ts); null when none was timed yet. */
  estimatedSeconds: z.number().nullable(),
  /** Where the estimate comes from, or why there is none, for people. */
  estimateBasis: z.string(),
  preflight: z.array(preflightCheck),
  ok: z.boolean(),
})
export type RestorePlan = z.infer<typeof restorePlan>

export const checkReport = z.object({
  ok: z.boolean(),
  checkedAt: z.string(),
  tables: z.array(
    z.object({
      table: z.string(),
      rowsExpected: z.number(),
      rowsFound: z.number(),
      digestExpected: z.string().nullable(),
      digestFound: z.string().nullable(),
      ok: z.boolean(),
      problem: z.string().nullable(),
    }),
  ),
  foreignKeys: z.array(
    z.object({
      constraint: z.string(),
      table: z.string(),
      references: z.string(),
      violations: z.number(),
      ok: z.boolean(),
      note: z.string().nullable(),
      /** False when the key could not be checked (its other table was not restored); absent in older reports (read the note). */
      checked: z.boolean().optional(),
    }),
  ),
  /** Why the tables' rows were counted but their digests not compared (null or absent: digests compared). */
  countOnly: z.string().nullable().optional(),
  sequences: z.array(z.object({ sequence: z.string(), value: z.string(), maxInUse: z.string().nullable(), ok: z.boolean() })),
})
export type CheckReport = z.infer<typeof checkReport>

/** A foreign key line that was actually checked (older reports say so only in the note). */
export const fkChecked = (f: CheckReport['foreignKeys'][number]) => f.checked ?? !f.note?.startsWith('not checked')

/** Foreign keys by what happened to them: checked and holding, checked and broken, not checked. */
export function foreignKeyCounts(r: CheckReport): { checked: number; hold: number; broken: number; notChecked: number } {
  const checked = r.foreignKeys.filter(fkChecked)
  const hold = checked.filter((f) => f.ok).length
  return { checked: checked.length, hold, broken: checked.length - hold, notChecked: r.foreignKeys.length - checked.length }
}

/** Why a check compares row counts only: the full set's digests describe it, not a later point. */
export function countOnlyReason(point: { kind: 'set' | 'time' }, sets: number): string | null {
  if (sets <= 1) return null
  return point.kind === 'time'
    ? 'count only: a point in time between backups has no row digest'
    : 'count only: changes were replayed from incremental sets, which record no row digest'
}

export const restoreRecord = z.object({
  id: z.string(),
  kind: z.enum(['restore', 'undo', 'restore-test']),
  actor: z.string(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  /** interrupted: the process ended (killed, crashed) before it could record the outcome. */
  outcome: z.enum(['running', 'succeeded', 'failed', 'cancelled', 'interrupted']),
  point: z.string(),
  target: z.string(),
  tables: z.array(z.string()),
  safetySetId: z.string().nullable(),
  /** The undo that already put this restore's safety backup back: it is not offered (or accepted) again. */
  undoneBy: z.string().nullable().default(null),
  /**
   * A database this restore created that is still there, marked incomplete (its drop after a cancel or a
   * failure did not succeed, or the process was killed): offered for a one-click drop (restore.dropIncomplete).
   */
  leftover: z.string().nullable().default(null),
  /** For a restore test: the set proven restorable. */
  provenSetId: z.string().nullable(),
  durationMs: z.number().nullable(),
  error: z.string().nullable(),
  report: checkReport.nullable(),
  plan: restorePlan.nullable(),
})
export type RestoreRecord = z.infer<typeof restoreRecord>

export const restorePoints = z.object({
  chains: z.array(
    z.object({
      fullSetId: z.string(),
      from: z.string(),
      to: z.string(),
      sets: z.array(z.object({ setId: z.string(), type: z.string(), snapshotTime: z.string() })),
      /** The chain's last set ends it at a schema change it could not carry through (a new full starts the next chain). */
      endsAtSchemaChange: z.boolean(),
      /** What the range does not say: where it ends and why, and tables restored only as of the full. */
      note: z.string().nullable(),
    }),
  ),
  safety: z.array(z.object({ setId: z.string(), snapshotTime: z.string(), tables: z.number() })),
  database: z.string().nullable(),
})
export type RestorePoints = z.infer<typeof restorePoints>
