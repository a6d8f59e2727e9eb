import type pg from 'pg'
import { pgClient } from '../../db/connect'
import { OpsError } from '../../../shared/contract'
import { CATALOG_STATEMENT_TIMEOUT_MS, connectTimeouts, explainConnectError, type DbTimeoutSettings } from '../../db/timeouts'
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
  tablesWithoutReplicaIdentity: { table: string; fix: string }[]
  /** What is wrong and what to do, one sentence each. */
  problems: string[]
}

/**
 * What incremental backups need, checked and explained before the first one: wal_level=logical,
 * the replication privilege, the publication, and a replica identity on every table (without
 * one, a publication makes that table's UPDATEs and DELETEs fail on the server).
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
  const { rows: missing } = await client.query<{ table: string }>(
    `SELECT format('%I.%I', c.relnamespace::regnamespace::text, c.relname) AS table FROM pg_class c
      WHERE c.relkind IN ('r', 'p') AND c.relnamespace IN (${USER_SCHEMAS}) AND NOT c.relispartition
        AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
      ORDER BY 1`,
  )
  const tablesWithoutReplicaIdentity = missing.map((m) => ({
    table: m.table,
    fix: `ALTER TABLE ${m.table} REPLICA IDENTITY FULL;  -- or add a primary key`,
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
      `The publication ${PUBLICATION} is missing and only a superuser can create it: run CREATE PUBLICATION ${PUBLICATION} FOR ALL TABLES; as a superuser.`,
    )
  if (tablesWithoutReplicaIdentity.length)
    problems.push(
      `${tablesWithoutReplicaIdentity.length} table(s) have no replica identity, so their updates and deletes could not be captured (and would fail once published): ${tablesWithoutReplicaIdentity.map((t) => t.fix.split('  --')[0]).join(' ')}`,
    )
  return {
    ok: problems.length === 0,
    walLevel: r.wal_level,
    canReplicate: r.can_replicate,
    publication,
    tablesWithoutReplicaIdentity,
    problems,
  }
}

export async function ensurePublication(client: pg.ClientBase): Promise<void> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [PUBLICATION])
  if (!rowCount) await client.query(`CREATE PUBLICATION ${PUBLICATION} FOR ALL TABLES`)
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
  const conn = pgClient(url, { replication: 'database',
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

/** A short-lived connection for catalog queries: connect timeout, keepalives and a statement timeout. */
export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>, timeouts: DbTimeoutSettings = {}): Promise<T> {
  const c = pgClient(url, { application_name: 'examforge-ops:backup',
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
