import { join } from 'node:path'
import type pg from 'pg'
import { OpsError } from '../../shared/contract'
import { formatBytes } from '../../shared/format'
import type { AuditLog } from '../audit/audit'
import type { Config } from '../config/config'
import type { JobContext, JobRunner } from '../jobs/runner'
import type { Logger } from '../log/logger'
import { openStorage } from '../storage/open'
import type { BackupStorage } from '../storage/storage'
import { chains, readCatalog, type CatalogSet } from './catalog'
import { ManifestCache, withManifestCache } from './catalog-cache'
import { classifySlots, type SlotUse } from './changes/orphans'
import {
  chainAdvice,
  checkPrerequisites,
  dropSlot,
  fullsOnlyNote,
  ourSlots,
  PUBLICATION,
  slotNameFor,
  syncPublication,
  withClient,
  type Prerequisites,
} from './changes/slot'
import { parseCompression } from './compression'
import { resolveKey, type KeySource } from './crypto'
import { runFullBackup, schemaHash } from './full'
import { captureSchema } from './schema-capture'
import { runIncremental, SchemaChanged, type IncrementalOptions } from './incremental'
import { startingShapes } from './changes/shapes'
import { newSetId, type Manifest } from './manifest'
import { verifySet } from './verify'
import { applyRetention, planRetention, type RetentionPlan } from './retention'
import { orphanedSafetySets } from './safety'

/** Partial writes younger than this may belong to a backup still running elsewhere (the agent): left alone. */
const STALE_MS = 15 * 60_000

export interface BackupResult {
  setId: string
  type: 'full' | 'incremental'
  /** The moment the set restores to (a full's snapshot; an incremental's point). */
  snapshotTime: string
  /** Why an incremental became a full, or why a full could not start a chain. */
  note: string | null
  tables: number
  rows: number
  changes: Manifest['changes']
  rawBytes: number
  storedBytes: number
  durationMs: number
  phasesMs: Record<string, number>
  /** Tables incrementals do not follow (no replica identity): backed up by full backups only. */
  fullsOnly: string[]
  /** Slots that earlier backups which did not finish left behind, dropped before this one. */
  droppedSlots: { name: string; retainedBytes: number }[]
  /** A schema change ended the previous chain: its last set, and the moment up to which it restores. */
  endedChain: { setId: string; coversTo: string; reason: string } | null
}

