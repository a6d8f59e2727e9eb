import { qi } from '../db/sql'
import { randomBytes, randomUUID } from 'node:crypto'
import type pg from 'pg'
import { pgClient } from '../db/connect'
import { OpsError } from '../../shared/contract'
import type { RestorePlan, RestorePoints, RestoreRecord, RestoreRequest } from '../../shared/restore'
import type { AuditLog } from '../audit/audit'
import type { Config } from '../config/config'
import { cancelReason, type JobContext, type JobRunner } from '../jobs/runner'
import type { Logger } from '../log/logger'
import { scrub } from '../log/scrub'
import type { BackupService } from '../backup/service'
import { chains, readCatalog, type Chain } from '../backup/catalog'
import { parseCompression } from '../backup/compression'
import { resolveKey } from '../backup/crypto'
import { estimateRestore, type TimedRestore } from './estimate'
import { CheckFailed, executeRestore, freshTargetState, type RestoreOutcome, type TargetState } from './execute'
import { connectTimeouts, explainConnectError } from '../db/timeouts'
import { orphanedSafetySets } from '../backup/safety'
import {
  describeUrl,
  planRestore,
  PREVIEW_VERIFY_BYTES,
  withDatabase,
  type PlanInput,
  type PreparedRestore,
  type ResolvedTarget,
} from './plan'

export interface RestoreResult extends Omit<RestoreOutcome, 'report'> {
  restoreId: string
  report: RestoreOutcome['report']
  target: string
  durationMs: number
}

export interface Operator {
  /** A name the operator typed: a display label in the audit log, never a grant. */
  operator?: string | null
  /** Who the face authenticated (core/auth/identity.ts describeIdentity). */
  actor: string
}

/**
 * What a chain's range does not say: that it ends at a schema change (and the moments up to the next
 * chain that no backup restores), and the tables its incrementals do not follow.
 */
export function coverageNote(c: Chain, newer: Chain | null): string | null {
  const notes: string[] = []
  const end = c.sets.at(-1)!.endsChain
  if (end)
    notes.push(
      `Ends at a schema change (${end.reason}): restorable up to ${c.to}${newer ? `; the next chain starts at ${newer.from}, and moments between cannot be restored` : ''}. Restores use the schema of this chain's full (${c.from}).`,
    )
  if (end?.newTables?.length)
    notes.push(
      `Tables created after its full are not in it: ${end.newTables.join(', ')} (their data starts with ${newer ? 'the next chain' : 'the next full backup'}).`,
    )
  // Schema changes carried through: the chain goes on across them (restores before, across and after a migration).
  const carried = c.sets.flatMap((s) => s.schemaChange?.summary ?? [])
  if (carried.length)
    notes.push(
      `Carries ${carried.length} schema change(s) through, so it covers the moments before, across and after them: ${carried.slice(0, 6).join('; ')}${carried.length > 6 ? '; ...' : ''}.`,
    )
  for (const t of c.sets.flatMap((s) => s.created ?? []))
    notes.push(`${t.table} joined the chain at ${t.at || 'its set'}: restores to earlier moments leave it out.`)
  const fullsOnly = [...new Set(c.sets.flatMap((s) => s.fullsOnly ?? []))].sort()
  if (fullsOnly.length)
    notes.push(
      `${fullsOnly.join(', ')} ${fullsOnly.length === 1 ? 'comes' : 'come'} back as of this chain's full (${c.from}): incrementals do not follow ${fullsOnly.length === 1 ? 'it' : 'them'} (no replica identity).`,
    )
  return notes.join(' ') || null
}

/** Restores, undo and restore tests: planned, confirmed, run as jobs, recorded in ops.restores and the audit log. */
export class RestoreService {
  private running: string | null = null

  constructor(
    private deps: {
      config: Config
      databaseUrl: () => string | null
      backups: BackupService
      jobs: JobRunner
      audit: AuditLog
      store: () => pg.Pool | null
      log: Logger
    },
  ) {}

  private keys() {
    const b = this.deps.config.backup
    return { key: b.encryptionKey, passphrase: b.encryptionPassphrase }
  }

