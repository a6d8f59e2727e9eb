import type pg from 'pg'
import type { JobContext } from '../jobs/runner'
import { generators, perScale, sandboxSchemaSql } from './schema.sql'

export async function hasSandboxSchema(client: pg.ClientBase): Promise<boolean> {
  const { rows } = await client.query(`SELECT to_regclass('public.quiz_responses') IS NOT NULL AS present`)
  return rows[0].present as boolean
}

export interface SeedResult {
  scale: number
  rows: Record<string, number>
  bytes: number
}

/**
 * Create the ExamForge-like schema (dropping the old sandbox data) and generate rows server-side,
 * chunk by chunk, reporting rows done; cancellable between chunks.
 */
export async function seedSandbox(client: pg.ClientBase, scale: number, ctx: JobContext): Promise<SeedResult> {
  const counts = {
    users: Math.max(10, Math.round(perScale.users * scale)),
    teams: Math.max(2, Math.round(perScale.teams * scale)),
    quizzes: Math.max(2, Math.round(perScale.quizzes * scale)),
  }
  const plan = generators.map((g) => ({ g, rows: g.rows(scale) }))
  const total = plan.reduce((n, p) => n + p.rows, 0)
  let done = 0
  const rows: Record<string, number> = {}
  ctx.onProgress({ phase: 'schema', done, total, unit: 'rows' })
  // One transaction: a cancelled or failed seed leaves the previous sandbox data exactly as it was.
  await client.query('BEGIN')
  try {
    await generate()
    await client.query('COMMIT')
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {})
    throw e
  }
  await client.query('ANALYZE')
  const { rows: size } = await client.query(
    `SELECT COALESCE(sum(pg_table_size(c.oid)), 0)::bigint AS bytes FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'`,
  )
  return { scale, rows, bytes: Number(size[0].bytes) }

  async function generate() {
    // A fresh public schema, owned and granted as in a new database (so the sandbox's application role can use it).
    await client.query(`DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner;
      GRANT USAGE ON SCHEMA public TO PUBLIC; COMMENT ON SCHEMA public IS 'standard public schema'`)
    await client.query(sandboxSchemaSql)
    for (const { g, rows: n } of plan) {
      for (let lo = 1; lo <= n; lo += g.chunk) {
        ctx.signal.throwIfAborted()
        const hi = Math.min(n, lo + g.chunk - 1)
        // Every generator gets the same five typed parameters, whichever it uses.
        const typed = `WITH _params AS (SELECT $1::bigint, $2::bigint, $3::bigint, $4::bigint, $5::bigint) ${g.sql}`
        await client.query(typed, [lo, hi, counts.users, counts.teams, counts.quizzes])
        done += hi - lo + 1
        ctx.onProgress({
          phase: `generating ${g.table}`,
          done,
          total,
          unit: 'rows',
        })
      }
      rows[g.table] = n
    }
    ctx.onProgress({ phase: 'analyze', done, total, unit: 'rows' })
    // Identity sequences continue after the generated ids.
    await client.query(`
    DO $$ DECLARE r record; BEGIN
      FOR r IN SELECT c.relname AS tbl, a.attname AS col, pg_get_serial_sequence(format('%I', c.relname), a.attname) AS seq
                 FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attidentity <> ''
      LOOP
        EXECUTE format('SELECT setval(%L, COALESCE((SELECT max(%I) FROM %I), 0) + 1, false)', r.seq, r.col, r.tbl);
      END LOOP;
    END $$;`)
  }
}
