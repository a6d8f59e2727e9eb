import fs from 'node:fs'
import type pg from 'pg'
import { pgClient } from '../db/connect'
import { OpsError } from '../../shared/contract'
import { formatBytes } from '../../shared/format'
import type { PreflightCheck, RestorePlan, RestorePoint } from '../../shared/restore'
import { refuseUnauthenticated, type Authenticity } from '../backup/authenticity'
import { chains, readCatalog, readSet, type CatalogSet } from '../backup/catalog'
import type { Manifest } from '../backup/manifest'
import { USER_SCHEMAS } from '../backup/schema-capture'
import { qi, qname } from '../db/sql'
import type { BackupStorage } from '../storage/storage'
import { foreignKeys, partitionParents, rootOf, type ForeignKey } from './schema-graph'
import { SetReader, type Keys } from './source'
import { CATALOG_STATEMENT_TIMEOUT_MS, connectTimeouts, explainConnectError } from '../db/timeouts'

export type ResolvedTarget =
  | { kind: 'in-place' }
  | { kind: 'existing'; database: string }
  | { kind: 'new'; database: string }
  /** The CLI's --target: any database URL (created when it does not exist). */
  | { kind: 'url'; url: string }

export interface PlanInput {
  point: RestorePoint
  tables?: string[]
  target: ResolvedTarget
  /** Restore sets whose manifest is not authenticated although an encryption key is configured (see authenticity.ts). */
  allowUnauthenticated?: boolean
}

/** A plan with what executing it needs (the target's URL holds credentials: it never leaves core). */
export interface PreparedRestore {
  plan: RestorePlan
  sets: Manifest[]
  reader: SetReader
  schema: { pre: string[]; post: string[] }
  /** "schema.name" of every table restored. */
  scope: string[]
  /** Replay stops after the last transaction committed at or before this time (null: everything in the sets). */
  stopAfter: Date | null
  targetUrl: string
  /** Rows per table after the restore, as the manifests and the change stream say. */
  rowsAfter: Map<string, number>
  /** Columns of the tables whose shape a carried schema change set (or that joined the chain) by the chosen moment. */
  columnsAfter: Map<string, string[]>
  fks: ForeignKey[]
}

