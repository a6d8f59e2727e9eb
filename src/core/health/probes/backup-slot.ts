import { ourSlots, SLOT_PREFIX } from '../../backup/changes/slot'
import { withClient } from '../../backup/changes/slot'
import { degraded, formatBytes, ok, unhealthy, type Probe } from '../probe'

/**
 * The replication slot incremental backups follow. A slot nobody reads holds WAL back forever and
 * can fill the database server's disk: its retained WAL is watched against a threshold.
 */
export function backupSlotProbe(o: { url: string | null; warnBytes: number }): Probe {
  return {
    id: 'backup_slot',
    label: 'Backup slot',
    howToConfigure: 'Set DATABASE_URL; the slot appears with the first backup chain.',
    configured: () => !!o.url,
    async run() {
      const slots = await withClient(o.url!, ourSlots)
      if (!slots.length)
        return {
          status: 'not_configured',
          reason: 'No incremental chain yet: the first incremental backup (or a full while incrementals are scheduled) starts one.',
        }
      const worst = slots.reduce((a, b) => (b.retainedBytes > a.retainedBytes ? b : a))
      const details = {
        slot: worst.name,
        retained: formatBytes(worst.retainedBytes),
        retainedBytes: worst.retainedBytes,
        walStatus: worst.walStatus,
        active: worst.active,
        slots: slots.length,
        warnAt: formatBytes(o.warnBytes),
      }
      if (worst.walStatus === 'lost')
        return unhealthy(
          `The slot ${worst.name} lost WAL it needed: its chain cannot continue. Drop the slot; the next backup will be a full.`,
          details,
        )
      if (worst.walStatus === 'unreserved')
        return unhealthy(
          `The slot ${worst.name} is about to lose WAL (max_slot_wal_keep_size): run an incremental backup now or drop the slot.`,
          details,
        )
      if (worst.retainedBytes >= o.warnBytes)
        return degraded(
          `The slot ${worst.name} holds ${details.retained} of WAL on the database server (warning at ${details.warnAt}): run an incremental backup, or drop the slot if backups have stopped.`,
          details,
        )
      return ok(
        `${slots.length} slot${slots.length > 1 ? 's' : ''}; ${worst.name.replace(SLOT_PREFIX, '')} holds ${details.retained} of WAL (${worst.walStatus}).`,
        details,
      )
    },
  }
}