  /** The points a restore can reach: each chain's range and sets, and the safety backups. */
  async points(): Promise<RestorePoints> {
    const catalog = await readCatalog(this.deps.backups.storage(), this.keys())
    const url = this.deps.databaseUrl()
    // Safety backups of restores that failed hold what the database still has: not offered.
    const orphans = await orphanedSafetySets(this.deps.store(), catalog)
    const list = chains(catalog) // newest first
    return {
      chains: list.map((c, i) => ({
        fullSetId: c.full.setId,
        from: c.from,
        to: c.to,
        sets: c.sets.map((s) => ({ setId: s.setId, type: s.type, snapshotTime: s.snapshot.time })),
        endsAtSchemaChange: !!c.sets.at(-1)!.endsChain,
        note: coverageNote(c, list[i - 1] ?? null),
      })),
      safety: catalog
        .filter((s) => s.status === 'complete' && s.manifest?.type === 'safety' && !orphans.has(s.setId))
        .map((s) => ({ setId: s.setId, snapshotTime: s.manifest!.snapshot.time, tables: s.manifest!.tables.length })),
      database: url ? describeUrl(url).database : null,
    }
  }

  private input(r: RestoreRequest | PlanInput): PlanInput {
    return { point: r.point, tables: r.tables, target: r.target as ResolvedTarget, allowUnauthenticated: r.allowUnauthenticated }
  }

  /** A plan for running now: objects are checked against their SHA-256 by the run itself, before the target is touched. */
  async prepare(r: RestoreRequest | PlanInput, signal?: AbortSignal, verifyUpTo = 0): Promise<PreparedRestore> {
    const prepared = await planRestore(this.input(r), {
      verifyUpTo,
      storage: this.deps.backups.storage(),
      keys: this.keys(),
      databaseUrl: this.deps.databaseUrl(),
      signal,
      connectTimeoutMs: this.deps.config.connectTimeoutMs,
    })
    const plan = prepared.plan
    const e = estimateRestore(
      plan.tables.reduce((n, t) => n + t.bytes, 0),
      plan.target.mode,
      await this.timed(),
    )
    plan.estimatedSeconds = e.seconds
    plan.estimateBasis = e.basis
    return prepared
  }

  /** Earlier restores that succeeded, newest first, with their size and duration (for the estimate). */
  private async timed(): Promise<TimedRestore[]> {
    const pool = this.deps.store()
    if (!pool) return []
    const { rows } = await pool
      .query(
        `SELECT plan, duration_ms FROM ops.restores WHERE outcome = 'succeeded' AND duration_ms > 0 AND plan IS NOT NULL
          ORDER BY finished_at DESC LIMIT 50`,
      )
      .catch(() => ({ rows: [] as { plan: RestorePlan; duration_ms: string }[] }))
    return rows.map((r) => ({
      mode: r.plan.target?.mode === 'replace' ? 'replace' : 'load',
      bytes: (r.plan.tables ?? []).reduce((n: number, t: { bytes?: number }) => n + (t.bytes ?? 0), 0),
      durationMs: Number(r.duration_ms),
    }))
  }

  /** The preview: on small sets it reads every object now, so a damaged one shows before anything is confirmed. */
  async plan(r: RestoreRequest | PlanInput): Promise<RestorePlan> {
    return (await this.prepare(r, undefined, PREVIEW_VERIFY_BYTES)).plan
  }

  /**
   * The audit label: the authenticated caller, with the name they typed as a display label only.
   * Whether they may restore at all is checked before this (core/auth/identity.ts).
   */
  private who(o: Operator): string {
    const op = o.operator?.trim() || null
    return op ? `${o.actor}, typed "${op.slice(0, 254)}"` : o.actor
  }

  /** Start a restore: re-planned at start (preflight again), confirmed by the target database's name typed back. */
  async start(
    r: RestoreRequest | PlanInput,
    confirm: string,
    o: Operator,
    kind: 'restore' | 'undo' = 'restore',
  ): Promise<{ jobId: string; plan: RestorePlan }> {
    const actor = this.who(o)
    if (this.running) throw new OpsError('restore_running', `A restore is already running (job ${this.running}); wait for it or cancel it.`)
    const prepared = await this.prepare(r)
    if (confirm !== prepared.plan.target.database)
      throw new OpsError('not_confirmed', `Type the target database's name (${prepared.plan.target.database}) to confirm the restore.`)
    if (!prepared.plan.ok)
      throw new OpsError(
        'preflight_failed',
        `The restore cannot start: ${prepared.plan.preflight
          .filter((c) => c.status === 'failed')
          .map((c) => `${c.check}: ${c.detail}`)
          .join(' ')}`,
      )
    const jobId = this.run(kind, prepared, actor, null)
    return { jobId, plan: prepared.plan }
  }