export const tableKey = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`
export const splitKey = (k: string): [string, string] => {
  const i = k.indexOf('.')
  return [k.slice(0, i), k.slice(i + 1)]
}
/** "schema.name" as a quoted relation name. */
export const relName = (k: string) => qname(...splitKey(k))

/** postgres://...@host:port/db with another database name. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = `/${encodeURIComponent(database)}`
  return u.toString()
}

export function describeUrl(url: string): { database: string; server: string } {
  const u = new URL(url)
  return { database: decodeURIComponent(u.pathname.slice(1)) || 'postgres', server: `${u.hostname || 'localhost'}:${u.port || '5432'}` }
}

/** Which sets a point needs: the full, then every incremental up to the one that covers the point (each with its authenticity). */
export async function resolvePoint(
  storage: BackupStorage,
  point: RestorePoint,
  keys: Keys | null = null,
): Promise<{
  sets: Manifest[]
  authenticity: Map<string, Authenticity>
  stopAfter: Date | null
  label: string
  chain: { fullSetId: string; from: string; to: string }
}> {
  const authenticity = new Map<string, Authenticity>()
  const note = (catalog: CatalogSet[]) => {
    for (const s of catalog) if (s.authenticity) authenticity.set(s.setId, s.authenticity)
    return catalog
  }
  /** Sets refused as tampered, named where they may explain why a point is not reachable. */
  const tampered = (catalog: CatalogSet[]) => {
    const t = catalog.filter((s) => s.status === 'tampered').map((s) => s.setId)
    return t.length
      ? ` ${t.length === 1 ? 'The set' : 'The sets'} ${t.join(', ')} failed ${t.length === 1 ? 'its' : 'their'} authentication check and ${t.length === 1 ? 'is' : 'are'} left out.`
      : ''
  }
  if ('setId' in point) {
    const set = await readSet(storage, point.setId, keys)
    if (!set)
      throw new OpsError(
        'unknown_set',
        `There is no backup set "${point.setId}" in ${storage.location}. List them with "examforge-ops backups list".`,
      )
    if (set.status === 'tampered') throw new OpsError('tampered_set', `The set ${point.setId} cannot be restored: ${set.problem}`)
    if (!set.manifest) throw new OpsError('incomplete_set', `The set ${point.setId} cannot be restored: ${set.problem}`)
    const m = set.manifest
    note([set])
    if (m.type !== 'incremental')
      return {
        sets: [m],
        authenticity,
        stopAfter: null,
        label: `${m.type === 'safety' ? 'safety backup' : 'full backup'} ${m.setId} (${m.snapshot.time})`,
        chain: { fullSetId: m.setId, from: m.snapshot.time, to: m.snapshot.time },
      }
    const catalog = note(await readCatalog(storage, keys))
    const chain = chains(catalog).find((c) => c.sets.some((s) => s.setId === m.setId))
    if (!chain)
      throw new OpsError(
        'broken_chain',
        `The incremental ${m.setId} has no complete chain back to its full backup: a set it needs is missing.${tampered(catalog)}`,
      )
    const upTo = chain.sets.findIndex((s) => s.setId === m.setId)
    return {
      sets: chain.sets.slice(0, upTo + 1),
      authenticity,
      stopAfter: null,
      label: `incremental ${m.setId} (${m.snapshot.time})`,
      chain: { fullSetId: chain.full.setId, from: chain.from, to: chain.to },
    }
  }
  const at = new Date(point.time)
  const catalog = note(await readCatalog(storage, keys))
  const all = chains(catalog)
  const chain = all.find((c) => new Date(c.from) <= at && at <= new Date(c.to))
  if (!chain) {
    const ranges = all.map((c) => `${c.from} to ${c.to}`)
    throw new OpsError(
      'time_not_covered',
      (ranges.length
        ? `No backup chain covers ${at.toISOString()}. The backups cover: ${ranges.join('; ')}.`
        : `No backup chain covers ${at.toISOString()}: there are no complete backups yet.`) + tampered(catalog),
    )
  }
  const sets: Manifest[] = [chain.sets[0]]
  for (const s of chain.sets.slice(1)) {
    sets.push(s)
    if (new Date(s.snapshot.time) >= at) break
  }
  return {
    sets,
    authenticity,
    stopAfter: at,
    label: `point in time ${at.toISOString()}`,
    chain: { fullSetId: chain.full.setId, from: chain.from, to: chain.to },
  }
}

/** The user's table names, matched against the manifest by name (never used as SQL). */
export function resolveTables(names: string[] | undefined, full: Manifest, parents: Map<string, string>): string[] {
  const all = full.tables.map(tableKey)
  if (!names || !names.length) return all
  const out = new Set<string>()
  for (const raw of names) {
    const name = raw
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .replace(/"\."/g, '.')
    // A partitioned parent stands for its partitions.
    const matches = all.filter(
      (t) => t === name || t.slice(t.indexOf('.') + 1) === name || rootOf(t, parents) === name || rootOf(t, parents).endsWith(`.${name}`),
    )
    const exact = matches.filter((t) => t === name || rootOf(t, parents) === name)
    const chosen = exact.length ? exact : matches
    const schemas = new Set(chosen.map((t) => rootOf(t, parents).split('.')[0]))
    if (!chosen.length)
      throw new OpsError(
        'unknown_table',
        `The backup holds no table "${raw.slice(0, 80)}". Tables in it: ${all.slice(0, 30).join(', ')}${all.length > 30 ? ', ...' : ''}.`,
      )
    if (schemas.size > 1)
      throw new OpsError(
        'ambiguous_table',
        `"${raw.slice(0, 80)}" is in several schemas (${[...schemas].join(', ')}): name it as schema.table.`,
      )
    chosen.forEach((t) => out.add(t))
  }
  return all.filter((t) => out.has(t))
}

/** Rows per table after replaying the sets' change streams onto the full (exact: one message per row). */
async function countAfter(
  reader: SetReader,
  sets: Manifest[],
  stopAfter: Date | null,
  signal: AbortSignal,
): Promise<{
  rows: Map<string, number>
  transactions: number
  columns: Map<string, string[]>
  created: string[]
  schemaChanges: string[]
}> {
  const rows = new Map(sets[0].tables.map((t) => [tableKey(t), t.rows]))
  let transactions = 0
  // Schema changes the chain carried up to the moment, as the change stream placed them.
  const columns = new Map<string, string[]>()
  const created: string[] = []
  const schemaChanges: string[] = []
  let txnTime = ''
  for (const m of sets.slice(1)) {
    let pending = new Map<string, number>()
    let truncated = new Set<string>()
    let stop = false
    for await (const l of reader.changes(m, signal)) {
      if (l.op === 'begin') {
        if (stopAfter && new Date(l.time) > stopAfter) {
          stop = true
          break
        }
        pending = new Map()
        truncated = new Set()
        txnTime = l.time
      } else if (l.op === 'ddl') {
        const k = `${l.table[0]}.${l.table[1]}`
        columns.set(k, l.columns)
        schemaChanges.push(
          `${k}: ${[...l.added.map((c) => `column ${c} added`), ...l.dropped.map((c) => `column ${c} dropped`)].join(', ')} (from ${txnTime})`,
        )
      } else if (l.op === 'create') {
        const k = `${l.table[0]}.${l.table[1]}`
        columns.set(k, l.columns)
        created.push(k)
        pending.set(k, (pending.get(k) ?? 0) + l.rows)
        schemaChanges.push(`${k}: joined the chain with ${l.rows} rows (at ${txnTime}; not restored to earlier moments)`)
      } else if (l.op === 'insert' || l.op === 'delete') {
        const k = `${l.table[0]}.${l.table[1]}`
        pending.set(k, (pending.get(k) ?? 0) + (l.op === 'insert' ? 1 : -1))
      } else if (l.op === 'truncate') {
        for (const [s, n] of l.tables) {
          truncated.add(`${s}.${n}`)
          pending.set(`${s}.${n}`, 0)
        }
      } else if (l.op === 'commit') {
        transactions++
        for (const k of truncated) rows.set(k, 0)
        for (const [k, d] of pending) rows.set(k, (rows.get(k) ?? 0) + d)
      }
    }
    if (stop) break
  }
  return { rows, transactions, columns, created, schemaChanges }
}

async function tryConnect(
  url: string,
  connectTimeoutMs?: number,
): Promise<{ client: pg.Client | null; missing: boolean; error: string | null }> {
  const client = pgClient(url, {
    application_name: 'examforge-ops:restore-plan',
    ...connectTimeouts({ connectTimeoutMs, statementTimeoutMs: CATALOG_STATEMENT_TIMEOUT_MS }),
  })
  client.on('error', () => {})
  try {
    await client.connect()
    return { client, missing: false, error: null }
  } catch (e) {
    await client.end().catch(() => {})
    const code = (e as { code?: string }).code
    return { client: null, missing: code === '3D000', error: (explainConnectError(e, url, { connectTimeoutMs }) as Error).message }
  }
}

/** A preview reads every object to check its SHA-256 up to this many bytes; beyond, that check runs when the restore starts. */
export const PREVIEW_VERIFY_BYTES = 128 * 1024 * 1024

/**
 * The "Backup objects" preflight line, saying exactly what was checked: every object present with its
 * recorded size (always; one listing per set), and its SHA-256 when `verifyUpTo` allows reading it all
 * now. Otherwise it says the SHA-256 check runs at start (it always does, before the target is touched).
 */
async function objectsCheck(reader: SetReader, sets: Manifest[], verifyUpTo: number, signal: AbortSignal): Promise<PreflightCheck> {
  const count = sets.reduce((n, s) => n + s.objects.length, 0)
  const bytes = sets.reduce((n, s) => n + s.objects.reduce((a, o) => a + o.size, 0), 0)
  const what = `${count} objects, ${formatBytes(bytes)}`
  const key = sets[0].encryption ? '; the decryption key matches' : ''
  const problems = await reader.checkPresence()
  if (problems.length)
    return {
      check: 'Backup objects',
      status: 'failed',
      detail: `${problems.slice(0, 3).join(' ')}${problems.length > 3 ? ` (${problems.length - 3} more)` : ''} Choose another backup set.`,
    }
  if (bytes <= verifyUpTo) {
    try {
      await reader.verifyObjects(signal, () => {})
    } catch (e) {
      if (signal.aborted) throw e
      return { check: 'Backup objects', status: 'failed', detail: (e as Error).message }
    }
    return {
      check: 'Backup objects',
      status: 'ok',
      detail: `${what}: each matches its SHA-256 (checked now, and again when the restore starts, before the target is touched)${key}.`,
    }
  }
  return {
    check: 'Backup objects',
    status: 'ok',
    detail:
      verifyUpTo > 0
        ? `${what}: all present with their recorded sizes; their SHA-256 is not checked in the preview (too much to read) but when the restore starts, before the target is touched${key}.`
        : `${what}: all present with their recorded sizes; their SHA-256 is checked as the restore starts, before the target is touched${key}.`,
  }
}

/** The Space preflight check: `need` bytes against the target server's free disk, where it can be seen. */
async function spaceCheck(c: pg.Client, url: string, need: number): Promise<PreflightCheck> {
  const free = await serverFreeBytes(c, url)
  if (free === null)
    return {
      check: 'Space',
      status: 'warning',
      detail: `About ${formatBytes(need)} is needed on the server; its free space cannot be seen from here.`,
    }
  if (free < need)
    return {
      check: 'Space',
      status: 'failed',
      detail: `About ${formatBytes(need)} is needed; the server's disk has ${formatBytes(free)} free.`,
    }
  return { check: 'Space', status: 'ok', detail: `About ${formatBytes(need)} is needed; ${formatBytes(free)} is free.` }
}

