import type pg from 'pg'
import { pgClient } from '../../db/connect'
import { OpsError } from '../../../shared/contract'
import { CATALOG_STATEMENT_TIMEOUT_MS, connectTimeouts, explainConnectError, type DbTimeoutSettings } from '../../db/timeouts'
import { formatBytes } from '../../../shared/format'
import { USER_SCHEMAS } from '../schema-capture'

export const PUBLICATION = 'examforge_ops'
export const SLOT_PREFIX = 'examforge_ops_'

/** One slot per chain, named for its full backup: examforge_ops_20261129t151329z_3fa9. */
export const slotNameFor = (fullSetId: string) => `${SLOT_PREFIX}${fullSetId.replace(/-full-/, '_').toLowerCase()}`

export interface Prerequisites {
  ok: boolean
  walLevel: string
  canReplicate: boolean
  publication: 'exists' | 'will be created' | 'cannot be created'
  /** Tables incrementals cannot follow (no usable replica identity): backed up by full backups only. */
  tablesWithoutReplicaIdentity: { table: string; fix: string }[]
  /** What is wrong and what to do, one sentence each. */
  problems: string[]
  /** What is worth knowing but does not stop a chain, one sentence each. */
  notes: string[]
}

/**
 * Tables with a usable replica identity (a primary key, REPLICA IDENTITY USING INDEX, or FULL): the
 * only ones published, because publishing a table without one makes its UPDATEs and DELETEs fail on
 * the server. Plain and partition tables (a partitioned parent holds no rows; its partitions do).
 */
const PUBLISHABLE = (yes: boolean) => `
  SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS table, n.nspname || '.' || c.relname AS key FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND c.relnamespace IN (${USER_SCHEMAS})
     AND ${yes ? '' : 'NOT '}(c.relreplident IN ('f', 'i') OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))`

/** Tables incrementals cannot follow: as SQL (public."Keyless", sorted), or as schema.name keys. */
export async function tablesWithoutIdentity(client: pg.ClientBase, as: 'table' | 'key' = 'table'): Promise<string[]> {
  const { rows } = await client.query<{ table: string; key: string }>(`SELECT t.table, t.key FROM (${PUBLISHABLE(false)}) t ORDER BY 1`)
  return rows.map((r) => r[as])
}

/** One sentence for the tables a chain does not follow. */
export const fullsOnlyNote = (tables: string[]) =>
  `${tables.length} table(s) have no replica identity, so incrementals leave them out and they are backed up by full backups only (a point-in-time restore brings them back as of the chain's full): ${tables.slice(0, 10).join(', ')}${tables.length > 10 ? ', ...' : ''}. To include one, add a primary key or run ALTER TABLE <table> REPLICA IDENTITY FULL.`

/**
 * What incremental backups need, checked and explained before the first one: wal_level=logical,
 * the replication privilege and the publication. Tables without a replica identity do not stop a
 * chain: they are left out of the publication (see PUBLISHABLE) and listed.
 */
export async function checkPrerequisites(client: pg.ClientBase): Promise<Prerequisites> {
  const { rows } = await client.query(
    `SELECT current_setting('wal_level') AS wal_level,
            (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS can_replicate,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS is_super,
            EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1) AS publication`,
    [PUBLICATION],
  )
  const r = rows[0] as { wal_level: string; can_replicate: boolean; is_super: boolean; publication: boolean }
  // The fix: a unique index on NOT NULL columns can serve as the identity (as Prisma's implicit
  // many-to-many tables have); else FULL (every old row is then logged whole).
  const { rows: missing } = await client.query<{ table: string; idx: string | null }>(
    `SELECT t.table,
            (SELECT format('%I', ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
              WHERE i.indrelid = t.oid AND i.indisunique AND i.indimmediate AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
                AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) k JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k WHERE NOT a.attnotnull)
              ORDER BY i.indnatts, ic.relname LIMIT 1) AS idx
       FROM (${PUBLISHABLE(false)}) t ORDER BY 1`,
  )
  const tablesWithoutReplicaIdentity = missing.map(({ table, idx }) => ({
    table,
    fix: idx
      ? `ALTER TABLE ${table} REPLICA IDENTITY USING INDEX ${idx};  -- or add a primary key`
      : `ALTER TABLE ${table} REPLICA IDENTITY FULL;  -- or add a primary key`,
  }))
  const problems: string[] = []
  if (r.wal_level !== 'logical')
    problems.push(
      `wal_level is "${r.wal_level}": set wal_level = logical in postgresql.conf (or your provider's parameter group) and restart PostgreSQL.`,
    )
  if (!r.can_replicate)
    problems.push('The backup role lacks the REPLICATION privilege: run ALTER ROLE <backup role> REPLICATION; as a superuser.')
  const publication: Prerequisites['publication'] = r.publication ? 'exists' : r.is_super ? 'will be created' : 'cannot be created'
  if (publication === 'cannot be created')
    problems.push(
      `The publication ${PUBLICATION} is missing and the backup role may not create it: as a superuser run CREATE PUBLICATION ${PUBLICATION}; ALTER PUBLICATION ${PUBLICATION} OWNER TO <backup role>; (the backups add the tables with a replica identity to it, which needs the backup role to own them).`,
    )
  const notes = tablesWithoutReplicaIdentity.length ? [fullsOnlyNote(tablesWithoutReplicaIdentity.map((t) => t.table))] : []
  return {
    ok: problems.length === 0,
    walLevel: r.wal_level,
    canReplicate: r.can_replicate,
    publication,
    tablesWithoutReplicaIdentity,
    problems,
    notes,
  }
}

