import { createHash } from 'node:crypto'
import { Readable, Writable, type Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import type { BackupStorage } from '../../storage/storage'
import { aadFor } from '../authenticity'
import { decompressor } from '../compression'
import { decryptStream, keyForSet, type KeySource } from '../crypto'
import type { Manifest } from '../manifest'
import { objectName } from '../verify'

/**
 * Carrying a chain through a schema change (a migration) instead of ending it.
 *
 * An incremental compares the schema captured at its start with the one its parent recorded, statement
 * by statement. The change is carried when every difference is one replay can reproduce exactly:
 *  - a column added to a table of the chain (nullable, or with a default PostgreSQL stored as the value
 *    of the rows that existed: a constant or stable default), or a column dropped; the column's
 *    default changing is harmless (replay writes every value);
 *  - a new plain table with a replica identity: it joins the publication with a snapshot of its rows
 *    (see adopt in incremental.ts), and a restore creates it at that point of the stream;
 *  - new types, sequences, schemas and extensions (created before the set's changes are replayed);
 *  - new indexes, constraints, foreign keys, comments, triggers and policies (created at the end of a
 *    restore to a moment after the set's schema was captured), and such statements that went away
 *    with a dropped column.
 * Anything else (a column's type, nullability, identity or generation changed, a table dropped or
 * renamed, a column renamed, a function or view changed, an enum's values changed, a new table without
 * a replica identity) ends the chain as before: its last incremental reads up to the first row of a new
 * shape and a new full starts the next chain.
 */
export interface CarryPlan {
  /** Added columns per table (schema.name): name → the column's definition for ALTER TABLE ... ADD COLUMN. */
  added: Map<string, Map<string, string>>
  /** Dropped columns per table. */
  dropped: Map<string, Set<string>>
  /** New tables (schema.name) to adopt into the chain. */
  newTables: string[]
  /** Types, sequences, schemas, extensions created since the parent: run before the set's changes. */
  preAdded: string[]
  /** Keys, indexes, foreign keys, comments, triggers, policies created since the parent (tables of the chain). */
  postAdded: string[]
  /** One line per change, for the manifest and the planner. */
  summary: string[]
}

/** A captured schema statement list, read from a set's schema object (decrypted and checked as a restore does). */
export async function readSchemaObject(
  storage: BackupStorage,
  m: Manifest,
  keys: KeySource | null,
): Promise<{ pre: string[]; post: string[] } | null> {
  const obj = m.objects.find((o) => o.kind === 'schema')
  if (!obj) return null
  const stored = await storage.getBuffer(obj.key)
  if (stored.length !== obj.size || createHash('sha256').update(stored).digest('hex') !== obj.sha256) return null
  const key = m.encryption ? keyForSet(m.encryption, keys ?? { key: null, passphrase: null }) : null
  const stages = [key ? decryptStream(key, objectName(m.setId, obj.key), aadFor(m, obj.key)) : null, decompressor(m.compression)].filter(
    (s): s is Transform => s !== null,
  )
  const chunks: Buffer[] = []
  await pipeline([Readable.from([stored]), ...stages, new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) })])
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

/** Split at top-level commas (outside parentheses and quotes). */
function splitTop(s: string): string[] {
  const out: string[] = []
  let depth = 0
  let quote: string | null = null
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]
    if (quote) {
      if (ch === quote) {
        if (s[i + 1] === quote) i++
        else quote = null
      }
    } else if (ch === "'" || ch === '"') quote = ch
    else if (ch === '(') depth++
    else if (ch === ')') depth--
    else if (ch === ',' && depth === 0) {
      out.push(s.slice(start, i).trim())
      start = i + 1
    }
  }
  if (s.slice(start).trim()) out.push(s.slice(start).trim())
  return out
}

/** The closing parenthesis that matches the one at `open`. */
function closing(s: string, open: number): number {
  let depth = 0
  let quote: string | null = null
  for (let i = open; i < s.length; i++) {
    const ch = s[i]
    if (quote) {
      if (ch === quote) {
        if (s[i + 1] === quote) i++
        else quote = null
      }
    } else if (ch === "'" || ch === '"') quote = ch
    else if (ch === '(') depth++
    else if (ch === ')' && --depth === 0) return i
  }
  return -1
}

