import type pg from 'pg'
import type { ChangeLine } from '../backup/incremental'
import type { Manifest } from '../backup/manifest'
import type { SetReader } from './source'

import { qi } from '../backup/full'
import { ShapeReplay } from './reshape'

/** What replay must know about a target table's columns. */
interface Columns {
  /** GENERATED ALWAYS AS IDENTITY: written only with OVERRIDING SYSTEM VALUE, which UPDATE does not have. */
  always: Set<string>
  /** Stored generated columns: never written, PostgreSQL computes them again. */
  generated: Set<string>
  /** Each column's type as SQL (for the parameters of the statement that moves a row to a new identity). */
  types: Map<string, string>
}

/**
 * Replays a change stream onto a database, in commit order, one statement per change through named
 * prepared statements. Values are PostgreSQL's own text output, bound as untyped parameters, so the
 * server parses each back into its column's type exactly. Rows are found by their replica identity:
 * the key (fast, indexed), or for REPLICA IDENTITY FULL tables all old values compared as text, one row at a time.
 *
 * Identity and generated columns: inserts carry OVERRIDING SYSTEM VALUE (the values are the source's);
 * an update leaves a GENERATED ALWAYS identity column alone when its value did not change (UPDATE may
 * only set it to DEFAULT), and when it did change the row is moved in one statement (deleted, then
 * inserted again with OVERRIDING SYSTEM VALUE); stored generated columns are never written.
 */
export class ChangeApplier {
  private prepared = new Map<string, string>()
  private fullIdentity = new Set<string>()
  private columns = new Map<string, Columns>()
  transactions = 0
  changes = 0
  /** Schema changes the chain carried, applied between changes (see reshape.ts). */
  readonly shapes: ShapeReplay

  constructor(
    private client: pg.ClientBase,
    private scope: Set<string>,
    inPlace = false,
  ) {
    this.shapes = new ShapeReplay(client, scope, inPlace)
  }

  /** Tables whose replica identity is FULL (their key tuples carry every column); each table's column information (or one table's, read again after its shape changed). */
  async init(only?: [string, string]): Promise<void> {
    const filter = only ? ` AND n.nspname = $1 AND c.relname = $2` : ''
    const params = only ? [...only] : []
    const { rows } = await this.client.query<{ t: string }>(
      `SELECT n.nspname || '.' || c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relreplident = 'f'${filter}`,
      params,
    )
    rows.forEach((r) => this.fullIdentity.add(r.t))
    if (only) this.columns.delete(`${only[0]}.${only[1]}`)
    const { rows: cols } = await this.client.query<{ t: string; col: string; identity: string; generated: string; type: string }>(
      `SELECT n.nspname || '.' || c.relname AS t, a.attname AS col, a.attidentity::text AS identity, a.attgenerated::text AS generated,
              format_type(a.atttypid, a.atttypmod) AS type
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND n.nspname NOT IN ('pg_catalog', 'information_schema')${filter}`,
      params,
    )
    for (const r of cols) {
      const t = this.columns.get(r.t) ?? { always: new Set<string>(), generated: new Set<string>(), types: new Map<string, string>() }
      this.columns.set(r.t, t)
      if (r.identity === 'a') t.always.add(r.col)
      if (r.generated) t.generated.add(r.col)
      t.types.set(r.col, r.type)
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

  async apply(l: ChangeLine): Promise<void> {
    if (l.op === 'commit') {
      this.transactions++
      return
    }
    if (l.op === 'begin') return
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
    const cols = Object.keys(row).filter((c) => !info.generated.has(c) && info.types.has(c))
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

  /**
   * Replay the incrementals of a chain, stopping after the last transaction committed at or before stopAfter.
   * A transaction is replayed whole or not at all (its begin decides).
   */
  async replay(reader: SetReader, sets: Manifest[], stopAfter: Date | null, signal: AbortSignal, onTxn: () => void): Promise<void> {
    await this.init()
    for (const m of sets) {
      if (m.type !== 'incremental') continue
      await this.shapes.beforeSet(m)
      for await (const l of reader.changes(m, signal)) {
        if (l.op === 'begin' && stopAfter && new Date(l.time) > stopAfter) {
          this.shapes.afterSet(m, stopAfter)
          return
        }
        // A carried schema change: the table takes its new shape before its next change is applied.
        if (l.op === 'ddl' || l.op === 'create') {
          if (await this.shapes.apply(l, m, reader, signal)) await this.init(l.table)
          continue
        }
        await this.apply(l)
        if (l.op === 'commit') {
          onTxn()
          if (this.transactions % 200 === 0) signal.throwIfAborted()
        }
      }
      this.shapes.afterSet(m, stopAfter)
    }
  }
}
