import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** A fresh database on the test cluster, so each file has its own ops schema and data. */
export async function createDatabase(baseUrl: string, prefix = 't'): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: baseUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const u = new URL(baseUrl)
  u.pathname = `/${name}`
  return {
    url: u.toString(),
    /** Drop it, with the replication slots backups made in it (a slot keeps a database from being dropped). */
    async drop() {
      const c = new pg.Client({ connectionString: baseUrl })
      await c.connect()
      try {
        const { rows } = await c.query<{ slot: string }>(`SELECT slot_name AS slot FROM pg_replication_slots WHERE database = $1`, [name])
        for (const r of rows) await c.query('SELECT pg_drop_replication_slot($1)', [r.slot]).catch(() => {})
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await c.end()
      }
    },
  }
}

export async function query<T extends pg.QueryResultRow = Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return (await c.query<T>(sql, params)).rows
  } finally {
    await c.end()
  }
}
