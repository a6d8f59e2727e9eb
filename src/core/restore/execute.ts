import os from 'node:os'
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import { CopyIn } from './copy-in'
import { BlockPool } from '../backup/copy-out'
import { OpsError } from '../../shared/contract'
import { countOnlyReason, type CheckReport } from '../../shared/restore'
import type { JobContext } from '../jobs/runner'
import type { Logger } from '../log/logger'
import { connect, runFullBackup } from '../backup/full'
import { qi } from '../db/sql'
import type { CompressionParams } from '../backup/compression'
import type { EncryptionParams } from '../backup/crypto'
import { newSetId } from '../backup/manifest'
import { ChangeApplier } from './apply'
import { checkRestore, digestTable, tableCheck } from './check'
import { combineDigests } from '../backup/digest'
import { describeUrl, relName as rel, splitKey, tableKey, withDatabase, type PreparedRestore } from './plan'
import { foreignKeyInTwo, foreignKeys, keyAsIndex, partitionParents, rootOf, splitPost, statementTable } from './schema-graph'
import { runPool } from './pool'
import { describeWait, watchLockWaits } from '../backup/lock-wait'

export interface ExecuteDeps {
  /** Where the safety backup goes, written like any set. */
  safety: {
    storage: import('../storage/storage').BackupStorage
    compression: CompressionParams
    encryption: { key: Buffer; params: EncryptionParams } | null
    serverSideEncryption: string | null
  }
  parallelism?: number
  /** Tables bigger than this are checked in page ranges over parallel connections (as backups chunk them). */
  chunkBytes?: number
  /** DB_CONNECT_TIMEOUT_S, for every connection to the target. */
  connectTimeoutMs?: number
  /**
   * Told as soon as the safety backup is stored, before any row is replaced: the restore's record then
   * points to it whatever happens next (a failure, a cancel, a killed process).
   */
  onSafetySet?: (setId: string) => Promise<void>
  log: Logger
}

/**
 * What a restore has done to its target so far, filled in as it goes: when it fails, the message says
 * what really remains (nothing, an empty new database, or one marked incomplete).
 */
export interface TargetState {
  /** A new database was created. */
  created: boolean
  /** The database's comment marks it incomplete (schema or data may be in it). */
  marked: boolean
  /** In place: the safety backup stored before anything was replaced. */
  safetySetId: string | null
  /** The database it had created was dropped again after a cancel or a failure. */
  dropped: boolean
}

export const freshTargetState = (): TargetState => ({ created: false, marked: false, safetySetId: null, dropped: false })

export interface RestoreOutcome {
  report: CheckReport
  safetySetId: string | null
  mode: 'replace' | 'load'
  rows: number
  bytes: number
  transactions: number
  phasesMs: Record<string, number>
}

export class CheckFailed extends OpsError {
  constructor(readonly report: CheckReport) {
    const bad = [
      ...report.tables.filter((t) => !t.ok).map((t) => `${t.table}: ${t.problem}`),
      ...report.foreignKeys.filter((f) => !f.ok).map((f) => `${f.constraint}: ${f.note}`),
      ...report.sequences.filter((s) => !s.ok).map((s) => `${s.sequence} is ${s.value}, below ${s.maxInUse}`),
    ]
    super('check_failed', `The restored data did not pass its check (${bad.slice(0, 3).join('; ')}${bad.length > 3 ? '; ...' : ''}).`)
  }
}

/** Run a restore that has been planned and confirmed. Objects are checked first: a damaged one stops it before the target is touched. */
export async function executeRestore(
  p: PreparedRestore,
  deps: ExecuteDeps,
  ctx: JobContext,
  state: TargetState = freshTargetState(),
): Promise<RestoreOutcome> {
  if (!p.plan.ok)
    throw new OpsError(
      'preflight_failed',
      `The restore cannot start: ${p.plan.preflight
        .filter((c) => c.status === 'failed')
        .map((c) => c.detail)
        .join(' ')}`,
    )
  const phasesMs: Record<string, number> = {}
  let mark = performance.now()
  const phase = (name: string) => {
    phasesMs[name] = Math.round(performance.now() - mark)
    mark = performance.now()
  }
  const readBytes = p.plan.bytesToRead
  let checked = 0
  await p.reader.verifyObjects(ctx.signal, (n) => {
    checked += n
    if (checked % (16 * 1024 * 1024) < n)
      ctx.onProgress({ phase: 'checking backup objects', done: checked, total: readBytes, unit: 'bytes' })
  })
  phase('verify objects')
  const run = p.plan.target.mode === 'replace' ? replace : load
  const out = await run(p, deps, ctx, phase, state)
  return { ...out, phasesMs }
}

