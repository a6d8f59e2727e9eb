import type pg from 'pg'
import { BlockPool, CopyOut } from '../backup/copy-out'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { CheckReport } from '../../shared/restore'
import { RowDigest } from '../backup/digest'
import type { Manifest } from '../backup/manifest'
import { relName as rel, tableKey } from './plan'
import { qi } from '../db/sql'
import { runPool } from './pool'

/** A table's row count and order-independent digest, read the way a backup reads it (same session settings, same columns). */
export async function digestTable(
  c: pg.ClientBase,
  table: string,
  columns: string[],
  signal?: AbortSignal,
  where = '',
): Promise<RowDigest> {
  const d = new RowDigest()
  const cols = columns.length ? columns.map(qi).join(', ') : ''
  // The backup's own reader: rows digested as they come off the socket, nothing kept (its blocks go
  // straight back to be filled again).
  const pool = new BlockPool()
  await pipeline(
    c.query(new CopyOut(`COPY (SELECT ${cols} FROM ONLY ${rel(table)}${where}) TO STDOUT`, d, () => {}, pool)),
    new Writable({
      write: (chunk: Buffer, _e, cb) => {
        if (pool.owns(chunk)) pool.give(chunk.buffer as ArrayBuffer)
        cb()
      },
    }),
    ...(signal ? [{ signal }] : []),
  )
  return d
}

/**
 * The check after a restore: per table, rows (and, when the point is a set with digests, the row digest)
 * against what the backup says; every foreign key that touches a restored table; every sequence at or
 * above the values in use. Run inside the restore's transaction in place, so a failed check rolls back.
 */
export async function checkRestore(
  c: pg.ClientBase,
  o: {
    scope: string[]
    full: Manifest
    /** Digests are compared only when the point is the full set itself (no changes replayed). */
    compareDigests: boolean
    rowsAfter: Map<string, number>
    /** Columns of tables a carried schema change reshaped. */
    columnsAfter?: Map<string, string[]>
    signal: AbortSignal
    onTable?: (table: string) => void
    /** Only the relations (foreign keys, sequences), or only the tables (to spread tables over connections). */
    skipTables?: boolean
    skipRelations?: boolean
    /** A partial restore into an empty database: keys to tables that were not restored are not checked. */
    restoredOnly?: boolean
    /** Connections to spread the foreign-key checks over (outside a transaction: a load into an empty database). */
    pool?: pg.Client[]
    /**
     * A load into an empty database, where the restore itself added every foreign key after the rows it covers:
     * a key PostgreSQL validated then (convalidated) is not looked up again.
     */
    validatedByRestore?: boolean
  },
): Promise<CheckReport> {
  const tables: CheckReport['tables'] = []
  for (const k of o.skipTables ? [] : o.scope) {
    o.signal.throwIfAborted()
    const tm = o.full.tables.find((t) => tableKey(t) === k)!
    const d = await digestTable(c, k, o.columnsAfter?.get(k) ?? tm.columns, o.signal)
    tables.push(tableCheck(k, o, d.rows, d.value()))
    o.onTable?.(k)
  }

  if (o.skipRelations) return { ok: tables.every((t) => t.ok), checkedAt: new Date().toISOString(), tables, foreignKeys: [], sequences: [] }
  // Foreign keys on or to a restored table (triggers were off during the restore: check them here).
  const { rows: fks } = await c.query<{
    name: string
    child: string
    parent: string
    ccols: string[]
    pcols: string[]
    validated: boolean
    childKey: string
    parentKey: string
  }>(
    `SELECT k.conname AS name, k.conrelid::regclass::text AS child, k.confrelid::regclass::text AS parent, k.convalidated AS validated,
            cn.nspname || '.' || cc.relname AS "childKey", pn.nspname || '.' || pc.relname AS "parentKey",
            ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i) AS ccols,
            ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i) AS pcols
       FROM pg_constraint k JOIN pg_class cc ON cc.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
       JOIN pg_class pc ON pc.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
      WHERE k.contype = 'f' AND k.conparentid = 0`,
  )
  // A partitioned table's key covers its partitions: the restored leaves map to their roots.
  const roots = await partitionRoots(c)
  const rootOf = new Map(roots.map((r) => [r.leaf, r.root]))
  const touched = new Set(o.scope.map((k) => rootOf.get(k) ?? k))
  type FkLine = CheckReport['foreignKeys'][number]
  const lines: (FkLine | { fk: (typeof fks)[number]; sql: string; violations?: number })[] = []
  for (const fk of fks) {
    if (!touched.has(fk.childKey) && !touched.has(fk.parentKey)) continue
    if (o.restoredOnly && (!touched.has(fk.childKey) || !touched.has(fk.parentKey))) {
      const missing = touched.has(fk.childKey) ? fk.parent : fk.child
      lines.push({
        constraint: fk.name,
        table: fk.child,
        references: fk.parent,
        violations: 0,
        ok: true,
        checked: false,
        note: `not checked: ${missing} was not restored (the key is NOT VALID)`,
      })
      continue
    }
    if (o.validatedByRestore && fk.validated) {
      lines.push({
        constraint: fk.name,
        table: fk.child,
        references: fk.parent,
        violations: 0,
        ok: true,
        checked: true,
        note: 'validated by PostgreSQL, row by row, as the restore added it',
      })
      continue
    }
    const notNull = fk.ccols.map((col) => `ch.${qi(col)} IS NOT NULL`).join(' AND ')
    const match = fk.ccols.map((col, i) => `pa.${qi(fk.pcols[i])} = ch.${qi(col)}`).join(' AND ')
    lines.push({
      fk,
      sql: `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${rel(fk.childKey)} ch WHERE ${notNull} AND NOT EXISTS (SELECT 1 FROM ${rel(fk.parentKey)} pa WHERE ${match}) LIMIT 1000) x`,
    })
  }
  // Each key's lookup on the next free connection (or one after the other on this one), reported in key order.
  const queue = lines.filter((l) => 'sql' in l)
  await runPool(
    o.pool?.length ? o.pool : [c as pg.Client],
    () => queue.shift() ?? null,
    async (w, l) => {
      l.violations = (await w.query(l.sql)).rows[0].n as number
    },
    o.signal,
  )
  const foreignKeys: CheckReport['foreignKeys'] = lines.map((l) => {
    if (!('sql' in l)) return l
    const violations = l.violations!
    const fk = l.fk
    return {
      constraint: fk.name,
      table: fk.child,
      references: fk.parent,
      violations,
      ok: violations === 0,
      checked: true,
      note: violations
        ? `${violations >= 1000 ? 'at least 1000' : violations} row(s) of ${fk.child} point at missing rows of ${fk.parent}`
        : null,
    }
  })

  // Sequences owned by a restored table's column: at or above the largest value in use.
  const { rows: seqs } = await c.query<{ seq: string; tbl: string; col: string; tkey: string }>(
    `SELECT s.oid::regclass::text AS seq, c.oid::regclass::text AS tbl, a.attname AS col, n.nspname || '.' || c.relname AS tkey
       FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
       JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
      WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')`,
  )
  const sequences: CheckReport['sequences'] = []
  for (const s of seqs) {
    if (!touched.has(s.tkey)) continue
    const { rows } = await c.query(
      `SELECT (SELECT last_value::text FROM ${s.seq}) AS v, (SELECT max(${qi(s.col)})::text FROM ${s.tbl}) AS m`,
    )
    const v = rows[0].v as string
    const m = rows[0].m as string | null
    sequences.push({ sequence: s.seq, value: v, maxInUse: m, ok: m === null || BigInt(v) >= BigInt(m) })
  }
  return {
    ok: tables.every((t) => t.ok) && foreignKeys.every((f) => f.ok || f.checked === false) && sequences.every((s) => s.ok),
    checkedAt: new Date().toISOString(),
    tables,
    foreignKeys,
    sequences,
  }
}

