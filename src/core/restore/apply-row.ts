import type pg from 'pg'
import type { ChangeLine } from '../backup/incremental'
import { qi } from '../db/sql'
import type { Columns, TargetTables } from './apply-tables'

/**
 * Applies changes to a database one statement per change, through named
 * prepared statements. Values are PostgreSQL's own text output, bound as untyped parameters, so the
 * server parses each back into its column's type exactly. Rows are found by their replica identity:
 * the key (fast, indexed), or for REPLICA IDENTITY FULL tables all old values compared as text, one row at a time.
 *
 * Identity and generated columns: inserts carry OVERRIDING SYSTEM VALUE (the values are the source's);
 * an update leaves a GENERATED ALWAYS identity column alone when its value did not change (UPDATE may
 * only set it to DEFAULT), and when it did change the row is moved in one statement (deleted, then
 * inserted again with OVERRIDING SYSTEM VALUE); stored generated columns are never written.
 */
export class RowApplier {
  private prepared = new Map<string, string>()
  private fullIdentity = new Set<string>()
  private columns = new Map<string, Columns>()
  changes = 0

  constructor(
    private client: pg.ClientBase,
    private scope: Set<string>,
    tables: TargetTables,
  ) {
    this.refresh(tables)
  }

  /** Take the tables' shapes again (after a carried schema change); prepared statements are keyed by their columns, so old ones stay valid. */
  refresh(tables: TargetTables): void {
    this.fullIdentity.clear()
    this.columns.clear()
    for (const [t, info] of tables) {
      if (info.full) this.fullIdentity.add(t)
      this.columns.set(t, info.columns)
    }
  }

  private info(table: string): Columns {
    return this.columns.get(table) ?? { always: new Set(), generated: new Set(), types: new Map() }
  }

  private async run(key: string, text: () => string, values: (string | null)[]): Promise<void> {
    let name = this.prepared.get(key)
    if (!name) {
      name = `efo_r${this.prepared.size}`
      this.prepared.set(key, name)
    }
    await this.client.query({ name, text: text(), values })
    this.changes++
  }

  private where(table: string, key: Record<string, string | null | undefined>, first: number): { sql: string; values: (string | null)[] } {
    const cols = Object.keys(key).filter((c) => key[c] !== undefined)
    const values: (string | null)[] = []
    const parts = cols.map((c) => {
      const v = key[c]!
      if (v === null) return `${qi(c)} IS NULL`
      values.push(v)
      // FULL identity: compare the text form (some types, such as json, have no equality operator).
      return this.fullIdentity.has(table)
        ? `format('%s', ${qi(c)}) = $${first + values.length - 1}::text`
        : `${qi(c)} = $${first + values.length - 1}`
    })
    return { sql: parts.join(' AND ') || 'true', values }
  }

  /** One change (begin and commit lines are the caller's business). */
  async apply(l: ChangeLine): Promise<void> {
    if (l.op === 'commit' || l.op === 'begin') return
    if (l.op === 'ddl' || l.op === 'create') throw new Error('replay: a schema change line is applied by replay(), between changes')
    if (l.op === 'truncate') {
      // Replayed as DELETE: a TRUNCATE would refuse a table referenced from outside the restored ones.
      for (const [s, n] of l.tables) if (this.scope.has(`${s}.${n}`)) await this.client.query(`DELETE FROM ONLY ${qi(s)}.${qi(n)}`)
      return
    }
    const table = `${l.table[0]}.${l.table[1]}`
    if (!this.scope.has(table)) return
    const rel = `${qi(l.table[0])}.${qi(l.table[1])}`
    const info = this.info(table)
    if (l.op === 'insert') {
      const cols = Object.keys(l.new).filter((c) => l.new[c] !== undefined && !info.generated.has(c))
      await this.run(
        `i|${table}|${cols.join(',')}`,
        () =>
          `INSERT INTO ${rel} (${cols.map(qi).join(', ')}) OVERRIDING SYSTEM VALUE VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`,
        cols.map((c) => l.new[c] as string | null),
      )
      return
    }
    const keySig = Object.keys(l.key)
      .map((c) => `${c}${l.key[c] === null ? '~' : ''}`)
      .join(',')
    if (l.op === 'update') {
      const one = this.fullIdentity.has(table)
      // A GENERATED ALWAYS identity column whose new value differs from the row's identity (or that the
      // identity does not carry, so it cannot be told): UPDATE cannot set it, so the row is moved.
      const moved = [...info.always].some((c) => l.new[c] !== undefined && (!(c in l.key) || l.key[c] !== l.new[c]))
      if (moved) {
        await this.move(table, rel, l.key, l.new, info, keySig, one)
        return
      }
      const cols = Object.keys(l.new).filter((c) => l.new[c] !== undefined && !info.generated.has(c) && !info.always.has(c))
      const w = this.where(table, l.key, cols.length + 1)
      if (!cols.length) return // nothing but unchanged identity and generated columns: the row is as it was
      await this.run(
        `u|${table}|${cols.join(',')}|${keySig}`,
        () =>
          `UPDATE ONLY ${rel} SET ${cols.map((c, i) => `${qi(c)} = $${i + 1}`).join(', ')} WHERE ${
            one ? `ctid = (SELECT ctid FROM ONLY ${rel} WHERE ${w.sql} LIMIT 1)` : w.sql
          }`,
        [...cols.map((c) => l.new[c] as string | null), ...w.values],
      )
      return
    }
    const w = this.where(table, l.key, 1)
    const one = this.fullIdentity.has(table)
    await this.run(
      `d|${table}|${keySig}`,
      () => `DELETE FROM ONLY ${rel} WHERE ${one ? `ctid = (SELECT ctid FROM ONLY ${rel} WHERE ${w.sql} LIMIT 1)` : w.sql}`,
      w.values,
    )
  }

  /**
   * An update that changed a GENERATED ALWAYS identity value: delete the row and insert it again with
   * OVERRIDING SYSTEM VALUE, in one statement. Columns the update did not send (unchanged TOAST values)
   * are taken from the deleted row; when no row matches, nothing is inserted (as an UPDATE would do).
   */
  private async move(
    table: string,
    rel: string,
    key: Record<string, string | null | undefined>,
    row: Record<string, string | null | undefined>,
    info: Columns,
    keySig: string,
    one: boolean,
  ): Promise<void> {
    // Every column of the table: one the update did not send (an unchanged TOAST value, absent from the stored line) keeps the old row's.
    const cols = [...info.types.keys()].filter((c) => !info.generated.has(c))
    const sent = cols.filter((c) => row[c] !== undefined)
    const w = this.where(table, key, sent.length + 1)
    const value = (c: string) => (row[c] === undefined ? `old.${qi(c)}` : `$${sent.indexOf(c) + 1}::${info.types.get(c)}`)
    await this.run(
      `m|${table}|${cols.map((c) => `${c}${row[c] === undefined ? '~' : ''}`).join(',')}|${keySig}`,
      () =>
        `WITH old AS (DELETE FROM ONLY ${rel} WHERE ${one ? `ctid = (SELECT ctid FROM ONLY ${rel} WHERE ${w.sql} LIMIT 1)` : w.sql} RETURNING *)
         INSERT INTO ${rel} (${cols.map(qi).join(', ')}) OVERRIDING SYSTEM VALUE SELECT ${cols.map(value).join(', ')} FROM old`,
      [...sent.map((c) => row[c] as string | null), ...w.values],
    )
  }
}
