import pg from 'pg'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { BLOCK_SIZE, BlockPool } from '../../src/core/backup/copy-out'
import { CopyIn } from '../../src/core/restore/copy-in'
import { createDatabase, query } from '../helpers/db'

/** COPY text of n rows (id, body), in pool blocks: whole 1 MB blocks, rows cut anywhere across them. */
function blocks(pool: BlockPool, n: number): { bufs: Buffer[]; text: Buffer } {
  const text = Buffer.from(Array.from({ length: n }, (_, i) => `${i}\t${'r'.repeat(i % 300)}\\t${i}\n`).join(''), 'utf8')
  const bufs: Buffer[] = []
  for (let at = 0; at < text.length; at += BLOCK_SIZE) {
    const b = pool.take()
    const len = text.copy(b, 0, at, Math.min(text.length, at + BLOCK_SIZE))
    bufs.push(len === BLOCK_SIZE ? b : b.subarray(0, len))
  }
  return { bufs, text }
}

describe('COPY FROM STDIN written straight to the socket (the restore load)', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let c: pg.Client
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'copyin')
    await query(db.url, 'CREATE TABLE t (id int PRIMARY KEY, body text)')
    c = new pg.Client({ connectionString: db.url })
    await c.connect()
  })
  afterAll(async () => {
    await c?.end()
    await db?.drop()
  })

  it('loads exactly the text it is given, and hands every pool block back once written', async () => {
    const pool = new BlockPool()
    const { bufs, text } = blocks(pool, 40_000)
    expect(bufs.length).toBeGreaterThan(3)
    const copy = c.query(new CopyIn('COPY t (id, body) FROM STDIN', pool))
    await pipeline(Readable.from(bufs), copy)
    expect(copy.rowCount).toBe(40_000)
    // What the table holds, read back as COPY text, is what was written.
    const { rows } = await c.query(`SELECT string_agg(id || E'\\t' || replace(body, E'\\t', '\\t') || E'\\n', '' ORDER BY id) AS t FROM t`)
    expect(Buffer.from(rows[0].t, 'utf8').equals(text)).toBe(true)
    // Every block went back to the pool (it keeps at most 16).
    expect(pool.spare).toBe(Math.min(16, bufs.length))
    await c.query('TRUNCATE t')
  })

  it('a failing source rolls the COPY back (CopyFail), and the connection stays usable', async () => {
    const pool = new BlockPool()
    const { bufs } = blocks(pool, 20_000)
    async function* failing() {
      yield bufs[0]
      throw new Error('the object could not be read')
    }
    await expect(pipeline(Readable.from(failing()), c.query(new CopyIn('COPY t (id, body) FROM STDIN', pool)))).rejects.toThrow(
      /could not be read/,
    )
    expect((await c.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(0)
    expect((await c.query('SELECT 5 AS n')).rows[0].n).toBe(5)
  })

  it('a row the server refuses fails the write with the server error, and the connection stays usable', async () => {
    const rows = Buffer.from('1\ta\n2\tb\nnot-a-number\tc\n3\td\n')
    await expect(pipeline(Readable.from([rows]), c.query(new CopyIn('COPY t (id, body) FROM STDIN')))).rejects.toThrow(
      /invalid input syntax for type integer/,
    )
    expect((await c.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(0)
    expect((await c.query('SELECT 6 AS n')).rows[0].n).toBe(6)
  })

  it('a COPY the server refuses at once (no such table) fails with its error, and the connection stays usable', async () => {
    await expect(pipeline(Readable.from([Buffer.from('1\ta\n')]), c.query(new CopyIn('COPY nope (id) FROM STDIN')))).rejects.toThrow(
      /relation "nope" does not exist/,
    )
    expect((await c.query('SELECT 8 AS n')).rows[0].n).toBe(8)
  })
})
