import { createHash } from 'node:crypto'
import { sealManifest } from '../../src/core/backup/authenticity'
import { keyCheck } from '../../src/core/backup/crypto'
import { AUTHENTICATED_VERSION, MANIFEST_VERSION, setPrefix, type Manifest } from '../../src/core/backup/manifest'

/**
 * A set's manifest as the console writes it, for catalogs bigger than a test can back up: one table in a
 * chunk (a full) or a change stream (an incremental). Its objects are what `objectsOf` returns.
 * With an encryption key the manifest is version 2 and sealed with its MAC, as an encrypted backup's is.
 */
export function syntheticManifest(o: {
  setId: string
  type: 'full' | 'incremental'
  parent: string | null
  time: Date
  key?: Buffer
  tables?: number
}): Manifest {
  const prefix = setPrefix(o.setId)
  const objects = objectsOf(o.setId, o.type, o.tables ?? 3).map((x) => ({
    ...x,
    sha256: createHash('sha256').update(x.body).digest('hex'),
  }))
  const m: Manifest = {
    formatVersion: o.key ? AUTHENTICATED_VERSION : MANIFEST_VERSION,
    setId: o.setId,
    type: o.type,
    parent: o.parent,
    database: 'examforge',
    server: { version: '15.8', versionNum: 150008, systemIdentifier: '7300000000000000000' },
    snapshot: {
      lsn: `0/${(o.time.getTime() % 0xfffffff).toString(16).toUpperCase()}`,
      time: o.time.toISOString(),
      method: o.type === 'full' ? 'exported-snapshot' : 'replication-slot',
      slot: 'examforge_ops_bench',
    },
    schemaHash: 'a'.repeat(64),
    changes:
      o.type === 'incremental'
        ? {
            transactions: 120,
            inserts: 100,
            updates: 40,
            deletes: 5,
            truncates: 0,
            firstCommitTime: o.time.toISOString(),
            lastCommitTime: o.time.toISOString(),
            tables: ['public.users'],
          }
        : null,
    tables: Array.from({ length: o.type === 'full' ? (o.tables ?? 3) : 0 }, (_, i) => ({
      schema: 'public',
      name: `table_${i}`,
      columns: ['id', 'name', 'created_at'],
      types: [20, 25, 1184],
      rows: 1000,
      digest: 'd'.repeat(64),
      rawBytes: 40_000,
      storedBytes: 9_000,
      chunks: [{ key: `${prefix}data/public.table_${i}/00000.csv.gz`, rows: 1000, digest: 'd'.repeat(64), rawBytes: 40_000 }],
    })),
    objects: objects.map(({ key, body, sha256, kind }) => ({ key, size: body.length, sha256, kind })),
    sequences: [],
    compression: { codec: 'gzip', level: 6 },
    encryption: o.key ? { algorithm: 'aes-256-gcm', kdf: 'none', salt: null, keyCheck: keyCheck(o.key) } : null,
    storage: { serverSideEncryption: null },
    timings: { startedAt: o.time.toISOString(), finishedAt: o.time.toISOString(), durationMs: 1000 },
    tool: { name: 'examforge-ops', version: '0.1.0', node: process.version },
  }
  return sealManifest(m, o.key ?? null)
}

/** The objects (besides the manifest) of a synthetic set: small stand-ins, the catalog reads none of them. */
export function objectsOf(
  setId: string,
  type: 'full' | 'incremental',
  tables = 3,
): { key: string; body: Buffer; kind: 'schema' | 'data' | 'changes' }[] {
  const prefix = setPrefix(setId)
  return type === 'full'
    ? [
        { key: `${prefix}schema.sql.gz`, body: Buffer.from(`schema of ${setId}`), kind: 'schema' as const },
        ...Array.from({ length: tables }, (_, i) => ({
          key: `${prefix}data/public.table_${i}/00000.csv.gz`,
          body: Buffer.from(`rows of table ${i} in ${setId}`),
          kind: 'data' as const,
        })),
      ]
    : [{ key: `${prefix}changes.jsonl.gz`, body: Buffer.from(`changes of ${setId}`), kind: 'changes' as const }]
}
