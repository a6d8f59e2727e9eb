import pg from 'pg'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { to as copyTo } from 'pg-copy-streams'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { BLOCK_SIZE, CopyOut } from '../../src/core/backup/copy-out'
import { RowDigest } from '../../src/core/backup/digest'
import { createDatabase, query } from '../helpers/db'

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of s) parts.push(c as Buffer)
  return Buffer.concat(parts)
}

describe('COPY read straight off the socket', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>
  let c: pg.Client
  beforeAll(async () => {
    db = await createDatabase(inject('pgUrl'), 'copyout')
    // Small rows, rows that span socket reads, and rows bigger than the 1 MB blocks.
    await query(
      db.url,
      `CREATE TABLE t (id int, body text);
       INSERT INTO t SELECT g, repeat(md5(g::text), (g % 7) * 50) FROM generate_series(1, 20000) g;
       INSERT INTO t SELECT 100000 + g, repeat(E'x\\ty\\\\z\\n', 200000 * g) FROM generate_series(1, 3) g;`,
    )
    c = new pg.Client({ connectionString: db.url })
    await c.connect()
  })
  afterAll(async () => {
    await c?.end()
    await db?.drop()
  })

  it('gives the same bytes, rows and digest as pg-copy-streams with a digest over its output, in few buffers', async () => {
    const sql = 'COPY (SELECT * FROM t ORDER BY id) TO STDOUT'
    const reference = await readAll(c.query(copyTo(sql)))
    const expected = new RowDigest()
    expected.update(reference)
    const d = new RowDigest()
    let counted = 0
    const sizes: number[] = []
    const out = c.query(new CopyOut(sql, d, (n) => (counted += n)))
    out.on('data', (b: Buffer) => sizes.push(b.length))
    const got = await readAll(out)
    expect(got.equals(reference)).toBe(true)
    expect(d.rows).toBe(20003)
    expect(d.value()).toBe(expected.value())
    expect(d.rawBytes).toBe(reference.length)
    expect(counted).toBe(reference.length)
    // Gathered into whole 1 MB blocks (only the last is shorter; a reader may take several at once), not one buffer per row.
    expect(sizes.slice(0, -1).every((s) => s % BLOCK_SIZE === 0)).toBe(true)
    expect(sizes.length).toBeLessThanOrEqual(Math.ceil(reference.length / BLOCK_SIZE))
    // The connection is usable afterwards.
    expect((await c.query('SELECT 42 AS n')).rows[0].n).toBe(42)
  })

  it('gives the same bytes and digest to a slow reader (the socket is read only as the reader asks)', async () => {
    const sql = 'COPY (SELECT * FROM t ORDER BY id) TO STDOUT'
    const reference = await readAll(c.query(copyTo(sql)))
    const d = new RowDigest()
    const parts: Buffer[] = []
    // A reader that takes one block per turn of the event loop, through a one-block buffer.
    await pipeline(
      c.query(new CopyOut(sql, d, () => {})),
      new Writable({
        highWaterMark: 1,
        write(b: Buffer, _e, cb) {
          parts.push(Buffer.from(b))
          setImmediate(cb)
        },
      }),
    )
    expect(Buffer.concat(parts).equals(reference)).toBe(true)
    const expected = new RowDigest()
    expected.update(reference)
    expect(d.value()).toBe(expected.value())
    expect((await c.query('SELECT 43 AS n')).rows[0].n).toBe(43)
  })

  it('fails with the server error when the query fails mid-COPY, and the connection stays usable', async () => {
    const d = new RowDigest()
    const out = c.query(new CopyOut('COPY (SELECT 1 / (g - 15000) FROM generate_series(1, 20000) g) TO STDOUT', d, () => {}))
    await expect(readAll(out)).rejects.toThrow(/division by zero/)
    expect((await c.query('SELECT 7 AS n')).rows[0].n).toBe(7)
  })
})
