import type { Config } from '../config/config'
import type { JobRunner } from '../jobs/runner'
import type { Logger } from '../log/logger'
import type { BackupService } from './service'
import type { RestoreService } from '../restore/service'

/**
 * Scheduled backups in the agent: fulls and incrementals at their intervals, retention applied
 * after each scheduled full. A tick that finds a backup running skips (the next tick tries again).
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