  /** Undo a restore in place: restore the safety backup it took, into the same database (itself safety-backed-up first). */
  async undo(restoreId: string, confirm: string, o: Operator): Promise<{ jobId: string; plan: RestorePlan }> {
    const rec = await this.record(restoreId)
    if (!rec) throw new OpsError('unknown_restore', `There is no restore "${restoreId}".`)
    if (!rec.safetySetId || rec.outcome !== 'succeeded' || !rec.plan)
      throw new OpsError('no_undo', 'Only a restore that replaced tables and succeeded can be undone (it has a safety backup).')
    if (rec.undoneBy)
      throw new OpsError(
        'already_undone',
        `Restore ${rec.id} was already undone by ${rec.undoneBy}: its safety backup ${rec.safetySetId} is back in place, so there is nothing left to undo. To return to what that restore put there, undo ${rec.undoneBy} instead.`,
      )
    const t = rec.plan.target
    if (t.kind === 'url')
      throw new OpsError(
        'no_undo',
        `This restore went to a database given by URL: undo it with "examforge-ops restore --backup ${rec.safetySetId} --target <url>".`,
      )
    const target: ResolvedTarget = t.kind === 'in-place' ? { kind: 'in-place' } : { kind: 'existing', database: t.database }
    return this.start({ point: { setId: rec.safetySetId }, target }, confirm, o, 'undo')
  }

  /** Restore test: the newest chain's newest set into a scratch database, checked, dropped; the set is then "proven restorable". */
  startTest(o: Operator): { jobId: string } {
    const actor = this.who(o)
    if (this.running) throw new OpsError('restore_running', `A restore is already running (job ${this.running}).`)
    const url = this.deps.databaseUrl()
    if (!url) throw new OpsError('no_database', 'No database server to test on: set DATABASE_URL.')
    const scratch = `examforge_ops_restore_test_${randomBytes(4).toString('hex')}`
    this.running = 'starting'
    const jobId = this.deps.jobs.start(
      'restore.test',
      { database: scratch },
      async (_i, ctx) => {
        try {
          const newest = chains(await readCatalog(this.deps.backups.storage(), this.keys()))[0]
          if (!newest) throw new OpsError('no_backups', 'There is no complete backup to test: take a full backup first.')
          const point = newest.sets[newest.sets.length - 1]
          const prepared = await this.prepare({ point: { setId: point.setId }, target: { kind: 'new', database: scratch } }, ctx.signal)
          if (!prepared.plan.ok)
            throw new OpsError(
              'preflight_failed',
              `The restore test cannot run: ${prepared.plan.preflight
                .filter((c) => c.status === 'failed')
                .map((c) => c.detail)
                .join(' ')}`,
            )
          try {
            return await this.execute('restore-test', prepared, actor, point.setId, ctx)
          } finally {
            await dropDatabase(url, scratch, this.deps.config.connectTimeoutMs).catch((e) =>
              this.deps.log.warn('could not drop the restore test database', { database: scratch, error: (e as Error).message }),
            )
          }
        } finally {
          this.running = null
        }
      },
      actor,
    )
    this.running = jobId
    return { jobId }
  }

  private run(kind: 'restore' | 'undo', prepared: PreparedRestore, actor: string, provenSetId: string | null): string {
    this.running = 'starting'
    const jobId = this.deps.jobs.start(
      kind === 'undo' ? 'restore.undo' : 'restore',
      { point: prepared.plan.point.label, target: `${prepared.plan.target.database}@${prepared.plan.target.server}` },
      async (_i, ctx) => {
        try {
          return await this.execute(kind, prepared, actor, provenSetId, ctx)
        } finally {
          this.running = null
        }
      },
      actor,
    )
    this.running = jobId
    return jobId
  }

