import { qi, qname } from '../db/sql'
import os from 'node:os'
import { Readable } from 'node:stream'
import type pg from 'pg'
import { pgClient } from '../db/connect'
import { OpsError } from '../../shared/contract'
import type { JobContext } from '../jobs/runner'
import type { Logger } from '../log/logger'
import type { BackupStorage } from '../storage/storage'
import { version } from '../version'
import { extensionFor, type CompressionParams } from './compression'
import type { EncryptionParams } from './crypto'
import { BlockPool, CopyOut } from './copy-out'
import { combineDigests, RowDigest } from './digest'
import { AUTHENTICATED_VERSION, MANIFEST_VERSION, manifestKey, setPrefix, type Manifest } from './manifest'
import { objectAad, sealManifest } from './authenticity'
import { storeObject, storeStages } from './pipeline'
import { compressThreadFor } from './compress-thread'
import { captureSchema, USER_SCHEMAS, type CapturedSchema } from './schema-capture'
import { createSlotWithSnapshot, dropSlot, withClient } from './changes/slot'
import { runningFullName } from './changes/orphans'
import { sha256Hex } from './crypto'
import { connectTimeouts, explainConnectError } from '../db/timeouts'
import { describeWait, watchLockWaits, type LockWait } from './lock-wait'

export interface BackupOptions {
  databaseUrl: string
  storage: BackupStorage
  compression: CompressionParams
  encryption: { key: Buffer; params: EncryptionParams } | null
  /** Parallel connections reading tables (default: one per core, from 2 to 8). */
  parallelism?: number
  /** Tables larger than this are split into chunks that restore can load in parallel. */
  chunkBytes?: number
  /** BACKUP_LOCK_TIMEOUT: how long, in all, the backup waits for locks other sessions hold (default 60 s). */
  lockTimeoutMs?: number
  /** DB_CONNECT_TIMEOUT_S, for every connection the backup opens. */
  connectTimeoutMs?: number
  serverSideEncryption?: string | null
  /** Start a chain: take the snapshot from a new logical replication slot of this name, which incrementals then follow. */
  slot?: string | null
  /** Only these tables (a safety backup before a restore); all by default. */
  tables?: { schema: string; name: string }[]
  /**
   * Read through a snapshot another session exported and keeps locked (the restore's own transaction,
   * which holds SHARE locks on the tables): no locking or snapshot of our own.
   */
  externalSnapshot?: { name: string; lsn: string; time: string }
  /** 'safety': taken by a restore before it replaced these tables (Undo restores it). */
  type?: 'full' | 'safety'
  log: Logger
}

/** Settings that make COPY text identical whenever and wherever it is produced, so digests compare. */
export const STABLE_SESSION = `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET bytea_output = 'hex'; SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0`

/**
 * One stream per core (at least two): each stream keeps about a core busy between its backend and its
 * compression. Measured on 2 cores: a third stream made the same backup 4% slower and 12% more CPU.
 */
export const defaultParallelism = () => Math.max(2, Math.min(8, os.cpus().length))

export const schemaHash = (s: Pick<CapturedSchema, 'pre' | 'post'>) => sha256Hex(JSON.stringify({ pre: s.pre, post: s.post }))


interface Task {
  table: number
  chunk: number
  where: string
  estBytes: number
}

/**
 * A connection with the session settings that make COPY text identical everywhere (digests compare).
 * A connect timeout and keepalives, but no statement timeout: it carries the long COPY streams.
 */
export async function connect(url: string, name: string, connectTimeoutMs?: number): Promise<pg.Client> {
  const c = pgClient(url, { application_name: `examforge-ops:${name}`, ...connectTimeouts({ connectTimeoutMs }) })
  c.on('error', () => {}) // surfaced by the query that fails
  await c.connect().catch((e) => {
    throw explainConnectError(e, url, { connectTimeoutMs })
  })
  await c.query(STABLE_SESSION)
  return c
}

/** Lock retries: each try waits at most this long, so a TRUNCATE queued between our sessions can pass. */
const LOCK_TRY_MS = 5_000

/**
 * A full backup: one consistent snapshot across every table (locks first, then the snapshot, so
 * no TRUNCATE can slip between them), read over parallel connections that share it. The manifest
 * is written last: without it the set is incomplete and never offered for restore.
 */
