import type pg from 'pg'
import type { ChangeLine } from '../backup/incremental'
import type { Manifest } from '../backup/manifest'
import type { SetReader } from './source'
import { RowApplier } from './apply-row'
import { TableBatch, TempTables, type BatchProfile } from './apply-batch'
import { loadTargetTables, type TargetTables } from './apply-tables'

/**
 * How replay applies the stream. `batched` (the default) collapses each table's changes over a run of
 * transactions and applies them set-based; `row` is the one-statement-per-change path, kept as the
 * reference the tests compare against. Settable by tests and the bench only.
 */
export const replayTuning = {
  mode: 'batched' as 'batched' | 'row',
  /**
   * Changes held before a batch is applied (at the next commit). Measured (bench replay, 1 M changes): 20,000
   * changes and 24 MB replayed as fast as 50,000 and 64 MB (48,200 changes/s both) with ~75 MB less memory;
   * 10,000 and 12 MB as fast again in a back-to-back run, and the CLI's point-in-time restore peaked at 265 MB
   * (309 MB with 20,000 / 24 MB).
   */
  batchChanges: 10_000,
  /** Bytes of values held before a batch is applied, even inside a transaction. */
  batchBytes: 12 * 1024 * 1024,
  /** Where the time of the last replay went (for the bench): reading and collapsing the stream, applying batches. */
  profile: { readMs: 0, applyMs: 0, batches: 0, copyMs: 0, deleteMs: 0, insertMs: 0 } as ReplayProfile,
}

import { ShapeReplay } from './reshape'

export interface ReplayProfile extends BatchProfile {
  /** Reading and collapsing the stream, less the time spent waiting for a batch to be applied. */
  readMs: number
  /** Applying batches (while the next one is read). */
  applyMs: number
  batches: number
}

/**
 * Replays a change stream onto a database, in commit order, stopping exactly where asked.
 *
 * Batched: the changes of a run of transactions are gathered per table and collapsed per key in order
 * (TableBatch: the last state of each key wins; deletes, re-inserts and key changes included), then each
 * table's batch is applied with COPY into a temporary table, one DELETE … USING and one INSERT … SELECT.
 * Tables are applied independently of each other: nothing links them while replay runs (in place,
 * session_replication_role = replica keeps foreign-key and user triggers from firing; into an empty
 * database foreign keys and triggers are created after replay), and a batch ends at a commit, so every
 * table ends each batch as the source committed it. A truncate empties the table within its batch.
 * Tables whose rows have no key (REPLICA IDENTITY FULL, or no primary key) keep the one-row path, in
 * order, matching duplicates one row at a time by their text form (RowApplier).
 */
export class ChangeApplier {
  transactions = 0
  changes = 0
  private tables: TargetTables = new Map()
  private rows!: RowApplier
  private batches = new Map<string, TableBatch>()
  /** Changes of tables replayed one row at a time, in order, until the batch is applied. */
  private queued = new Map<string, ChangeLine[]>()
  private pending = 0
  private pendingBytes = 0
  private temp = new TempTables()
  /** Whether the connection was outside a transaction block (each batch is then its own transaction). */
  private autocommit = false
  private mode: 'batched' | 'row'
  /** The batch being applied while the next one is read (one at a time, on the one connection). */
  private inflight: Promise<void> | null = null
  /** Schema changes the chain carried, applied between changes (see reshape.ts). */
  readonly shapes: ShapeReplay

  constructor(
    private client: pg.ClientBase,
    private scope: Set<string>,
    inPlace = false,
    private tuning = replayTuning,
  ) {
    this.mode = tuning.mode
    this.shapes = new ShapeReplay(client, scope, inPlace)
  }

