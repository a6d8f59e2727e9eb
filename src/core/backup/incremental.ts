import { PassThrough } from 'node:stream'
import { pgClient, pgClientConfigLike } from '../db/connect'
import { OpsError } from '../../shared/contract'
import type { JobContext } from '../jobs/runner'
import type { BackupStorage } from '../storage/storage'
import { version } from '../version'
import type { LogicalReplicationService } from 'pg-logical-replication'
import { PgoutputDecoder, lsnToBigInt, lsnToString, type PgoutputMessage, type Relation, type Tuple } from './changes/pgoutput'
import { readSlot, slotIdle, type ReadOptions } from './changes/read-slot'
import { findCut, Shapes } from './changes/shapes'
import { extensionFor, type CompressionParams } from './compression'
import type { EncryptionParams } from './crypto'
import { qname, schemaHash, STABLE_SESSION } from './full'
import { AUTHENTICATED_VERSION, MANIFEST_VERSION, manifestKey, setPrefix, type Manifest } from './manifest'
import { objectAad, sealManifest } from './authenticity'
import { storeObject, storeStages } from './pipeline'
import { gzipThreadFor, type GzipThread } from './gzip-thread'
import { captureSchema, USER_SCHEMAS } from './schema-capture'
import { connectTimeouts, explainConnectError } from '../db/timeouts'

export interface IncrementalOptions {
  databaseUrl: string
  storage: BackupStorage
  compression: CompressionParams
  encryption: { key: Buffer; params: EncryptionParams } | null
  serverSideEncryption?: string | null
  /** DB_CONNECT_TIMEOUT_S, for both the catalog connection and the replication stream. */
  connectTimeoutMs?: number
  /** The chain's full: the tables and column shapes the chain knows. */
  full: Manifest
  /** The newest set of the chain: this incremental holds every change committed after it. */
  parent: Manifest
  /** End the chain with this set (the schema changed): keep every change up to the first one of a new shape. */
  final?: boolean
  /** Tables the publication leaves out (no replica identity), as schema.name, recorded in the manifest. */
  fullsOnly?: string[]
  /** Called once the set and its manifest are stored, before the slot moves (tests kill the process here). */
  afterStored?: () => Promise<void> | void
}

/**
 * The chain cannot go on. endable: its slot still holds every change, so a final incremental can keep
 * them up to the schema change before a new full starts (false: the slot is gone or lost WAL).
 */
export class SchemaChanged extends Error {
  constructor(
    message: string,
    readonly endable: boolean,
  ) {
    super(message)
  }
}

/**
 * One line of the change stream (JSON Lines): a transaction's begin, its changes, its commit.
 * Values are PostgreSQL's text output, so replay writes back exactly what was there.
 */
export type ChangeLine =
  | { op: 'begin'; lsn: string; xid: number; time: string }
  | { op: 'insert'; table: [string, string]; new: Tuple }
  | { op: 'update'; table: [string, string]; key: Tuple; new: Tuple }
  | { op: 'delete'; table: [string, string]; key: Tuple }
  | { op: 'truncate'; tables: [string, string][]; cascade: boolean; restartIdentity: boolean }
  | { op: 'commit'; lsn: string; end: string; time: string }

/** The row's identity for replay: the old values when the table's replica identity is FULL, else its key. */
function identity(r: Relation, key: Tuple | null, old: Tuple | null, fallback: Tuple): Tuple {
  if (old) return old
  if (key) {
    const out: Tuple = {}
    for (const c of r.columns) if (c.key) out[c.name] = key[c.name]
    return out
  }
  // An UPDATE that did not change the key sends no old key: the new row carries it.
  const out: Tuple = {}
  for (const c of r.columns) if (c.key) out[c.name] = fallback[c.name]
  return out
}

/**
 * An incremental backup: every insert, update, delete and truncate committed since the parent set,
 * read from the chain's slot without consuming it (peek). The slot advances only after the segment
 * and the manifest are stored, so a crash can never lose a change; one that happens between the two
 * is harmless, because transactions the parent already holds are skipped (nothing is stored twice).
 *
 * When the schema changed since the chain's full (o.final, or a different schema hash), this is the
 * chain's last set: it keeps every transaction committed before the first one whose rows have a new
 * shape (found by a first read that stores nothing), so every moment up to there stays restorable;
 * the manifest says where the chain ends and why. A new full then starts the next chain.
 */
