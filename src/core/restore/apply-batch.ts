import type pg from 'pg'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { from as copyFrom } from 'pg-copy-streams'
import type { Tuple } from '../backup/changes/pgoutput'
import { qi, qname } from '../db/sql'
import type { TargetTable } from './apply-tables'

type Values = string[]

/** Milliseconds spent in each statement of applying batches (for the bench). */
export interface BatchProfile {
  copyMs: number
  deleteMs: number
  insertMs: number
}

/** A row as it stands at the end of the batch: taken whole from the stream, or from the row the batch found under `origin`. */
interface Final {
  /** The key, before the batch, of the row this one was updated from; null when the batch inserted it. */
  origin: Values | null
  /** The values the stream sent (an update's unchanged TOAST values are missing: they stay the origin row's). */
  values: Tuple
}

/** A key the batch touched: what is under it at the end of the batch (null: nothing). */
interface Slot {
  key: Values
  final: Final | null
  /**
   * The table held a row under this key before the batch: the key was first touched by an update or a delete
   * (the source had the row). One first touched by an insert, or as the new key of an update, held none (the
   * source's key is unique), and after a truncate none did: those need no delete.
   */
  pre: boolean
}

const SEP = '\u0000' // never inside a PostgreSQL text value

/**
 * The changes of one table within a run of transactions, collapsed per key in commit order: at the end of
 * the batch each key the batch touched holds either nothing or one final row. Applying it is two
 * statements: delete every touched key (keeping the rows later ones are updated from), then insert every
 * final row. Between those, and row by row during the insert, the table holds a subset of the rows it
 * holds at the end of the batch (a state the source committed), so no unique or exclusion constraint can
 * object to an order the source did not use (an update that swaps two unique values, a key deleted and
 * inserted again, a key changed to one freed in the same batch).
 */
export class TableBatch {
  private slots = new Map<string, Slot>()
  /** A truncate in the batch: the table is emptied first, and keys the batch did not touch since hold nothing. */
  truncated = false
  changes = 0
  /** Bytes of values held (to bound the batch's memory). */
  bytes = 0
  readonly keyCols: string[]
  /** Columns written by insert: every column except stored generated ones (PostgreSQL computes them). */
  private cols: string[]

  constructor(readonly t: TargetTable) {
    this.keyCols = t.key!
    this.cols = [...t.columns.types.keys()].filter((c) => !t.columns.generated.has(c))
  }

  /** The key values of a tuple, or null when one is missing (the stream and the target disagree on the key). */
  keyOf(tuple: Tuple, fallback?: Values): Values | null {
    const out: Values = []
    for (let i = 0; i < this.keyCols.length; i++) {
      // An update's new values lack a key column only when it did not change (an unchanged TOAST value): the old key's.
      const v = tuple[this.keyCols[i]] === undefined ? fallback?.[i] : tuple[this.keyCols[i]]
      if (v === undefined || v === null) return null
      out.push(v)
    }
    return out
  }

  private count(t: Tuple) {
    this.changes++
    for (const k in t) this.bytes += (t[k]?.length ?? 0) + 16
  }

  insert(row: Tuple, key: Values): void {
    this.count(row)
    const k = key.join(SEP)
    this.slots.set(k, { key, final: { origin: null, values: row }, pre: this.slots.get(k)?.pre ?? false })
  }

  update(oldKey: Values, row: Tuple, newKey: Values): void {
    this.count(row)
    const ok = oldKey.join(SEP)
    let slot = this.slots.get(ok)
    if (!slot) {
      // Untouched so far: the row is the one in the table (none after a truncate: the update matches nothing).
      if (this.truncated) return
      slot = { key: oldKey, final: { origin: oldKey, values: {} }, pre: true }
    }
    if (!slot.final) return // deleted earlier in the batch: an update of nothing
    const values = { ...slot.final.values }
    for (const c in row) if (row[c] !== undefined) values[c] = row[c]
    const nk = newKey.join(SEP)
    if (nk === ok) {
      this.slots.set(ok, { key: oldKey, final: { origin: slot.final.origin, values }, pre: slot.pre })
      return
    }
    // The key changed: the row moves; nothing is left under its old key.
    this.slots.set(ok, { key: oldKey, final: null, pre: slot.pre })
    this.slots.set(nk, { key: newKey, final: { origin: slot.final.origin, values }, pre: this.slots.get(nk)?.pre ?? false })
  }

