import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { captureSchema } from '../../src/core/backup/schema-capture'
import { createDatabase, query } from '../helpers/db'
import { HARD_SCHEMA } from '../helpers/hard-schema'

async function capture(url: string) {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
    return await captureSchema(c)
  } finally {
    await c.end()
  }
}

const servers = [
  { name: 'embedded PostgreSQL', url: inject('pgUrl') },
  { name: "the machine's PostgreSQL", url: inject('systemPgUrl') },
]

describe.each(servers)('schema capture without pg_dump, on $name', ({ url }) => {
  let source: Awaited<ReturnType<typeof createDatabase>>
  let target: Awaited<ReturnType<typeof createDatabase>>
  beforeAll(async () => {
    if (!url) return
    source = await createDatabase(url, 'schsrc')
    target = await createDatabase(url, 'schdst')
    await query(source.url, HARD_SCHEMA)
  })
  afterAll(async () => {
    await source?.drop()
    await target?.drop()
  })

  it.skipIf(!url)('captures every kind of object the issue lists', async () => {
    const s = await capture(source.url)
    const all = [...s.pre, ...s.post].join('\n')
    for (const needle of [
      'CREATE SCHEMA IF NOT EXISTS "Billing Ünïcode"',
      "CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy')",
      'CREATE DOMAIN app.positive_int AS integer DEFAULT 1 NOT NULL CONSTRAINT positive CHECK',
      'CREATE TYPE app.pair AS (a integer, b text)',
      'CREATE OR REPLACE FUNCTION app.touch()',
      'GENERATED ALWAYS AS IDENTITY (INCREMENT BY 10',
      'GENERATED ALWAYS AS (app.double((score)::integer)) STORED',
      'COLLATE pg_catalog."C"',
      'PARTITION BY RANGE (taken)',
      "PARTITION OF app.measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
      'CREATE VIEW app.happy_count',
      'WITH NO DATA',
      'FOREIGN KEY (b_id) REFERENCES app.b(id) DEFERRABLE INITIALLY DEFERRED',
      'CREATE UNIQUE INDEX accounts_lower_name',
      'ALTER TABLE app.events REPLICA IDENTITY FULL',
      'CREATE TRIGGER accounts_touch',
      'FORCE ROW LEVEL SECURITY',
      'CREATE POLICY no_negative ON app.accounts AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK',
      'ALTER SEQUENCE app.invoice_no OWNED BY app.accounts.invoice',
      'REFRESH MATERIALIZED VIEW app.totals',
      "COMMENT ON TABLE app.accounts IS 'Customer accounts, with ''quotes'''",
      'COMMENT ON FUNCTION app.double(integer)',
    ])
      expect(all, needle).toContain(needle)
  })

  it.skipIf(!url)('applied to an empty database, it comes back identical (capture of the copy equals capture of the source)', async () => {
    const s = await capture(source.url)
    const c = new pg.Client({ connectionString: target.url })
    await c.connect()
    try {
      await c.query('BEGIN')
      await c.query('SET check_function_bodies = off')
      for (const stmt of s.pre) await c.query(stmt)
      for (const stmt of s.post) await c.query(stmt)
      await c.query('COMMIT')
    } finally {
      await c.end()
    }
    const again = await capture(target.url)
    expect(again.pre).toEqual(s.pre)
    expect(again.post).toEqual(s.post)
    // And the objects behave: identity starts where it should, the domain and generated column work, the trigger fires.
    await query(target.url, `ALTER TABLE app.accounts NO FORCE ROW LEVEL SECURITY`)
    const [row] = await query<{ id: string; doubled: number; invoice: string }>(
      target.url,
      `INSERT INTO app.accounts ("Display Name", score, balance) VALUES ('x', 21, 5) RETURNING id, doubled, invoice`,
    )
    expect(row).toMatchObject({ id: '100', doubled: 42, invoice: '1000' })
    await expect(query(target.url, `INSERT INTO app.accounts ("Display Name", score) VALUES ('y', -1)`)).rejects.toThrow(/positive/)
  })
})
