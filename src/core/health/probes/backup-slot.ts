import type { CatalogSet } from '../../backup/catalog'
import { classifySlots } from '../../backup/changes/orphans'
import { fullsOnlyNote, ourSlots, SLOT_PREFIX, tablesWithoutIdentity, withClient } from '../../backup/changes/slot'
import { degraded, formatBytes, ok, unhealthy, type Probe } from '../probe'

/**
 * The replication slot incremental backups follow. A slot nobody reads holds WAL back forever and
 * can fill the database server's disk: its retained WAL is watched against a threshold, and a slot
 * no chain uses (left by a backup that did not finish) is named with what it holds and how to drop it.
 * The backup catalog tells which slots chains use (when storage cannot be read, none is called an orphan).
 */
export function backupSlotProbe(o: { url: string | null; warnBytes: number; catalog?: () => Promise<CatalogSet[]> }): Probe {
  return {
    id: 'backup_slot',
    label: 'Backup slot',
    howToConfigure: 'Set DATABASE_URL; the slot appears with the first backup chain.',
    configured: () => !!o.url,
    async run() {
      const catalog = o.catalog ? await o.catalog().catch(() => null) : null
      const { slots, fullsOnly } = await withClient(o.url!, async (c) => ({
        slots: catalog ? await classifySlots(c, catalog) : (await ourSlots(c)).map((s) => ({ ...s, orphan: false })),
        fullsOnly: await tablesWithoutIdentity(c),
      }))
      if (!slots.length)
        return {
          status: 'not_configured',
          reason: 'No incremental chain yet: the first incremental backup (or a full while incrementals are scheduled) starts one.',
        }
      const worst = slots.reduce((a, b) => (b.retainedBytes > a.retainedBytes ? b : a))
      const orphans = slots.filter((s) => s.orphan)
      const details = {
        slot: worst.name,
        retained: formatBytes(worst.retainedBytes),
        retainedBytes: worst.retainedBytes,
        walStatus: worst.walStatus,
        active: worst.active,
        slots: slots.length,
        warnAt: formatBytes(o.warnBytes),
        // Details are flat values: lists as text.
        orphans: orphans.map((s) => `${s.name} (${formatBytes(s.retainedBytes)})`).join(', ') || null,
        orphanBytes: orphans.reduce((n, s) => n + s.retainedBytes, 0),
        fullsOnly: fullsOnly.join(', ') || null,
      }
      // Tables a chain leaves out (no replica identity): said, but not a fault of the slot.
      const also = fullsOnly.length ? ` ${fullsOnlyNote(fullsOnly)}` : ''
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
      if (orphans.length)
        return degraded(
          `${orphans.map((s) => `The slot ${s.name} is used by no backup chain (a backup that did not finish left it) and holds ${formatBytes(s.retainedBytes)} of WAL`).join('; ')}: drop it on the Backups page (Drop…), or with "examforge-ops backups drop-slot <slot> --yes"; the next backup also drops it.${also}`,
          details,
        )
      if (worst.retainedBytes >= o.warnBytes)
        return degraded(
          `The slot ${worst.name} holds ${details.retained} of WAL on the database server (warning at ${details.warnAt}): run an incremental backup, or drop the slot if backups have stopped.`,
          details,
        )
      return ok(
        `${slots.length} slot${slots.length > 1 ? 's' : ''}; ${worst.name.replace(SLOT_PREFIX, '')} holds ${details.retained} of WAL (${worst.walStatus}).${also}`,
        details,
      )
    },
  }
}