/** Free bytes on the target server's disk, when it is this machine and its data directory is visible. */
async function serverFreeBytes(c: pg.Client, url: string): Promise<number | null> {
  const host = new URL(url).hostname
  if (host && !['localhost', '127.0.0.1', '::1', '[::1]'].includes(host) && !host.startsWith('/')) return null
  try {
    const dir = (await c.query(`SELECT current_setting('data_directory') AS d`)).rows[0].d as string
    const st = fs.statfsSync(dir)
    return st.bavail * st.bsize
  } catch {
    return null
  }
}

/**
 * Plan a restore without touching anything: the sets to read, the scope, the target and what will
 * happen to it, per-table rows now and after, and preflight checks. Nothing here writes.
 */
export async function planRestore(
  input: PlanInput,
  deps: {
    storage: BackupStorage
    keys: Keys
    databaseUrl: string | null
    signal?: AbortSignal
    connectTimeoutMs?: number
    /** Read every object now to check its SHA-256 when the sets hold at most this many bytes (0: never; the restore always does at start). */
    verifyUpTo?: number
  },
): Promise<PreparedRestore> {
  const signal = deps.signal ?? new AbortController().signal
  const point = await resolvePoint(deps.storage, input.point, deps.keys)
  const sets = point.sets
  const full = sets[0]
  const preflight: PreflightCheck[] = []
  // Before anything is read from the sets: with a key configured, only authenticated sets (or acknowledged ones).
  const auth = (m: Manifest) => point.authenticity.get(m.setId) ?? 'unauthenticated'
  const { acknowledged } = refuseUnauthenticated(
    sets.map((m) => ({ manifest: m, authenticity: auth(m) })),
    deps.keys,
    input.allowUnauthenticated ?? false,
  )
  const reader = new SetReader(deps.storage, sets, deps.keys) // a wrong key is refused here
  const objects = await objectsCheck(reader, sets, deps.verifyUpTo ?? 0, signal)
  preflight.push(objects)
  preflight.push(
    acknowledged.length
      ? {
          check: 'Authenticity',
          status: 'warning',
          detail: `Not authenticated, restored as acknowledged: ${acknowledged.join(', ')} (no MAC: a change by someone who can write to the backup storage would go unnoticed).`,
        }
      : sets.every((m) => auth(m) === 'authenticated')
        ? {
            check: 'Authenticity',
            status: 'ok',
            detail: 'Every manifest passed its authentication check; each object is bound to its set.',
          }
        : {
            check: 'Authenticity',
            status: 'ok',
            detail:
              'Not checked: no encryption key is configured, so the manifests are trusted as stored (their SHA-256s guard against damage, not against someone who can write to the backup storage).',
          },
  )
  let schema: { pre: string[]; post: string[] }
  let after: Awaited<ReturnType<typeof countAfter>>
  try {
    schema = await reader.schema(full, signal)
    after = await countAfter(reader, sets, point.stopAfter, signal)
  } catch (e) {
    // A damaged schema or change object cannot be read: the objects check already says which and why.
    if (objects.status === 'failed' && !signal.aborted) throw new OpsError('object_damaged', objects.detail)
    throw e
  }
  const parents = partitionParents(schema.pre)
  const fks = foreignKeys(schema.post)
  const scope = resolveTables(input.tables, full, parents)
  const whole = scope.length === full.tables.length
  const { rows: rowsAfter, transactions, columns: columnsAfter } = after
  // Tables that joined the chain by the chosen moment come back with a whole-database restore.
  if (whole) scope.push(...after.created.filter((k) => !scope.includes(k)))
  // What a point in a chain cannot bring back as it was: tables the change stream does not follow, and
  // the schema after a change that ended the chain.
  if (sets.length > 1) {
    const fullsOnly = [...new Set(sets.flatMap((m) => m.fullsOnly ?? []))].filter((t) => scope.includes(t))
    if (fullsOnly.length)
      preflight.push({
        check: 'Change stream coverage',
        status: 'warning',
        detail: `${fullsOnly.join(', ')} ${fullsOnly.length === 1 ? 'is' : 'are'} not in the change stream (no replica identity): restored as of the full backup (${full.snapshot.time}).`,
      })
    const end = sets.at(-1)!.endsChain
    if (end)
      preflight.push({
        check: 'Schema',
        status: 'warning',
        detail: `This chain ends at a schema change (${end.reason}); the tables are restored with the schema of its full backup (${full.snapshot.time}), and their rows as they were at the chosen moment.`,
      })
  }

  // The target.
  let targetUrl: string
  const t = input.target
  if (t.kind === 'url') targetUrl = t.url
  else {
    if (!deps.databaseUrl) throw new OpsError('no_database', 'No database is configured: set DATABASE_URL, or give a target database URL.')
    targetUrl = t.kind === 'in-place' ? deps.databaseUrl : withDatabase(deps.databaseUrl, t.database)
  }
  const where = describeUrl(targetUrl)
  if (t.kind === 'new' || t.kind === 'existing') {
    if (deps.databaseUrl && describeUrl(deps.databaseUrl).database === t.database && describeUrl(deps.databaseUrl).server === where.server)
      throw new OpsError('target_is_source', `"${t.database}" is the database being watched: choose "in place" to restore into it.`)
  }
  // Space: the data, its indexes (roughly as much again), and, in place, the old rows until commit.
  const spaceNeeded = (m: 'replace' | 'load') =>
    scope.reduce((n, k) => n + (full.tables.find((x) => tableKey(x) === k)?.rawBytes ?? 0), 0) * (m === 'replace' ? 3 : 2)
  const conn = await tryConnect(targetUrl, deps.connectTimeoutMs)
  let mode: 'replace' | 'load' = 'load'
  let createsDatabase = false
  const rowsNow = new Map<string, { rows: number; exact: boolean }>()
  const scopeSet = new Set(scope)
  try {
    if (!conn.client) {
      if (conn.missing && (t.kind === 'new' || t.kind === 'url')) {
        createsDatabase = true
        preflight.push({ check: 'Target', status: 'ok', detail: `The database ${where.database} on ${where.server} will be created.` })
        const maint = await tryConnect(withDatabase(targetUrl, 'postgres'), deps.connectTimeoutMs)
        if (!maint.client)
          preflight.push({ check: 'Target reachable', status: 'failed', detail: `Cannot reach the server ${where.server}: ${maint.error}` })
        else {
          try {
            const { rows } = await maint.client.query(
              `SELECT rolcreatedb OR rolsuper AS ok, current_setting('server_version_num')::int AS num FROM pg_roles WHERE rolname = current_user`,
            )
            preflight.push(
              rows[0]?.ok
                ? { check: 'Privileges', status: 'ok', detail: 'The role may create databases.' }
                : {
                    check: 'Privileges',
                    status: 'failed',
                    detail: 'The role may not create databases: grant CREATEDB, or create the database first.',
                  },
            )
            preflight.push(versionCheck(full, rows[0]?.num))
            preflight.push(await spaceCheck(maint.client, targetUrl, spaceNeeded('load')))
          } finally {
            await maint.client.end().catch(() => {})
          }
        }
      } else if (conn.missing)
        preflight.push({
          check: 'Target reachable',
          status: 'failed',
          detail: `The database ${where.database} does not exist on ${where.server}: choose "new database" to create it.`,
        })
      else
        preflight.push({
          check: 'Target reachable',
          status: 'failed',
          detail: `Cannot connect to ${where.database} on ${where.server}: ${conn.error}`,
        })
    } else {
      const c = conn.client
      if (t.kind === 'new')
        throw new OpsError('database_exists', `The database ${t.database} already exists: choose "existing database", or another name.`)
      preflight.push({ check: 'Target reachable', status: 'ok', detail: `Connected to ${where.database} on ${where.server}.` })
      const { rows: info } = await c.query(
        `SELECT current_setting('server_version_num')::int AS num,
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
                has_database_privilege(current_database(), 'CREATE') AS can_create`,
      )
      preflight.push(versionCheck(full, info[0].num))
      const { rows: existing } = await c.query<{ t: string; cols: string[]; bytes: string; est: string }>(
        `SELECT n.nspname || '.' || c.relname AS t, pg_relation_size(c.oid)::bigint AS bytes, c.reltuples::bigint AS est,
                ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum) AS cols
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND c.relnamespace IN (${USER_SCHEMAS})`,
      )
      const byName = new Map(existing.map((r) => [r.t, r]))
      mode = existing.length ? 'replace' : 'load'
      if (mode === 'load') {
        preflight.push(
          info[0].can_create || info[0].superuser
            ? { check: 'Privileges', status: 'ok', detail: 'The database is empty: the schema and the data will be created in it.' }
            : {
                check: 'Privileges',
                status: 'failed',
                detail: 'The role may not create schemas or tables in this database: grant CREATE on it.',
              },
        )
      } else {
        // Schema: every restored table must be there with the backup's columns.
        const problems: string[] = []
        for (const k of scope) {
          // The columns the table has at the chosen moment (a carried schema change may have reshaped it, or created it).
          const want = columnsAfter.get(k) ?? full.tables.find((x) => tableKey(x) === k)!.columns
          const cur = byName.get(k)
          if (!cur) {
            problems.push(`${k} is missing`)
            continue
          }
          const missing = want.filter((col) => !cur.cols.includes(col))
          const extra = cur.cols.filter((col) => !want.includes(col))
          if (missing.length || extra.length)
            problems.push(
              `${k} differs (${[missing.length ? `no column ${missing.join(', ')}` : '', extra.length ? `new column ${extra.join(', ')}` : ''].filter(Boolean).join('; ')})`,
            )
        }
        preflight.push(
          problems.length
            ? {
                check: 'Schema compatible',
                status: 'failed',
                detail: `The target's tables do not match the backup: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? '; ...' : ''}. Restore into a new database instead, then move what you need.`,
              }
            : {
                check: 'Schema compatible',
                status: 'ok',
                detail: `${scope.length === 1 ? 'The table exists' : `All ${scope.length} tables exist`} with the backup's columns.`,
              },
        )
        if (whole) {
          const others = existing.filter((r) => !full.tables.some((x) => tableKey(x) === r.t)).map((r) => r.t)
          if (others.length)
            preflight.push({
              check: 'Tables not in the backup',
              status: 'warning',
              detail: `${others.length} table(s) of the target are not in the backup and are left as they are: ${others.slice(0, 10).join(', ')}.`,
            })
        }
        // Privileges: replacing in one transaction with triggers and FK checks off needs session_replication_role.
        let canReplica = info[0].superuser as boolean
        if (!canReplica) {
          try {
            await c.query('BEGIN')
            await c.query('SET LOCAL session_replication_role = replica')
            canReplica = true
          } catch {
            canReplica = false
          } finally {
            await c.query('ROLLBACK').catch(() => {})
          }
        }
        const { rows: privs } = await c.query<{ t: string; ok: boolean }>(
          `SELECT t, has_table_privilege(t::regclass, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE') AS ok FROM unnest($1::text[]) t`,
          [
            scope
              .filter((k) => byName.has(k))
              .map((k) =>
                splitKey(k)
                  .map((p) => qi(p))
                  .join('.'),
              ),
          ],
        )
        const denied = privs.filter((p) => !p.ok).map((p) => p.t)
        preflight.push(
          !canReplica
            ? {
                check: 'Privileges',
                status: 'failed',
                detail:
                  'Replacing tables in place needs a superuser, or a role granted SET on session_replication_role (PostgreSQL 15+: GRANT SET ON PARAMETER session_replication_role TO <role>), so triggers do not fire during the restore.',
              }
            : denied.length
              ? {
                  check: 'Privileges',
                  status: 'failed',
                  detail: `The role lacks SELECT/INSERT/UPDATE/DELETE/TRUNCATE on ${denied.slice(0, 5).join(', ')}.`,
                }
              : { check: 'Privileges', status: 'ok', detail: 'The role may replace these tables with triggers off for the restore.' },
        )
        // Rows now: exact for tables up to 256 MB, the planner's estimate beyond.
        for (const k of scope) {
          const cur = byName.get(k)
          if (!cur) continue
          if (Number(cur.bytes) <= 256 * 1024 * 1024) {
            const [s, n] = splitKey(k)
            const { rows } = await c.query(`SELECT count(*)::bigint AS n FROM ONLY ${qname(s, n)}`)
            rowsNow.set(k, { rows: Number(rows[0].n), exact: true })
          } else rowsNow.set(k, { rows: Math.max(0, Number(cur.est)), exact: false })
        }
      }
      preflight.push(await spaceCheck(c, targetUrl, spaceNeeded(mode)))
    }
  } finally {
    await conn.client?.end().catch(() => {})
  }

  // Schema changes the chain carried through, up to the chosen moment.
  if (after.schemaChanges.length) {
    const list = `${after.schemaChanges.slice(0, 8).join('; ')}${after.schemaChanges.length > 8 ? '; ...' : ''}`
    preflight.push(
      mode === 'replace'
        ? {
            check: 'Schema',
            status: 'failed',
            detail: `The chain carries schema changes up to this moment (${list}): an in-place restore cannot change the live tables' schema. Restore into a new database instead.`,
          }
        : {
            check: 'Schema',
            status: 'ok',
            detail: `The chain carries ${after.schemaChanges.length} schema change(s) through up to this moment, applied during the replay just before the first change of each new shape: ${list}.`,
          },
    )
  }

  // Foreign keys that tie the scope to tables outside it.
  const related = new Map<string, string>()
  if (!whole) {
    const roots = new Map(full.tables.map((x) => [tableKey(x), rootOf(tableKey(x), parents)]))
    const scopeRoots = new Set(scope.map((k) => roots.get(k)!))
    const leavesOf = (root: string) => full.tables.map(tableKey).filter((k) => roots.get(k) === root)
    for (const fk of fks) {
      const a = scopeRoots.has(fk.table)
      const b = scopeRoots.has(fk.references)
      if (a && !b) leavesOf(fk.references).forEach((k) => related.set(k, `${fk.table} references it`))
      if (b && !a) leavesOf(fk.table).forEach((k) => related.set(k, `it references ${fk.references}`))
    }
  }
  const available = full.tables.map((x) => {
    const k = tableKey(x)
    const root = rootOf(k, parents)
    return {
      table: k,
      rows: x.rows,
      references: [...new Set(fks.filter((f) => f.table === root && f.references !== root).map((f) => f.references))],
      referencedBy: [...new Set(fks.filter((f) => f.references === root && f.table !== root).map((f) => f.table))],
    }
  })

  const readBytes = sets.reduce((n, s) => n + s.objects.reduce((a, o) => a + o.size, 0), 0)
  const plan: RestorePlan = {
    point: {
      kind: 'setId' in input.point ? 'set' : 'time',
      label: point.label,
      setId: 'setId' in input.point ? input.point.setId : null,
      time: 'time' in input.point ? new Date(input.point.time).toISOString() : null,
    },
    chain: point.chain,
    sets: sets.map((s) => ({
      setId: s.setId,
      type: s.type,
      snapshotTime: s.snapshot.time,
      storedBytes: s.objects.reduce((n, o) => n + o.size, 0),
    })),
    bytesToRead: readBytes,
    transactions,
    target: { kind: t.kind, database: where.database, server: where.server, mode, createsDatabase },
    wholeDatabase: whole,
    tables: scope.map((k) => ({
      table: k,
      rowsNow: mode === 'load' ? 0 : (rowsNow.get(k)?.rows ?? null),
      rowsNowExact: mode === 'load' ? true : (rowsNow.get(k)?.exact ?? false),
      rowsAfter: rowsAfter.get(k) ?? 0,
      bytes: full.tables.find((x) => tableKey(x) === k)?.rawBytes ?? 0,
    })),
    available,
    related: [...related].filter(([k]) => !scopeSet.has(k)).map(([table, why]) => ({ table, why })),
    safetyBackup: mode === 'replace',
    // Filled in by the service from what earlier restores here took (estimate.ts).
    estimatedSeconds: null,
    estimateBasis: 'unknown',
    preflight,
    ok: preflight.every((p) => p.status !== 'failed'),
  }
  return { plan, sets, reader, schema, scope, stopAfter: point.stopAfter, targetUrl, rowsAfter, columnsAfter, fks }
}

function versionCheck(full: Manifest, targetNum: number | undefined): PreflightCheck {
  const from = Math.floor(full.server.versionNum / 10000)
  const to = Math.floor((targetNum ?? 0) / 10000)
  return to >= from
    ? { check: 'Server version', status: 'ok', detail: `PostgreSQL ${from} backup into PostgreSQL ${to}.` }
    : {
        check: 'Server version',
        status: 'failed',
        detail: `The backup is from PostgreSQL ${from}; the target runs ${to}. Restore into PostgreSQL ${from} or later.`,
      }
}