  delete(key: Values): void {
    this.changes++
    const k = key.join(SEP)
    this.slots.set(k, { key, final: null, pre: this.slots.get(k)?.pre ?? !this.truncated })
  }

  truncate(): void {
    this.changes++
    this.slots.clear()
    this.truncated = true
    this.bytes = 0
  }

  get empty(): boolean {
    return !this.truncated && !this.slots.size
  }

  /**
   * Apply the batch: COPY the touched keys into a temporary table, DELETE … USING it on the key, then
   * COPY the final rows straight into the table (values as text, parsed by PostgreSQL into each column's
   * type as the one-row path's untyped parameters are; COPY writes identity columns as given, like
   * OVERRIDING SYSTEM VALUE, and computes generated ones). Rows updated without some of their values
   * (unchanged TOAST) are staged with the values sent and take the others from the deleted row, kept by
   * the delete for the INSERT … SELECT that follows. An update of a row that was not there inserts nothing
   * (as UPDATE does).
   */
  async flush(client: pg.ClientBase, tmp: TempTables, profile?: BatchProfile): Promise<void> {
    const timed = async <T>(what: keyof BatchProfile, fn: () => Promise<T>): Promise<T> => {
      const t0 = performance.now()
      try {
        return await fn()
      } finally {
        if (profile) profile[what] += performance.now() - t0
      }
    }
    const rel = qname(this.t.schema, this.t.name)
    const n = this.keyCols.length
    const cols = this.cols
    const types = this.t.columns.types
    const ktypes = this.keyCols.map((c) => types.get(c)!)
    // As the one-row path: a TRUNCATE would refuse a table referenced from outside the restored ones.
    if (this.truncated) await timed('deleteMs', () => client.query(`DELETE FROM ONLY ${rel}`))
    if (!this.slots.size) return
    // The keys rows are updated from (r: the whole row is needed after its delete, some values were not sent; k: only the key).
    const origins = new Map<string, 'k' | 'r'>()
    const partialRows = new Set<string>()
    for (const [text, s] of this.slots) {
      const f = s.final
      if (!f?.origin) continue
      const whole = cols.every((c) => f.values[c] !== undefined)
      if (!whole) partialRows.add(text)
      origins.set(f.origin.join(SEP), whole ? 'k' : 'r')
    }
    const partial = partialRows.size > 0
    const { stage, old } = await tmp.forTable(client, this.t, n, cols.length)
    // Stage rows: f (l: inserted, m: updated from a row, n: nothing), src (this key's row is updated from: k/r/n),
    // s (which values were sent), the key k_i, the origin o_i; values c_i only for rows that lack some.
    const staged = new CopyText()
    for (const [text, s] of this.slots) {
      const f = s.final
      const p = partialRows.has(text)
      if (!s.pre && !p) continue
      const fields: string[] = [!f ? 'n' : f.origin ? 'm' : 'l', origins.get(text) ?? 'n']
      fields.push(p ? cols.map((c) => (f!.values[c] === undefined ? '0' : '1')).join('') : '\\N')
      for (const v of s.key) fields.push(copyText(v))
      for (let i = 0; i < n; i++) fields.push(f?.origin ? copyText(f.origin[i]) : '\\N')
      for (const c of cols) {
        const v = p ? f!.values[c] : undefined
        fields.push(v === undefined || v === null ? '\\N' : copyText(v))
      }
      staged.add(fields.join('\t'))
    }
    if (staged.size)
      await timed('copyMs', async () => {
        await client.query(`TRUNCATE ${stage}`)
        await pipeline(Readable.from(staged.chunks()), client.query(copyFrom(`COPY ${stage} FROM STDIN`)))
      })
    const keyMatch = this.keyCols.map((c, i) => `t.${qi(c)} = s.k_${i}::${ktypes[i]}`).join(' AND ')
    const missing = new Set<string>()
    if (!this.truncated && staged.size) {
      if (!origins.size) await timed('deleteMs', () => client.query(`DELETE FROM ONLY ${rel} t USING ${stage} s WHERE ${keyMatch}`))
      else {
        // One statement: delete, keep the rows still needed, and name the keys rows were updated from that held none.
        const ks = this.keyCols.map((_, i) => `s.k_${i} AS efo_k${i}`).join(', ')
        const { rows } = await timed('deleteMs', async () => {
          if (partial) await client.query(`TRUNCATE ${old}`)
          return client.query<Record<string, string>>({
            text: `WITH d AS (DELETE FROM ONLY ${rel} t USING ${stage} s WHERE ${keyMatch} RETURNING ${ks}, s.src AS efo_src${partial ? ', t AS efo_row' : ''})
                   ${partial ? `, kept AS (INSERT INTO ${old} SELECT ${this.keyCols.map((_, i) => `efo_k${i}`).join(', ')}, efo_row FROM d WHERE efo_src = 'r' RETURNING 1)` : ''}
                   SELECT ${this.keyCols.map((_, i) => `s.k_${i} AS m${i}`).join(', ')} FROM ${stage} s
                    WHERE s.src <> 'n' AND NOT EXISTS (SELECT 1 FROM d WHERE ${this.keyCols.map((_, i) => `d.efo_k${i} = s.k_${i}`).join(' AND ')})`,
          })
        })
        for (const r of rows) missing.add(this.keyCols.map((_, i) => r[`m${i}`]).join(SEP))
      }
    }
    const rows = new CopyText()
    for (const [text, s] of this.slots) {
      const f = s.final
      if (!f || partialRows.has(text) || (f.origin && missing.has(f.origin.join(SEP)))) continue
      rows.add(cols.map((c) => (f.values[c] === undefined || f.values[c] === null ? '\\N' : copyText(f.values[c]!))).join('\t'))
    }
    if (rows.size)
      await timed('insertMs', () =>
        pipeline(Readable.from(rows.chunks()), client.query(copyFrom(`COPY ${rel} (${cols.map(qi).join(', ')}) FROM STDIN`))),
      )
    if (partial) {
      const value = (c: string, i: number) =>
        `CASE WHEN substr(s.s, ${i + 1}, 1) = '1' THEN s.c_${i}::${types.get(c)} ELSE (o.r).${qi(c)} END`
      await timed('insertMs', () =>
        client.query(
          `INSERT INTO ${rel} (${cols.map(qi).join(', ')}) OVERRIDING SYSTEM VALUE
           SELECT ${cols.map(value).join(', ')} FROM ${stage} s JOIN ${old} o ON ${this.keyCols.map((_, i) => `o.k_${i} = s.o_${i}`).join(' AND ')}
            WHERE s.f = 'm' AND s.s IS NOT NULL`,
        ),
      )
    }
  }
}

