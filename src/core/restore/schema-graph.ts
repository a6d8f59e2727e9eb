/**
 * What a restore needs to know of the captured schema without a database: which tables foreign keys
 * tie together, which partitions belong to which parent, and which statements run when.
 */

/** Read one identifier (quoted or plain) at pos; returns [name, next]. */
function ident(s: string, pos: number): [string, number] {
  if (s[pos] === '"') {
    let out = ''
    let i = pos + 1
    for (;;) {
      if (i >= s.length) throw new Error('unterminated identifier')
      if (s[i] === '"') {
        if (s[i + 1] === '"') {
          out += '"'
          i += 2
          continue
        }
        return [out, i + 1]
      }
      out += s[i++]
    }
  }
  const m = /^[\p{L}_][\p{L}\p{N}_$]*/u.exec(s.slice(pos))
  if (!m) throw new Error(`no identifier at ${pos}`)
  return [m[0], pos + m[0].length]
}

/** "schema"."name" at pos (the captured schema always qualifies names). */
export function qualified(s: string, pos: number): [string, number] {
  const [a, i] = ident(s, pos)
  if (s[i] !== '.') return [`public.${a}`, i]
  const [b, j] = ident(s, i + 1)
  return [`${a}.${b}`, j]
}

export interface ForeignKey {
  table: string
  references: string
  statement: string
}

export function foreignKeys(post: string[]): ForeignKey[] {
  const out: ForeignKey[] = []
  for (const st of post) {
    if (!st.startsWith('ALTER TABLE ') || !st.includes(' FOREIGN KEY (')) continue
    const [table] = qualified(st, 'ALTER TABLE '.length)
    const at = st.indexOf(' REFERENCES ')
    if (at < 0) continue
    const [references] = qualified(st, at + ' REFERENCES '.length)
    out.push({ table, references, statement: st })
  }
  return out
}

/** Partition → its parent (from CREATE TABLE ... PARTITION OF ...). */
export function partitionParents(pre: string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const st of pre) {
    const m = /^CREATE (?:UNLOGGED )?TABLE /.exec(st)
    if (!m) continue
    const [child, i] = qualified(st, m[0].length)
    if (!st.startsWith(' PARTITION OF ', i)) continue
    const [parent] = qualified(st, i + ' PARTITION OF '.length)
    out.set(child, parent)
  }
  return out
}

/** The partitioned root of a table (itself when it is no partition). */
export function rootOf(table: string, parents: Map<string, string>): string {
  let t = table
  for (let n = 0; parents.has(t) && n < 100; n++) t = parents.get(t)!
  return t
}

/** The table a key, constraint or index statement builds on (null when it is not one). */
export function statementTable(st: string): string | null {
  try {
    if (st.startsWith('ALTER TABLE ')) {
      const at = st.startsWith('ALTER TABLE ONLY ') ? 'ALTER TABLE ONLY '.length : 'ALTER TABLE '.length
      return qualified(st, at)[0]
    }
    const m = /^CREATE (UNIQUE )?INDEX /.exec(st)
    if (!m) return null
    const [, i] = ident(st, m[0].length)
    if (!st.startsWith(' ON ', i)) return null
    const j = st.startsWith(' ON ONLY ', i) ? i + ' ON ONLY '.length : i + ' ON '.length
    return qualified(st, j)[0]
  } catch {
    return null
  }
}

/**
 * The post-data statements in two phases. Early (before the change stream is replayed, so replay finds
 * rows by key fast): keys, checks, indexes. Late (after replay, so nothing fires or refuses mid-restore):
 * foreign keys, triggers, row-level security, materialized view refreshes, comments.
 */
