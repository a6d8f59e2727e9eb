/**
 * The facts the backup rules read, gathered from the catalog (storage), the jobs of this process, the
 * chain's slot and the restore-test records, at most once a minute (reading the catalog lists storage).
 */
import type { BackupService } from '../backup/service'
import type { JobRunner } from '../jobs/runner'
import type { RestoreService } from '../restore/service'
import type { BackupFacts } from './sources'

export function backupFactsReader(d: {
  backups: BackupService
  jobs: JobRunner
  restores: RestoreService
  maxAgeMs?: number
}): () => Promise<BackupFacts> {
  let cached: { at: number; facts: Promise<BackupFacts> } | null = null
  const read = async (): Promise<BackupFacts> => {
    const [sets, slots, tests] = await Promise.all([
      d.backups.list().catch(() => []),
      d.backups.slots().catch(() => []),
      d.restores.history(50).catch(() => []),
    ])
    const timeOf = (s: (typeof sets)[number]) => Date.parse(s.manifest?.snapshot.time ?? s.lastModified)
    const newest = (type: string) => {
      const ts = sets.filter((s) => s.status === 'complete' && s.type === type).map(timeOf)
      return ts.length ? Math.max(...ts) : null
    }
    const lastFullAt = newest('full')
    const lastIncrementalAt = newest('incremental')
    const lastGood = Math.max(lastFullAt ?? 0, lastIncrementalAt ?? 0)
    const failed = d.jobs
      .list()
      .filter(
        (j) =>
          j.kind.startsWith('backup.') &&
          j.kind !== 'backup.verify' &&
          j.state === 'failed' &&
          Date.parse(j.finishedAt ?? j.startedAt) > lastGood,
      )
    const test = tests.find((t) => t.kind === 'restore-test' && t.outcome !== 'running')
    return {
      lastFullAt,
      lastIncrementalAt,
      lastJobFailed: failed.length > 0,
      slotBytes: slots.length ? Math.max(...slots.map((s) => s.retainedBytes)) : null,
      lastRestoreTestAt: test ? Date.parse(test.startedAt) : null,
      lastRestoreTestFailed: !!test && test.outcome === 'failed',
    }
  }
  return () => {
    const now = Date.now()
    if (!cached || now - cached.at > (d.maxAgeMs ?? 60_000)) cached = { at: now, facts: read() }
    return cached.facts
  }
}
