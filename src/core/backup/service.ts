import type pg from 'pg'
import { OpsError } from '../../shared/contract'
import type { AuditLog } from '../audit/audit'
import type { Config } from '../config/config'
import type { JobContext, JobRunner } from '../jobs/runner'
import type { Logger } from '../log/logger'
import { openStorage } from '../storage/open'
import type { BackupStorage } from '../storage/storage'
import { chains, readCatalog, type CatalogSet } from './catalog'
import { checkPrerequisites, dropSlot, ensurePublication, ourSlots, slotNameFor, withClient, type Prerequisites } from './changes/slot'
import { parseCompression } from './compression'
import { resolveKey, type KeySource } from './crypto'
import { runFullBackup } from './full'
import { runIncremental, SchemaChanged } from './incremental'
import { newSetId, type Manifest } from './manifest'
import { verifySet } from './verify'
import { applyRetention, planRetention, type RetentionPlan } from './retention'
import { orphanedSafetySets } from './safety'

/** Partial writes younger than this may belong to a backup still running elsewhere (the agent): left alone. */
const STALE_MS = 15 * 60_000

export interface BackupResult {
  setId: string
  type: 'full' | 'incremental'
  /** Why an incremental became a full, or why a full could not start a chain. */
  note: string | null
  tables: number
  rows: number
  changes: Manifest['changes']
  rawBytes: number
  storedBytes: number
  durationMs: number
  phasesMs: Record<string, number>
}

export class BackupService {
  private storage_: BackupStorage | null = null
  private running: string | null = null

  constructor(
    private deps: {
      config: Config
      databaseUrl: () => string | null
      jobs: JobRunner
      log: Logger
      audit: AuditLog
      /** The ops store, to tell which safety backups a restore still needs (none when unreachable). */
      store?: () => pg.Pool | null
    },
  ) {}

  storage(): BackupStorage {
    return (this.storage_ ??= openStorage(this.deps.config))
  }

  /** The encryption settings, to authenticate manifests with (see authenticity.ts). */
  keys(): KeySource {
    const b = this.deps.config.backup
    return { key: b.encryptionKey, passphrase: b.encryptionPassphrase }
  }

  list(): Promise<CatalogSet[]> {
    return readCatalog(this.storage(), this.keys())
  }

  /** Safety backups no restore needs (their restore failed or was cancelled), with why. */
  orphanedSafety(catalog: CatalogSet[]): Promise<Map<string, string>> {
    return orphanedSafetySets(this.deps.store?.() ?? null, catalog)
  }

  private url(): string {
    const url = this.deps.databaseUrl()
    if (!url) throw new OpsError('no_database', 'No database to back up: set DATABASE_URL.')
    return url
  }

  /** Connect timeout for every connection a backup opens (DB_CONNECT_TIMEOUT_S). */
  private timeouts() {
    return { connectTimeoutMs: this.deps.config.connectTimeoutMs }
  }

  prerequisites(): Promise<Prerequisites> {
    return withClient(this.url(), checkPrerequisites, this.timeouts())
  }

  /** Remove sets that never got a manifest and stale partial uploads (a killed or failed run). */
  async cleanup(olderThanMs = STALE_MS, catalog?: CatalogSet[]): Promise<{ removedSets: string[]; removedPartials: number }> {
    const storage = this.storage()
    const removedSets: string[] = []
    for (const s of catalog ?? (await readCatalog(storage))) {
      if (s.status !== 'incomplete' || Date.now() - new Date(s.lastModified).getTime() < olderThanMs) continue
      const keys = (await storage.list(`sets/${s.setId}/`)).map((o) => o.key)
      await storage.delete(keys)
      removedSets.push(s.setId)
    }
    const { removed } = await storage.cleanupIncomplete(olderThanMs)
    if (removedSets.length || removed) this.deps.log.info('removed incomplete backups', { sets: removedSets, partials: removed })
    return { removedSets, removedPartials: removed }
  }