/** The configured storage with its manifest cache (see catalog-cache.ts), kept in the private data folder. */
export function cachedStorage(config: Config): BackupStorage {
  const storage = openStorage(config)
  return withManifestCache(storage, new ManifestCache(join(config.dataDir, 'catalog-cache'), storage.location))
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
    // With the manifest cache in the data folder: the catalog, the Backups page and the restore planner share it.
    return (this.storage_ ??= cachedStorage(this.deps.config))
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
          const dropped = await this.dropOrphanSlots(catalog, actor).catch((e) => {
            this.deps.log.warn('could not drop the slots of failed backups', { error: (e as Error).message })
            return []
          })
          const r = await run(ctx, catalog)
          if (!dropped.length) return r
          const said = `Dropped ${dropped.length === 1 ? 'the replication slot' : 'the replication slots'} ${dropped.map((d) => `${d.name} (${formatBytes(d.retainedBytes)} of WAL)`).join(', ')} that ${dropped.length === 1 ? 'a backup which did not finish' : 'backups which did not finish'} left behind.`
          return { ...r, droppedSlots: dropped, note: [r.note, said].filter(Boolean).join(' ') }
        } finally {
          this.running = null
          this.followed = undefined // the chain may have moved: read again when next asked
        }
      },
      actor,
    )
    this.running = jobId
    return { jobId }
  }

  /**
   * Drop our slots that no chain uses and no running backup owns (see orphans.ts): each holds WAL back
   * on the database server for nothing. The live chain's slot is named by its sets, so it is never one.
   */
  private async dropOrphanSlots(catalog: CatalogSet[], actor: string): Promise<{ name: string; retainedBytes: number }[]> {
    const url = this.url()
    return withClient(url, async (c) => {
      const dropped: { name: string; retainedBytes: number }[] = []
      for (const s of await classifySlots(c, catalog)) {
        if (!s.orphan) continue
        try {
          await dropSlot(c, s.name)
        } catch (e) {
          this.deps.log.warn('could not drop the slot of a failed backup', { slot: s.name, error: (e as Error).message })
          continue
        }
        dropped.push({ name: s.name, retainedBytes: s.retainedBytes })
        this.deps.log.info('dropped the slot of a backup that did not finish', { slot: s.name, retainedBytes: s.retainedBytes })
        await this.deps.audit.record({
          actor,
          action: 'backup.drop-orphan-slot',
          target: s.name,
          outcome: 'dropped',
          details: { retainedBytes: s.retainedBytes, why: 'used by no backup chain and owned by no running backup' },
        })
      }
      return dropped
    })
  }

  /** The schema hash of the chain incrementals follow (read from the catalog once after each backup). */
  private followed: { schemaHash: string | null; at: number } | undefined = undefined

  /**
   * Whether the schema changed since the chain incrementals follow was taken (false with no chain, or
   * while a backup runs). The agent asks this often, so an incremental follows a migration within a
   * minute: new tables join the chain soon (moments before they join restore without them), and a change
   * the chain cannot carry ends it soon (the moments between its first row of a new shape and the next full
   * are the only ones no chain covers).
   */
  async schemaChangedSinceChain(): Promise<boolean> {
    if (this.running) return false
    // Read again after each backup here, and every two minutes (another process may back up too).
    if (!this.followed || Date.now() - this.followed.at > 2 * 60_000) {
      const chain = chains(await this.list()).find((c) => c.full.snapshot.slot)
      const last = chain?.sets.at(-1)
      this.followed = { schemaHash: last && !last.endsChain ? last.schemaHash : null, at: Date.now() }
    }
    const hash = this.followed.schemaHash
    if (!hash) return false
    return withClient(this.url(), async (c) => {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      try {
        return schemaHash(await captureSchema(c)) !== hash
      } finally {
        await c.query('ROLLBACK').catch(() => {})
      }
    })
  }

  startFull(actor: string): { jobId: string } {
    const o = this.options()
    return this.startJob('backup.full', actor, async (ctx, catalog) =>
      this.full(o, ctx, null, await this.fullStartsChain(o.databaseUrl), catalog),
    )
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
      if (parent.endsChain)
        return this.full(
          o,
          ctx,
          `The last chain ended at a schema change (${parent.endsChain.reason}), so this is a full backup that starts the next one.`,
          true,
        )
      // The publication follows the tables as they are now: new ones with a replica identity are added, and
      // none without one stays published (its updates and deletes would fail in production).
      // Tables the chain does not know yet are left to the incremental, which adds each with a snapshot of its rows.
      const known = new Set(startingShapes(chain.full, parent).map((t) => `${t.schema}.${t.name}`))
      const pub = await withClient(o.databaseUrl, (c) => syncPublication(c, known)).catch((e) => {
        this.deps.log.warn('could not update the publication', { error: (e as Error).message })
        return { leftOut: [] as string[], leftOutKeys: [] as string[] }
      })
      const fullsOnly = pub.leftOut
      const opts = { ...o, full: chain.full, parent, fullsOnly: pub.leftOutKeys, afterStored: faultPoint, keys: this.keys() }
      let m: Manifest
      try {
        m = await incrementalOrLast(opts, ctx)
      } catch (e) {
        if (!(e instanceof SchemaChanged)) throw e
        return this.full(o, ctx, `This is a full backup instead of an incremental: ${e.message}.`, true)
      }
      if (!m.endsChain) {
        const carried = m.schemaChange?.summary.length
          ? `The schema changed and the chain carries the change through (no new full needed): ${m.schemaChange.summary.join('; ')}.`
          : null
        return result(m, [carried, fullsOnly.length ? fullsOnlyNote(fullsOnly) : null].filter(Boolean).join(' ') || null, fullsOnly)
      }
      // The schema changed: the old chain ends with this set (every moment up to its point stays restorable),
      // and a full starts the next one.
      const cut = m.endsChain.cut
      const r = await this.full(
        o,
        ctx,
        `The schema changed since the last backup (${m.endsChain.reason}), so this is a full backup that starts a new chain. ` +
          `The old chain's last incremental ${m.setId} keeps every change up to ${m.snapshot.time}` +
          (cut ? `, just before the first change of the new shape (${cut.time})` : '') +
          `, so every moment up to there stays restorable; moments between then and this full (${'{full}'}) cannot be restored.`,
        true,
      )
      return {
        ...r,
        note: r.note?.replace('{full}', r.snapshotTime) ?? null,
        endedChain: { setId: m.setId, coversTo: m.snapshot.time, reason: m.endsChain.reason },
      }
    })
  }

  /** A full backup; when asked to, it starts a chain (creates the slot incrementals follow) if the database allows it. */
  private async full(
    o: ReturnType<BackupService['options']>,
    ctx: JobContext,
    note: string | null,
    startChain: boolean,
    /** The catalog as the job read it: a live chain in it is closed by a last incremental before its slot goes. */
    catalog: CatalogSet[] = [],
  ): Promise<BackupResult> {
    const setId = newSetId('full')
    let slot: string | null = null
    let why = note
    let fullsOnly: string[] = []
    const mode = this.deps.config.backup.incremental
    if (startChain && mode !== 'off') {
      const pre = await withClient(
        o.databaseUrl,
        async (c) => {
          const p = await checkPrerequisites(c)
          if (p.ok)
            try {
              fullsOnly = (await syncPublication(c)).leftOut
            } catch (e) {
              // No chain rather than no backup: the full goes on, and says what to do.
              p.ok = false
              p.problems.push(
                (e as { code?: string }).code === '55P03'
                  ? `The publication ${PUBLICATION} could not be updated (${(e as Error).message}): another session holds a lock on a table it needs to add (a VACUUM, ANALYZE or index build?); the next backup tries again.`
                  : `The publication ${PUBLICATION} could not be updated (${(e as Error).message}): the backup role must own it and the tables it publishes (or be a superuser); as a superuser run ALTER PUBLICATION ${PUBLICATION} OWNER TO <backup role>;.`,
              )
            }
          return p
        },
        this.timeouts(),
      )
      if (pre.ok) slot = slotNameFor(setId)
      else why = [note, `Incremental backups are not possible yet: ${pre.problems.join(' ')}`].filter(Boolean).join(' ')
      if (pre.ok && fullsOnly.length) why = [why, fullsOnlyNote(fullsOnly)].filter(Boolean).join(' ')
    } else if (mode === 'auto') {
      // Nothing asked for a chain: say what that means for restores, and what one would cost.
      const advice = await withClient(o.databaseUrl, chainAdvice).catch(() => null)
      if (advice) why = [note, advice].filter(Boolean).join(' ')
    }
    const m = await runFullBackup(
      setId,
      { ...o, parallelism: this.deps.config.backup.parallelism ?? undefined, chunkBytes: this.deps.config.backup.chunkBytes, slot },
      ctx,
    )
    if (slot) {
      // The live chain's changes since its last set are still in its slot: read them into a last incremental
      // (it reaches past this full's snapshot, so no moment between the chains goes uncovered), then drop it.
      const older = (await withClient(o.databaseUrl, ourSlots, this.timeouts()).catch(() => [])).filter((s) => s.name !== slot && !s.active)
      const closed = await this.closeChain(o, ctx, catalog, new Set(older.map((s) => s.name)))
      if (closed) why = [why, closed].filter(Boolean).join(' ')
      // A new chain supersedes the older ones: their slots would only hold WAL back. Their sets stay restorable.
      if (older.length)
        await withClient(
          o.databaseUrl,
          async (c) => {
            for (const s of older) await dropSlot(c, s.name).catch(() => {})
          },
          this.timeouts(),
        )
    }
    return result(m, why, fullsOnly)
  }

  /**
   * Close the chain incrementals followed until now (its slot still live, its last set not the chain's end)
   * with a last incremental up to this moment, so a new full does not leave the changes since that set
   * unrestorable. Says what it did, or why it could not (the full stands either way).
   */
  private async closeChain(
    o: ReturnType<BackupService['options']>,
    ctx: JobContext,
    catalog: CatalogSet[],
    /** Our slots other than the new chain's, not in use: the live chain's is among them. */
    older: Set<string>,
  ): Promise<string | null> {
    const chain = chains(catalog).find((c) => c.full.snapshot.slot && older.has(c.full.snapshot.slot))
    const parent = chain?.sets.at(-1)
    if (!chain || !parent || parent.endsChain) return null
    const opts = { ...o, full: chain.full, parent, fullsOnly: parent.fullsOnly, keys: this.keys() }
    try {
      const m = await incrementalOrLast(opts, ctx)
      const n = m.changes?.transactions ?? 0
      return `The previous chain was closed first by a last incremental ${m.setId} (${n} transaction${n === 1 ? '' : 's'} since ${parent.snapshot.time}), so every moment up to ${m.snapshot.time} stays restorable.`
    } catch (e) {
      if (ctx.signal.aborted) throw e
      this.deps.log.warn('could not close the previous chain with a last incremental', { error: (e as Error).message })
      return `The previous chain could not be closed with a last incremental (${(e as Error).message}): moments after its last set, ${parent.snapshot.time}, up to this full cannot be restored.`
    }
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
        outcome: r.deleted.length ? 'deleted' : 'nothing to delete',
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

  /** Our slots, each marked when no chain uses it (read against the catalog; unmarked when storage cannot be read). */
  async slots(): Promise<SlotUse[]> {
    const catalog = await this.list().catch(() => null)
    return withClient(
      this.url(),
      async (c) => (catalog ? classifySlots(c, catalog) : (await ourSlots(c)).map((s) => ({ ...s, orphan: false }))),
      this.timeouts(),
    )
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

/**
 * An incremental; when a table changed shape while it was read, the chain's last one instead, ending just
 * before that change. A change that cannot end the chain (its slot is gone) is thrown as SchemaChanged.
 */
async function incrementalOrLast(opts: IncrementalOptions, ctx: JobContext): Promise<Manifest> {
  try {
    return await runIncremental(newSetId('incremental'), opts, ctx)
  } catch (e) {
    if (!(e instanceof SchemaChanged) || !e.endable) throw e
    return runIncremental(newSetId('incremental'), { ...opts, final: true }, ctx)
  }
}

function result(m: Manifest, note: string | null, fullsOnly: string[] = []): BackupResult {
  return {
    setId: m.setId,
    snapshotTime: m.snapshot.time,
    type: m.type === 'incremental' ? 'incremental' : 'full',
    note,
    tables: m.tables.length,
    rows: m.tables.reduce((n, t) => n + t.rows, 0),
    changes: m.changes,
    rawBytes: m.tables.reduce((n, t) => n + t.rawBytes, 0),
    storedBytes: m.objects.reduce((n, o) => n + o.size, 0),
    durationMs: m.timings.durationMs,
    phasesMs: m.timings.phasesMs ?? {},
    fullsOnly,
    droppedSlots: [],
    endedChain: null,
  }
}

/** OPS_FAULT=after-stored kills the process between storing a set and advancing the slot (tests of crash safety). */
function faultPoint(): void {
  if (process.env.OPS_FAULT === 'after-stored') process.kill(process.pid, 'SIGKILL')
}
