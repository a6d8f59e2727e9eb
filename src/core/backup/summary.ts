import type { BackupSetSummary } from '../../shared/domain'
import type { CatalogSet } from './catalog'

/** What the UI and CLI list for a set: no keys, no object listings. */
export function summarise(s: CatalogSet, provenAt: string | null = null, orphanedSafety = false): BackupSetSummary {
  const m = s.manifest
  return {
    setId: s.setId,
    status: s.status,
    type: s.type,
    authenticity: s.authenticity,
    parent: m?.parent ?? null,
    snapshotTime: m?.snapshot.time ?? null,
    durationMs: m?.timings.durationMs ?? null,
    tables: m?.tables.length ?? 0,
    rows: m?.tables.reduce((n, t) => n + t.rows, 0) ?? 0,
    rawBytes: m?.tables.reduce((n, t) => n + t.rawBytes, 0) ?? 0,
    storedBytes: s.storedBytes,
    partialBytes: s.partialBytes,
    objects: s.objects,
    compression: m ? (m.compression.codec === 'none' ? 'none' : `${m.compression.codec}:${m.compression.level}`) : null,
    encrypted: !!m?.encryption,
    lastModified: s.lastModified,
    problem: s.problem,
    provenAt,
    orphanedSafety,
    changes: m?.changes
      ? {
          transactions: m.changes.transactions,
          inserts: m.changes.inserts,
          updates: m.changes.updates,
          deletes: m.changes.deletes,
          truncates: m.changes.truncates,
        }
      : null,
  }
}
