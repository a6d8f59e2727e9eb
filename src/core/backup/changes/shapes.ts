import type { Manifest } from '../manifest'
import { lsnToBigInt, PgoutputDecoder, type Relation } from './pgoutput'
import { readSlot, type ReadOptions } from './read-slot'

/** The shapes a set starts from: its parent's when recorded (a chain that carried a schema change), else the full's. */
export function startingShapes(full: Manifest, parent: Manifest): { schema: string; name: string; columns: string[]; types?: number[] }[] {
  return parent.shapes ?? full.tables
}

/**
 * The shapes the chain knows, from its full (or the parent set that recorded them): a row of another
 * shape (a column added, dropped, renamed or retyped since) cannot be replayed onto the chain's schema
 * unless the change is carried (set() records the new shape). Relations the chain does not hold
 * (created since) are not followed until they join it.
 */
export class Shapes {
  private known = new Map<string, { columns: string[]; types: number[] | null }>()
  /** The first description of each relation read in this stream (for sets that recorded no types). */
  private seen = new Map<string, string>()
  constructor(tables: { schema: string; name: string; columns: string[]; types?: number[] }[]) {
    for (const t of tables) this.known.set(`${t.schema}.${t.name}`, { columns: t.columns, types: t.types?.length ? t.types : null })
  }
  follows(r: { schema: string; name: string }): boolean {
    return this.known.has(`${r.schema}.${r.name}`)
  }
  get(key: string): { columns: string[]; types: number[] | null } | undefined {
    return this.known.get(key)
  }
  /** The chain now knows this shape (a carried change, or a table that joined). */
  set(key: string, columns: string[], types: number[]): void {
    this.known.set(key, { columns, types })
    this.seen.set(key, columns.map((c, i) => `${c}:${types[i]}`).join(','))
  }
  /** Every shape, for the manifest. */
  list(): { schema: string; name: string; columns: string[]; types: number[] }[] {
    return [...this.known].map(([k, v]) => ({
      schema: k.slice(0, k.indexOf('.')),
      name: k.slice(k.indexOf('.') + 1),
      columns: v.columns,
      types: v.types ?? [],
    }))
  }
  /** Why this relation's rows cannot be replayed onto the chain's schema, or null. */
  differs(r: Relation): string | null {
    const k = this.known.get(`${r.schema}.${r.name}`)
    if (!k) return null
    const names = r.columns.map((c) => c.name)
    const sig = r.columns.map((c) => `${c.name}:${c.typeOid}`).join(',')
    if (names.join('\u0000') !== k.columns.join('\u0000')) {
      const added = names.filter((n) => !k.columns.includes(n))
      const dropped = k.columns.filter((n) => !names.includes(n))
      const what = [...added.map((n) => `${n} added`), ...dropped.map((n) => `${n} dropped`)]
      return `its columns changed: ${what.length ? what.slice(0, 6).join(', ') + (what.length > 6 ? ', ...' : '') : 'reordered'}`
    }
    if (k.types && r.columns.some((c, i) => c.typeOid !== k.types![i])) return 'a column changed type'
    const before = this.seen.get(`${r.schema}.${r.name}`)
    this.seen.set(`${r.schema}.${r.name}`, sig)
    if (before && before !== sig) return 'a column changed type'
    return null
  }
}

/**
 * Where a final incremental must stop: the first transaction (after the parent's point, before the
 * target) with a row of a shape the chain does not know. Read once without storing anything.
 */
export async function findCut(
  base: Omit<ReadOptions, 'onMessage' | 'inTxn' | 'decoder'>,
  parentPoint: bigint,
  shapes: Shapes,
): Promise<NonNullable<NonNullable<Manifest['endsChain']>['cut']> | null> {
  let inTxn = false
  let open = false
  let current: { lsn: string; time: string } | null = null
  let cut: NonNullable<NonNullable<Manifest['endsChain']>['cut']> | null = null
  const decoder = new PgoutputDecoder()
  const { stream } = await readSlot({
    ...base,
    decoder,
    inTxn: () => open,
    onMessage: (m) => {
      if (m.tag === 'begin') {
        if (lsnToBigInt(m.finalLsn) >= base.targetLsn) return true
        open = true
        inTxn = lsnToBigInt(m.finalLsn) >= parentPoint
        current = { lsn: m.finalLsn, time: m.commitTime }
      } else if (m.tag === 'commit') inTxn = open = false
      else if (inTxn && current && (m.tag === 'insert' || m.tag === 'update' || m.tag === 'delete')) {
        const why = shapes.follows(m.relation) ? shapes.differs(m.relation) : null
        if (why) {
          cut = { ...current, table: `${m.relation.schema}.${m.relation.name}`, change: why }
          return true
        }
      }
      return false
    },
  })
  await stream.stop().catch(() => {})
  return cut
}