/** A column definition's leading identifier, unquoted. */
function colName(def: string): string {
  if (def.startsWith('"')) {
    let i = 1
    let out = ''
    for (; i < def.length; i++) {
      if (def[i] === '"') {
        if (def[i + 1] === '"') {
          out += '"'
          i++
        } else break
      } else out += def[i]
    }
    return out
  }
  return def.split(' ')[0]
}

export interface TableStatement {
  /** The relation as written (schema-qualified, quoted where needed). */
  relation: string
  /** Column name → definition without its default (type, collation, identity, generation, NOT NULL). */
  columns: Map<string, string>
  /** After the column list: INHERITS, PARTITION BY, WITH. */
  suffix: string
}

const CREATE_TABLE = /^CREATE (UNLOGGED )?TABLE /

/** A captured CREATE TABLE (not a partition's: those have no column list). */
export function parseCreateTable(st: string): TableStatement | null {
  const m = CREATE_TABLE.exec(st)
  if (!m || / PARTITION OF /.test(st.slice(0, st.indexOf('(') + 1))) return null
  const open = st.indexOf(' (', m[0].length)
  if (open < 0) return null
  const close = closing(st, open + 1)
  if (close < 0) return null
  const columns = new Map<string, string>()
  for (const def of splitTop(st.slice(open + 2, close))) {
    // The default is written after the type and collation, before identity and NOT NULL (never with either generation).
    columns.set(colName(def), def.replace(/ DEFAULT .*?(?=( NOT NULL)?$)/, ''))
  }
  return { relation: st.slice(m[0].length, open), columns, suffix: st.slice(close + 1) }
}

const isPost = (st: string, post: Set<string>) => post.has(st)

/** A captured CREATE TYPE ... AS ENUM: its name and labels. */
function parseEnum(st: string | undefined): { name: string; labels: string[]; statement: string } | null {
  const m = st ? /^CREATE TYPE (.+?) AS ENUM \((.*)\);$/s.exec(st) : null
  if (!m || !st) return null
  return { name: m[1], labels: splitTop(m[2]).map((l) => l.slice(1, -1).replace(/''/g, "'")), statement: st }
}

/** The ADD VALUE statements that take an enum from its old labels to the new ones, or null when a label went away or moved. */
function enumSteps(name: string, before: string[], after: string[]): string[] | null {
  if (after.filter((l) => before.includes(l)).join('\u0000') !== before.join('\u0000')) return null
  const lit = (l: string) => `'${l.replace(/'/g, "''")}'`
  const steps: string[] = []
  for (const [i, l] of after.entries()) {
    if (before.includes(l)) continue
    const next = after.slice(i + 1).find((x) => before.includes(x))
    steps.push(
      `ALTER TYPE ${name} ADD VALUE IF NOT EXISTS ${lit(l)}${next ? ` BEFORE ${lit(next)}` : i > 0 ? ` AFTER ${lit(after[i - 1])}` : ''}`,
    )
  }
  return steps
}

/**
 * Whether (and how) the change from the parent's schema to the current one can be carried by the chain.
 * tables: the chain's tables (schema.name → relation as captured, e.g. public."User"); publishable: tables with
 * a usable replica identity (schema.name).
 */