/** Lines of COPY text, gathered in chunks of about a megabyte. */
class CopyText {
  private done: string[] = []
  private lines: string[] = []
  private bytes = 0
  size = 0
  add(line: string): void {
    this.lines.push(line)
    this.size++
    this.bytes += line.length + 1
    if (this.bytes > 1 << 20) this.cut()
  }
  private cut(): void {
    if (this.lines.length) this.done.push(this.lines.join('\n') + '\n')
    this.lines = []
    this.bytes = 0
  }
  chunks(): string[] {
    this.cut()
    return this.done
  }
}

/** COPY text format: backslash, newline, carriage return and tab escaped. */
function copyText(v: string): string {
  return /[\\\n\r\t]/.test(v) ? v.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t')) : v
}

/**
 * The temporary tables of a replay, one pair per table it batches, made on first use and dropped at the
 * end: the stage (text) and the rows kept from the delete (their key as the stream wrote it, the row as the table's own type).
 */
export class TempTables {
  private made = new Map<string, { stage: string; old: string }>()

  async forTable(client: pg.ClientBase, t: TargetTable, keys: number, cols: number): Promise<{ stage: string; old: string }> {
    const k = `${t.schema}.${t.name}`
    let m = this.made.get(k)
    if (m) return m
    const i = this.made.size
    m = { stage: `pg_temp.efo_replay_s${i}`, old: `pg_temp.efo_replay_o${i}` }
    const key = t.key!
    const text = (prefix: string, count: number) => Array.from({ length: count }, (_, j) => `${prefix}${j} text`)
    await client.query(
      `CREATE TEMP TABLE efo_replay_s${i} (f text, src text, s text, ${[...text('k_', keys), ...text('o_', keys), ...text('c_', cols)].join(', ')})`,
    )
    await client.query(`CREATE TEMP TABLE efo_replay_o${i} (${key.map((_, j) => `k_${j} text`).join(', ')}, r ${qname(t.schema, t.name)})`)
    this.made.set(k, m)
    return m
  }

  async drop(client: pg.ClientBase): Promise<void> {
    const names = [...this.made.values()].flatMap((m) => [m.stage, m.old])
    this.made.clear()
    if (names.length) await client.query(`DROP TABLE IF EXISTS ${names.join(', ')}`)
  }
}