  private options() {
    const b = this.deps.config.backup
    // Configuration errors are reported when the backup is asked for, not minutes into it.
    return {
      databaseUrl: this.url(),
      storage: this.storage(),
      compression: parseCompression(b.compression),
      encryption: resolveKey({ key: b.encryptionKey, passphrase: b.encryptionPassphrase }),
      serverSideEncryption: b.s3Sse,
      lockTimeoutMs: b.lockTimeoutMs,
      connectTimeoutMs: this.deps.config.connectTimeoutMs,
      log: this.deps.log,
    }
  }

  private startJob(
    kind: 'backup.full' | 'backup.incremental',
    actor: string,
    run: (ctx: JobContext, catalog: CatalogSet[]) => Promise<BackupResult>,
  ): { jobId: string } {
    if (this.running) throw new OpsError('backup_running', `A backup is already running (job ${this.running}); wait for it or cancel it.`)
    const jobId = this.deps.jobs.start(
      kind,
      { storage: this.storage().location },
      async (_i, ctx) => {
        try {
          // One read of the catalog serves the cleanup and the run (the chain to follow).
          const catalog = await readCatalog(this.storage(), this.keys())
          await this.cleanup(STALE_MS, catalog).catch((e) =>
            this.deps.log.warn('cleanup before the backup failed', { error: (e as Error).message }),
          )
          return await run(ctx, catalog)
        } finally {
          this.running = null
        }
      },
      actor,
    )
    this.running = jobId
    return { jobId }
  }

  startFull(actor: string): { jobId: string } {
    const o = this.options()
    return this.startJob('backup.full', actor, async (ctx) => this.full(o, ctx, null, await this.fullStartsChain(o.databaseUrl)))
  }

  /**
   * A slot holds WAL back on the database server until it is read, so a full backup starts a chain only
   * when incrementals are in use: BACKUP_INCREMENTAL=on, incrementals scheduled, or a chain already being
   * followed (a new full then moves it forward). A full asked for on its own creates no slot.
   */
  private async fullStartsChain(url: string): Promise<boolean> {
    const b = this.deps.config.backup
    if (b.incremental === 'off') return false
    if (b.incremental === 'on' || b.incrementalEveryMs) return true
    return (await withClient(url, ourSlots, this.timeouts())).length > 0
  }

  startIncremental(actor: string): { jobId: string } {
    const o = this.options()
    return this.startJob('backup.incremental', actor, async (ctx, catalog) => {
      const chain = chains(catalog).find((c) => c.full.snapshot.slot)
      if (!chain) return this.full(o, ctx, 'There was no backup chain yet, so this is a full backup that starts one.', true)
      const parent = chain.sets[chain.sets.length - 1]
      const setId = newSetId('incremental')
      try {
        const m = await runIncremental(setId, { ...o, parent, afterStored: faultPoint }, ctx)
        return result(m, null)
      } catch (e) {
        if (!(e instanceof SchemaChanged)) throw e
        return this.full(o, ctx, `This is a full backup instead of an incremental: ${e.message}.`, true)
      }
    })
  }

  /** A full backup; when asked to, it starts a chain (creates the slot incrementals follow) if the database allows it. */
  private async full(
    o: ReturnType<BackupService['options']>,
    ctx: JobContext,
    note: string | null,
    startChain: boolean,
  ): Promise<BackupResult> {
    const setId = newSetId('full')
    let slot: string | null = null
    let why = note
    if (startChain && this.deps.config.backup.incremental !== 'off') {
      const pre = await withClient(
        o.databaseUrl,
        async (c) => {
          const p = await checkPrerequisites(c)
          if (p.ok) await ensurePublication(c)
          return p
        },
        this.timeouts(),
      )
      if (pre.ok) slot = slotNameFor(setId)
      else why = [note, `Incremental backups are not possible yet: ${pre.problems.join(' ')}`].filter(Boolean).join(' ')
    }
    const m = await runFullBackup(
      setId,
      { ...o, parallelism: this.deps.config.backup.parallelism ?? undefined, chunkBytes: this.deps.config.backup.chunkBytes, slot },
      ctx,
    )
    if (slot) {
      // A new chain supersedes the older ones: their slots would only hold WAL back. Their sets stay restorable.
      await withClient(
        o.databaseUrl,
        async (c) => {
          for (const s of await ourSlots(c)) if (s.name !== slot && !s.active) await dropSlot(c, s.name).catch(() => {})
        },
        this.timeouts(),
      )
    }
    return result(m, why)
  }

