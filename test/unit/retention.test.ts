import { describe, expect, it } from 'vitest'
import type { CatalogSet } from '../../src/core/backup/catalog'
import type { Manifest } from '../../src/core/backup/manifest'
import { planRetention } from '../../src/core/backup/retention'
import { every } from '../../src/core/config/config'

const DAY = 86_400_000
const now = Date.parse('2026-11-29T12:00:00Z')

/** A catalog entry as readCatalog makes it, for a set taken `daysAgo` days ago. */
function set(id: string, type: 'full' | 'incremental' | 'safety', daysAgo: number, parent: string | null = null): CatalogSet {
  const time = new Date(now - daysAgo * DAY).toISOString()
  const setId = `${time.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${type}-${id}`
  return {
    setId,
    status: 'complete',
    authenticity: 'unauthenticated',
    type,
    manifest: { setId, type, parent, snapshot: { time, lsn: '0/0', method: 'replication-slot', slot: 's' } } as unknown as Manifest,
    objects: 3,
    storedBytes: 1000,
    partialObjects: 0,
    partialBytes: 0,
    lastModified: time,
    problem: null,
  }
}

function chain(id: string, daysAgo: number, incrementals: number[]): CatalogSet[] {
  const full = set(`${id}00`, 'full', daysAgo)
  const out = [full]
  for (const [i, d] of incrementals.entries())
    out.push(set(`${id}${String(i + 1).padStart(2, '0')}`, 'incremental', d, out[out.length - 1].setId))
  return out
}

describe('retention', () => {
  const old = chain('a', 40, [39, 38, 37])
  const mid = chain('b', 20, [19, 5])
  const recent = chain('c', 2, [1])
  const all = [...old, ...mid, ...recent]

  it('deletes sets past the retention that no kept set depends on', () => {
    const plan = planRetention(all, { retainDays: 14, keepFulls: 1 }, now)
    expect(plan.delete.map((d) => d.setId).sort()).toEqual(old.map((s) => s.setId).sort())
    expect(plan.bytesFreed).toBe(4000)
  })

  it('never breaks a chain: an old full stays while a young incremental needs it', () => {
    const plan = planRetention(all, { retainDays: 14, keepFulls: 1 }, now)
    const kept = new Map(plan.keep.map((k) => [k.setId, k.reason]))
    // mid's full is 20 days old, but its incremental from 5 days ago needs it and the one between.
    expect(kept.get(mid[0].setId)).toMatch(/needed by the kept set/)
    expect(kept.get(mid[1].setId)).toMatch(/needed by the kept set/)
    expect(kept.get(mid[2].setId)).toMatch(/younger than 14 days/)
  })

  it('keeps the newest N fulls with their incrementals, however old', () => {
    const plan = planRetention(all, { retainDays: 0, keepFulls: 2 }, now)
    expect(plan.delete.map((d) => d.setId).sort()).toEqual(old.map((s) => s.setId).sort())
    const none = planRetention(all, { retainDays: 0, keepFulls: 0 }, now)
    // At least the newest chain always stays.
    expect(none.keep.map((k) => k.setId).sort()).toEqual(recent.map((s) => s.setId).sort())
  })

  it('removes incomplete sets past the stale window, never a fresh one that may still be writing', () => {
    const stale: CatalogSet = { ...set('x1', 'full', 3), status: 'incomplete', manifest: null, problem: 'No manifest' }
    const fresh: CatalogSet = {
      ...set('x2', 'full', 0),
      status: 'incomplete',
      manifest: null,
      problem: 'No manifest',
      lastModified: new Date(now - 60_000).toISOString(),
    }
    const plan = planRetention([...recent, stale, fresh], { retainDays: 14, keepFulls: 1 }, now)
    expect(plan.delete.map((d) => d.setId)).toEqual([stale.setId])
  })

  it('deletes orphaned safety backups whatever their age, and keeps the safety backup of a restore that may be undone', () => {
    const orphan = set('s1', 'safety', 0)
    const needed = set('s2', 'safety', 0)
    const plan = planRetention(
      [...recent, orphan, needed],
      { retainDays: 14, keepFulls: 1 },
      now,
      undefined,
      new Map([[orphan.setId, 'the restore that took it failed, so the database was left as it was']]),
    )
    expect(plan.delete).toEqual([
      expect.objectContaining({
        setId: orphan.setId,
        reason: expect.stringMatching(/^orphaned safety backup: the restore that took it failed/),
      }),
    ])
    expect(plan.keep.map((k) => k.setId)).toContain(needed.setId)
  })

  it('schedule intervals parse, and bad ones say what is expected', () => {
    expect(every('15m', 'X')).toBe(900_000)
    expect(every('24h', 'X')).toBe(86_400_000)
    expect(every('off', 'X')).toBeNull()
    expect(() => every('daily', 'BACKUP_FULL_EVERY')).toThrow(/BACKUP_FULL_EVERY must be an interval like 15m/)
  })
})
