import { randomBytes, randomUUID } from 'node:crypto'
import pg from 'pg'
import { OpsError } from '../../shared/contract'
import type { RestorePlan, RestorePoints, RestoreRecord, RestoreRequest } from '../../shared/restore'
import type { AuditLog } from '../audit/audit'
import type { Config } from '../config/config'
import type { JobContext, JobRunner } from '../jobs/runner'
import type { Logger } from '../log/logger'
import { scrub } from '../log/scrub'
import type { BackupService } from '../backup/service'
import { chains, readCatalog, type Chain } from '../backup/catalog'
import { parseCompression } from '../backup/compression'
import { resolveKey } from '../backup/crypto'
import { CheckFailed, executeRestore, type RestoreOutcome } from './execute'
import { describeUrl, planRestore, withDatabase, type PlanInput, type PreparedRestore, type ResolvedTarget } from './plan'

export interface RestoreResult extends Omit<RestoreOutcome, 'report'> {
  restoreId: string
  report: RestoreOutcome['report']
  target: string
  durationMs: number
}

export interface Operator {
  /** The operator's e-mail (checked against ADMIN_EMAILS when it is set). */
  operator?: string | null
  /** Who the face says is calling (OS user, browser session, API token). */
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
    const catalog = await readCatalog(this.deps.backups.storage())
    const url = this.deps.databaseUrl()
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
        .filter((s) => s.status === 'complete' && s.manifest?.type === 'safety')
        .map((s) => ({ setId: s.setId, snapshotTime: s.manifest!.snapshot.time, tables: s.manifest!.tables.length })),
      database: url ? describeUrl(url).database : null,
    }
  }

  private input(r: RestoreRequest | PlanInput): PlanInput {
    return { point: r.point, tables: r.tables, target: r.target as ResolvedTarget }
  }

  prepare(r: RestoreRequest | PlanInput, signal?: AbortSignal): Promise<PreparedRestore> {
    return planRestore(this.input(r), {
      storage: this.deps.backups.storage(),
      keys: this.keys(),
      databaseUrl: this.deps.databaseUrl(),
      signal,
    })
  }

  async plan(r: RestoreRequest | PlanInput): Promise<RestorePlan> {
    return (await this.prepare(r)).plan
  }

  /** Restores are for administrators: when ADMIN_EMAILS is set, the operator must be one of them. */
  private who(o: Operator): string {
    const admins = this.deps.config.adminEmails.map((e) => e.toLowerCase())
    const op = o.operator?.trim().toLowerCase() || null
    if (admins.length) {
      if (!op) throw new OpsError('operator_required', "Restores need the operator's e-mail (one of ADMIN_EMAILS): give it to confirm.")
      if (!admins.includes(op)) throw new OpsError('not_admin', `${op} is not an administrator (ADMIN_EMAILS): restores need one.`)
    }
    return op ? `${op} (${o.actor})` : o.actor
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
    const actor = o.operator ? this.who(o) : o.actor
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
          const newest = chains(await readCatalog(this.deps.backups.storage()))[0]
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
            await dropDatabase(url, scratch).catch((e) =>
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
    try {
      const out = await executeRestore(
        prepared,
        {
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
      const message = scrub((e as Error).message)
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
      if (plan.target.mode === 'replace')
        throw new OpsError(
          (e as OpsError).code ?? 'restore_failed',
          `${cancelled ? 'The restore was cancelled' : `The restore failed: ${message}`} The database is unchanged (everything was rolled back).`,
        )
      throw new OpsError(
        (e as OpsError).code ?? 'restore_failed',
        `${cancelled ? 'The restore was cancelled' : `The restore failed: ${message}`} The database ${plan.target.database} is incomplete and marked so: drop it and restore again.`,
      )
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

  async history(limit = 50): Promise<RestoreRecord[]> {
    const pool = this.deps.store()
    if (!pool) return []
    // Runs whose process is gone (their session lock is free) were interrupted: say so.
    await pool
      .query(
        `UPDATE ops.restores r SET outcome = 'interrupted', finished_at = COALESCE(finished_at, now()),
                error = 'The process running it ended (killed or crashed) before it recorded the outcome. In place, a restore is all or nothing: the tables are either as they were or fully restored; the check report of a new restore shows which.'
          WHERE outcome = 'running'
            AND CASE WHEN pg_try_advisory_lock(hashtext('examforge-ops restore'), hashtext(r.id))
                     THEN pg_advisory_unlock(hashtext('examforge-ops restore'), hashtext(r.id)) ELSE false END`,
      )
      .catch(() => {})
    const { rows } = await pool.query(`SELECT * FROM ops.restores ORDER BY started_at DESC LIMIT $1`, [limit])
    return rows.map(toRecord)
  }

  async record(id: string): Promise<RestoreRecord | null> {
    const pool = this.deps.store()
    if (!pool) throw new OpsError('store_unavailable', 'The ops store is not reachable: restore records cannot be read now.')
    const { rows } = await pool.query(`SELECT * FROM ops.restores WHERE id = $1`, [id])
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
    provenSetId: (r.proven_set_id as string) ?? null,
    durationMs: r.duration_ms === null || r.duration_ms === undefined ? null : Number(r.duration_ms),
    error: (r.error as string) ?? null,
    report: (r.report as RestoreRecord['report']) ?? null,
    plan: (r.plan as RestoreRecord['plan']) ?? null,
  }
}

async function dropDatabase(url: string, name: string): Promise<void> {
  const c = new pg.Client({ connectionString: withDatabase(url, 'postgres') })
  c.on('error', () => {})
  await c.connect()
  try {
    await c.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`)
  } finally {
    await c.end().catch(() => {})
  }
}