interface Progress {
  bytes: number
  rows: number
  total: number
  tablesDone: number
}

function reporter(p: PreparedRestore, ctx: JobContext) {
  const total = p.scope.reduce((n, k) => n + (p.sets[0].tables.find((t) => tableKey(t) === k)?.rawBytes ?? 0), 0)
  const st: Progress = { bytes: 0, rows: 0, total, tablesDone: 0 }
  const left = new Map(p.scope.map((k) => [k, p.sets[0].tables.find((t) => tableKey(t) === k)?.chunks.length ?? 0]))
  return {
    st,
    chunkDone(table: string, rows: number, bytes: number) {
      st.rows += rows
      st.bytes += bytes
      const n = (left.get(table) ?? 1) - 1
      left.set(table, n)
      if (n <= 0) st.tablesDone++
      ctx.onProgress({
        phase: `loading ${table}`,
        done: Math.min(st.bytes, total),
        total,
        unit: 'bytes',
        message: `${st.tablesDone}/${p.scope.length} tables, ${st.rows.toLocaleString('en-US')} rows`,
      })
    },
  }
}

// COPY ... FREEZE (a one-chunk table truncated and loaded in one transaction, so its rows need no hint bits
// when the check reads them back) was measured with bench restore and did not help beyond the noise: not used.
async function copyChunk(c: pg.ClientBase, p: PreparedRestore, table: string, chunkKey: string, signal: AbortSignal): Promise<void> {
  const tm = p.sets[0].tables.find((t) => tableKey(t) === table)!
  const cols = tm.columns.map(qi).join(', ')
  // Decompressed into a few reused blocks that the COPY hands back once written (no buffer per write to collect).
  const pool = new BlockPool()
  const source = await p.reader.open(p.sets[0], chunkKey, signal, pool)
  await pipeline(source, c.query(new CopyIn(`COPY ${rel(table)} (${cols}) FROM STDIN`, pool)), { signal })
}

/** The last applied set's sequence values, raised to the largest value in use (and, in place, never lowered). */
async function setSequences(c: pg.ClientBase, p: PreparedRestore, inPlace: boolean): Promise<void> {
  const last = p.sets[p.sets.length - 1]
  const { rows } = await c.query<{ seq: string; key: string; incr: string; owners: { tbl: string; col: string; tkey: string }[] | null }>(
    `SELECT s.oid::regclass::text AS seq, n.nspname || '.' || s.relname AS key, q.seqincrement::text AS incr,
            (SELECT json_agg(json_build_object('tbl', c.oid::regclass::text, 'col', a.attname, 'tkey', cn.nspname || '.' || c.relname))
               FROM pg_depend d JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace cn ON cn.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
              WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) AS owners
       FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace JOIN pg_sequence q ON q.seqrelid = s.oid WHERE s.relkind = 'S'`,
  )
  const scope = new Set(p.scope)
  const parents = partitionParents(p.schema.pre)
  const roots = new Set(p.scope.map((k) => rootOf(k, parents)))
  for (const s of rows) {
    const backed = last.sequences.find((x) => `${x.schema}.${x.name}` === s.key)
    const owned = (s.owners ?? []).filter((o) => scope.has(o.tkey) || roots.has(o.tkey))
    // A partial restore moves only the sequences of the tables it restored.
    if (!p.plan.wholeDatabase && !owned.length) continue
    if (!backed && !owned.length) continue
    const ascending = BigInt(s.incr) > 0n
    const candidates: { v: bigint; called: boolean }[] = []
    if (backed) candidates.push({ v: BigInt(backed.value), called: backed.isCalled })
    for (const o of owned) {
      const { rows: m } = await c.query(`SELECT max(${qi(o.col)})::text AS m FROM ${o.tbl}`)
      if (m[0].m !== null) candidates.push({ v: BigInt(m[0].m), called: true })
    }
    if (inPlace) {
      const { rows: cur } = await c.query(`SELECT last_value::text AS v, is_called FROM ${s.seq}`)
      candidates.push({ v: BigInt(cur[0].v), called: cur[0].is_called })
    }
    if (!candidates.length) continue
    const next = (x: { v: bigint; called: boolean }) => (x.called ? x.v + (ascending ? 1n : -1n) : x.v)
    const best = candidates.reduce((a, b) => (ascending ? (next(b) > next(a) ? b : a) : next(b) < next(a) ? b : a))
    await c.query(`SELECT setval($1::regclass, $2::bigint, $3)`, [s.seq, best.v.toString(), best.called])
  }
}