export async function runFullBackup(setId: string, o: BackupOptions, ctx: JobContext): Promise<Manifest> {
  const started = new Date()
  const parallelism = o.parallelism ?? defaultParallelism()
  const clients: pg.Client[] = []
  const written: string[] = []
  let slotCreated = false
  const phasesMs: Record<string, number> = {}
  let mark = performance.now()
  const phase = (name: string) => {
    phasesMs[name] = Math.round(performance.now() - mark)
    mark = performance.now()
  }
  ctx.onProgress({ phase: 'connecting', done: 0, total: null, unit: 'bytes' })
  try {
    // A full that creates a slot names it in its coordinating session: a backup elsewhere then knows the slot is in use.
    const coord = await connect(
      o.databaseUrl,
      o.slot ? runningFullName(o.slot).slice('examforge-ops:'.length) : 'backup',
      o.connectTimeoutMs,
    )
    clients.push(coord)
    const { rows: info } = await coord.query(
      `SELECT current_database() AS db, current_setting('server_version') AS version, current_setting('server_version_num')::int AS num,
              current_setting('block_size')::int AS block`,
    )
    const server = info[0] as { db: string; version: string; num: number; block: number }
    let systemIdentifier = 'unknown'
    try {
      systemIdentifier = (await coord.query(`SELECT system_identifier::text AS id FROM pg_control_system()`)).rows[0].id
    } catch {
      /* needs privileges some roles lack; the set is still valid without it */
    }

    // Every session (coordinator and workers) takes its ACCESS SHARE locks before the snapshot is
    // exported: LOCK does not fix a snapshot, so nothing can truncate between snapshot and read, and
    // no worker has to queue a lock behind someone's waiting TRUNCATE later (that would hang).
    const workers: pg.Client[] = []
    for (let n = 0; n < parallelism; n++) {
      const w = await connect(o.databaseUrl, `backup-${n}`, o.connectTimeoutMs)
      clients.push(w)
      workers.push(w)
    }
    const sessions = [coord, ...workers]
    const lockTimeout = Math.round(o.lockTimeoutMs ?? 60_000)
    const lockDeadline = Date.now() + lockTimeout
    let snapshot: { name: string; lsn: string; time: string } | null = null
    let tables: { oid: number; schema: string; name: string; bytes: number; pages: number }[] = []
    let lastLockError: unknown = null
    const only = o.tables ? new Set(o.tables.map((t) => `${t.schema}.${t.name}`)) : null
    // Before the locks are held, sizes come from the catalog: pg_relation_size would itself queue for a lock.
    const listTables = async (locked = true) => {
      const { rows } = await coord.query<{ oid: number; schema: string; name: string; bytes: string }>(
        `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name,
                ${locked ? 'pg_relation_size(c.oid)' : "c.relpages::bigint * current_setting('block_size')::bigint"}::bigint AS bytes
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND c.relnamespace IN (${USER_SCHEMAS}) AND c.relpersistence <> 't' ORDER BY c.oid`,
      )
      return only ? rows.filter((t) => only.has(`${t.schema}.${t.name}`)) : rows
    }
    if (o.externalSnapshot) {
      const name = o.externalSnapshot.name.replace(/'/g, "''")
      await Promise.all(
        sessions.map(async (x) => {
          await x.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
          await x.query(`SET TRANSACTION SNAPSHOT '${name}'`)
        }),
      )
      snapshot = o.externalSnapshot
      tables = (await listTables()).map((t) => ({ ...t, bytes: Number(t.bytes), pages: Math.ceil(Number(t.bytes) / server.block) }))
    }
    // While the sessions queue for their locks, say who they wait for (and remember it for the error).
    const watch = o.externalSnapshot
      ? null
      : watchLockWaits(
          o.databaseUrl,
          sessions.map((x) => (x as unknown as { processID: number }).processID),
          (w: LockWait | null) =>
            ctx.onProgress({
              phase: w ? 'waiting for a lock' : 'locking tables',
              done: 0,
              total: null,
              unit: 'bytes',
              message: w ? describeWait(w) : undefined,
            }),
          { connectTimeoutMs: o.connectTimeoutMs },
        )
    let tableChanges = 0
    try {
      for (let attempt = 1; tableChanges <= 5 && !snapshot && Date.now() < lockDeadline; attempt++) {
        ctx.signal.throwIfAborted()
        const listed = await listTables(false)
        const tryMs = Math.max(100, Math.min(LOCK_TRY_MS, lockDeadline - Date.now()))
        const lock = listed.length ? `LOCK TABLE ${listed.map((t) => qname(t.schema, t.name)).join(', ')} IN ACCESS SHARE MODE` : 'SELECT'
        const rollbackAll = () => Promise.all(sessions.map((x) => x.query('ROLLBACK').catch(() => {})))
        try {
          await Promise.all(
            sessions.map(async (x) => {
              await x.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
              await x.query(`SET LOCAL lock_timeout = ${tryMs}`)
              if (listed.length) await x.query(lock)
            }),
          )
        } catch (e) {
          await rollbackAll()
          const code = (e as { code?: string }).code
          if (code === '55P03' || code === '42P01') {
            lastLockError = e // someone holds or awaits a conflicting lock, or a table went: let them pass, then try again
            if (code === '42P01') tableChanges++
            await new Promise((r) => setTimeout(r, Math.max(0, Math.min(200 * attempt, 1000, lockDeadline - Date.now()))))
            continue
          }
          throw e
        }
        let snap: { name: string; lsn: string; time: Date }[]
        if (o.slot) {
          // The slot's exported snapshot is its consistent point: incrementals continue exactly from there.
          const created = await createSlotWithSnapshot(o.databaseUrl, o.slot, { connectTimeoutMs: o.connectTimeoutMs })
          slotCreated = true
          try {
            const name = created.snapshot.replace(/'/g, "''")
            await Promise.all(sessions.map((x) => x.query(`SET TRANSACTION SNAPSHOT '${name}'`)))
          } finally {
            await created.conn.end().catch(() => {})
          }
          const { rows: t } = await coord.query(`SELECT now() AS time`)
          snap = [{ name: created.snapshot, lsn: created.lsn, time: t[0].time }]
        } else snap = (await coord.query(`SELECT pg_export_snapshot() AS name, pg_current_wal_lsn()::text AS lsn, now() AS time`)).rows
        const inSnapshot = await listTables()
        if (inSnapshot.map((t) => t.oid).join() !== listed.map((t) => t.oid).join()) {
          await rollbackAll() // a table appeared or went between listing and locking
          tableChanges++
          if (slotCreated) {
            await dropSlot(coord, o.slot!).catch(() => {})
            slotCreated = false
          }
          continue
        }
        if (!o.slot) {
          const name = String(snap[0].name).replace(/'/g, "''")
          await Promise.all(workers.map((w) => w.query(`SET TRANSACTION SNAPSHOT '${name}'`)))
        }
        snapshot = { name: snap[0].name, lsn: snap[0].lsn, time: new Date(snap[0].time).toISOString() }
        tables = inSnapshot.map((t) => ({ ...t, bytes: Number(t.bytes), pages: Math.ceil(Number(t.bytes) / server.block) }))
      }
    } finally {
      await watch?.stop()
    }
    if (!snapshot) {
      if ((lastLockError as { code?: string })?.code === '55P03' || tableChanges <= 5) {
        const w = watch?.last()
        const waited = `${Math.round(lockTimeout / 100) / 10} s`
        throw new OpsError(
          'lock_timeout',
          w
            ? `The backup waited ${waited} (BACKUP_LOCK_TIMEOUT) for a lock${w.table ? ` on ${w.table}` : ''} held by pid ${w.pid} (${w.query || 'no statement'}${w.state && w.state !== 'active' ? `, ${w.state}` : ''}) and stopped; nothing was written. Wait for that session to finish, or end it with SELECT pg_terminate_backend(${w.pid}), or raise BACKUP_LOCK_TIMEOUT; then back up again.`
            : `The backup waited ${waited} (BACKUP_LOCK_TIMEOUT) for another session's lock on a table (a migration, VACUUM FULL or TRUNCATE?) and stopped; nothing was written. Wait for it to finish, or raise BACKUP_LOCK_TIMEOUT; then back up again.`,
        )
      }
      throw new OpsError(
        'schema_changing',
        'Tables kept being created or dropped while the backup started; try again when schema changes are done.',
      )
    }

    ctx.signal.throwIfAborted()
    phase('connect, lock and snapshot')
    ctx.onProgress({ phase: 'capturing schema', done: 0, total: null, unit: 'bytes' })
    const schema = await captureSchema(coord)
    const { rows: cols } = await coord.query<{ oid: number; cols: string[]; types: number[] }>(
      `SELECT a.attrelid::int AS oid, array_agg(a.attname::text ORDER BY a.attnum) AS cols,
              array_agg(a.atttypid::int ORDER BY a.attnum) AS types FROM pg_attribute a
        WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
        GROUP BY a.attrelid`,
      [tables.map((t) => t.oid)],
    )
    const columns = new Map(cols.map((c) => [c.oid, c.cols]))
    const types = new Map(cols.map((c) => [c.oid, c.types]))

    const ext = `${extensionFor(o.compression)}${o.encryption ? '.enc' : ''}`
    // Each object is encrypted bound to this set and its own key: moved anywhere else, it fails to decrypt.
    const seal = (key: string) => (o.encryption ? { key: o.encryption.key, aad: objectAad(setId, key) } : null)
    const objects: Manifest['objects'] = []
    const schemaKey = `${setPrefix(setId)}schema.json${ext}`
    const schemaObj = await storeObject(
      o.storage,
      schemaKey,
      Readable.from([Buffer.from(JSON.stringify({ pre: schema.pre, post: schema.post }))]),
      storeStages(o.compression, seal(schemaKey)),
      ctx.signal,
    )
    written.push(schemaKey)
    objects.push({ key: schemaKey, kind: 'schema', ...schemaObj })

    // Plan: split big tables into ctid ranges (PostgreSQL 14+ scans those directly); largest first.
    const chunkPages = Math.max(1, Math.floor((o.chunkBytes ?? 64 * 1024 * 1024) / server.block))
    const tasks: Task[] = []
    tables.forEach((t, i) => {
      if (server.num < 140000 || t.pages <= chunkPages) tasks.push({ table: i, chunk: 0, where: '', estBytes: t.bytes })
      else
        for (let p = 0, c = 0; p < t.pages; p += chunkPages, c++) {
          const last = p + chunkPages >= t.pages
          tasks.push({
            table: i,
            chunk: c,
            // The last range is open-ended: the table may only grow (truncation needs a lock we hold off).
            where: ` WHERE ctid >= '(${p},0)'::tid${last ? '' : ` AND ctid < '(${p + chunkPages},0)'::tid`}`,
            estBytes: Math.min(chunkPages, t.pages - p) * server.block,
          })
        }
    })
    tasks.sort((a, b) => b.estBytes - a.estBytes)
    const totalEst = tasks.reduce((n, t) => n + t.estBytes, 0)

    const results = new Map<string, { key: string; rows: number; digest: string; rawBytes: number; stored: number }>()
    let doneBytes = 0
    let rowsDone = 0
    const tablesLeft = new Map(tables.map((_, i) => [i, tasks.filter((t) => t.table === i).length]))
    const report = (phase: string) =>
      ctx.onProgress({
        phase,
        done: Math.min(doneBytes, totalEst),
        total: totalEst,
        unit: 'bytes',
        message: `${tables.length - [...tablesLeft.values()].filter((n) => n > 0).length}/${tables.length} tables, ${rowsDone.toLocaleString('en-US')} rows`,
      })
    let stop = false
    const worker = async (c: pg.Client) => {
      // gzip runs on a thread of this connection's own; zstd on zstd's own worker (or zlib's pool), see compression.ts.
      const thread = compressThreadFor(o.compression)
      // The blocks COPY is read into: the compressing thread's (handed back once compressed), or new ones.
      const pool = thread?.pool ?? new BlockPool()
      try {
        for (let task = tasks.shift(); task && !stop; task = tasks.shift()) {
          ctx.signal.throwIfAborted()
          const t = tables[task.table]
          const key = `${setPrefix(setId)}data/t${String(task.table).padStart(4, '0')}/c${String(task.chunk).padStart(4, '0')}.copy${ext}`
          const digest = new RowDigest()
          const colList = (columns.get(t.oid) ?? []).map(qi).join(', ')
          // Rows are digested and gathered into 1 MB blocks as they come off the socket.
          const copy = c.query(
            new CopyOut(
              `COPY (SELECT ${colList} FROM ONLY ${qname(t.schema, t.name)}${task.where}) TO STDOUT`,
              digest,
              (n) => (doneBytes += n),
              pool,
            ),
          )
          const stored = await storeObject(o.storage, key, copy, storeStages(o.compression, seal(key), thread), ctx.signal)
          written.push(key)
          objects.push({ key, kind: 'data', ...stored })
          rowsDone += digest.rows
          results.set(`${task.table}:${task.chunk}`, {
            key,
            rows: digest.rows,
            digest: digest.value(),
            rawBytes: digest.rawBytes,
            stored: stored.size,
          })
          tablesLeft.set(task.table, (tablesLeft.get(task.table) ?? 1) - 1)
          report(`copying ${t.schema}.${t.name}`)
        }
      } catch (e) {
        stop = true
        throw e
      } finally {
        await thread?.close()
      }
    }
    phase('schema')
    // Every worker settles before a failure is handled: none may still be writing when the set is removed.
    const settled = await Promise.allSettled(workers.map((w) => worker(w)))
    const failure = settled.find((r) => r.status === 'rejected')
    if (failure) throw failure.reason
    phase('data')

    // Sequences are not transactional: read at the end, they are at or above every value the data uses.
    const { rows: seqs } = await coord.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND c.relnamespace IN (${USER_SCHEMAS}) ORDER BY c.oid`,
    )
    const sequences: Manifest['sequences'] = []
    for (const s of seqs) {
      const { rows } = await coord.query<{ last_value: string; is_called: boolean }>(
        `SELECT last_value::text, is_called FROM ${qname(s.schema, s.name)}`,
      )
      sequences.push({ schema: s.schema, name: s.name, value: rows[0].last_value, isCalled: rows[0].is_called })
    }
    for (const c of clients) await c.query('COMMIT').catch(() => {})

    const finished = new Date()
    const manifest: Manifest = {
      formatVersion: o.encryption ? AUTHENTICATED_VERSION : MANIFEST_VERSION,
      setId,
      type: o.type ?? 'full',
      parent: null,
      database: server.db,
      server: { version: server.version, versionNum: server.num, systemIdentifier },
      snapshot: { lsn: snapshot.lsn, time: snapshot.time, method: o.slot ? 'replication-slot' : 'exported-snapshot', slot: o.slot ?? null },
      tableOids: Object.fromEntries(tables.map((t) => [`${t.schema}.${t.name}`, t.oid])),
      schemaHash: schemaHash(schema),
      changes: null,
      tables: tables.map((t, i) => {
        const chunks = [...results.entries()]
          .filter(([k]) => k.startsWith(`${i}:`))
          .sort((a, b) => Number(a[0].split(':')[1]) - Number(b[0].split(':')[1]))
          .map(([, r]) => r)
        return {
          schema: t.schema,
          name: t.name,
          columns: columns.get(t.oid) ?? [],
          types: types.get(t.oid) ?? [],
          rows: chunks.reduce((n, c) => n + c.rows, 0),
          digest: combineDigests(chunks.map((c) => c.digest)),
          rawBytes: chunks.reduce((n, c) => n + c.rawBytes, 0),
          storedBytes: chunks.reduce((n, c) => n + c.stored, 0),
          chunks: chunks.map(({ key, rows, digest, rawBytes }) => ({ key, rows, digest, rawBytes })),
        }
      }),
      objects: objects.sort((a, b) => a.key.localeCompare(b.key)),
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
    ctx.onProgress({ phase: 'writing manifest', done: totalEst, total: totalEst, unit: 'bytes' })
    const sealed = sealManifest(manifest, o.encryption?.key ?? null)
    await o.storage.putSmall(manifestKey(setId), JSON.stringify(sealed, null, 2))
    return sealed
  } catch (e) {
    // No manifest was written: remove what this run stored (what cannot be removed now, cleanup removes later),
    // and the slot it created, which no set would follow and which would otherwise hold WAL forever.
    await o.storage.delete(written).catch(() => {})
    // The set's folder too (a cancel mid-copy would leave it empty), with any partial write in it.
    await o.storage.discard(setPrefix(setId)).catch((err) =>
      o.log.warn('could not remove the folder of an unfinished backup (cleanup removes what it can later)', { setId, error: String(err) }),
    )
    if (slotCreated) {
      await Promise.all(clients.map((c) => c.end().catch(() => {})))
      await withClient(o.databaseUrl, (c) => dropSlot(c, o.slot!), { connectTimeoutMs: o.connectTimeoutMs }).catch((err) =>
        o.log.warn('could not drop the slot of a failed backup', { slot: o.slot, error: String(err) }),
      )
    }
    throw e
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})))
  }
}
