import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BackupResult } from '../../src/core/backup/service'
import { loadConfig } from '../../src/core/config/config'
import { silentLogger } from '../../src/core/log/logger'
import { createOps, type Ops, type OpsOptions } from '../../src/core/ops'

/** A console core on the given environment, quiet and without schedules unless asked. */
export function openOps(env: Record<string, string>, extra: Partial<Omit<OpsOptions, 'config'>> = {}, dataDir?: string): Promise<Ops> {
  return createOps({
    config: loadConfig({ env, dataDir: dataDir ?? mkdtempSync(join(tmpdir(), 'ops-data-')) }),
    face: 'host',
    log: silentLogger,
    schedule: false,
    ...extra,
  })
}

/** Take a backup as the UI does (a job), wait for it, and fail loudly if it did not succeed. */
export async function backupNow(ops: Ops, type: 'full' | 'incremental'): Promise<BackupResult> {
  const { jobId } = type === 'full' ? ops.backups.startFull('test') : ops.backups.startIncremental('test')
  const info = await ops.jobs.wait(jobId)
  if (info.state !== 'succeeded') throw new Error(`backup ${info.state}: ${info.error?.message}`)
  return info.result as BackupResult
}
