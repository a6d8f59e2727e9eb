/**
 * A long timeline, condensed for print. A PDF of 10,000 table rows is hundreds of pages nobody reads and
 * takes Chromium minutes to lay out; so past PRINT_FULL_MAX entries the PDF groups dense stretches:
 * within each time bucket, the entries of one type become one row (how many, their levels, when, a few of
 * their titles, how many sources), while sparse buckets and people's own entries (notes, status and
 * commander changes, the opening) stay one row each. The bucket is the smallest of 1 min, 5 min, 15 min …
 * that brings the rows under the budget. The HTML, Markdown and JSON exports always list every entry.
 */
import type { TimelineEntry } from '../../../shared/incidents'

export const PRINT_FULL_MAX = 800
export const PRINT_ROW_BUDGET = 300

export interface EntryGroup {
  type: TimelineEntry['type']
  from: number
  to: number
  count: number
  levels: Record<TimelineEntry['level'], number>
  /** The worst level in the group. */
  level: TimelineEntry['level']
  /** Up to three distinct titles, in time order. */
  samples: string[]
  actors: string[]
  sources: number
}

export type PrintRow = { kind: 'entry'; e: TimelineEntry } | { kind: 'group'; g: EntryGroup; first: TimelineEntry }

const BUCKETS = [60_000, 5 * 60_000, 15 * 60_000, 30 * 60_000, 3_600_000, 2 * 3_600_000, 6 * 3_600_000, 86_400_000]
const RANK: Record<TimelineEntry['level'], number> = { critical: 3, warning: 2, info: 1, ok: 0 }
/** People's own entries: always shown whole (within reason). */
const KEEP = new Set<TimelineEntry['type']>(['incident.opened', 'incident.status', 'incident.commander', 'incident.note'])
/** A bucket with at most this many other entries lists them one by one. */
const SPARSE = 3

function plan(timeline: TimelineEntry[], bucketMs: number, keepPeople: boolean): PrintRow[] {
  const rows: PrintRow[] = []
  const kept = (e: TimelineEntry) => keepPeople && KEEP.has(e.type)
  let i = 0
  while (i < timeline.length) {
    const b = Math.floor(timeline[i].at / bucketMs)
    let j = i
    while (j < timeline.length && Math.floor(timeline[j].at / bucketMs) === b) j++
    const slice = timeline.slice(i, j)
    i = j
    if (slice.filter((e) => !kept(e)).length <= SPARSE) {
      for (const e of slice) rows.push({ kind: 'entry', e })
      continue
    }
    const groups = new Map<string, { row: Extract<PrintRow, { kind: 'group' }>; src: Set<string>; actors: Set<string> }>()
    const bucketRows: PrintRow[] = []
    for (const e of slice) {
      if (kept(e)) {
        bucketRows.push({ kind: 'entry', e })
        continue
      }
      let x = groups.get(e.type)
      if (!x) {
        const g: EntryGroup = {
          type: e.type,
          from: e.at,
          to: e.at,
          count: 0,
          levels: { critical: 0, warning: 0, info: 0, ok: 0 },
          level: e.level,
          samples: [],
          actors: [],
          sources: 0,
        }
        x = { row: { kind: 'group', g, first: e }, src: new Set(), actors: new Set() }
        groups.set(e.type, x)
        bucketRows.push(x.row)
      }
      const g = x.row.g
      g.count++
      g.to = e.at
      g.levels[e.level]++
      if (RANK[e.level] > RANK[g.level]) g.level = e.level
      if (g.samples.length < 3 && !g.samples.includes(e.title)) g.samples.push(e.title)
      if (e.source) x.src.add(`${e.source.kind}:${e.source.id}`)
      if (e.actor) x.actors.add(e.actor)
    }
    for (const x of groups.values()) {
      x.row.g.sources = x.src.size
      x.row.g.actors = [...x.actors].slice(0, 3)
    }
    // A group of one is just its entry.
    for (const row of bucketRows) rows.push(row.kind === 'group' && row.g.count === 1 ? { kind: 'entry', e: row.first } : row)
  }
  return rows
}

/** The rows to print and the bucket used (null when every entry is printed). */
export function condenseTimeline(timeline: TimelineEntry[], budget = PRINT_ROW_BUDGET): { rows: PrintRow[]; bucketMs: number | null } {
  if (timeline.length <= PRINT_FULL_MAX) return { rows: timeline.map((e) => ({ kind: 'entry', e })), bucketMs: null }
  // Hundreds of notes and status changes are grouped like the rest.
  const keepPeople = timeline.filter((e) => KEEP.has(e.type)).length <= budget / 2
  let rows: PrintRow[] = []
  for (const size of BUCKETS) {
    rows = plan(timeline, size, keepPeople)
    if (rows.length <= budget) return { rows, bucketMs: size }
  }
  return { rows, bucketMs: BUCKETS[BUCKETS.length - 1] }
}