/**
 * In place: one transaction. SHARE locks keep writers out; the safety backup reads the current rows through
 * this transaction's snapshot; then the tables are emptied, loaded, the changes replayed, sequences set and
 * everything checked before COMMIT. A failure, a cancel or a killed process at any moment rolls it all back.
 */
async function replace(p: PreparedRestore, deps: ExecuteDeps, ctx: JobContext, phase: (n: string) => void, state: TargetState) {
  const c = await connect(p.targetUrl, 'restore', deps.connectTimeoutMs)
  const rep = reporter(p, ctx)
  let safetySetId: string | null = null
  let applier: ChangeApplier | null = null
  try {
    await c.query('BEGIN')
    await c.query(`SET LOCAL lock_timeout = '30s'`)
    ctx.onProgress({ phase: 'locking tables', done: 0, total: null, unit: 'steps' })
    // While it queues, the progress says who it waits for.
    const watch = watchLockWaits(
      p.targetUrl,
      [(c as unknown as { processID: number }).processID],
      (w) =>
        ctx.onProgress({
          phase: w ? 'waiting for a lock' : 'locking tables',
          done: 0,
          total: null,
          unit: 'steps',
          message: w ? describeWait(w) : undefined,
        }),
      { connectTimeoutMs: deps.connectTimeoutMs },
    )
    try {
      await c.query(`LOCK TABLE ${p.scope.map(rel).join(', ')} IN SHARE MODE`)
    } catch (e) {
      if ((e as { code?: string }).code === '55P03') {
        const w = watch.last()
        throw new OpsError(
          'lock_timeout',
          `Another session kept a lock on the tables for 30 s (${w ? `pid ${w.pid}: ${w.query || 'no statement'}` : 'a migration or a long transaction?'}): try again when it is done.`,
        )
      }
      throw e
    } finally {
      await watch.stop()
    }
    await c.query(`SET LOCAL lock_timeout = 0`)
    const { rows: snap } = await c.query(`SELECT pg_export_snapshot() AS name, pg_current_wal_lsn()::text AS lsn, now() AS time`)
    ctx.signal.throwIfAborted()
    phase('lock')
    safetySetId = newSetId('safety')
    ctx.onProgress({ phase: 'safety backup of the tables being replaced', done: 0, total: null, unit: 'bytes' })
    await runFullBackup(
      safetySetId,
      {
        databaseUrl: p.targetUrl,
        storage: deps.safety.storage,
        compression: deps.safety.compression,
        encryption: deps.safety.encryption,
        serverSideEncryption: deps.safety.serverSideEncryption,
        tables: p.scope.map((k) => ({ schema: splitKey(k)[0], name: splitKey(k)[1] })),
        externalSnapshot: { name: snap[0].name, lsn: snap[0].lsn, time: new Date(snap[0].time).toISOString() },
        type: 'safety',
        parallelism: deps.parallelism,
        connectTimeoutMs: deps.connectTimeoutMs,
        log: deps.log,
      },
      { signal: ctx.signal, onProgress: (pr) => ctx.onProgress({ ...pr, phase: `safety backup: ${pr.phase}` }) },
    )
    state.safetySetId = safetySetId
    await deps.onSafetySet?.(safetySetId)
    phase('safety backup')
    await c.query('SET LOCAL session_replication_role = replica')
    await c.query('SAVEPOINT empty')
    try {
      await c.query(`TRUNCATE ONLY ${p.scope.map(rel).join(', ')}`)
    } catch {
      // Referenced from a table that is not restored: delete instead (foreign keys are checked before commit).
      await c.query('ROLLBACK TO SAVEPOINT empty')
      for (const k of p.scope) await c.query(`DELETE FROM ONLY ${rel(k)}`)
    }
    phase('empty tables')
    for (const k of p.scope) {
      const tm = p.sets[0].tables.find((t) => tableKey(t) === k)!
      for (const ch of tm.chunks) {
        ctx.signal.throwIfAborted()
        await copyChunk(c, p, k, ch.key, ctx.signal)
        rep.chunkDone(k, ch.rows, ch.rawBytes)
      }
    }
    phase('load')
    applier = new ChangeApplier(c, new Set(p.scope), true)
    await replayChanges(applier, p, ctx)
    phase('replay')
    await setSequences(c, p, true)
    ctx.onProgress({ phase: 'checking the restored data', done: 0, total: p.scope.length, unit: 'tables' })
    let n = 0
    const report = await checkRestore(c, {
      scope: p.scope,
      full: p.sets[0],
      compareDigests: p.sets.length === 1,
      rowsAfter: p.rowsAfter,
      columnsAfter: p.columnsAfter,
      signal: ctx.signal,
      onTable: () => ctx.onProgress({ phase: 'checking the restored data', done: ++n, total: p.scope.length, unit: 'tables' }),
    })
    report.countOnly = countOnlyReason(p.plan.point, p.sets.length)
    phase('check')
    if (!report.ok) throw new CheckFailed(report)
    ctx.signal.throwIfAborted()
    await c.query('COMMIT')
    phase('commit')
    return { report, safetySetId, mode: 'replace' as const, rows: rep.st.rows, bytes: rep.st.bytes, transactions: applier.transactions }
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {})
    throw e
  } finally {
    await c.end().catch(() => {})
  }
}