/**
 * Make the publication hold exactly the tables with a usable replica identity: new ones are added,
 * ones that lost it are removed, so no table the application writes to is published without one.
 * An older publication FOR ALL TABLES is replaced in the same transaction (decoding never sees it
 * missing). Returns the tables left out (backed up by fulls only).
 */
export async function syncPublication(
  client: pg.ClientBase,
  /** Add only these tables (schema.name) of those that qualify: an incremental adds the ones its chain does not know itself, each with a snapshot of its rows. */
  addOnly?: Set<string>,
): Promise<{ added: string[]; removed: string[]; leftOut: string[]; leftOutKeys: string[] }> {
  await client.query('BEGIN')
  try {
    // Adding a table takes a brief lock on it: never queue behind a long transaction (and make the application queue behind us).
    await client.query(`SET LOCAL lock_timeout = '5s'`)
    const { rows: pub } = await client.query<{ oid: number; all: boolean }>(
      'SELECT oid::int, puballtables AS all FROM pg_publication WHERE pubname = $1',
      [PUBLICATION],
    )
    const { rows: want } = await client.query<{ oid: number; table: string; key: string }>(
      `SELECT oid::int, t.table, t.key FROM (${PUBLISHABLE(true)}) t ORDER BY 2`,
    )
    let added: string[] = []
    let removed: string[] = []
    if (!pub.length || pub[0].all) {
      if (pub.length) await client.query(`DROP PUBLICATION ${PUBLICATION}`)
      await client.query(`CREATE PUBLICATION ${PUBLICATION}${want.length ? ` FOR TABLE ${want.map((t) => t.table).join(', ')}` : ''}`)
      added = want.map((t) => t.table)
    } else {
      const { rows: have } = await client.query<{ oid: number; table: string }>(
        `SELECT c.oid::int, format('%I.%I', n.nspname, c.relname) AS table
           FROM pg_publication_rel pr JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE pr.prpubid = $1`,
        [pub[0].oid],
      )
      const haveOids = new Set(have.map((t) => t.oid))
      const wantOids = new Set(want.map((t) => t.oid))
      added = want.filter((t) => !haveOids.has(t.oid) && (!addOnly || addOnly.has(t.key))).map((t) => t.table)
      removed = have.filter((t) => !wantOids.has(t.oid)).map((t) => t.table)
      if (added.length) await client.query(`ALTER PUBLICATION ${PUBLICATION} ADD TABLE ${added.join(', ')}`)
      if (removed.length) await client.query(`ALTER PUBLICATION ${PUBLICATION} DROP TABLE ${removed.join(', ')}`)
    }
    const leftOut = await tablesWithoutIdentity(client)
    const leftOutKeys = await tablesWithoutIdentity(client, 'key')
    await client.query('COMMIT')
    return { added, removed, leftOut, leftOutKeys }
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {})
    throw e
  }
}

/**
 * Create the chain's slot on a replication connection, exporting its snapshot. The snapshot can be
 * imported only while that connection stays open and idle: close it once every reader has it.
 */