/** One table's line of the report: rows (and digest, for a set point) found against what the backup says. */
export function tableCheck(
  k: string,
  o: { full: Manifest; compareDigests: boolean; rowsAfter: Map<string, number> },
  rows: number,
  digest: string,
): CheckReport['tables'][number] {
  // A table that joined the chain after its full is not in the full's manifest.
  const tm = o.full.tables.find((t) => tableKey(t) === k)
  const rowsExpected = o.rowsAfter.get(k) ?? tm?.rows ?? 0
  const digestExpected = o.compareDigests && tm ? tm.digest : null
  const problem =
    rows !== rowsExpected
      ? `${rows} rows, the backup says ${rowsExpected}`
      : digestExpected && digest !== digestExpected
        ? 'the rows differ from the backup (digest mismatch)'
        : null
  return { table: k, rowsExpected, rowsFound: rows, digestExpected, digestFound: digest, ok: !problem, problem }
}

/** Leaf → top-most partitioned parent, for every partition. */
async function partitionRoots(c: pg.ClientBase): Promise<{ leaf: string; root: string }[]> {
  const { rows } = await c.query<{ leaf: string; root: string }>(
    `WITH RECURSIVE up AS (
       SELECT i.inhrelid AS leaf, i.inhparent AS root FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent AND p.relkind = 'p'
       UNION ALL SELECT up.leaf, i.inhparent FROM up JOIN pg_inherits i ON i.inhrelid = up.root)
     SELECT ln.nspname || '.' || l.relname AS leaf, rn.nspname || '.' || r.relname AS root
       FROM up JOIN pg_class l ON l.oid = up.leaf JOIN pg_namespace ln ON ln.oid = l.relnamespace
       JOIN pg_class r ON r.oid = up.root JOIN pg_namespace rn ON rn.oid = r.relnamespace
      WHERE NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = up.root)`,
  )
  return rows
}
