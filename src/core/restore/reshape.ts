import type pg from 'pg'
import { pipeline } from 'node:stream/promises'
import { from as copyFrom } from 'pg-copy-streams'
import { OpsError } from '../../shared/contract'
import type { ChangeLine } from '../backup/incremental'
import type { Manifest } from '../backup/manifest'
import { qi } from '../db/sql'
import { relName, tableKey } from './plan'
import { splitPost } from './schema-graph'
import type { SetReader } from './source'

type ShapeLine = Extract<ChangeLine, { op: 'ddl' } | { op: 'create' }>

/**
 * Schema changes a chain carried through (see backup/changes/schema-change.ts), replayed where the change
 * stream placed them. A step of its own, between changes: before the first change of a table in its new
 * shape, the DDL that takes the restored table there runs (columns added with the value the rows that
 * existed got, columns dropped); where a table joined the chain, it is created and its snapshot loaded.
 * Around each set: the types and sequences it needs first; after a replay that went past the moment its
 * schema was captured, its new keys, indexes, foreign keys and comments (run last, with the new tables'
 * foreign keys, by the caller: see late()).
 */
export class ShapeReplay {
  /** Columns each restored table has now (only tables whose shape changed or that were created). */
  readonly columns = new Map<string, string[]>()
  /** Columns dropped by the replay: statements of the full's schema that name them are left out. */
  readonly dropped = new Map<string, Set<string>>()
  private deferred: string[] = []
  private added: string[] = []
  /** What was applied, one line each (for the restore's log). */
  readonly applied: string[] = []

  constructor(
    private client: pg.ClientBase,
    private scope: Set<string>,
    /** In place, the live tables' schema is never changed (the planner refuses such a restore first). */
    private inPlace: boolean,
  ) {}

  /** Before a set's changes: the types, sequences, schemas and extensions its schema change created. */
  async beforeSet(m: Manifest): Promise<void> {
    // In place the live database has them already.
    for (const st of this.inPlace ? [] : (m.schemaChange?.preAdded ?? [])) {
      // Already there (a type the full's schema or an earlier set created): nothing to do.
      await this.client.query(
        `DO $efo$ BEGIN EXECUTE '${st.replace(/'/g, "''")}'; EXCEPTION WHEN duplicate_object OR duplicate_table OR duplicate_schema THEN NULL; END $efo$`,
      )
    }
  }

  /** After a set was replayed up to the moment chosen: its added keys, indexes, foreign keys... if its schema was captured by then. */
  afterSet(m: Manifest, stopAfter: Date | null): void {
    const sc = m.schemaChange
    if (sc && (!stopAfter || new Date(sc.capturedAt) <= stopAfter)) this.added.push(...sc.postAdded)
  }

  /** Apply a ddl or create line; true when a table's shape changed (its column information must be read again). */
  async apply(l: ShapeLine, m: Manifest, reader: SetReader, signal: AbortSignal): Promise<boolean> {
    const table = tableKey({ schema: l.table[0], name: l.table[1] })
    if (!this.scope.has(table)) return false
    if (this.inPlace) throw refuse(m)
    if (l.op === 'ddl') {
      for (const st of l.statements) await this.client.query(st)
      for (const c of l.dropped) this.dropped.set(table, new Set([...(this.dropped.get(table) ?? []), c]))
      this.columns.set(table, l.columns)
      this.applied.push(`${table}: ${[...l.added.map((c) => `+${c}`), ...l.dropped.map((c) => `-${c}`)].join(' ')}`)
      return true
    }
    for (const st of l.pre) await this.client.query(st)
    const post = splitPost(l.post)
    for (const st of [...post.early, ...post.indexes]) await this.client.query(st)
    this.deferred.push(...post.late)
    await pipeline(
      await reader.open(m, l.object, signal),
      this.client.query(copyFrom(`COPY ${relName(table)} (${l.columns.map(qi).join(', ')}) FROM STDIN`)),
      { signal },
    )
    this.columns.set(table, l.columns)
    this.applied.push(`${table}: created with ${l.rows} rows`)
    return true
  }

  /** Whether a statement of the full's schema names a column the replay dropped (it went with the column). */
  goneWithColumn(st: string): boolean {
    for (const [table, cols] of this.dropped) {
      const [schema, name] = [table.slice(0, table.indexOf('.')), table.slice(table.indexOf('.') + 1)]
      if (!st.includes(relName(table)) && !st.includes(`${asIdent(schema)}.${asIdent(name)}`)) continue
      for (const c of cols) if (st.includes(qi(c)) || new RegExp(`[(, ]${c.replace(/[^\w]/g, '')}[), ]`).test(st)) return true
    }
    return false
  }

  /** Statements to run once the full's foreign keys and triggers are in: the new tables' own, then the sets' added ones. */
  late(): string[] {
    return [...this.deferred, ...this.added]
  }
}

/** An identifier as PostgreSQL prints it (quoted only when it must be), as captured statements have them. */
const asIdent = (s: string) => (/^[a-z_][a-z0-9_$]*$/.test(s) ? s : qi(s))

const refuse = (m: Manifest) =>
  new OpsError(
    'schema_changed',
    `The chain carries a schema change (${m.schemaChange?.summary.join('; ') || m.setId}): an in-place restore cannot change the live tables' schema. Restore into a new database instead.`,
  )
