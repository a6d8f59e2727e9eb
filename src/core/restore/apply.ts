import type pg from 'pg'
import type { ChangeLine } from '../backup/incremental'
import type { Manifest } from '../backup/manifest'
import type { SetReader } from './source'

import { qi } from '../backup/full'

/**
 * Replays a change stream onto a database, in commit order, one statement per change through named
 * prepared statements. Values are PostgreSQL's own text output, bound as untyped parameters, so the
 * server parses each back into its column's type exactly. Rows are found by their replica identity:
 * the key (fast, indexed), or for REPLICA IDENTITY FULL tables all old values compared as text, one row at a time.
 */
export class ChangeApplier {
  private prepared = new Map<string, string>()
  private fullIdentity = new Set<string>()
  transactions = 0
  changes = 0

  constructor(
    private client: pg.ClientBase,
    private scope: Set<string>,
  ) {}

  /** Tables whose replica identity is FULL (their key tuples carry every column). */
  async init(): Promise<void> {
    const { rows } = await this.client.query<{ t: string }>(
      `SELECT n.nspname || '.' || c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relreplident = 'f'`,
    )
    rows.forEach((r) => this.fullIdentity.add(r.t))
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
    if (l.op === 'truncate') {
      // Replayed as DELETE: a TRUNCATE would refuse a table referenced from outside the restored ones.
      for (const [s, n] of l.tables) if (this.scope.has(`${s}.${n}`)) await this.client.query(`DELETE FROM ONLY ${qi(s)}.${qi(n)}`)
      return
    }
    const table = `${l.table[0]}.${l.table[1]}`
    if (!this.scope.has(table)) return
    const rel = `${qi(l.table[0])}.${qi(l.table[1])}`
    if (l.op === 'insert') {
      const cols = Object.keys(l.new).filter((c) => l.new[c] !== undefined)
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
      const cols = Object.keys(l.new).filter((c) => l.new[c] !== undefined)
      const w = this.where(table, l.key, cols.length + 1)
      const one = this.fullIdentity.has(table)
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
   * Replay the incrementals of a chain, stopping after the last transaction committed at or before stopAfter.
   * A transaction is replayed whole or not at all (its begin decides).
   */
  async replay(reader: SetReader, sets: Manifest[], stopAfter: Date | null, signal: AbortSignal, onTxn: () => void): Promise<void> {
    await this.init()
    for (const m of sets) {
      if (m.type !== 'incremental') continue
      for await (const l of reader.changes(m, signal)) {
        if (l.op === 'begin' && stopAfter && new Date(l.time) > stopAfter) return
        await this.apply(l)
        if (l.op === 'commit') {
          onTxn()
          if (this.transactions % 200 === 0) signal.throwIfAborted()
        }
      }
    }
  }
}
