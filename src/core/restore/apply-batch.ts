import type pg from 'pg'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { from as copyFrom } from 'pg-copy-streams'
import type { Tuple } from '../backup/changes/pgoutput'
import { qi, qname } from '../backup/full'
import type { TargetTable } from './apply-tables'

type Values = string[]

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
      const v = tuple[this.keyCols[i]] ?? (tuple[this.keyCols[i]] === undefined ? fallback?.[i] : undefined)
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
    this.slots.set(key.join(SEP), { key, final: { origin: null, values: row } })
  }

  update(oldKey: Values, row: Tuple, newKey: Values): void {
    this.count(row)
    const ok = oldKey.join(SEP)
    let slot = this.slots.get(ok)
    if (!slot) {
      // Untouched so far: the row is the one in the table (none after a truncate: the update matches nothing).
      if (this.truncated) return
      slot = { key: oldKey, final: { origin: oldKey, values: {} } }
    }
    if (!slot.final) return // deleted earlier in the batch: an update of nothing
    const values = { ...slot.final.values }
    for (const c in row) if (row[c] !== undefined) values[c] = row[c]
    const nk = newKey.join(SEP)
    if (nk === ok) {
      this.slots.set(ok, { key: oldKey, final: { origin: slot.final.origin, values } })
      return
    }
    // The key changed: the row moves; nothing is left under its old key.
    this.slots.set(ok, { key: oldKey, final: null })
    this.slots.set(nk, { key: newKey, final: { origin: slot.final.origin, values } })
  }

  delete(key: Values): void {
    this.changes++
    this.slots.set(key.join(SEP), { key, final: null })
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
   * Apply the batch: COPY the touched keys and final rows into a temporary table (values as text, each
   * cast to its column's type by PostgreSQL, as the one-row path's untyped parameters are), then
   * DELETE … USING it on the key and INSERT … SELECT from it. Rows updated without some of their values
   * (unchanged TOAST) take those from the deleted row, kept for the statement that follows.
   */
  async flush(client: pg.ClientBase, tmp: TempTables): Promise<void> {
    const rel = qname(this.t.schema, this.t.name)
    const n = this.keyCols.length
    const cols = this.cols
    const types = this.t.columns.types
    const ktypes = this.keyCols.map((c) => types.get(c)!)
    if (this.truncated) await client.query(`DELETE FROM ONLY ${rel}`) // as the one-row path: a TRUNCATE would refuse a table referenced from outside the restored ones
    if (!this.slots.size) return
    // Which keys' rows are needed after their delete: whole (some values were not sent) or only to know they were there.
    const origins = new Map<string, 'k' | 'r'>()
    let partial = false
    for (const s of this.slots.values()) {
      const f = s.final
      if (!f?.origin) continue
      const whole = cols.every((c) => f.values[c] !== undefined)
      if (!whole) partial = true
      origins.set(f.origin.join(SEP), whole ? 'k' : 'r')
    }
    const { stage, old } = await tmp.forTable(client, this.t, n, cols.length)
    // Stage rows: f (l: inserted, m: updated from a row, n: nothing), src (is this key's row needed: k/r/n),
    // s (which values were sent), then the key k_i, the origin o_i and the values c_i.
    const lines: string[] = []
    let size = 0
    const chunks: string[] = []
    for (const [text, s] of this.slots) {
      const f = s.final
      const kind = !f ? 'n' : f.origin ? 'm' : 'l'
      const fields: string[] = [kind, origins.get(text) ?? 'n']
      fields.push(f && f.origin ? cols.map((c) => (f.values[c] === undefined ? '0' : '1')).join('') : '\\N')
      for (const v of s.key) fields.push(copyText(v))
      for (let i = 0; i < n; i++) fields.push(f?.origin ? copyText(f.origin[i]) : '\\N')
      for (const c of cols) {
        const v = f?.values[c]
        fields.push(v === undefined || v === null ? '\\N' : copyText(v))
      }
      const line = fields.join('\t') + '\n'
      lines.push(line)
      size += line.length
      if (size > 1 << 20) {
        chunks.push(lines.join(''))
        lines.length = 0
        size = 0
      }
    }
    if (lines.length) chunks.push(lines.join(''))
    await client.query(`TRUNCATE ${stage}`)
    await pipeline(Readable.from(chunks), client.query(copyFrom(`COPY ${stage} FROM STDIN`)))
    const keyMatch = (alias: string, other: string, prefix: string) =>
      this.keyCols.map((c, i) => `${alias}.${qi(c)} = ${other}.${prefix}${i}::${ktypes[i]}`).join(' AND ')
    if (!this.truncated) {
      if (origins.size) {
        await client.query(`TRUNCATE ${old}`)
        await client.query(
          `WITH d AS (DELETE FROM ONLY ${rel} t USING ${stage} s WHERE ${keyMatch('t', 's', 'k_')}
                      RETURNING s.src AS efo_src, ${this.keyCols.map((c, i) => `t.${qi(c)} AS efo_k${i}`).join(', ')}, t AS efo_row)
           INSERT INTO ${old} SELECT ${this.keyCols.map((_, i) => `efo_k${i}`).join(', ')}, CASE WHEN efo_src = 'r' THEN efo_row END
             FROM d WHERE efo_src <> 'n'`,
        )
      } else await client.query(`DELETE FROM ONLY ${rel} t USING ${stage} s WHERE ${keyMatch('t', 's', 'k_')}`)
    }
    const value = (c: string, i: number) => {
      const cast = `s.c_${i}::${types.get(c)}`
      return partial ? `CASE WHEN s.f = 'l' OR substr(s.s, ${i + 1}, 1) = '1' THEN ${cast} ELSE (o.r).${qi(c)} END` : cast
    }
    await client.query(
      `INSERT INTO ${rel} (${cols.map(qi).join(', ')}) OVERRIDING SYSTEM VALUE
       SELECT ${cols.map(value).join(', ')} FROM ${stage} s
       ${origins.size ? `LEFT JOIN ${old} o ON ${this.keyCols.map((_, i) => `o.k_${i} = s.o_${i}::${ktypes[i]}`).join(' AND ')}` : ''}
       WHERE s.f = 'l'${origins.size ? ` OR (s.f = 'm' AND o.k_0 IS NOT NULL)` : ''}`,
    )
  }
}

/** COPY text format: backslash, newline, carriage return and tab escaped. */
function copyText(v: string): string {
  return /[\\\n\r\t]/.test(v) ? v.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t')) : v
}

/**
 * The temporary tables of a replay, one pair per table it batches, made on first use and dropped at the
 * end: the stage (values as text) and the rows kept from the delete (key typed, row as the table's own type).
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
    await client.query(
      `CREATE TEMP TABLE efo_replay_o${i} (${key.map((c, j) => `k_${j} ${t.columns.types.get(c)}`).join(', ')}, r ${qname(t.schema, t.name)})`,
    )
    this.made.set(k, m)
    return m
  }

  async drop(client: pg.ClientBase): Promise<void> {
    const names = [...this.made.values()].flatMap((m) => [m.stage, m.old])
    this.made.clear()
    if (names.length) await client.query(`DROP TABLE IF EXISTS ${names.join(', ')}`)
  }
}