export async function createSlotWithSnapshot(
  url: string,
  slot: string,
  timeouts: DbTimeoutSettings = {},
): Promise<{ conn: pg.Client; lsn: string; snapshot: string }> {
  // A replication connection: connect timeout and keepalives, never a statement timeout.
  const conn = pgClient(url, {
    replication: 'database',
    application_name: 'examforge-ops:slot',
    ...connectTimeouts({ connectTimeoutMs: timeouts.connectTimeoutMs }),
  } as pg.ClientConfig)
  conn.on('error', () => {})
  await conn.connect().catch((e) => {
    throw explainConnectError(e, url, timeouts)
  })
  try {
    const { rows } = await conn.query(`CREATE_REPLICATION_SLOT "${slot}" LOGICAL pgoutput (SNAPSHOT 'export')`)
    return { conn, lsn: rows[0].consistent_point, snapshot: rows[0].snapshot_name }
  } catch (e) {
    await conn.end().catch(() => {})
    throw new OpsError('slot_failed', `The replication slot for incremental backups could not be created: ${(e as Error).message}`)
  }
}

export interface SlotStatus {
  name: string
  active: boolean
  walStatus: string | null
  retainedBytes: number
  confirmedFlushLsn: string | null
}

export async function ourSlots(client: pg.ClientBase): Promise<SlotStatus[]> {
  const { rows } = await client.query(
    `SELECT slot_name AS name, active, wal_status, confirmed_flush_lsn::text AS confirmed,
            COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint AS retained
       FROM pg_replication_slots WHERE slot_name LIKE $1 AND database = current_database() ORDER BY slot_name`,
    [`${SLOT_PREFIX}%`],
  )
  return rows.map((r) => ({
    name: r.name,
    active: r.active,
    walStatus: r.wal_status,
    retainedBytes: Number(r.retained),
    confirmedFlushLsn: r.confirmed,
  }))
}

export async function dropSlot(client: pg.ClientBase, name: string): Promise<void> {
  await client.query('SELECT pg_drop_replication_slot($1)', [name])
}

/**
 * What a full backup without a chain means, and what a chain would cost: it can restore only its own
 * moment; point-in-time restore needs incrementals, whose slot keeps the WAL written between two of
 * them on the database server. The rate is this server's average since its WAL statistics were reset
 * (pg_stat_wal, PostgreSQL 14+), when it can be read.
 */
export async function chainAdvice(client: pg.ClientBase): Promise<string> {
  let rate: number | null = null
  try {
    const { rows } = await client.query<{ per_hour: string | null }>(
      `SELECT (wal_bytes / GREATEST(EXTRACT(EPOCH FROM now() - stats_reset), 60) * 3600)::bigint::text AS per_hour FROM pg_stat_wal WHERE stats_reset IS NOT NULL`,
    )
    rate = rows[0]?.per_hour ? Number(rows[0].per_hour) : null
  } catch {
    rate = null // before PostgreSQL 14, or no access to the statistics
  }
  const cost =
    rate !== null
      ? `about ${formatBytes(rate)} an hour on this server, so about ${formatBytes(rate / 4)} with incrementals every 15 minutes`
      : 'as much as the database writes between two incrementals'
  return (
    'This full backup started no chain, so it restores only its own moment: point-in-time restore needs incremental backups. ' +
    'Turn them on with BACKUP_INCREMENTAL_EVERY=15m (the agent then takes them) or BACKUP_INCREMENTAL=on; they need wal_level=logical ' +
    `(see "examforge-ops backups prerequisites"). Their replication slot keeps the WAL written between two incrementals on the database server: ${cost}.`
  )
}

/** A short-lived connection for catalog queries: connect timeout, keepalives and a statement timeout. */
export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>, timeouts: DbTimeoutSettings = {}): Promise<T> {
  const c = pgClient(url, {
    application_name: 'examforge-ops:backup',
    ...connectTimeouts({ statementTimeoutMs: CATALOG_STATEMENT_TIMEOUT_MS, ...timeouts }),
  })
  c.on('error', () => {})
  await c.connect().catch((e) => {
    throw explainConnectError(e, url, timeouts)
  })
  try {
    return await fn(c)
  } finally {
    await c.end().catch(() => {})
  }
}
