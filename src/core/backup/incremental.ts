import { PassThrough } from 'node:stream'
import { pgClient, pgClientConfigLike } from '../db/connect'
import { OpsError } from '../../shared/contract'
import type { JobContext } from '../jobs/runner'
import type { BackupStorage } from '../storage/storage'
import { version } from '../version'
import type { LogicalReplicationService } from 'pg-logical-replication'
import { logicalReplication } from '../deps/lazy'
import type pgTypes from 'pg'
import { PgoutputDecoder, lsnToBigInt, lsnToString, type PgoutputMessage, type Relation, type Tuple } from './changes/pgoutput'
import { PUBLICATION } from './changes/slot'
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
  /** The newest set of the chain: this incremental holds every change committed after it. */
  parent: Manifest
  /** Called once the set and its manifest are stored, before the slot moves (tests kill the process here). */
  afterStored?: () => Promise<void> | void
}

export class SchemaChanged extends Error {}

/** pgoutput through pg-logical-replication's streaming, decoded by our decoder (exact text values). */
class RawPgoutputPlugin {
  constructor(readonly options: { decoder: PgoutputDecoder }) {}
  get name() {
    return 'pgoutput'
  }
  parse(buffer: Buffer) {
    return this.options.decoder.decode(buffer)
  }
  start(client: pgTypes.Client, slot: string, lsn: string) {
    return client.query(`START_REPLICATION SLOT "${slot}" LOGICAL ${lsn} (proto_version '1', publication_names '${PUBLICATION}')`)
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
  const c = pgClient(o.databaseUrl, { application_name: 'examforge-ops:incremental',
    ...connectTimeouts({ connectTimeoutMs: o.connectTimeoutMs }),
  })
  c.on('error', () => {})
  await c.connect().catch((e) => {
    throw explainConnectError(e, o.databaseUrl, { connectTimeoutMs: o.connectTimeoutMs })
  })
  const written: string[] = []
  let streamRef: LogicalReplicationService | null = null
  let thread: GzipThread | null = null
  try {
    await c.query(STABLE_SESSION)
    const { rows: slotRows } = await c.query(`SELECT wal_status, active FROM pg_replication_slots WHERE slot_name = $1`, [slot])
    if (!slotRows.length) throw new SchemaChanged(`the chain's replication slot ${slot} is gone (dropped or lost)`)
    if (slotRows[0].wal_status === 'lost') throw new SchemaChanged(`the chain's replication slot ${slot} lost WAL it needed`)

    ctx.onProgress({ phase: 'checking the schema', done: 0, total: null, unit: 'rows' })
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const schema = await captureSchema(c)
    const { rows: seqNames } = await c.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND c.relnamespace IN (${USER_SCHEMAS}) ORDER BY c.oid`,
    )
    await c.query('COMMIT')
    if (schemaHash(schema) !== o.parent.schemaHash) throw new SchemaChanged('the schema changed since the last backup')
    phase('schema check')

    // The flushed position: every synchronously committed transaction is at or below it, and the slot can reach it.
    const { rows: target } = await c.query(`SELECT pg_current_wal_flush_lsn()::text AS lsn, now() AS time`)
    const upTo = target[0].lsn as string
    const parentPoint = lsnToBigInt(o.parent.snapshot.lsn)
    const ext = `${extensionFor(o.compression)}${o.encryption ? '.enc' : ''}`
    const key = `${setPrefix(setId)}changes/0000.jsonl${ext}`
    const lines = new PassThrough({ highWaterMark: 1024 * 1024 })
    // gzip on a thread of its own, as for a full, so compression never waits on the thread decoding the stream.
    thread = gzipThreadFor(o.compression)
    const storing = storeObject(
      o.storage,
      key,
      lines,
      storeStages(o.compression, o.encryption ? { key: o.encryption.key, aad: objectAad(setId, key) } : null, thread),
      ctx.signal,
    )
    storing.catch(() => {}) // awaited below; a failure also ends the streaming (see finish)
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
    const wanted = (r: Relation) => r.schema !== 'ops' && !r.schema.startsWith('pg_')
    // Stream from the slot (decoded once on the server). Nothing is confirmed until the set is stored:
    // the standby-status timer is off, and keepalives are answered with the parent's point.
    const { LogicalReplicationService } = await logicalReplication()
    const stream = (streamRef = new LogicalReplicationService(
      pgClientConfigLike(c, o.databaseUrl, {
        application_name: 'examforge-ops:incremental',
        // The replication stream: connect timeout and keepalives, never a statement timeout.
        ...connectTimeouts({ connectTimeoutMs: o.connectTimeoutMs }),
      }),
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
    ))
    const holdAt = lsnToString(parentPoint > 0n ? parentPoint - 1n : 0n)
    const targetLsn = lsnToBigInt(upTo)
    let fetchMs = 0
    let lastMessageAt = performance.now()
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
        emit({ op: 'insert', table: [m.relation.schema, m.relation.name], new: m.new })
        stats.inserts++
        tables.add(`${m.relation.schema}.${m.relation.name}`)
      } else if (m.tag === 'update' && wanted(m.relation)) {
        emit({
          op: 'update',
          table: [m.relation.schema, m.relation.name],
          key: identity(m.relation, m.key, m.old, m.new),
          new: m.new,
        })
        stats.updates++
        tables.add(`${m.relation.schema}.${m.relation.name}`)
      } else if (m.tag === 'delete' && wanted(m.relation)) {
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
    const socket = () => (stream as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })._connection?.stream
    pauseSource = () => socket()?.pause()
    resumeSource = () => socket()?.resume()
    await new Promise<void>((resolve, reject) => {
      let finished = false
      const finish = (e?: unknown) => {
        if (finished) return
        finished = true
        clearInterval(idle)
        ctx.signal.removeEventListener('abort', onAbort)
        if (e) reject(e)
        else resolve()
      }
      const onAbort = () => finish(ctx.signal.reason ?? new Error('cancelled'))
      ctx.signal.addEventListener('abort', onAbort, { once: true })
      // Messages arrive in order and are handled synchronously, in order.
      stream.on('data', (_lsn: string, m: PgoutputMessage) => {
        if (finished) return
        const f0 = performance.now()
        fetchMs += f0 - lastMessageAt
        try {
          if (handle(m)) finish()
        } catch (e) {
          finish(e)
        }
        lastMessageAt = performance.now()
      })
      storing.catch((e) => finish(e))
      // Caught up: the server's position passed the target outside a transaction.
      stream.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) => {
        if (!finished && !inTxn && lsnToBigInt(lsn) >= targetLsn) finish()
        else if (shouldRespond) void stream.acknowledge(holdAt)
      })
      stream.on('error', (e: Error) => finish(e))
      // If the server is quiet, ask it where it is (the answer arrives as a heartbeat).
      const idle = setInterval(() => {
        if (!finished && performance.now() - lastMessageAt > 250) void stream.acknowledge(holdAt, true)
      }, 100)
      stream.subscribe(new RawPgoutputPlugin({ decoder }), slot, '0/0').catch((e) => finish(e))
    })
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
      snapshot: { lsn: upTo, time: new Date(target[0].time).toISOString(), method: 'replication-slot', slot },
      schemaHash: o.parent.schemaHash,
      changes: { ...stats, tables: [...tables].sort() },
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
    await o.afterStored?.()
    // Only now may the slot forget these changes: confirm exactly up to the target (the library sends lsn + 1).
    await stream.acknowledge(lsnToString(targetLsn - 1n))
    await stream.stop()
    return sealed
  } catch (e) {
    await o.storage.delete(written).catch(() => {})
    throw e
  } finally {
    await thread?.close()
    await streamRef?.stop().catch(() => {})
    await c.end().catch(() => {})
  }
}