export async function runIncremental(setId: string, o: IncrementalOptions, ctx: JobContext): Promise<Manifest> {
  const started = new Date()
  const phasesMs: Record<string, number> = {}
  let mark = performance.now()
  const phase = (name: string) => {
    const now = performance.now()
    phasesMs[name] = Math.round(now - mark)
    mark = now
  }
  const slot = o.parent.snapshot.slot
  if (!slot) throw new OpsError('no_chain', 'The parent set was not taken with a replication slot: take a full backup to start a chain.')
  // Connect timeout and keepalives; no statement timeout (the same session may wait on a slow catalog).
  const c = pgClient(o.databaseUrl, {
    application_name: 'examforge-ops:incremental',
    ...connectTimeouts({ connectTimeoutMs: o.connectTimeoutMs }),
  })
  c.on('error', () => {})
  await c.connect().catch((e) => {
    throw explainConnectError(e, o.databaseUrl, { connectTimeoutMs: o.connectTimeoutMs })
  })
  const written: string[] = []
  // The replication stream's options: TLS as this first connection found it, a connect timeout and
  // keepalives, never a statement timeout.
  const replication = () =>
    pgClientConfigLike(c, o.databaseUrl, {
      application_name: 'examforge-ops:incremental',
      ...connectTimeouts({ connectTimeoutMs: o.connectTimeoutMs }),
    })
  let complete = false
  let streamRef: LogicalReplicationService | null = null
  let thread: GzipThread | null = null
  // The object being stored, ended with the error when the read fails (its upload then stops).
  let storingRef: { lines: PassThrough; storing: Promise<unknown> } | null = null
  try {
    await c.query(STABLE_SESSION)
    const { rows: slotRows } = await c.query(`SELECT wal_status, active FROM pg_replication_slots WHERE slot_name = $1`, [slot])
    if (!slotRows.length) throw new SchemaChanged(`the chain's replication slot ${slot} is gone (dropped or lost)`, false)
    if (slotRows[0].wal_status === 'lost') throw new SchemaChanged(`the chain's replication slot ${slot} lost WAL it needed`, false)

    ctx.onProgress({ phase: 'checking the schema', done: 0, total: null, unit: 'rows' })
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const schema = await captureSchema(c)
    const { rows: seqNames } = await c.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND c.relnamespace IN (${USER_SCHEMAS}) ORDER BY c.oid`,
    )
    await c.query('COMMIT')
    const final = o.final || schemaHash(schema) !== o.parent.schemaHash
    // Tables created since the chain's full: not in it (their data starts with the next full).
    const { rows: now } = await c.query<{ key: string }>(
      `SELECT n.nspname || '.' || c.relname AS key FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND c.relnamespace IN (${USER_SCHEMAS}) ORDER BY 1`,
    )
    const inFull = new Set(o.full.tables.map((t) => `${t.schema}.${t.name}`))
    const newTables = now.map((r) => r.key).filter((k) => !inFull.has(k))
    phase('schema check')

    // The flushed position: every synchronously committed transaction is at or below it, and the slot can reach it.
    const { rows: target } = await c.query(`SELECT pg_current_wal_flush_lsn()::text AS lsn, now() AS time`)
    let upTo = target[0].lsn as string
    let upToTime = new Date(target[0].time).toISOString()
    const parentPoint = lsnToBigInt(o.parent.snapshot.lsn)
    const holdAt = lsnToString(parentPoint > 0n ? parentPoint - 1n : 0n)
    const shapes = new Shapes(o.full)
    let cut: NonNullable<Manifest['endsChain']>['cut'] = null
    if (final) {
      ctx.onProgress({ phase: 'finding where the schema changed', done: 0, total: null, unit: 'rows' })
      const base = {
        url: o.databaseUrl,
        clientConfig: replication(),
        slot,
        holdAt,
        targetLsn: lsnToBigInt(upTo),
        signal: ctx.signal,
      }
      await slotIdle(c, slot, ctx.signal)
      cut = await findCut(base, parentPoint, new Shapes(o.full))
      if (cut) {
        // The chain reaches up to just before the first transaction of the new shape (commit times are
        // compared at millisecond precision by restores), never before its parent.
        upTo = cut.lsn
        const before = new Date(Math.max(new Date(cut.time).getTime() - 1, new Date(o.parent.snapshot.time).getTime()))
        upToTime = before.toISOString()
      }
      phase('finding the schema change')
    }
    const ext = `${extensionFor(o.compression)}${o.encryption ? '.enc' : ''}`
    const key = `${setPrefix(setId)}changes/0000.jsonl${ext}`
    const lines = new PassThrough({ highWaterMark: 1024 * 1024 })
    // gzip on a thread of its own, as for a full (zstd works off the main thread by itself), so compression never
    // waits on the thread decoding the stream.
    thread = gzipThreadFor(o.compression)
    const storing = storeObject(
      o.storage,
      key,
      lines,
      storeStages(o.compression, o.encryption ? { key: o.encryption.key, aad: objectAad(setId, key) } : null, thread),
      ctx.signal,
    )
    storing.catch(() => {}) // awaited below; a failure also ends the streaming (failure)
    storingRef = { lines, storing }
    // Lines are batched into ~256 KB writes: compression then works per batch, not per change. When
    // storage falls behind, the replication socket is paused until it drains (backpressure without a
    // promise per message).
    let batch: string[] = []
    let batchBytes = 0
    let waitMs = 0
    let pausedAt: number | null = null
    let pauseSource: () => void = () => {}
    let resumeSource: () => void = () => {}
    const flush = () => {
      if (!batch.length) return
      const ok = lines.write(batch.join(''))
      batch = []
      batchBytes = 0
      if (!ok && pausedAt === null) {
        pausedAt = performance.now()
        pauseSource()
        lines.once('drain', () => {
          waitMs += performance.now() - pausedAt!
          pausedAt = null
          resumeSource()
        })
      }
    }
    const write = (l: ChangeLine) => {
      const s = JSON.stringify(l) + '\n'
      batch.push(s)
      batchBytes += s.length
      if (batchBytes >= 256 * 1024) flush()
    }

    const stats = {
      transactions: 0,
      inserts: 0,
      updates: 0,
      deletes: 0,
      truncates: 0,
      firstCommitTime: null as string | null,
      lastCommitTime: null as string | null,
    }
    const tables = new Set<string>()
    const decoder = new PgoutputDecoder()
    let skipping = false
    let inTxn = false
    // A transaction's begin is written with its first change we keep: transactions that only touched ops are left out whole.
    let pendingBegin: ChangeLine | null = null
    const emit = (l: ChangeLine) => {
      if (pendingBegin) {
        write(pendingBegin)
        pendingBegin = null
      }
      write(l)
    }
    let messages = 0
    // Tables of the chain only: ops, and tables created since the full (their data comes from the next full), are left out.
    const wanted = (r: Relation) => r.schema !== 'ops' && !r.schema.startsWith('pg_') && shapes.follows(r)
    const checkShape = (r: Relation) => {
      const why = shapes.differs(r)
      // Rows of a new shape cannot be replayed onto this chain: a final set stops before them (found first);
      // any other set stops here without storing anything, and the backup ends the chain properly.
      if (why) throw new SchemaChanged(`the table ${r.schema}.${r.name} changed while it was read: ${why}`, true)
    }
    const targetLsn = lsnToBigInt(upTo)
    /** Handle one message; true once everything committed before the target is in. */
    const handle = (m: PgoutputMessage): boolean => {
      messages++
      if (m.tag === 'begin' && lsnToBigInt(m.finalLsn) >= targetLsn) return true
      if (m.tag === 'begin') {
        // Transactions at or before the parent's point are in the parent already (a crash after storing, before advancing).
        skipping = lsnToBigInt(m.finalLsn) < parentPoint
        inTxn = true
        pendingBegin = skipping ? null : { op: 'begin', lsn: m.finalLsn, xid: m.xid, time: m.commitTime }
      } else if (m.tag === 'commit') {
        if (!skipping && !pendingBegin) {
          write({ op: 'commit', lsn: m.commitLsn, end: m.endLsn, time: m.commitTime })
          stats.transactions++
          stats.firstCommitTime ??= m.commitTime
          stats.lastCommitTime = m.commitTime
        }
        inTxn = false
        pendingBegin = null
      } else if (skipping || !inTxn) return false
      else if (m.tag === 'insert' && wanted(m.relation)) {
        checkShape(m.relation)
        emit({ op: 'insert', table: [m.relation.schema, m.relation.name], new: m.new })
        stats.inserts++
        tables.add(`${m.relation.schema}.${m.relation.name}`)
      } else if (m.tag === 'update' && wanted(m.relation)) {
        checkShape(m.relation)
        emit({
          op: 'update',
          table: [m.relation.schema, m.relation.name],
          key: identity(m.relation, m.key, m.old, m.new),
          new: m.new,
        })
        stats.updates++
        tables.add(`${m.relation.schema}.${m.relation.name}`)
      } else if (m.tag === 'delete' && wanted(m.relation)) {
        checkShape(m.relation)
        emit({ op: 'delete', table: [m.relation.schema, m.relation.name], key: identity(m.relation, m.key, m.old, {}) })
        stats.deletes++
        tables.add(`${m.relation.schema}.${m.relation.name}`)
      } else if (m.tag === 'truncate') {
        const rels = m.relations.filter(wanted)
        if (rels.length) {
          emit({
            op: 'truncate',
            tables: rels.map((r) => [r.schema, r.name]),
            cascade: m.cascade,
            restartIdentity: m.restartIdentity,
          })
          stats.truncates++
          rels.forEach((r) => tables.add(`${r.schema}.${r.name}`))
        }
      }
      if (messages % 5000 === 0)
        ctx.onProgress({
          phase: 'reading the change stream',
          done: messages,
          total: null,
          unit: 'rows',
          message: `${stats.transactions} transactions`,
        })
      return false
    }
    const reading: ReadOptions = {
      url: o.databaseUrl,
      clientConfig: replication(),
      slot,
      holdAt,
      targetLsn,
      signal: ctx.signal,
      decoder,
      onMessage: handle,
      inTxn: () => inTxn,
      flow: (pause, resume) => {
        pauseSource = pause
        resumeSource = resume
      },
      failure: storing,
    }
    await slotIdle(c, slot, ctx.signal)
    const { stream, fetchMs } = await readSlot(reading)
    streamRef = stream
    flush()
    lines.end()
    const stored = await storing
    written.push(key)
    phase('change stream')
    phasesMs['of which waiting for the server'] = Math.round(fetchMs)
    phasesMs['of which waiting for storage'] = Math.round(waitMs)

    // Sequences are not in the change stream: their values at the end of the set.
    const sequences: Manifest['sequences'] = []
    for (const s of seqNames) {
      const { rows } = await c.query(`SELECT last_value::text, is_called FROM ${qname(s.schema, s.name)}`)
      sequences.push({ schema: s.schema, name: s.name, value: rows[0].last_value, isCalled: rows[0].is_called })
    }
    const { rows: info } = await c.query(`SELECT current_setting('server_version') AS v, current_setting('server_version_num')::int AS n`)
    phase('sequences')
    const finished = new Date()
    const manifest: Manifest = {
      formatVersion: o.encryption ? AUTHENTICATED_VERSION : MANIFEST_VERSION,
      setId,
      type: 'incremental',
      parent: o.parent.setId,
      database: o.parent.database,
      server: { version: info[0].v, versionNum: info[0].n, systemIdentifier: o.parent.server.systemIdentifier },
      snapshot: { lsn: upTo, time: upToTime, method: 'replication-slot', slot },
      schemaHash: o.parent.schemaHash,
      changes: { ...stats, tables: [...tables].sort() },
      ...(o.fullsOnly?.length ? { fullsOnly: o.fullsOnly } : {}),
      ...(final
        ? {
            endsChain: {
              reason: cut
                ? `the schema changed: ${cut.table} ${cut.change}`
                : 'the schema changed since the chain started (no row of a new shape was read before this point)',
              cut,
              ...(newTables.length ? { newTables } : {}),
            },
          }
        : {}),
      tables: [],
      objects: [{ key, kind: 'changes', ...stored }],
      sequences,
      compression: o.compression,
      encryption: o.encryption?.params ?? null,
      storage: { serverSideEncryption: o.serverSideEncryption ?? null },
      timings: {
        startedAt: started.toISOString(),
        finishedAt: finished.toISOString(),
        durationMs: finished.getTime() - started.getTime(),
        phasesMs,
      },
      tool: { name: 'examforge-ops', version, node: process.version },
    }
    ctx.signal.throwIfAborted()
    const sealed = sealManifest(manifest, o.encryption?.key ?? null)
    await o.storage.putSmall(manifestKey(setId), JSON.stringify(sealed, null, 2))
    written.length = 0 // complete: nothing to clean up from here on
    complete = true
    await o.afterStored?.()
    // Only now may the slot forget these changes: confirm exactly up to the target (the library sends lsn + 1).
    await stream.acknowledge(lsnToString(targetLsn - 1n))
    await stream.stop()
    return sealed
  } catch (e) {
    if (storingRef && !storingRef.lines.writableFinished) {
      storingRef.lines.destroy(e instanceof Error ? e : new Error(String(e)))
      await storingRef.storing.catch(() => {})
    }
    await o.storage.delete(written).catch(() => {})
    // A set without its manifest leaves no folder behind either (never one whose manifest is stored).
    if (!complete) await o.storage.discard(setPrefix(setId)).catch(() => {})
    throw e
  } finally {
    await thread?.close()
    await streamRef?.stop().catch(() => {})
    await c.end().catch(() => {})
  }
}