  async init(): Promise<void> {
    this.tables = await loadTargetTables(this.client)
    this.rows = new RowApplier(this.client, this.scope, this.tables)
    if (this.mode === 'row') return
    const { rows } = await this.client.query<{ temp: boolean }>(`SELECT has_database_privilege(current_database(), 'TEMP') AS temp`)
    if (!rows[0].temp) this.mode = 'row' // no temporary tables here: the one-row path needs none
    // Two statements see the same transaction id only inside a transaction block.
    const a = await this.client.query<{ x: string }>(`SELECT txid_current()::text AS x`)
    const b = await this.client.query<{ x: string }>(`SELECT txid_current()::text AS x`)
    this.autocommit = a.rows[0].x !== b.rows[0].x
  }

  /** Take one change into the current batch (or, in `row` mode, apply it now). */
  private async take(l: ChangeLine): Promise<void> {
    if (l.op === 'begin') return
    if (l.op === 'commit') {
      this.transactions++
      if (this.pending >= this.tuning.batchChanges) await this.flush(false)
      return
    }
    if (this.mode === 'row') {
      await this.rows.apply(l)
      this.changes++
      return
    }
    if (l.op === 'ddl' || l.op === 'create') throw new Error('replay: a schema change line is applied by replay(), between changes')
    if (l.op === 'truncate') {
      for (const [s, n] of l.tables) {
        const k = `${s}.${n}`
        if (!this.scope.has(k)) continue
        const b = this.batchOf(k)
        if (b) b.truncate()
        else this.queue(k, { op: 'truncate', tables: [[s, n]], cascade: l.cascade, restartIdentity: l.restartIdentity })
        this.pending++
      }
      return
    }
    const k = `${l.table[0]}.${l.table[1]}`
    if (!this.scope.has(k)) return
    this.pending++
    const b = this.batchOf(k)
    if (!b) return this.queue(k, l)
    const before = b.bytes
    if (l.op === 'insert') {
      const key = b.keyOf(l.new)
      if (!key) return this.toRows(k, b, l)
      b.insert(l.new, key)
    } else if (l.op === 'update') {
      const oldKey = b.keyOf(l.key)
      const newKey = oldKey && b.keyOf(l.new, oldKey)
      if (!oldKey || !newKey) return this.toRows(k, b, l)
      b.update(oldKey, l.new, newKey)
    } else {
      const key = b.keyOf(l.key)
      if (!key) return this.toRows(k, b, l)
      b.delete(key)
    }
    this.pendingBytes += b.bytes - before
    if (this.pendingBytes >= this.tuning.batchBytes) await this.flush(false)
  }

  /** The table's batch, or null when it is replayed one row at a time. */
  private batchOf(k: string): TableBatch | null {
    let b = this.batches.get(k)
    if (b) return b
    if (this.queued.has(k)) return null
    const t = this.tables.get(k)
    if (!t || !t.key || t.full) {
      this.queued.set(k, [])
      return null
    }
    b = new TableBatch(t)
    this.batches.set(k, b)
    return b
  }

  private queue(k: string, l: ChangeLine): void {
    this.queued.get(k)!.push(l)
  }

  /** A change whose key the target does not recognise: this table is replayed one row at a time from here on. */
  private async toRows(k: string, b: TableBatch, l: ChangeLine): Promise<void> {
    await this.flush(true)
    this.batches.delete(k)
    this.queued.set(k, [l])
  }

  private async inTransaction(fn: () => Promise<void>): Promise<void> {
    if (!this.autocommit) return fn()
    await this.client.query('BEGIN')
    try {
      await fn()
      await this.client.query('COMMIT')
    } catch (e) {
      await this.client.query('ROLLBACK').catch(() => {})
      throw e
    }
  }