export function planCarry(
  before: { pre: string[]; post: string[] },
  now: { pre: string[]; post: string[] },
  now_tables: { schema: string; name: string; partitioned: boolean }[],
  chainTables: Set<string>,
  publishable: Set<string>,
  relationOf: Map<string, string>,
): { ok: true; plan: Omit<CarryPlan, 'added'> & { added: Map<string, string[]> } } | { ok: false; why: string } {
  const beforeAll = new Set([...before.pre, ...before.post])
  const nowAll = new Set([...now.pre, ...now.post])
  const removed = [...beforeAll].filter((s) => !nowAll.has(s))
  const added = [...nowAll].filter((s) => !beforeAll.has(s))
  const postNow = new Set(now.post)
  const postBefore = new Set(before.post)
  const keyOfRelation = new Map([...relationOf].map(([k, r]) => [r, k]))
  const addedCols = new Map<string, string[]>()
  const droppedCols = new Map<string, Set<string>>()
  const newTables: string[] = []
  const preAdded: string[] = []
  const postAdded: string[] = []
  const summary: string[] = []
  const handledRemoved = new Set<string>()
  const createdBy = new Map<string, TableStatement>()
  for (const st of added.filter((s) => CREATE_TABLE.test(s))) {
    const t = parseCreateTable(st)
    if (t) createdBy.set(t.relation, t)
  }
  const handledAdded = new Set<string>()
  // Enum values added (Prisma's enum changes): ALTER TYPE ... ADD VALUE before the set's changes.
  for (const st of removed) {
    const e = parseEnum(st)
    if (!e) continue
    const next = added.map(parseEnum).find((x) => x?.name === e.name)
    const steps = next ? enumSteps(e.name, e.labels, next.labels) : null
    if (!next || !steps) return { ok: false, why: `the values of the enum ${e.name} were renamed, removed or reordered` }
    preAdded.push(...steps)
    summary.push(`${e.name}: enum value(s) ${next.labels.filter((l) => !e.labels.includes(l)).join(', ')} added`)
    handledAdded.add(next.statement)
    handledRemoved.add(st)
  }
  // Tables whose statement changed: columns added or dropped, nothing else.
  for (const st of removed) {
    if (isPost(st, postBefore) || handledRemoved.has(st)) continue
    if (!CREATE_TABLE.test(st)) return { ok: false, why: `a statement of the schema went away or changed: ${st.slice(0, 120)}` }
    const old = parseCreateTable(st)
    if (!old) return { ok: false, why: `a partition changed: ${st.slice(0, 120)}` }
    const key = keyOfRelation.get(old.relation)
    const cur = createdBy.get(old.relation)
    if (!key || !cur) return { ok: false, why: `the table ${old.relation} was dropped or renamed` }
    if (!chainTables.has(key)) return { ok: false, why: `the table ${old.relation} changed and the chain does not follow it` }
    if (cur.suffix !== old.suffix) return { ok: false, why: `the table ${old.relation} changed its storage or partitioning` }
    for (const [name, def] of old.columns) {
      const n = cur.columns.get(name)
      if (n === undefined) droppedCols.set(key, new Set([...(droppedCols.get(key) ?? []), name]))
      else if (n !== def)
        return {
          ok: false,
          why: `the column ${name} of ${old.relation} changed (its type, collation, nullability, identity or generation)`,
        }
    }
    for (const [name, def] of cur.columns) {
      if (old.columns.has(name)) continue
      if (/ GENERATED /.test(def))
        return {
          ok: false,
          why: `the column ${name} added to ${old.relation} is generated or an identity (its values are not in the change stream)`,
        }
      addedCols.set(key, [...(addedCols.get(key) ?? []), name])
    }
    for (const c of addedCols.get(key) ?? []) summary.push(`${key}: column ${c} added`)
    for (const c of droppedCols.get(key) ?? []) summary.push(`${key}: column ${c} dropped`)
    handledAdded.add([...added].find((s) => parseCreateTable(s)?.relation === old.relation)!)
  }
  // Statements that went away with a dropped column.
  for (const st of removed.filter((s) => isPost(s, postBefore))) {
    const gone = [...droppedCols].some(([key, cols]) => {
      const rel = relationOf.get(key) ?? key
      return (
        st.includes(rel) &&
        [...cols].some((c) => st.includes(`"${c.replace(/"/g, '""')}"`) || new RegExp(`\\b${c.replace(/[^\w]/g, '')}\\b`).test(st))
      )
    })
    if (!gone) return { ok: false, why: `a key, index, constraint, trigger or policy was dropped: ${st.slice(0, 120)}` }
  }
  const nowKeys = new Map(now_tables.map((t) => [t.schema + '.' + t.name, t]))
  for (const st of added) {
    if (handledAdded.has(st)) continue
    if (postNow.has(st)) {
      postAdded.push(st)
      continue
    }
    if (CREATE_TABLE.test(st)) {
      const t = parseCreateTable(st)
      const key = t ? keyOfRelation.get(t.relation) : undefined
      if (!t || !key || !nowKeys.has(key) || t.suffix.trim().replace(/;$/, '') !== '' || nowKeys.get(key)!.partitioned)
        return { ok: false, why: `a partitioned, inherited or partition table was created: ${st.slice(0, 120)}` }
      if (!publishable.has(key))
        return { ok: false, why: `the new table ${t.relation} has no replica identity, so the change stream cannot follow it` }
      newTables.push(key)
      summary.push(`${key}: table created`)
      continue
    }
    if (/^CREATE (TYPE|SEQUENCE|SCHEMA IF NOT EXISTS|EXTENSION IF NOT EXISTS|DOMAIN) /.test(st)) {
      preAdded.push(st)
      continue
    }
    return { ok: false, why: `a statement of the schema was added that replay cannot place in time: ${st.slice(0, 120)}` }
  }
  // New tables' own keys, indexes and foreign keys come with the table (captured when it joins the chain).
  const newRelations = newTables.map((k) => relationOf.get(k)!)
  const own = (st: string) =>
    newRelations.some((r) => st.startsWith(`ALTER TABLE ${r} `) || st.includes(` ON ${r} `) || st.includes(` ON ${r}(`))
  const keep = postAdded.filter((st) => !own(st))
  for (const st of keep) summary.push(`added: ${st.length > 100 ? st.slice(0, 100) + '...' : st}`)
  return {
    ok: true,
    plan: { added: addedCols, dropped: droppedCols, newTables, preAdded, postAdded: keep, summary },
  }
}

