import { PassThrough, Readable, Transform } from 'node:stream'
import { to as copyTo } from 'pg-copy-streams'
import type pg from 'pg'
import { pgClient, pgClientConfigLike } from '../db/connect'
import { OpsError } from '../../shared/contract'
import type { JobContext } from '../jobs/runner'
import type { BackupStorage } from '../storage/storage'
import { version } from '../version'
import type { LogicalReplicationService } from 'pg-logical-replication'
import { PgoutputDecoder, lsnToBigInt, lsnToString, type PgoutputMessage, type Relation, type Tuple } from './changes/pgoutput'
import { readSlot, slotIdle, type ReadOptions } from './changes/read-slot'
import { findCut, Shapes, startingShapes } from './changes/shapes'
import { addedColumnSql, parseCreateTable, planCarry, readSchemaObject } from './changes/schema-change'
import { PUBLICATION } from './changes/slot'
import type { KeySource } from './crypto'
import { extensionFor, type CompressionParams } from './compression'
import type { EncryptionParams } from './crypto'
import { schemaHash, STABLE_SESSION } from './full'
import { qi, qname } from '../db/sql'
import { AUTHENTICATED_VERSION, MANIFEST_VERSION, manifestKey, setPrefix, type Manifest } from './manifest'
import { objectAad, sealManifest } from './authenticity'
import { storeObject, storeStages } from './pipeline'
import { compressThreadFor, type CompressThread } from './compress-thread'
import { captureSchema, USER_SCHEMAS, type CapturedSchema } from './schema-capture'
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
  /** To read the parent's captured schema when it is encrypted (a schema change is then compared with it). */
  keys?: KeySource | null
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
  /**
   * A carried schema change, placed just before the first row of the table's new shape: the statements
   * that take the restored table there (columns added with the value existing rows got, columns dropped).
   */
  | { op: 'ddl'; table: [string, string]; statements: string[]; added: string[]; dropped: string[]; columns: string[] }
  /**
   * A table joined the chain here (see adopt): create it (pre: its sequences and CREATE TABLE; post: its
   * keys, indexes, foreign keys), then load the snapshot of its rows (object, in this set) taken as it joined.
   */
  | { op: 'create'; table: [string, string]; pre: string[]; post: string[]; object: string; rows: number; columns: string[] }

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
 * When the schema changed since the parent (a different schema hash), the change is carried through
 * when replay can reproduce it (changes/schema-change.ts): the set stores the captured schema, new tables
 * join the chain (adopt), and the stream gets a ddl line just before each table's first row of a new shape.
 * Otherwise (o.final, or a change it cannot carry) this is the chain's last set: it keeps every transaction
 * committed before the first one whose rows have a new shape (found by a first read that stores nothing),
 * so every moment up to there stays restorable; the manifest says where the chain ends and why. A new full
 * then starts the next chain.
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
  let thread: CompressThread | null = null
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
    // Every table as the captured schema names it, and whether the publication may hold it (a usable replica identity).
    const { rows: rels } = await c.query<{
      key: string
      oid: number
      rel: string
      kind: string
      publishable: boolean
      at: Date
      num: number
    }>(
      `SELECT n.nspname || '.' || c.relname AS key, c.oid::int AS oid, format('%I.%I', n.nspname, c.relname) AS rel, c.relkind::text AS kind,
              c.relkind = 'r' AND c.relpersistence = 'p' AND NOT c.relispartition
                AND (c.relreplident IN ('f', 'i') OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))) AS publishable,
              now() AS at, current_setting('server_version_num')::int AS num
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND c.relnamespace IN (${USER_SCHEMAS}) ORDER BY 1`,
    )
    await c.query('COMMIT')
    const capturedAt = rels.length ? new Date(rels[0].at).toISOString() : new Date().toISOString()
    const relationOf = new Map(rels.map((r) => [r.key, r.rel]))
    const hash = schemaHash(schema)
    const shapes = new Shapes(startingShapes(o.full, o.parent))
    // A schema change is carried through when replay can reproduce it (see changes/schema-change.ts); else the chain ends here.
    let carry: Carry | null = null
    let final = !!o.final
    let notCarried: string | null = null
    // A table of the chain dropped and created again since the parent (same name, and maybe the same shape, but
    // another oid): its rows since then never reached the change stream (the new table was not published), and
    // nothing in the stream says when it happened. The chain ends at the parent's point, which stays exact.
    const parentOids = o.parent.tableOids
    const recreated = parentOids
      ? rels
          .filter((r) => r.kind === 'r' && shapes.get(r.key) && parentOids[r.key] !== undefined && parentOids[r.key] !== r.oid)
          .map((r) => r.key)
      : []
    if (recreated.length) final = true
    if (!final && (hash !== o.parent.schemaHash || o.parent.schemaChange?.pending)) {
      const r = await prepareCarry(c, o, schema, hash, shapes, rels, relationOf)
      if ('why' in r) {
        final = true
        notCarried = r.why
      } else carry = r
    }
    // Tables created since the chain's full and not carried into it (their data starts with the next full).
    const newTables = rels.filter((r) => r.kind === 'r' && !shapes.get(r.key) && !carry?.newTables.includes(r.key)).map((r) => r.key)
    phase('schema check')
    const ext = `${extensionFor(o.compression)}${o.encryption ? '.enc' : ''}`
    const seal = (k: string) => storeStages(o.compression, o.encryption ? { key: o.encryption.key, aad: objectAad(setId, k) } : null)
    const objects: Manifest['objects'] = []
    // The schema as captured at this set's start: the next set compares its own with it.
    const schemaKey = `${setPrefix(setId)}schema.json${ext}`
    written.push(schemaKey)
    objects.push({
      key: schemaKey,
      kind: 'schema',
      ...(await storeObject(
        o.storage,
        schemaKey,
        Readable.from([Buffer.from(JSON.stringify({ pre: schema.pre, post: schema.post }))]),
        seal(schemaKey),
        ctx.signal,
      )),
    })
    // New tables join the chain now, each with a snapshot of its rows; the change stream follows them from that point.
    const adopted = new Map<string, Adopted>()
    if (carry)
      for (const [i, key] of carry.newTables.entries()) {
        ctx.onProgress({ phase: `adding ${key} to the chain`, done: i, total: carry.newTables.length, unit: 'steps' })
        const objectKey = `${setPrefix(setId)}tables/${String(i).padStart(4, '0')}.copy${ext}`
        written.push(objectKey)
        const a = await adopt(c, {
          setId,
          key,
          rel: relationOf.get(key)!,
          objectKey,
          storage: o.storage,
          stages: seal(objectKey),
          signal: ctx.signal,
        })
        if ('why' in a) throw new SchemaChanged(a.why, true)
        adopted.set(key, a)
        objects.push({ key: objectKey, kind: 'data', size: a.size, sha256: a.sha256 })
      }
    if (adopted.size) phase('new tables')

    // The flushed position: every synchronously committed transaction is at or below it, and the slot can reach it.
    const { rows: target } = await c.query(`SELECT pg_current_wal_flush_lsn()::text AS lsn, now() AS time`)
    let upTo = target[0].lsn as string
    let upToTime = new Date(target[0].time).toISOString()
    const parentPoint = lsnToBigInt(o.parent.snapshot.lsn)
    const holdAt = lsnToString(parentPoint > 0n ? parentPoint - 1n : 0n)
    let cut: NonNullable<Manifest['endsChain']>['cut'] = null
    if (recreated.length) {
      cut = {
        lsn: o.parent.snapshot.lsn,
        time: o.parent.snapshot.time,
        table: recreated.join(', '),
        change: `was dropped and created again since the last backup ${o.parent.setId} (its rows since then are not in the change stream)`,
      }
      upTo = cut.lsn
      upToTime = o.parent.snapshot.time
    } else if (final) {
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
      cut = await findCut(base, parentPoint, new Shapes(startingShapes(o.full, o.parent)))
      if (cut) {
        // The chain reaches up to just before the first transaction of the new shape (commit times are
        // compared at millisecond precision by restores), never before its parent.
        upTo = cut.lsn
        const before = new Date(Math.max(new Date(cut.time).getTime() - 1, new Date(o.parent.snapshot.time).getTime()))
        upToTime = before.toISOString()
      }
      phase('finding the schema change')
    }
    const key = `${setPrefix(setId)}changes/0000.jsonl${ext}`
    const lines = new PassThrough({ highWaterMark: 1024 * 1024 })
    // gzip on a thread of its own, as for a full (zstd works off the main thread by itself), so compression never
    // waits on the thread decoding the stream.
    thread = compressThreadFor(o.compression)
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
    const changed: string[] = []
    const checkShape = (r: Relation) => {
      const why = shapes.differs(r)
      if (!why) return
      // A carried change: the statements that take the restored table to the new shape, just before its first row.
      const ddl = carry && carryShape(carry, shapes, r, relationOf)
      if (ddl) {
        emit(ddl)
        changed.push(
          `${r.schema}.${r.name}: ${[...ddl.added.map((n) => `column ${n} added`), ...ddl.dropped.map((n) => `column ${n} dropped`)].join(', ')} (first row of the new shape at ${currentTime})`,
        )
        return
      }
      // Rows of a new shape cannot be replayed onto this chain: a final set stops before them (found first);
      // any other set stops here without storing anything, and the backup ends the chain properly.
      throw new SchemaChanged(`the table ${r.schema}.${r.name} changed while it was read: ${why}`, true)
    }
    let currentTime = ''
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
        currentTime = m.commitTime
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
      else if (m.tag === 'message' && m.prefix === MESSAGE_PREFIX) {
        // A table joined the chain here (in this set: a failed earlier attempt's mark is ignored, its table comes again).
        let said: { set?: string; table?: string } = {}
        try {
          said = JSON.parse(m.content)
        } catch {
          said = {} // not one of ours
        }
        const joined = said.set === setId && typeof said.table === 'string' ? said.table : null
        const a = joined ? adopted.get(joined) : undefined
        if (joined && a) {
          emit({ op: 'create', table: splitKey(joined), pre: a.pre, post: a.post, object: a.object, rows: a.rows, columns: a.columns })
          shapes.set(joined, a.columns, a.types)
          tables.add(joined)
          a.at = currentTime
          changed.push(`${joined}: joined the chain with ${a.rows} rows (at ${currentTime})`)
        }
      } else if (m.tag === 'insert' && wanted(m.relation)) {
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
      messages: adopted.size > 0,
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
    const missed = [...adopted.keys()].filter((k) => !shapes.get(k))
    if (missed.length) throw new SchemaChanged(`the change stream did not mark where ${missed.join(', ')} joined the chain`, true)
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
      tableOids: Object.fromEntries(rels.filter((r) => r.kind === 'r').map((r) => [r.key, r.oid])),
      schemaHash: carry ? hash : o.parent.schemaHash,
      changes: { ...stats, tables: [...tables].sort() },
      ...(o.fullsOnly?.length ? { fullsOnly: o.fullsOnly } : {}),
      ...(carry || o.parent.shapes ? { shapes: shapes.list() } : {}),
      ...(carry
        ? {
            schemaChange: {
              capturedAt,
              summary: [...carry.summary, ...changed],
              preAdded: carry.preAdded,
              postAdded: carry.postAdded,
              ...(pendingOf(carry) ? { pending: pendingOf(carry)! } : {}),
            },
          }
        : {}),
      ...(adopted.size ? { created: [...adopted].map(([table, a]) => ({ table, object: a.object, rows: a.rows, at: a.at })) } : {}),
      ...(final
        ? {
            endsChain: {
              reason: cut
                ? `the schema changed: ${cut.table} ${cut.change}${notCarried ? ` (not carried through: ${notCarried})` : ''}`
                : `the schema changed since the chain started${notCarried ? ` (not carried through: ${notCarried})` : ''} (no row of a new shape was read before this point)`,
              cut,
              ...(newTables.length ? { newTables } : {}),
            },
          }
        : {}),
      tables: [],
      objects: [...objects, { key, kind: 'changes', ...stored }],
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

/** The prefix of the logical decoding messages that mark where a table joined the chain. */
const MESSAGE_PREFIX = 'examforge_ops'

const splitKey = (k: string): [string, string] => [k.slice(0, k.indexOf('.')), k.slice(k.indexOf('.') + 1)]

/** A schema change this set carries: what the change stream may show, and what a restore runs around it. */
interface Carry {
  /** Columns the stream may add, per table: name → the statements that add it to the restored table. */
  add: Map<string, Map<string, string[]>>
  drop: Map<string, Set<string>>
  newTables: string[]
  preAdded: string[]
  postAdded: string[]
  summary: string[]
}

/** Column changes the stream has not shown yet, for the manifest (the next set carries them when it does). */
function pendingOf(carry: Carry): NonNullable<NonNullable<Manifest['schemaChange']>['pending']> | null {
  const out: NonNullable<NonNullable<Manifest['schemaChange']>['pending']> = {}
  for (const t of new Set([...carry.add.keys(), ...carry.drop.keys()])) {
    const add = Object.fromEntries(carry.add.get(t) ?? [])
    const drop = [...(carry.drop.get(t) ?? [])]
    if (Object.keys(add).length || drop.length) out[t] = { add, drop }
  }
  return Object.keys(out).length ? out : null
}

/**
 * Compare the schema captured now with the one the parent recorded and decide whether replay can carry
 * the change (see changes/schema-change.ts); column changes the parent had carried but the stream had not
 * shown yet stay expected.
 */
async function prepareCarry(
  c: pg.Client,
  o: IncrementalOptions,
  schema: CapturedSchema,
  hash: string,
  shapes: Shapes,
  rels: { key: string; publishable: boolean; num: number }[],
  relationOf: Map<string, string>,
): Promise<Carry | { why: string }> {
  const carry: Carry = { add: new Map(), drop: new Map(), newTables: [], preAdded: [], postAdded: [], summary: [] }
  for (const [t, p] of Object.entries(o.parent.schemaChange?.pending ?? {})) {
    carry.add.set(t, new Map(Object.entries(p.add)))
    carry.drop.set(t, new Set(p.drop))
  }
  if (hash === o.parent.schemaHash) return carry
  const before =
    (await readSchemaObject(o.storage, o.parent, o.keys ?? null)) ??
    (o.parent.schemaHash === o.full.schemaHash ? await readSchemaObject(o.storage, o.full, o.keys ?? null) : null)
  if (!before)
    return { why: 'the schema the chain last recorded cannot be read (a set written before schema changes were carried through)' }
  const chainTables = new Set(shapes.list().map((t) => `${t.schema}.${t.name}`))
  const r = planCarry(before, schema, schema.tables, chainTables, new Set(rels.filter((x) => x.publishable).map((x) => x.key)), relationOf)
  if (!r.ok) return { why: r.why }
  if (r.plan.newTables.length && (rels[0]?.num ?? 0) < 140000)
    return { why: 'before PostgreSQL 14 the change stream cannot mark where a new table joins the chain' }
  if ([...r.plan.added.keys(), ...r.plan.dropped.keys()].some((t) => !shapes.get(t)?.types))
    return { why: "the chain's full recorded no column types (taken by an older version)" }
  for (const [t, cols] of r.plan.added) {
    const m = carry.add.get(t) ?? new Map<string, string[]>()
    for (const col of cols) {
      const sql = await addedColumnSql(c, t, col)
      if ('why' in sql) return { why: sql.why }
      m.set(col, sql)
    }
    carry.add.set(t, m)
  }
  for (const [t, cols] of r.plan.dropped) carry.drop.set(t, new Set([...(carry.drop.get(t) ?? []), ...cols]))
  carry.newTables = r.plan.newTables
  carry.preAdded = r.plan.preAdded
  carry.postAdded = r.plan.postAdded
  carry.summary = r.plan.summary
  return carry
}

/**
 * A relation whose shape differs from the chain's: the ddl line that takes the restored table there, when
 * the difference is one this set carries (columns added at the end and columns dropped, each expected from
 * the schema's change, no column retyped). null: the chain cannot carry it.
 */
function carryShape(carry: Carry, shapes: Shapes, r: Relation, relationOf: Map<string, string>): Extract<ChangeLine, { op: 'ddl' }> | null {
  const key = `${r.schema}.${r.name}`
  const k = shapes.get(key)
  const rel = relationOf.get(key)
  if (!k?.types || !rel) return null
  const names = r.columns.map((x) => x.name)
  const added = names.filter((n) => !k.columns.includes(n))
  const dropped = k.columns.filter((n) => !names.includes(n))
  // ADD COLUMN appends: the restored table's order is the old one without the dropped columns, then the added ones.
  const expected = [...k.columns.filter((n) => !dropped.includes(n)), ...added]
  if (expected.join('\u0000') !== names.join('\u0000')) return null
  if (r.columns.some((x) => k.columns.includes(x.name) && k.types![k.columns.indexOf(x.name)] !== x.typeOid)) return null
  const adds = carry.add.get(key)
  const drops = carry.drop.get(key)
  if (added.some((n) => !adds?.has(n)) || dropped.some((n) => !drops?.has(n))) return null
  const statements = [...dropped.map((n) => `ALTER TABLE ${rel} DROP COLUMN ${qi(n)}`), ...added.flatMap((n) => adds!.get(n)!)]
  added.forEach((n) => adds!.delete(n))
  dropped.forEach((n) => drops!.delete(n))
  shapes.set(
    key,
    names,
    r.columns.map((x) => x.typeOid),
  )
  return { op: 'ddl', table: [r.schema, r.name], statements, added, dropped, columns: names }
}

interface Adopted {
  pre: string[]
  post: string[]
  columns: string[]
  types: number[]
  object: string
  rows: number
  size: number
  sha256: string
  /** When the change stream marked it (the commit time of the transaction that added it). */
  at: string
}

/**
 * A new table joins the chain: in one transaction that keeps writers out of it (SHARE lock, waiting at
 * most 5 s so the application never queues behind us for long), it is added to the publication, its
 * definition captured, a transactional logical message marks the point in the change stream, and its rows
 * are copied into the set. Every row committed before is in the copy; every change committed after is in
 * the stream (the publication holds the table from this commit on).
 */
async function adopt(
  c: pg.Client,
  a: { setId: string; key: string; rel: string; objectKey: string; storage: BackupStorage; stages: Transform[]; signal: AbortSignal },
): Promise<Adopted | { why: string }> {
  await c.query('BEGIN')
  try {
    await c.query(`SET LOCAL lock_timeout = '5s'`)
    try {
      await c.query(`LOCK TABLE ${a.rel} IN SHARE MODE`)
    } catch (e) {
      if ((e as { code?: string }).code === '55P03')
        return { why: `the new table ${a.key} was kept locked by another session for 5 s, so it could not join the chain` }
      throw e
    }
    const { rows: member } = await c.query(
      `SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = $1 AND pr.prrelid = $2::regclass`,
      [PUBLICATION, a.rel],
    )
    if (!member.length) await c.query(`ALTER PUBLICATION ${PUBLICATION} ADD TABLE ${a.rel}`)
    const schema = await captureSchema(c)
    const pre = schema.pre.filter((st) => parseCreateTable(st)?.relation === a.rel)
    const own = (st: string) => st.startsWith(`ALTER TABLE ${a.rel} `) || st.includes(` ON ${a.rel} `) || st.includes(` ON ONLY ${a.rel} `)
    const post = schema.post.filter(own)
    const { rows: cols } = await c.query<{ name: string; type: number }>(
      `SELECT a.attname::text AS name, a.atttypid::int AS type FROM pg_attribute a
        WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum`,
      [a.rel],
    )
    await c.query(`SELECT pg_logical_emit_message(true, $1, $2)`, [MESSAGE_PREFIX, JSON.stringify({ set: a.setId, table: a.key })])
    let rows = 0
    const counter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) rows++
        cb(null, chunk)
      },
    })
    const source = c.query(copyTo(`COPY (SELECT ${cols.map((x) => qi(x.name)).join(', ')} FROM ONLY ${a.rel}) TO STDOUT`))
    source.on('error', (e) => counter.destroy(e))
    source.pipe(counter)
    const stored = await storeObject(a.storage, a.objectKey, counter, a.stages, a.signal)
    await c.query('COMMIT')
    return {
      pre,
      post,
      columns: cols.map((x) => x.name),
      types: cols.map((x) => x.type),
      object: a.objectKey,
      rows,
      size: stored.size,
      sha256: stored.sha256,
      at: '',
    }
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {})
    throw e
  } finally {
    // A rolled-back or committed transaction: either way the session is free again.
    await c.query('ROLLBACK').catch(() => {})
  }
}