export function splitPost(post: string[]): { early: string[]; indexes: string[]; late: string[] } {
  const early: string[] = []
  const indexes: string[] = []
  const late: string[] = []
  for (const st of post) {
    if (
      (st.startsWith('ALTER TABLE ') && st.includes(' FOREIGN KEY (')) ||
      /^CREATE (CONSTRAINT )?TRIGGER /.test(st) ||
      st.includes(' ROW LEVEL SECURITY;') ||
      st.startsWith('CREATE POLICY ') ||
      st.startsWith('REFRESH MATERIALIZED VIEW ') ||
      st.startsWith('COMMENT ON ')
    )
      late.push(st)
    else if (/^CREATE (UNIQUE )?INDEX /.test(st))
      // pg_get_indexdef says "ON ONLY" for a partitioned table's index (pg_dump then attaches each partition's);
      // created without ONLY, it cascades to every partition and is valid.
      indexes.push(st.replace(/^(CREATE (?:UNIQUE )?INDEX (?:"(?:[^"]|"")*"|\S+)) ON ONLY /, '$1 ON '))
    else if (st.startsWith('ALTER TABLE ') && / ADD CONSTRAINT .* (PRIMARY KEY|UNIQUE|EXCLUDE|CHECK)/.test(st)) indexes.push(st)
    else early.push(st)
  }
  return { early, indexes, late }
}

/**
 * A primary key or unique constraint of the plain form the schema capture writes
 * (`ALTER TABLE [ONLY] t ADD CONSTRAINT c PRIMARY KEY|UNIQUE (cols);`), split in two: the unique index built
 * with CREATE UNIQUE INDEX (a SHARE lock: the table's other indexes build beside it and its rows can be read
 * back meanwhile), then the constraint made from that index (`ADD CONSTRAINT … USING INDEX`: a catalog change,
 * no scan: the key columns are already NOT NULL in the captured table). The result is the same key with the same
 * index as the single statement makes. Anything else (options, NULLS NOT DISTINCT, DEFERRABLE, EXCLUDE, a
 * partitioned table or a partition: USING INDEX is not allowed there) is left whole: null.
 */
export function keyAsIndex(st: string, partitioned: Set<string>): { table: string; index: string; attach: string } | null {
  const head = st.startsWith('ALTER TABLE ONLY ') ? 'ALTER TABLE ONLY ' : 'ALTER TABLE '
  if (!st.startsWith('ALTER TABLE ')) return null
  try {
    const [table, i] = qualified(st, head.length)
    if (partitioned.has(table)) return null
    const tableText = st.slice(head.length, i)
    if (!st.startsWith(' ADD CONSTRAINT ', i)) return null
    const [, j] = ident(st, i + ' ADD CONSTRAINT '.length)
    const name = st.slice(i + ' ADD CONSTRAINT '.length, j)
    const m = /^ (PRIMARY KEY|UNIQUE) \(([^()]*)\);$/.exec(st.slice(j))
    if (!m) return null
    return {
      table,
      index: `CREATE UNIQUE INDEX ${name} ON ${tableText} USING btree (${m[2]});`,
      attach: `ALTER TABLE ${tableText} ADD CONSTRAINT ${name} ${m[1]} USING INDEX ${name};`,
    }
  } catch {
    return null
  }
}

/**
 * A foreign key of the form the schema capture writes, added in two steps: `… NOT VALID` (a catalog change that
 * takes both tables for an instant), then `VALIDATE CONSTRAINT` (every row checked, as adding it at once
 * would; but the referenced table is only share-locked meanwhile, so keys of other tables that point at the same
 * table validate at the same time instead of one after the other). The constraint ends the same, validated.
 * Null for anything it cannot say that way (already NOT VALID, or not a foreign key).
 */
export function foreignKeyInTwo(st: string): { add: string; validate: string } | null {
  if (!st.startsWith('ALTER TABLE ') || / NOT VALID;\s*$/.test(st) || !/;\s*$/.test(st)) return null
  const head = st.startsWith('ALTER TABLE ONLY ') ? 'ALTER TABLE ONLY ' : 'ALTER TABLE '
  try {
    const [, i] = qualified(st, head.length)
    const tableText = st.slice(head.length, i)
    if (!st.startsWith(' ADD CONSTRAINT ', i)) return null
    const [, j] = ident(st, i + ' ADD CONSTRAINT '.length)
    if (!st.startsWith(' FOREIGN KEY (', j)) return null
    const name = st.slice(i + ' ADD CONSTRAINT '.length, j)
    return { add: st.replace(/;\s*$/, ' NOT VALID;'), validate: `ALTER TABLE ${tableText} VALIDATE CONSTRAINT ${name};` }
  } catch {
    return null
  }
}