async function replayChanges(applier: ChangeApplier, p: PreparedRestore, ctx: JobContext) {
  if (p.sets.length < 2) return
  ctx.onProgress({ phase: 'replaying changes', done: 0, total: p.plan.transactions, unit: 'rows' })
  let n = 0
  await applier.replay(p.reader, p.sets, p.stopAfter, ctx.signal, () => {
    if (++n % 500 === 0)
      ctx.onProgress({ phase: 'replaying changes', done: n, total: p.plan.transactions, unit: 'rows', message: `${n} transactions` })
  })
}

const MARK = 'examforge-ops restore'

/**
 * A key, index or foreign-key statement of the load's pool. Two that lock the same tables in opposite order (or
 * a user's event trigger writing to a table while another session builds one of its indexes) may deadlock:
 * PostgreSQL rolls the loser back, and it runs again.
 */
async function runDdl(w: pg.ClientBase, sql: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await w.query(sql)
      return
    } catch (e) {
      if ((e as { code?: string }).code !== '40P01' || attempt >= 5) throw e
    }
  }
}

type DigestTask = { kind: 'digest'; table: string; where: string; pages: number }

/**
 * Tables' row digests read back over the pool: a table is sized when it is ready, then read whole or, when
 * bigger than a chunk (PostgreSQL 14+: TID range scans), in page ranges that add up (the digest is a sum).
 */
class DigestQueue {
  private tasks: DigestTask[] = []
  private parts = new Map<string, string[]>()
  private partsLeft = new Map<string, number>()

  constructor(
    private p: PreparedRestore,
    chunkBytes?: number,
  ) {
    this.rangePages = Math.max(1, Math.floor((chunkBytes ?? 64 * 1024 * 1024) / 8192))
  }

  private rangePages: number

  next(): DigestTask | null {
    return this.tasks.shift() ?? null
  }

  /** Size a table that is ready and queue its parts; returns how many. */
  async add(c: pg.ClientBase, table: string): Promise<number> {
    const { rows } = await c.query<{ pages: string; num: number }>(
      `SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int)::bigint AS pages,
              current_setting('server_version_num')::int AS num`,
      [rel(table)],
    )
    const pages = Number(rows[0].pages)
    const out: DigestTask[] = []
    if (rows[0].num < 140000 || pages <= this.rangePages) out.push({ kind: 'digest', table, where: '', pages })
    else
      for (let from = 0; from < pages; from += this.rangePages)
        out.push({
          kind: 'digest',
          table,
          where: ` WHERE ctid >= '(${from},0)'::tid${from + this.rangePages >= pages ? '' : ` AND ctid < '(${from + this.rangePages},0)'::tid`}`,
          pages: Math.min(this.rangePages, pages - from),
        })
    this.partsLeft.set(table, out.length)
    this.tasks.push(...out)
    return out.length
  }

