import type pg from 'pg'

/**
 * The schema of the backed-up database as SQL, captured from the catalog with PostgreSQL's own
 * pg_get_*def functions (no pg_dump on the operator's machine). Run on the snapshot connection
 * with search_path = '' so every name comes back schema-qualified and quoted by the server.
 *
 * pre: schemas, extensions, types, functions, sequences, tables (columns, defaults, identity,
 *      generated), partitions, views, materialized views (WITH NO DATA).
 * post (after the data): constraints, foreign keys, indexes, replica identity, triggers, row-level
 *      security and policies, sequence ownership, materialized view refresh, comments.
 * Not captured: ownership and grants (a restore runs as the restoring role), aggregates, event
 * triggers, publications and subscriptions, large objects.
 */
export interface CapturedSchema {
  pre: string[]
  post: string[]
  tables: { schema: string; name: string; oid: number; partitioned: boolean }[]
}

/** The user's schemas: everything but the system's, the console's own `ops`, and extension-owned ones. */
export const USER_SCHEMAS = `
  SELECT n.oid FROM pg_namespace n
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'ops') AND n.nspname NOT LIKE 'pg\\_%'
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')`

const notExtensionMember = (catalog: string, col: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${col} AND d.deptype = 'e')`

async function col(client: pg.ClientBase, sql: string): Promise<string[]> {
  const { rows } = await client.query<{ s: string }>(sql)
  return rows.map((r) => r.s).filter(Boolean)
}

export async function captureSchema(client: pg.ClientBase): Promise<CapturedSchema> {
  await client.query(`SET search_path = ''`)
  const pre: string[] = []
  const post: string[] = []

  pre.push(
    ...(await col(
      client,
      `SELECT format('CREATE SCHEMA IF NOT EXISTS %I;', nspname) AS s FROM pg_namespace WHERE oid IN (${USER_SCHEMAS}) ORDER BY nspname`,
    )),
  )
  pre.push(
    ...(await col(
      client,
      `SELECT format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA %I;', e.extname, n.nspname) AS s
         FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY e.extname`,
    )),
  )
  // Enums, composite types and domains, in creation order (a domain may use an enum).
  pre.push(
    ...(await col(
      client,
      `SELECT CASE t.typtype
                WHEN 'e' THEN format('CREATE TYPE %s AS ENUM (%s);', t.oid::regtype,
                       (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
                WHEN 'c' THEN format('CREATE TYPE %s AS (%s);', t.oid::regtype,
                       (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
                          FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))
                WHEN 'd' THEN format('CREATE DOMAIN %s AS %s%s%s%s;', t.oid::regtype, format_type(t.typbasetype, t.typtypmod),
                       CASE WHEN t.typdefault IS NOT NULL THEN ' DEFAULT ' || t.typdefault ELSE '' END,
                       CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END,
                       COALESCE((SELECT string_agg(format(' CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid)), '' ORDER BY c.conname)
                                   FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'), ''))
              END AS s
         FROM pg_type t
        WHERE t.typnamespace IN (${USER_SCHEMAS}) AND ${notExtensionMember('pg_type', 't.oid')}
          AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
        ORDER BY t.oid`,
    )),
  )
  // Functions and procedures (bodies are not checked at restore: they may name tables created later).
  pre.push(
    ...(await col(
      client,
      `SELECT pg_get_functiondef(p.oid) || ';' AS s FROM pg_proc p
        WHERE p.pronamespace IN (${USER_SCHEMAS}) AND p.prokind IN ('f', 'p') AND ${notExtensionMember('pg_proc', 'p.oid')}
        ORDER BY p.oid`,
    )),
  )
  // Sequences that are not identity sequences (those come with their column).
  pre.push(
    ...(await col(
      client,
      `SELECT format('CREATE SEQUENCE %s AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s%s;',
                     c.oid::regclass, format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache,
                     CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END) AS s
         FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid
        WHERE c.relkind = 'S' AND c.relnamespace IN (${USER_SCHEMAS}) AND ${notExtensionMember('pg_class', 'c.oid')}
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i')
        ORDER BY c.oid`,
    )),
  )

  const { rows: tables } = await client.query<{ oid: number; schema: string; name: string; partitioned: boolean; ddl: string }>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relkind = 'p' AS partitioned,
            CASE WHEN c.relispartition THEN
                   format('CREATE %sTABLE %s PARTITION OF %s %s%s;', CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END,
                          c.oid::regclass, (SELECT i.inhparent::regclass FROM pg_inherits i WHERE i.inhrelid = c.oid),
                          pg_get_expr(c.relpartbound, c.oid),
                          CASE WHEN c.relkind = 'p' THEN ' PARTITION BY ' || pg_get_partkeydef(c.oid) ELSE '' END)
                 ELSE
                   format('CREATE %sTABLE %s (%s)%s%s%s;', CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END, c.oid::regclass,
                          COALESCE((SELECT string_agg(
                                      format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
                                      || CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
                                              THEN ' COLLATE ' || (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) ELSE '' END
                                      || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid) || ') STORED'
                                              WHEN ad.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid) ELSE '' END
                                      || CASE WHEN a.attidentity IN ('a', 'd') THEN
                                                format(' GENERATED %s AS IDENTITY (INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s%s)',
                                                       CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END,
                                                       sq.seqincrement, sq.seqmin, sq.seqmax, sq.seqstart, sq.seqcache, CASE WHEN sq.seqcycle THEN ' CYCLE' ELSE '' END)
                                              ELSE '' END
                                      || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
                                      ', ' ORDER BY a.attnum)
                                    FROM pg_attribute a
                                    JOIN pg_type t ON t.oid = a.atttypid
                                    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                                    LEFT JOIN pg_sequence sq ON a.attidentity IN ('a', 'd')
                                         AND sq.seqrelid = pg_get_serial_sequence(format('%s', c.oid::regclass), a.attname)::regclass
                                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attislocal), ''),
                          COALESCE((SELECT ' INHERITS (' || string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno) || ')' FROM pg_inherits i WHERE i.inhrelid = c.oid), ''),
                          CASE WHEN c.relkind = 'p' THEN ' PARTITION BY ' || pg_get_partkeydef(c.oid) ELSE '' END,
                          CASE WHEN c.reloptions IS NOT NULL THEN ' WITH (' || array_to_string(c.reloptions, ', ') || ')' ELSE '' END)
            END AS ddl
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND c.relnamespace IN (${USER_SCHEMAS}) AND ${notExtensionMember('pg_class', 'c.oid')}
      ORDER BY c.relispartition, c.oid`,
  )
  pre.push(...tables.map((t) => t.ddl))
  // Views and materialized views, in creation order.
  pre.push(
    ...(await col(
      client,
      `SELECT CASE c.relkind WHEN 'v' THEN format('CREATE VIEW %s AS %s', c.oid::regclass, pg_get_viewdef(c.oid))
                             ELSE format('CREATE MATERIALIZED VIEW %s AS %s', c.oid::regclass, rtrim(pg_get_viewdef(c.oid), ';')) || ' WITH NO DATA;' END AS s
         FROM pg_class c WHERE c.relkind IN ('v', 'm') AND c.relnamespace IN (${USER_SCHEMAS}) AND ${notExtensionMember('pg_class', 'c.oid')}
        ORDER BY c.oid`,
    )),
  )

  const inScope = `c.relkind IN ('r', 'p', 'm') AND c.relnamespace IN (${USER_SCHEMAS}) AND ${notExtensionMember('pg_class', 'c.oid')}`
  // Keys, unique, exclusion and check constraints first, foreign keys after them; children's copies of a parent's constraint are skipped.
  post.push(
    ...(await col(
      client,
      `SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s;', c.oid::regclass, k.conname, pg_get_constraintdef(k.oid)) AS s
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE ${inScope} AND k.contype IN ('p', 'u', 'x', 'c', 'f') AND k.conparentid = 0 AND k.conislocal
        ORDER BY k.contype = 'f', k.contype <> 'p', c.oid, k.conname`,
    )),
  )
  post.push(
    ...(await col(
      client,
      `SELECT pg_get_indexdef(i.indexrelid) || ';' AS s FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        WHERE ${inScope}
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
          AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
        ORDER BY c.oid, i.indexrelid`,
    )),
  )
  post.push(
    ...(await col(
      client,
      `SELECT format('ALTER TABLE %s REPLICA IDENTITY %s;', c.oid::regclass,
                     CASE c.relreplident WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'
                          ELSE 'USING INDEX ' || quote_ident((SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid AND i.indisreplident)) END) AS s
         FROM pg_class c WHERE ${inScope} AND c.relreplident IN ('f', 'n', 'i') ORDER BY c.oid`,
    )),
  )
  post.push(
    ...(await col(
      client,
      `SELECT pg_get_triggerdef(t.oid) || ';' AS s FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE ${inScope} AND NOT t.tgisinternal AND t.tgparentid = 0 ORDER BY c.oid, t.tgname`,
    )),
  )
  post.push(
    ...(await col(
      client,
      `SELECT format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY;', c.oid::regclass)
              || CASE WHEN c.relforcerowsecurity THEN format(' ALTER TABLE %s FORCE ROW LEVEL SECURITY;', c.oid::regclass) ELSE '' END AS s
         FROM pg_class c WHERE ${inScope} AND c.relrowsecurity ORDER BY c.oid`,
    )),
  )
  post.push(
    ...(await col(
      client,
      `SELECT format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s;', p.polname, c.oid::regclass,
                     CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                     CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                     (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ') FROM unnest(p.polroles) r),
                     CASE WHEN p.polqual IS NOT NULL THEN ' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')' ELSE '' END,
                     CASE WHEN p.polwithcheck IS NOT NULL THEN ' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')' ELSE '' END) AS s
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE ${inScope} ORDER BY c.oid, p.polname`,
    )),
  )
  post.push(
    ...(await col(
      client,
      `SELECT format('ALTER SEQUENCE %s OWNED BY %s.%I;', s.oid::regclass, c.oid::regclass, a.attname) AS s
         FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
         JOIN pg_class c ON c.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a' AND ${inScope}
        ORDER BY s.oid`,
    )),
  )
  post.push(
    ...(await col(
      client,
      `SELECT format('REFRESH MATERIALIZED VIEW %s;', c.oid::regclass) AS s FROM pg_class c
        WHERE c.relkind = 'm' AND c.relnamespace IN (${USER_SCHEMAS}) AND c.relispopulated ORDER BY c.oid`,
    )),
  )
  // Comments on schemas, types, tables, views, columns and functions.
  post.push(
    ...(await col(
      client,
      `SELECT format('COMMENT ON %s %s IS %L;',
                     CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                     c.oid::regclass, d.description) AS s
         FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
        WHERE c.relnamespace IN (${USER_SCHEMAS})
       UNION ALL
       SELECT format('COMMENT ON COLUMN %s.%I IS %L;', c.oid::regclass, a.attname, d.description)
         FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid WHERE d.objsubid > 0 AND c.relnamespace IN (${USER_SCHEMAS})
       UNION ALL
       SELECT format('COMMENT ON TYPE %s IS %L;', t.oid::regtype, d.description)
         FROM pg_description d JOIN pg_type t ON t.oid = d.objoid AND d.classoid = 'pg_type'::regclass WHERE t.typnamespace IN (${USER_SCHEMAS})
       UNION ALL
       SELECT format('COMMENT ON %s %s IS %L;', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, p.oid::regprocedure, d.description)
         FROM pg_description d JOIN pg_proc p ON p.oid = d.objoid AND d.classoid = 'pg_proc'::regclass WHERE p.pronamespace IN (${USER_SCHEMAS})
       UNION ALL
       SELECT format('COMMENT ON SCHEMA %I IS %L;', n.nspname, d.description)
         FROM pg_description d JOIN pg_namespace n ON n.oid = d.objoid AND d.classoid = 'pg_namespace'::regclass WHERE n.oid IN (${USER_SCHEMAS})`,
    )),
  )
  await client.query(`SET search_path = "$user", public`)
  return { pre, post, tables: tables.map(({ oid, schema, name, partitioned }) => ({ oid, schema, name, partitioned })) }
}