  private async execute(
    kind: RestoreRecord['kind'],
    prepared: PreparedRestore,
    actor: string,
    provenSetId: string | null,
    ctx: JobContext,
  ): Promise<RestoreResult> {
    const id = randomUUID()
    const startedAt = new Date()
    const target = `${prepared.plan.target.database}@${prepared.plan.target.server}`
    const plan = prepared.plan
    await this.write(
      `INSERT INTO ops.restores (id, kind, actor, started_at, outcome, point, target, tables, plan) VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8)`,
      [id, kind, actor, startedAt, plan.point.label, target, prepared.scope, JSON.stringify(plan)],
    )
    // A session lock says "this run is alive": when its process dies, the lock goes with it, and the
    // history marks the record interrupted instead of running forever.
    const alive = await this.deps
      .store()
      ?.connect()
      .then(async (c) => {
        await c.query(`SELECT pg_advisory_lock(hashtext('examforge-ops restore'), hashtext($1))`, [id])
        return c
      })
      .catch(() => null)
    const b = this.deps.config.backup
    const state: TargetState = freshTargetState()
    try {
      const out = await executeRestore(
        prepared,
        {
          connectTimeoutMs: this.deps.config.connectTimeoutMs,
          // The record points to the safety backup before any row is replaced.
          onSafetySet: (setId) => this.write(`UPDATE ops.restores SET safety_set_id = $2 WHERE id = $1`, [id, setId]),
          safety: {
            storage: this.deps.backups.storage(),
            compression: parseCompression(b.compression),
            encryption: resolveKey({ key: b.encryptionKey, passphrase: b.encryptionPassphrase }),
            serverSideEncryption: b.s3Sse,
          },
          parallelism: b.parallelism ?? undefined,
          chunkBytes: b.chunkBytes,
          log: this.deps.log,
        },
        ctx,
        state,
      )
      const durationMs = Date.now() - startedAt.getTime()
      await this.write(
        `UPDATE ops.restores SET finished_at = now(), outcome = 'succeeded', duration_ms = $2, report = $3, safety_set_id = $4, proven_set_id = $5 WHERE id = $1`,
        [id, durationMs, JSON.stringify(out.report), out.safetySetId, provenSetId],
      )
      await this.deps.audit.record({
        actor,
        action: `restore.${kind === 'restore-test' ? 'test' : kind === 'undo' ? 'undo' : 'run'}`,
        target,
        outcome: 'succeeded',
        details: { restoreId: id, point: plan.point.label, tables: prepared.scope.length, safetySet: out.safetySetId, durationMs },
      })
      return { ...out, restoreId: id, target, durationMs }
    } catch (e) {
      const cancelled = ctx.signal.aborted
      // A database this restore created is dropped, whether it was cancelled or failed: nothing half-loaded
      // stays behind under a name that looks restored. If it cannot be dropped, the message says so and how.
      const remains = state.created
        ? await dropDatabase(prepared.targetUrl, plan.target.database, this.deps.config.connectTimeoutMs).then(
            () => {
              state.dropped = true
              return `The database ${plan.target.database} it had created was dropped: nothing of this restore remains.`
            },
            (de: Error) => {
              this.deps.log.warn('could not drop the database a stopped restore created', { error: de.message })
              return `The database ${plan.target.database} it created could not be dropped (${de.message}), so it remains, incomplete and marked so in its comment: drop it (Restore page, or DROP DATABASE) before restoring again.`
            },
          )
        : whatRemains(plan, state)
      const message = scrub(
        cancelled ? `The restore was ${cancelReason(ctx.signal)}. ${remains}` : `The restore failed: ${(e as Error).message} ${remains}`,
      )
      await this.write(
        `UPDATE ops.restores SET finished_at = now(), outcome = $2, duration_ms = $3, error = $4, report = $5 WHERE id = $1`,
        [
          id,
          cancelled ? 'cancelled' : 'failed',
          Date.now() - startedAt.getTime(),
          message,
          e instanceof CheckFailed ? JSON.stringify(e.report) : null,
        ],
      )
      await this.deps.audit.record({
        actor,
        action: `restore.${kind === 'restore-test' ? 'test' : kind === 'undo' ? 'undo' : 'run'}`,
        target,
        outcome: cancelled ? 'cancelled' : 'failed',
        details: { restoreId: id, point: plan.point.label, error: message },
      })
      // A cancel is the job's own OpsError('cancelled'): the job runner shows this message, which says what remains.
      throw new OpsError(cancelled ? 'cancelled' : ((e as OpsError).code ?? 'restore_failed'), message)
    } finally {
      alive?.release(true) // closing the session releases its lock
    }
  }