  /** What retention would delete now (a preview: nothing is touched). */
  async retentionPlan(): Promise<RetentionPlan> {
    const sets = await this.list()
    return planRetention(
      sets,
      { retainDays: this.deps.config.backupRetainDays, keepFulls: this.deps.config.backup.keepFulls },
      Date.now(),
      undefined,
      await this.orphanedSafety(sets),
    )
  }

  /** Apply retention: really deletes the objects. Needs "delete" typed back (or --yes in the CLI). */
  async prune(confirm: string, actor: string): Promise<RetentionPlan & { deleted: string[]; objects: number }> {
    if (confirm !== 'delete') throw new OpsError('not_confirmed', 'Type "delete" to confirm deleting the listed backups.')
    if (this.running) throw new OpsError('backup_running', 'A backup is running; prune when it is done.')
    const plan = await this.retentionPlan()
    try {
      const r = await applyRetention(this.storage(), plan)
      await this.deps.audit.record({
        actor,
        action: 'backup.prune',
        target: this.storage().location,
        outcome: 'deleted',
        details: { sets: r.deleted, bytes: plan.bytesFreed },
      })
      return { ...plan, ...r }
    } catch (e) {
      await this.deps.audit.record({
        actor,
        action: 'backup.prune',
        target: this.storage().location,
        outcome: 'failed',
        details: { error: (e as Error).message },
      })
      throw e
    }
  }

  startVerify(setId: string, actor: string): { jobId: string } {
    const jobId = this.deps.jobs.start('backup.verify', { setId }, (_i, ctx) => verifySet(this.storage(), setId, this.keys(), ctx), actor)
    return { jobId }
  }

  slots() {
    return withClient(this.url(), ourSlots, this.timeouts())
  }

  /** Drop a slot of ours: its chain ends, and the next backup is a full. Needs the slot's name typed back. */
  async dropSlot(name: string, confirm: string, actor: string): Promise<void> {
    if (confirm !== name) throw new OpsError('not_confirmed', `Type the slot's name (${name}) to confirm dropping it.`)
    const slots = await this.slots()
    if (!slots.find((s) => s.name === name))
      throw new OpsError('unknown_slot', `There is no slot "${name}" of ExamForge Ops in this database.`)
    try {
      await withClient(this.url(), (c) => dropSlot(c, name), this.timeouts())
      await this.deps.audit.record({ actor, action: 'backup.drop-slot', target: name, outcome: 'dropped' })
    } catch (e) {
      await this.deps.audit.record({
        actor,
        action: 'backup.drop-slot',
        target: name,
        outcome: 'failed',
        details: { error: (e as Error).message },
      })
      throw new OpsError('drop_failed', `The slot could not be dropped: ${(e as Error).message}`)
    }
  }
}

function result(m: Manifest, note: string | null): BackupResult {
  return {
    setId: m.setId,
    type: m.type === 'incremental' ? 'incremental' : 'full',
    note,
    tables: m.tables.length,
    rows: m.tables.reduce((n, t) => n + t.rows, 0),
    changes: m.changes,
    rawBytes: m.tables.reduce((n, t) => n + t.rawBytes, 0),
    storedBytes: m.objects.reduce((n, o) => n + o.size, 0),
    durationMs: m.timings.durationMs,
    phasesMs: m.timings.phasesMs ?? {},
  }
}

/** OPS_FAULT=after-stored kills the process between storing a set and advancing the slot (tests of crash safety). */
function faultPoint(): void {
  if (process.env.OPS_FAULT === 'after-stored') process.kill(process.pid, 'SIGKILL')
}