  /** One part; true when it was the table's last. */
  async run(c: pg.ClientBase, t: DigestTask, signal: AbortSignal): Promise<boolean> {
    // The table's columns at the chosen moment (a carried schema change may have added or dropped some).
    const columns = this.p.columnsAfter.get(t.table) ?? this.p.sets[0].tables.find((x) => tableKey(x) === t.table)!.columns
    const d = await digestTable(c, t.table, columns, signal, t.where)
    this.parts.set(t.table, [...(this.parts.get(t.table) ?? []), d.value()])
    const left = (this.partsLeft.get(t.table) ?? 1) - 1
    this.partsLeft.set(t.table, left)
    return left === 0
  }

  value(table: string): string {
    return combineDigests(this.parts.get(table) ?? [])
  }
}

/**
 * Into an empty or new database: the schema first, then the data over parallel connections, keys and
 * indexes, the change stream, sequences, then foreign keys, triggers and policies, then the check. Not one
 * transaction (that would forbid the parallel load): until it finishes the database is marked incomplete.
 */
async function load(p: PreparedRestore, deps: ExecuteDeps, ctx: JobContext, phase: (n: string) => void, state: TargetState) {
  const where = describeUrl(p.targetUrl)
  if (p.plan.target.createsDatabase) {
    const m = await connect(withDatabase(p.targetUrl, 'postgres'), 'restore', deps.connectTimeoutMs)
    try {
      await m.query(`CREATE DATABASE ${qi(where.database)}`)
      state.created = true
    } finally {
      await m.end().catch(() => {})
    }
  }
  const comment = (c: pg.ClientBase, text: string) =>
    c.query(`COMMENT ON DATABASE ${qi(where.database)} IS '${`${MARK}: ${text}`.replace(/'/g, "''")}'`)
  const c = await connect(p.targetUrl, 'restore', deps.connectTimeoutMs)
  const parallelism = deps.parallelism ?? Math.max(2, Math.min(6, os.cpus().length + 1))
  const workers: pg.Client[] = []
  const rep = reporter(p, ctx)
  try {
    await comment(
      c,
      `INCOMPLETE: a restore of ${p.plan.point.label} started ${new Date().toISOString()} and has not finished. Drop this database and restore again.`,
    )
    state.marked = true
    ctx.onProgress({ phase: 'creating the schema', done: 0, total: p.schema.pre.length, unit: 'steps' })
    await c.query('SET check_function_bodies = off')
    await c.query('BEGIN')
    for (const st of p.schema.pre) await c.query(st)
    await c.query('COMMIT')
    phase('schema')

    for (let i = 0; i < parallelism; i++) {
      const w = await connect(p.targetUrl, `restore-${i}`, deps.connectTimeoutMs)
      // Measured (bench restore, variants): maintenance_work_mem 1GB with max_parallel_maintenance_workers 0, and
      // synchronous_commit on, did not change the time beyond the machine's noise; these stay as they were.
      await w.query(`SET synchronous_commit = off; SET maintenance_work_mem = '256MB'`)
      workers.push(w)
    }
    // Data, keys, indexes, the check and (with no change stream to replay) foreign keys on one pool, each task as
    // soon as what it needs is done, so both cores stay busy to the end. Per table: its chunks (biggest first over
    // all tables); then its indexes, its primary and unique keys built as plain unique indexes (keyAsIndex) beside
    // each other; then the keys made from their indexes (a quick catalog change); then its rows and digest read
    // back while other tables still load, and, once both its tables are complete, each foreign key (PostgreSQL
    // validates it as it is added).
    const post = splitPost(p.schema.post)
    const parents = partitionParents(p.schema.pre)
    const partitioned = new Set([...parents.keys(), ...parents.values()])
    const chunks = p.scope.flatMap((k) =>
      (p.sets[0].tables.find((t) => tableKey(t) === k)?.chunks ?? []).map((ch) => ({
        kind: 'chunk' as const,
        table: k,
        key: ch.key,
        rows: ch.rows,
        bytes: ch.rawBytes,
      })),
    )
    chunks.sort((a, b) => b.bytes - a.bytes)
    const chunksLeft = new Map<string, number>()
    for (const ch of chunks) {
      const root = rootOf(ch.table, parents)
      chunksLeft.set(ch.table, (chunksLeft.get(ch.table) ?? 0) + 1)
      if (root !== ch.table) chunksLeft.set(root, (chunksLeft.get(root) ?? 0) + 1)
    }
    const bump = (m: Map<string, number>, k: string | null, by: number) => {
      if (k) m.set(k, (m.get(k) ?? 0) + by)
    }
    type IndexTask = { kind: 'index'; st: string; table: string | null; exclusive: boolean }
    type AttachTask = { kind: 'attach'; st: string; table: string }
    const indexes: IndexTask[] = []
    const attaches: AttachTask[] = []
    for (const st of post.indexes) {
      const split = keyAsIndex(st, partitioned)
      if (split) {
        indexes.push({ kind: 'index', st: split.index, table: split.table, exclusive: false })
        attaches.push({ kind: 'attach', st: split.attach, table: split.table })
      } else indexes.push({ kind: 'index', st, table: statementTable(st), exclusive: st.startsWith('ALTER TABLE ') })
    }
    const loaded = (t: string | null) => !t || !chunksLeft.get(t)
    // Per table (and partitioned root): index statements not yet finished, those that need the table alone
    // (ALTER TABLE … ADD CONSTRAINT left whole), and keys still to attach.
    const indexesLeft = new Map<string, number>()
    const exclusiveLeft = new Map<string, number>()
    const attachLeft = new Map<string, number>()
    for (const x of indexes) {
      bump(indexesLeft, x.table, 1)
      if (x.exclusive) bump(exclusiveLeft, x.table, 1)
    }
    for (const a of attaches) bump(attachLeft, a.table, 1)
    // Replay touches the tables its changes name, and creates those that joined the chain (carried schema changes):
    // those are checked after the replay; every other table as soon as its data is in.
    const inFull = new Set(p.sets[0].tables.map(tableKey))
    const replayed = new Set([
      ...p.sets.slice(1).flatMap((m) => m.changes?.tables ?? []),
      ...p.sets.slice(1).flatMap((m) => (m.created ?? []).map((x) => x.table)),
      ...p.scope.filter((k) => !inFull.has(k) || p.columnsAfter.has(k)),
    ])
    const toCheck = p.scope.filter((k) => !replayed.has(k))
    const free = (k: string) => !exclusiveLeft.get(k) && !exclusiveLeft.get(rootOf(k, parents))
    const complete = (k: string) =>
      loaded(k) && !indexesLeft.get(k) && !indexesLeft.get(rootOf(k, parents)) && !attachLeft.get(k) && !attachLeft.get(rootOf(k, parents))
    // A table is read back only once its keys and indexes are all in: a statement that builds them can still
    // change its rows (an event trigger does, in the check's own test), and a read begun before would miss it.
    const readable = (k: string) => complete(k) && free(k)
    // Foreign keys join the pool only when nothing is replayed after the load (replay runs without them) and
    // neither table is partitioned; a key to a table outside the restore comes back NOT VALID (it cannot hold).
    const restored = new Set(p.scope.map((k) => rootOf(k, parents)))
    const partial = new Set(
      foreignKeys(p.schema.post)
        .filter((f) => !restored.has(f.table) || !restored.has(f.references))
        .map((f) => f.statement),
    )
    const fkSql = (st: string) => (partial.has(st) && !p.plan.wholeDatabase ? st.replace(/;\s*$/, ' NOT VALID;') : st)
    // Each key in two steps where it can (foreignKeyInTwo): added NOT VALID, then validated, so keys of different
    // tables that point at the same one (every table's key to its users, say) validate side by side.
    type FkTask = { kind: 'fk'; statement: string; st: string; validate: string | null; table: string; references: string }
    const fks: FkTask[] =
      p.sets.length === 1
        ? foreignKeys(post.late)
            .filter((f) => !partitioned.has(f.table) && !partitioned.has(f.references))
            .map((f) => {
              const two = foreignKeyInTwo(fkSql(f.statement))
              return {
                kind: 'fk' as const,
                statement: f.statement,
                st: two?.add ?? fkSql(f.statement),
                validate: two?.validate ?? null,
                table: f.table,
                references: f.references,
              }
            })
        : []
    const pooledFks = new Set(fks.map((f) => f.statement))
    type ValidateTask = { kind: 'validate'; st: string; table: string }
    const validates: ValidateTask[] = []
    const inScope = new Set(p.scope)
    const fkReady = (f: FkTask) => [f.table, f.references].every((t) => !inScope.has(t) || complete(t))
    // What would queue behind what (and hold a connection idle): adding a key takes both its tables for an instant
    // (SHARE ROW EXCLUSIVE), validating takes its own table (SHARE UPDATE EXCLUSIVE) and leaves the other readable.
    const adding = new Set<string>()
    const validating = new Set<string>()
    const canAdd = (f: FkTask) => ![f.table, f.references].some((t) => adding.has(t) || validating.has(t))
    const digests = new DigestQueue(p, deps.chunkBytes)
    let inFlight = 0
    let built = 0
    const steps = indexes.length + attaches.length + fks.length + fks.filter((f) => f.validate).length
    type Task = (typeof chunks)[number] | IndexTask | AttachTask | FkTask | ValidateTask | DigestTask | { kind: 'size'; table: string }
    const next = (): Task | 'wait' | null => {
      // Keys that need the table alone first (nothing else can use it meanwhile), then the other indexes.
      const e = indexes.findIndex((x) => x.exclusive && loaded(x.table))
      if (e >= 0) return indexes.splice(e, 1)[0]
      const i = indexes.findIndex((x) => loaded(x.table) && (!x.table || free(x.table)))
      if (i >= 0) return indexes.splice(i, 1)[0]
      const a = attaches.findIndex((x) => !indexesLeft.get(x.table))
      if (a >= 0) return attaches.splice(a, 1)[0]
      const v = validates.findIndex((x) => !validating.has(x.table) && !adding.has(x.table))
      if (v >= 0) {
        const t = validates.splice(v, 1)[0]
        validating.add(t.table)
        return t
      }
      const f = fks.findIndex((x) => fkReady(x) && canAdd(x))
      if (f >= 0) {
        const t = fks.splice(f, 1)[0]
        adding.add(t.table).add(t.references)
        return t
      }
      const d = digests.next()
      if (d) return d
      const r = toCheck.findIndex(readable)
      if (r >= 0) return { kind: 'size' as const, table: toCheck.splice(r, 1)[0] }
      if (chunks.length) return chunks.shift()!
      if (inFlight) return 'wait' as const
      // Nothing in flight and nothing ready: never stall (a statement whose table is not in the set, say).
      return (
        indexes.shift() ??
        attaches.shift() ??
        validates.shift() ??
        fks.shift() ??
        (toCheck.length ? { kind: 'size' as const, table: toCheck.shift()! } : null)
      )
    }
    const progress = () => {
      if (!chunks.length) ctx.onProgress({ phase: 'building keys and indexes', done: ++built, total: steps, unit: 'steps' })
    }
    await runPool(
      workers,
      next,
      async (w, t) => {
        inFlight++
        try {
          if (t.kind === 'chunk') {
            await copyChunk(w, p, t.table, t.key, ctx.signal)
            rep.chunkDone(t.table, t.rows, t.bytes)
            for (const k of new Set([t.table, rootOf(t.table, parents)])) chunksLeft.set(k, (chunksLeft.get(k) ?? 1) - 1)
          } else if (t.kind === 'index') {
            await runDdl(w, t.st)
            bump(indexesLeft, t.table, -1)
            if (t.exclusive) bump(exclusiveLeft, t.table, -1)
            progress()
          } else if (t.kind === 'attach') {
            await runDdl(w, t.st)
            bump(attachLeft, t.table, -1)
            progress()
          } else if (t.kind === 'fk') {
            try {
              await runDdl(w, t.st)
            } finally {
              adding.delete(t.table)
              adding.delete(t.references)
            }
            if (t.validate) validates.push({ kind: 'validate', st: t.validate, table: t.table })
            progress()
          } else if (t.kind === 'validate') {
            try {
              await runDdl(w, t.st)
            } finally {
              validating.delete(t.table)
            }
            progress()
          } else if (t.kind === 'size') {
            await digests.add(w, t.table)
          } else {
            await digests.run(w, t, ctx.signal)
          }
        } finally {
          inFlight--
        }
      },
      ctx.signal,
    )
    phase('load and index')
    for (const st of post.early) await c.query(st)

    const applier = new ChangeApplier(c, new Set(p.scope))
    await replayChanges(applier, p, ctx)
    phase('replay')
    await setSequences(c, p, false)

    ctx.onProgress({ phase: 'foreign keys, triggers and policies', done: 0, total: post.late.length, unit: 'steps' })
    // Statements of the full's schema that name a column a carried schema change dropped went with it.
    const late = post.late.filter((st) => !applier.shapes.goneWithColumn(st) && !pooledFks.has(st))
    const fkStatements = late.filter((st) => st.startsWith('ALTER TABLE ') && st.includes(' FOREIGN KEY ('))
    const fkQueue = [...fkStatements]
    // Foreign keys validate in parallel; two that lock the same tables in opposite order may deadlock: the loser retries.
    await runPool(
      workers,
      () => fkQueue.shift() ?? null,
      (w, st) => runDdl(w, fkSql(st)),
      ctx.signal,
    )
    for (const st of late) {
      if (fkStatements.includes(st)) continue
      ctx.signal.throwIfAborted()
      await c.query(st)
    }
    // Tables that joined the chain: their foreign keys and triggers; then the keys, indexes and foreign keys a carried
    // schema change added. One that cannot be made here (its table was created after the chosen moment) is logged and left out.
    for (const st of applier.shapes.late()) {
      ctx.signal.throwIfAborted()
      try {
        await c.query(st)
      } catch (e) {
        deps.log.warn('a statement of a carried schema change was left out of the restore', {
          statement: st.slice(0, 200),
          error: (e as Error).message,
        })
      }
    }
    phase('constraints')

    // The tables the replay changed, checked now (in parallel, big ones in page ranges); the others already are.
    const left = p.scope.filter((k) => replayed.has(k))
    const total = left.length
    ctx.onProgress({ phase: 'checking the restored data', done: 0, total, unit: 'tables' })
    let checkedTables = 0
    await runPool(
      workers,
      () => digests.next() ?? (left.length ? { kind: 'size' as const, table: left.shift()! } : null),
      async (w, t) => {
        if (t.kind === 'size') await digests.add(w, t.table)
        else if (await digests.run(w, t, ctx.signal))
          ctx.onProgress({ phase: 'checking the restored data', done: ++checkedTables, total, unit: 'tables', message: t.table })
      },
      ctx.signal,
    )
    const checkOpts = { full: p.sets[0], compareDigests: p.sets.length === 1, rowsAfter: p.rowsAfter }
    const tableLines = p.scope.map((k) => {
      const v = digests.value(k)
      return tableCheck(k, checkOpts, Number(v.split(':')[0]), v)
    })
    const relations = await checkRestore(c, {
      scope: p.scope,
      full: p.sets[0],
      compareDigests: false,
      rowsAfter: p.rowsAfter,
      signal: ctx.signal,
      skipTables: true,
      restoredOnly: !p.plan.wholeDatabase,
      pool: workers,
      validatedByRestore: true,
    })
    const report: CheckReport = {
      ok: tableLines.every((t) => t.ok) && relations.ok,
      checkedAt: new Date().toISOString(),
      tables: tableLines,
      foreignKeys: relations.foreignKeys,
      countOnly: countOnlyReason(p.plan.point, p.sets.length),
      sequences: relations.sequences,
    }
    phase('check')
    if (!report.ok) {
      await comment(c, `CHECK FAILED: restored from ${p.plan.point.label}; the data does not match the backup. Do not use it.`)
      throw new CheckFailed(report)
    }
    await comment(c, `restored from ${p.plan.point.label} on ${new Date().toISOString()}; check passed`)
    return { report, safetySetId: null, mode: 'load' as const, rows: rep.st.rows, bytes: rep.st.bytes, transactions: applier.transactions }
  } finally {
    await Promise.all([c, ...workers].map((x) => x.end().catch(() => {})))
  }
}