  private async write(sql: string, values: unknown[]): Promise<void> {
    const pool = this.deps.store()
    if (!pool) return
    await pool
      .query(sql, values)
      .catch((e) => this.deps.log.warn('could not record the restore in ops.restores', { error: (e as Error).message }))
  }

  /**
   * Runs whose process is gone (their session lock is free) were interrupted: say so, in ops.restores and
   * (through the job runner) ops.jobs. Done when any face starts and whenever the history is read.
   */
  async reconcile(): Promise<number> {
    const pool = this.deps.store()
    if (!pool) return 0
    const r = await pool
      .query(
        `UPDATE ops.restores r SET outcome = 'interrupted', finished_at = COALESCE(finished_at, now()),
                error = 'The process running it ended (killed or crashed) before it recorded the outcome. In place, a restore is all or nothing: the tables are either as they were or fully restored; the check report of a new restore shows which.'
          WHERE outcome = 'running'
            AND CASE WHEN pg_try_advisory_lock(hashtext('examforge-ops restore'), hashtext(r.id))
                     THEN pg_advisory_unlock(hashtext('examforge-ops restore'), hashtext(r.id)) ELSE false END`,
      )
      .catch(() => ({ rowCount: 0 }))
    await this.deps.jobs.reconcile()
    return r.rowCount ?? 0
  }

  async history(limit = 50): Promise<RestoreRecord[]> {
    const pool = this.deps.store()
    if (!pool) return []
    await this.reconcile()
    const { rows } = await pool.query(`SELECT r.*, ${UNDONE_BY} AS undone_by FROM ops.restores r ORDER BY started_at DESC LIMIT $1`, [
      limit,
    ])
    const records = rows.map(toRecord)
    const left = await this.leftovers(records.filter(stoppedCreating).map((r) => r.plan!.target.database))
    return records.map((r) => (stoppedCreating(r) && left.has(r.plan!.target.database) ? { ...r, leftover: r.plan!.target.database } : r))
  }

