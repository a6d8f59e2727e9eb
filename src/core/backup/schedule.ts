import type { Config } from '../config/config'
import type { JobRunner } from '../jobs/runner'
import type { Logger } from '../log/logger'
import type { BackupService } from './service'
import type { RestoreService } from '../restore/service'

/**
 * Scheduled backups in the agent: fulls and incrementals at their intervals, retention applied
 * after each scheduled full, and between incrementals a look for a schema change (BACKUP_SCHEMA_WATCH)
 * that ends the chain at once. A tick that finds a backup running skips (the next tick tries again).
 */
export function startBackupSchedule(deps: {
  backups: BackupService
  restores: RestoreService
  jobs: JobRunner
  config: Config
  log: Logger
}) {
  const timers: NodeJS.Timeout[] = []
  const { fullEveryMs, incrementalEveryMs, restoreTestEveryMs } = deps.config.backup
  const tick = async (type: 'full' | 'incremental') => {
    try {
      const { jobId } = type === 'full' ? deps.backups.startFull('schedule') : deps.backups.startIncremental('schedule')
      const info = await deps.jobs.wait(jobId)
      if (info.state !== 'succeeded') return deps.log.warn(`scheduled ${type} backup ${info.state}`, { error: info.error?.message })
      if (type === 'full') {
        const pruned = await deps.backups.prune('delete', 'schedule')
        if (pruned.deleted.length) deps.log.info('retention removed backups', { sets: pruned.deleted })
      }
    } catch (e) {
      deps.log.warn(`scheduled ${type} backup did not start`, { error: (e as Error).message })
    }
  }
  if (fullEveryMs) timers.push(setInterval(() => void tick('full'), fullEveryMs))
  if (incrementalEveryMs) timers.push(setInterval(() => void tick('incremental'), incrementalEveryMs))
  // A migration: the next incremental carries it through (new tables join the chain with a snapshot of their
  // rows, so the sooner the better) or, for a change it cannot carry, ends the chain (keeping every change up
  // to its first row of a new shape; a full starts the next). Looking for one between incrementals keeps both
  // the new tables' uncovered start and the moments no chain covers to about this interval.
  const { schemaWatchMs } = deps.config.backup
  let watching = false
  if (incrementalEveryMs && schemaWatchMs && schemaWatchMs < incrementalEveryMs)
    timers.push(
      setInterval(async () => {
        if (watching) return
        watching = true
        try {
          if (await deps.backups.schemaChangedSinceChain()) {
            deps.log.info('the schema changed: ending the chain now')
            await tick('incremental')
          }
        } catch (e) {
          deps.log.warn('could not check the schema for changes', { error: (e as Error).message })
        } finally {
          watching = false
        }
      }, schemaWatchMs),
    )
  // Restore tests (e.g. weekly): the newest chain into a scratch database, checked and dropped.
  if (restoreTestEveryMs)
    timers.push(
      setInterval(async () => {
        try {
          const info = await deps.jobs.wait(deps.restores.startTest({ actor: 'schedule' }).jobId)
          if (info.state !== 'succeeded') deps.log.warn(`scheduled restore test ${info.state}`, { error: info.error?.message })
        } catch (e) {
          deps.log.warn('scheduled restore test did not start', { error: (e as Error).message })
        }
      }, restoreTestEveryMs),
    )
  timers.forEach((t) => t.unref())
  if (timers.length) deps.log.info('backup schedule', { fullEveryMs, incrementalEveryMs, restoreTestEveryMs })
  return { stop: () => timers.forEach((t) => clearInterval(t)) }
}
