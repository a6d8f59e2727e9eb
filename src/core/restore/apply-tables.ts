import type pg from 'pg'

/** What replay must know about a target table's columns. */
export interface Columns {
  /** GENERATED ALWAYS AS IDENTITY: written only with OVERRIDING SYSTEM VALUE, which UPDATE does not have. */
  always: Set<string>
  /** Stored generated columns: never written, PostgreSQL computes them again. */
  generated: Set<string>
  /** Each column's type as SQL, in column order (casts of the text values replay carries). */
  types: Map<string, string>
}

export interface TargetTable {
  schema: string
  name: string
  columns: Columns
  /** REPLICA IDENTITY FULL: rows are found by all their old values, one at a time. */
  full: boolean
  /**
   * The columns that identify a row, as the change stream's key carries them: the primary key (replica
   * identity DEFAULT) or the index of REPLICA IDENTITY USING INDEX (unique, its columns NOT NULL). Null when
   * the table has none (FULL, NOTHING, or DEFAULT without a primary key).
   */
  key: string[] | null
}

/** "schema.name" → what replay must know about it, for every table of the target database. */
export type TargetTables = Map<string, TargetTable>

export async function loadTargetTables(client: pg.ClientBase): Promise<TargetTables> {
  const { rows } = await client.query<{
    schema: string
    name: string
    ident: string
    key: string[] | null
    cols: { col: string; identity: string; generated: string; type: string }[]
  }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relreplident::text AS ident,
            (SELECT array_agg(a.attname::text ORDER BY k.ord)
               FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND CASE c.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident ELSE false END) AS key,
            (SELECT json_agg(json_build_object('col', a.attname, 'identity', a.attidentity::text, 'generated', a.attgenerated::text,
                                               'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
               FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS cols
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_temp%'`,
  )
  const out: TargetTables = new Map()
  for (const r of rows) {
    const columns: Columns = { always: new Set(), generated: new Set(), types: new Map() }
    for (const c of r.cols ?? []) {
      if (c.identity === 'a') columns.always.add(c.col)
      if (c.generated) columns.generated.add(c.col)
      columns.types.set(c.col, c.type)
    }
    out.set(`${r.schema}.${r.name}`, {
      schema: r.schema,
      name: r.name,
      columns,
      full: r.ident === 'f',
      key: r.ident === 'f' || !r.key?.length ? null : r.key,
    })
  }
  return out
}