  /** Which of these databases exist and carry a restore's INCOMPLETE mark (only those are ever offered for a drop). */
  private async leftovers(names: string[]): Promise<Set<string>> {
    const url = this.deps.databaseUrl()
    if (!url || !names.length) return new Set()
    const c = pgClient(url, { ...connectTimeouts({ connectTimeoutMs: this.deps.config.connectTimeoutMs }) })
    c.on('error', () => {})
    try {
      await c.connect()
      const { rows } = await c.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datname = ANY($1) AND shobj_description(oid, 'pg_database') LIKE $2`,
        [names, `${INCOMPLETE_MARK}%`],
      )
      return new Set(rows.map((r) => r.datname))
    } catch {
      return new Set()
    } finally {
      await c.end().catch(() => {})
    }
  }

  /**
   * The one-click drop the history offers: only the database a stopped restore created, only while it still
   * carries the restore's INCOMPLETE mark (never a database someone has since put to use), its name typed back.
   */
  async dropIncomplete(restoreId: string, confirm: string, actor: string): Promise<{ dropped: string }> {
    const r = await this.record(restoreId)
    if (!r) throw new OpsError('unknown_restore', `There is no restore "${restoreId}".`)
    if (!stoppedCreating(r))
      throw new OpsError('not_incomplete', `Restore ${restoreId} did not stop while creating a database: there is nothing of it to drop.`)
    const name = r.plan!.target.database
    if (confirm !== name) throw new OpsError('not_confirmed', `Type the database's name (${name}) to confirm dropping it.`)
    if (!(await this.leftovers([name])).has(name))
      throw new OpsError(
        'not_incomplete',
        `The database ${name} is gone, or no longer marked incomplete by a restore (someone may use it now): nothing was dropped.`,
      )
    try {
      await dropDatabase(this.deps.databaseUrl()!, name, this.deps.config.connectTimeoutMs)
    } catch (e) {
      await this.deps.audit.record({ actor, action: 'restore.dropIncomplete', target: name, outcome: 'failed', details: { restoreId } })
      throw new OpsError(
        'drop_failed',
        `The database ${name} could not be dropped: ${scrub((e as Error).message)}. Drop it with DROP DATABASE.`,
      )
    }
    await this.deps.audit.record({ actor, action: 'restore.dropIncomplete', target: name, outcome: 'dropped', details: { restoreId } })
    return { dropped: name }
  }

  async record(id: string): Promise<RestoreRecord | null> {
    const pool = this.deps.store()
    if (!pool) throw new OpsError('store_unavailable', 'The ops store is not reachable: restore records cannot be read now.')
    await this.reconcile()
    const { rows } = await pool.query(`SELECT r.*, ${UNDONE_BY} AS undone_by FROM ops.restores r WHERE r.id = $1`, [id])
    return rows[0] ? toRecord(rows[0]) : null
  }

  /** setId → when a restore test last proved it restorable. */
  async proven(): Promise<Map<string, string>> {
    const pool = this.deps.store()
    if (!pool) return new Map()
    const { rows } = await pool
      .query(
        `SELECT proven_set_id AS id, max(finished_at) AS at FROM ops.restores WHERE outcome = 'succeeded' AND proven_set_id IS NOT NULL GROUP BY 1`,
      )
      .catch(() => ({ rows: [] as { id: string; at: Date }[] }))
    return new Map(rows.map((r) => [r.id as string, new Date(r.at).toISOString()]))
  }
}

/**
 * The undo that put a restore's safety backup back (null when none did): a succeeded undo restoring that
 * set, itself not undone later (undoing the undo puts the restore's result back, so it may be undone again).
 */
const UNDONE_BY = `(SELECT u.id FROM ops.restores u
   WHERE r.safety_set_id IS NOT NULL AND u.kind = 'undo' AND u.outcome = 'succeeded' AND u.started_at > r.started_at
     AND u.plan->'point'->>'setId' = r.safety_set_id
     AND NOT EXISTS (SELECT 1 FROM ops.restores uu WHERE uu.kind = 'undo' AND uu.outcome = 'succeeded'
                      AND uu.started_at > u.started_at AND u.safety_set_id IS NOT NULL AND uu.plan->'point'->>'setId' = u.safety_set_id)
   ORDER BY u.started_at DESC LIMIT 1)`

const INCOMPLETE_MARK = 'examforge-ops restore: INCOMPLETE'

/** A restore into a database it created that did not succeed (failed, cancelled or killed). */
const stoppedCreating = (r: RestoreRecord): boolean =>
  (r.outcome === 'failed' || r.outcome === 'cancelled' || r.outcome === 'interrupted') && !!r.plan?.target.createsDatabase

/** What a failed restore left in its target, said as it is. */
function whatRemains(plan: RestorePlan, state: TargetState): string {
  const db = plan.target.database
  if (plan.target.mode === 'replace') return 'The database is unchanged (everything was rolled back).'
  if (state.marked) return `The database ${db} is incomplete and marked so: drop it and restore again.`
  if (state.created) return `The database ${db} was created but nothing was loaded into it: drop it, then restore again.`
  if (plan.target.createsDatabase) return `Nothing was changed: the database ${db} was not created.`
  return `Nothing was written to ${db}: it is as it was.`
}

function toRecord(r: Record<string, unknown>): RestoreRecord {
  const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null)
  return {
    id: r.id as string,
    kind: r.kind as RestoreRecord['kind'],
    actor: r.actor as string,
    startedAt: iso(r.started_at)!,
    finishedAt: iso(r.finished_at),
    outcome: r.outcome as RestoreRecord['outcome'],
    point: r.point as string,
    target: r.target as string,
    tables: (r.tables as string[]) ?? [],
    safetySetId: (r.safety_set_id as string) ?? null,
    undoneBy: (r.undone_by as string) ?? null,
    leftover: null,
    provenSetId: (r.proven_set_id as string) ?? null,
    durationMs: r.duration_ms === null || r.duration_ms === undefined ? null : Number(r.duration_ms),
    error: (r.error as string) ?? null,
    report: (r.report as RestoreRecord['report']) ?? null,
    plan: (r.plan as RestoreRecord['plan']) ?? null,
  }
}

async function dropDatabase(url: string, name: string, connectTimeoutMs?: number): Promise<void> {
  const c = pgClient(withDatabase(url, 'postgres'), { ...connectTimeouts({ connectTimeoutMs }) })
  c.on('error', () => {})
  await c.connect().catch((e) => {
    throw explainConnectError(e, url, { connectTimeoutMs })
  })
  try {
    await c.query(`DROP DATABASE IF EXISTS ${qi(name)} WITH (FORCE)`)
  } finally {
    await c.end().catch(() => {})
  }
}