/**
 * The definition of each added column for ALTER TABLE ... ADD COLUMN on the restored table, from the
 * catalog now: its type and collation, the value the rows that existed got (PostgreSQL's stored "missing"
 * value), then its current default and NOT NULL. null when replay cannot reproduce it: a default that is
 * not stored as a missing value (a volatile one such as gen_random_uuid() rewrote the table with values the
 * change stream does not hold), or an array-typed missing value.
 */
export async function addedColumnSql(c: pg.ClientBase, table: string, column: string): Promise<string[] | { why: string }> {
  const [schema, name] = [table.slice(0, table.indexOf('.')), table.slice(table.indexOf('.') + 1)]
  const { rows } = await c.query<{
    def: string
    has_missing: boolean
    missing: string | null
    dflt: string | null
    notnull: boolean
    is_array: boolean
    rel: string
    col: string
  }>(
    `SELECT format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
              || CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
                      THEN ' COLLATE ' || (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) ELSE '' END AS def,
            a.atthasmissing AS has_missing, a.attmissingval::text AS missing, pg_get_expr(ad.adbin, ad.adrelid) AS dflt, a.attnotnull AS notnull,
            t.typcategory = 'A' AS is_array, format('%I.%I', n.nspname, c.relname) AS rel, quote_ident(a.attname) AS col
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped`,
    [schema, name, column],
  )
  const r = rows[0]
  if (!r) return { why: `the column ${column} added to ${table} is gone again` }
  let missing = ''
  if (r.has_missing) {
    if (r.is_array) return { why: `the array column ${column} added to ${table} has a default` }
    // attmissingval is a one-element array of the column's type: its element, as a literal of that type.
    const { rows: v } = await c.query<{ lit: string }>(
      `SELECT quote_literal((a.attmissingval::text::text[])[1]) AS lit FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = $2`,
      [r.rel, column],
    )
    missing = ` DEFAULT ${v[0].lit}`
  } else if (r.dflt !== null)
    return { why: `the column ${column} added to ${table} has a default whose values for existing rows are not in the change stream` }
  const alter = `ALTER TABLE ${r.rel}`
  const out = [`${alter} ADD COLUMN ${r.def}${missing}`]
  if (r.has_missing) out.push(`${alter} ALTER COLUMN ${r.col} DROP DEFAULT`)
  if (r.dflt !== null) out.push(`${alter} ALTER COLUMN ${r.col} SET DEFAULT ${r.dflt}`)
  if (r.notnull) out.push(`${alter} ALTER COLUMN ${r.col} SET NOT NULL`)
  return out
}