  /**
   * Apply every table's batch (tables are independent of each other while replay runs: see the class
   * comment). The batch is handed over and the next one gathered while it applies; the previous one must
   * have finished first (its error, if any, surfaces here). `wait`: return once this one is applied too.
   */
  async flush(wait: boolean): Promise<void> {
    if (this.inflight) {
      const p = this.inflight
      this.inflight = null
      await this.waitFor(p)
    }
    if (!this.pending) return
    const batches: TableBatch[] = []
    for (const [k, b] of this.batches)
      if (!b.empty) {
        batches.push(b)
        this.batches.set(k, new TableBatch(b.t))
      }
    const queued: ChangeLine[][] = []
    for (const [k, lines] of this.queued)
      if (lines.length) {
        queued.push(lines)
        this.queued.set(k, [])
      }
    this.pending = 0
    this.pendingBytes = 0
    const p = this.apply(batches, queued)
    p.catch(() => {}) // awaited by the next flush
    this.inflight = p
    if (wait) {
      this.inflight = null
      await this.waitFor(p)
    }
  }

  private waited = 0
  private async waitFor(p: Promise<void>): Promise<void> {
    const t0 = performance.now()
    try {
      await p
    } finally {
      this.waited += performance.now() - t0
    }
  }

  private async apply(batches: TableBatch[], queued: ChangeLine[][]): Promise<void> {
    const t0 = performance.now()
    const profile = this.tuning.profile
    await this.inTransaction(async () => {
      for (const b of batches) {
        await b.flush(this.client, this.temp, profile)
        this.changes += b.changes
      }
      for (const lines of queued) {
        for (const l of lines) await this.rows.apply(l)
        this.changes += lines.length
      }
    })
    profile.applyMs += performance.now() - t0
    profile.batches++
  }

  /**
   * A schema change the chain carried (a `ddl` or `create` line): everything gathered is applied first, then
   * the staging tables of the old shapes are dropped, the statements run, and what replay knows of the tables
   * is read again (new columns, a new table).
   */
  private async reshape(l: Extract<ChangeLine, { op: 'ddl' | 'create' }>, m: Manifest, reader: SetReader, signal: AbortSignal): Promise<void> {
    await this.flush(true)
    // The staging tables of the old shapes first: one holds the table's row type, which would block an ALTER TABLE.
    if (this.mode === 'batched') await this.inTransaction(() => this.temp.drop(this.client))
    if (!(await this.shapes.apply(l, m, reader, signal))) return
    this.batches.clear()
    this.queued.clear()
    this.tables = await loadTargetTables(this.client)
    this.rows.refresh(this.tables)
  }

  /**
   * Replay the incrementals of a chain, stopping after the last transaction committed at or before stopAfter.
   * A transaction is replayed whole or not at all (its begin decides).
   */
  async replay(reader: SetReader, sets: Manifest[], stopAfter: Date | null, signal: AbortSignal, onTxn: () => void): Promise<void> {
    await this.init()
    const t0 = performance.now()
    this.tuning.profile = { readMs: 0, applyMs: 0, batches: 0, copyMs: 0, deleteMs: 0, insertMs: 0 }
    try {
      outer: for (const m of sets) {
        if (m.type !== 'incremental') continue
        await this.flush(true)
        await this.shapes.beforeSet(m)
        for await (const l of reader.changes(m, signal)) {
          if (l.op === 'begin' && stopAfter && new Date(l.time) > stopAfter) {
            await this.flush(true)
            this.shapes.afterSet(m, stopAfter)
            break outer
          }
          // A carried schema change: what is gathered is applied, then the table takes its new shape before its next change.
          if (l.op === 'ddl' || l.op === 'create') {
            await this.reshape(l, m, reader, signal)
            continue
          }
          await this.take(l)
          if (l.op === 'commit') {
            onTxn()
            if (this.transactions % 200 === 0) signal.throwIfAborted()
          }
        }
        await this.flush(true)
        this.shapes.afterSet(m, stopAfter)
      }
      signal.throwIfAborted()
      await this.flush(true)
    } finally {
      await this.inflight?.catch(() => {})
      if (this.mode === 'batched') await this.inTransaction(() => this.temp.drop(this.client)).catch(() => {})
      this.tuning.profile.readMs = performance.now() - t0 - this.waited
    }
  }
}
