import { randomBytes } from 'node:crypto'
import { z } from 'zod'

/**
 * 1: sets without client-side encryption, and encrypted sets written before manifests were authenticated.
 * 2: encrypted sets whose manifest carries a MAC and whose objects are bound to their set (see authenticity.ts).
 */
export const MANIFEST_VERSION = 1
export const AUTHENTICATED_VERSION = 2
export const SETS_PREFIX = 'sets/'

export const manifestSchema = z.object({
  formatVersion: z.union([z.literal(MANIFEST_VERSION), z.literal(AUTHENTICATED_VERSION)]),
  setId: z.string(),
  type: z.enum(['full', 'incremental', 'safety']),
  parent: z.string().nullable(),
  database: z.string(),
  server: z.object({ version: z.string(), versionNum: z.number(), systemIdentifier: z.string() }),
  /** For a full: the snapshot. For an incremental: the point up to which it holds every committed change. */
  snapshot: z.object({
    lsn: z.string(),
    time: z.string(),
    method: z.enum(['exported-snapshot', 'replication-slot']),
    slot: z.string().nullable(),
  }),
  /** SHA-256 of the captured schema: a different one at the next incremental turns it into a full. */
  schemaHash: z.string(),
  /** Incrementals: what the change stream held. */
  changes: z
    .object({
      transactions: z.number(),
      inserts: z.number(),
      updates: z.number(),
      deletes: z.number(),
      truncates: z.number(),
      firstCommitTime: z.string().nullable(),
      lastCommitTime: z.string().nullable(),
      tables: z.array(z.string()),
    })
    .nullable(),
  /**
   * Incrementals: tables the change stream does not follow (no replica identity, so not published):
   * a point-in-time restore brings them back as of the chain's full. As schema.name.
   */
  fullsOnly: z.array(z.string()).optional(),
  /**
   * The last incremental of a chain that ends at a schema change. Its change stream holds every
   * transaction committed before the first one whose rows have a shape the chain does not know
   * (cut; null when no such row was read: it then holds everything up to its point). The next
   * chain's full starts after it.
   */
  endsChain: z
    .object({
      reason: z.string(),
      cut: z.object({ lsn: z.string(), time: z.string(), table: z.string(), change: z.string() }).nullable(),
      /** Tables created since the chain's full (schema.name): not in this chain; their data starts with the next full. */
      newTables: z.array(z.string()).optional(),
    })
    .optional(),
  /**
   * Incrementals: the shape (columns and their type oids) of every table the chain follows at this set's
   * end. A chain that carried a schema change follows these, not its full's (see changes/schema-change.ts).
   */
  shapes: z.array(z.object({ schema: z.string(), name: z.string(), columns: z.array(z.string()), types: z.array(z.number()) })).optional(),
  /**
   * Every table's oid at the set's point, by schema.name. A table dropped and created again keeps its name and
   * shape but not its oid: the next incremental compares and ends the chain (the new table's rows were never
   * in the change stream). Absent in sets written before it was recorded (their next incremental cannot tell).
   */
  tableOids: z.record(z.string(), z.number()).optional(),
  /**
   * Incrementals that carried a schema change through instead of ending the chain: what changed, when the
   * schema holding it was captured, what a restore creates before the set's changes (types, sequences) and
   * after a replay through the whole set (keys, indexes, foreign keys...), and column changes the change stream
   * has not shown yet (the next incremental carries them when it does).
   */
  schemaChange: z
    .object({
      capturedAt: z.string(),
      summary: z.array(z.string()),
      preAdded: z.array(z.string()),
      postAdded: z.array(z.string()),
      pending: z.record(z.string(), z.object({ add: z.record(z.string(), z.array(z.string())), drop: z.array(z.string()) })).optional(),
    })
    .optional(),
  /** Incrementals: tables that joined the chain in this set, each with a snapshot of its rows taken as it joined (a data object). */
  created: z.array(z.object({ table: z.string(), object: z.string(), rows: z.number(), at: z.string() })).optional(),
  tables: z.array(
    z.object({
      schema: z.string(),
      name: z.string(),
      columns: z.array(z.string()),
      /** Each column's type oid (sets written before they were recorded have none): a change stream whose shape differs ends the chain. */
      types: z.array(z.number()).optional(),
      rows: z.number(),
      digest: z.string(),
      rawBytes: z.number(),
      storedBytes: z.number(),
      chunks: z.array(z.object({ key: z.string(), rows: z.number(), digest: z.string(), rawBytes: z.number() })),
    }),
  ),
  objects: z.array(z.object({ key: z.string(), size: z.number(), sha256: z.string(), kind: z.enum(['schema', 'data', 'changes']) })),
  sequences: z.array(z.object({ schema: z.string(), name: z.string(), value: z.string(), isCalled: z.boolean() })),
  compression: z.object({ codec: z.enum(['gzip', 'zstd', 'none']), level: z.number() }),
  encryption: z
    .object({ algorithm: z.literal('aes-256-gcm'), kdf: z.enum(['none', 'scrypt']), salt: z.string().nullable(), keyCheck: z.string() })
    .nullable(),
  storage: z.object({ serverSideEncryption: z.string().nullable() }),
  timings: z.object({
    startedAt: z.string(),
    finishedAt: z.string(),
    durationMs: z.number(),
    phasesMs: z.record(z.string(), z.number()).optional(),
  }),
  tool: z.object({ name: z.literal('examforge-ops'), version: z.string(), node: z.string() }),
  /** Version 2: an HMAC-SHA256 over every other field (see authenticity.ts). Absent on unauthenticated sets. */
  auth: z
    .object({ algorithm: z.literal('hmac-sha256'), kdf: z.literal('hkdf-sha256'), mac: z.string().regex(/^[0-9a-f]{64}$/) })
    .optional(),
})
export type Manifest = z.infer<typeof manifestSchema>

/** Set ids sort by time: 20261129T150102Z-full-3fa9. */
export function newSetId(type: Manifest['type'], at = new Date()): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
  return `${stamp}-${type}-${randomBytes(2).toString('hex')}`
}

export const SET_ID = /^\d{8}T\d{6}Z-(full|incremental|safety)-[0-9a-f]{4}$/

export const setPrefix = (setId: string) => `${SETS_PREFIX}${setId}/`
export const manifestKey = (setId: string) => `${setPrefix(setId)}manifest.json`
