import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { BLOCK_SIZE } from '../../src/core/backup/copy-out'
import { CompressThread, compressThreadFor, gzipThreadSupported } from '../../src/core/backup/compress-thread'
import * as zstdNapi from 'zstd-napi'

/** COPY-like text: compressible, with repeats further apart than one block. */
function copyText(bytes: number): Buffer {
  const rows: string[] = []
  let n = 0
  for (let i = 0; n < bytes; i++) {
    const row = `${i}\t${i % 97}\t{"ms": ${i * 7}, "text": "answer ${(i * 2654435761) >>> 0}"}\t${i % 3 ? 'f' : 't'}\t2026-11-29 20:04:${String(i % 60).padStart(2, '0')}+00\n`
    rows.push(row)
    n += row.length
  }
  return Buffer.from(rows.join('')).subarray(0, bytes)
}

async function compressOn(thread: CompressThread, pieces: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = []
  await pipeline(
    Readable.from(pieces),
    thread.stream(),
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c)
        cb()
      },
    }),
  )
  return Buffer.concat(out)
}

/** The system's gzip (a different implementation from Node's) reads it back. */
function systemGunzip(gz: Buffer): Buffer {
  const r = spawnSync('gzip', ['-dc'], { input: gz, maxBuffer: 64 * 1024 * 1024 })
  if (r.status !== 0) throw new Error(`gzip -dc failed: ${r.stderr}`)
  return r.stdout
}

describe('gzip on a thread of its own', () => {
  it('is supported by this Node.js (otherwise backups fall back to the zlib stream, slower)', () => {
    expect(gzipThreadSupported()).toBe(true)
  })

  const thread = new CompressThread({ codec: 'gzip', level: 6, zstdBinding: null })
  afterAll(() => thread.close())

  it('makes one ordinary gzip stream from many blocks, the same as one zlib stream makes', async () => {
    const text = copyText(5 * BLOCK_SIZE + 12345)
    // Whole blocks from the thread's pool (handed over without a copy), as a backup connection sends them.
    const pieces: Buffer[] = []
    for (let i = 0; i < text.length; i += BLOCK_SIZE) {
      const b = thread.pool.take()
      const n = text.copy(b, 0, i, i + BLOCK_SIZE)
      pieces.push(n === BLOCK_SIZE ? b : b.subarray(0, n))
    }
    const gz = await compressOn(thread, pieces)
    expect(zlib.gunzipSync(gz).equals(text)).toBe(true)
    expect(systemGunzip(gz).equals(text)).toBe(true)
    // Byte for byte what one zlib stream makes of the whole.
    expect(gz.equals(zlib.gzipSync(text, { level: 6, memLevel: 9 }))).toBe(true)
    // The blocks came back to the pool, to be used again.
    expect(thread.pool.spare).toBeGreaterThanOrEqual(5)
  })

  it('takes buffers of any size and origin, binary data included, and starts afresh for each object', async () => {
    const text = Buffer.concat([copyText(300_000), randomBytes(200_000), copyText(2_500_000)])
    const cuts = [0, 1, 7, 65_536, 65_537, 1_200_000, 1_200_001, 3_000_000, text.length, text.length] // an empty piece too
    const pieces = cuts.slice(1).map((c, i) => text.subarray(cuts[i], c))
    const first = await compressOn(thread, pieces)
    const second = await compressOn(thread, [Buffer.from('second object\n')])
    expect(systemGunzip(first).equals(text)).toBe(true)
    expect(systemGunzip(second).toString()).toBe('second object\n')
    // The caller's buffers are left as they were (copied, not taken away).
    expect(Buffer.concat(pieces).equals(text)).toBe(true)
  })

  it('writes a valid gzip of nothing for an empty object', async () => {
    const gz = await compressOn(thread, [])
    expect(zlib.gunzipSync(gz).length).toBe(0)
    expect(systemGunzip(gz).length).toBe(0)
  })

  it('fails, instead of hanging, once its thread is gone', async () => {
    const t = new CompressThread({ codec: 'gzip', level: 6, zstdBinding: null })
    await t.close()
    await expect(compressOn(t, [Buffer.from('x\n')])).rejects.toThrow(/compressing thread/)
  })
})

/** The system's zstd reads it back (where installed; the binding decompresses it otherwise). */
function systemUnzstd(z: Buffer): Buffer {
  const r = spawnSync('zstd', ['-dc'], { input: z, maxBuffer: 64 * 1024 * 1024 })
  if (r.error) return zstdNapi.decompress(z)
  if (r.status !== 0) throw new Error(`zstd -dc failed: ${r.stderr}`)
  return r.stdout
}

describe('zstd on a thread of its own (the zstd-napi binding, on a Node.js whose zlib has no zstd)', () => {
  const c = { codec: 'zstd' as const, level: 3 }
  const thread = compressThreadFor(c)
  afterAll(() => thread?.close())

  it('is what a zstd backup connection compresses on here', () => {
    expect(thread).toBeInstanceOf(CompressThread)
  })

  it('makes one standard zstd frame per object from many blocks, and hands the blocks back', async () => {
    const text = Buffer.concat([copyText(3 * BLOCK_SIZE), randomBytes(300_000), copyText(2 * BLOCK_SIZE + 777)])
    const pieces: Buffer[] = []
    for (let i = 0; i < text.length; i += BLOCK_SIZE) {
      const b = thread!.pool.take()
      const n = text.copy(b, 0, i, i + BLOCK_SIZE)
      pieces.push(n === BLOCK_SIZE ? b : b.subarray(0, n))
    }
    const z = await compressOn(thread!, pieces)
    expect(z.length).toBeLessThan(text.length / 2)
    expect(systemUnzstd(z).equals(text)).toBe(true)
    // The restore's reader (the binding's stream) reads it too.
    expect(zstdNapi.decompress(z).equals(text)).toBe(true)
    expect(thread!.pool.spare).toBeGreaterThanOrEqual(5)
    // Each object is a frame of its own: the next starts afresh, an empty one is valid.
    const second = await compressOn(thread!, [Buffer.from('second object\n')])
    expect(systemUnzstd(second).toString()).toBe('second object\n')
    expect(systemUnzstd(await compressOn(thread!, [])).length).toBe(0)
  })

  it('fails, instead of hanging, once its thread is gone', async () => {
    const t = compressThreadFor(c)!
    await t.close()
    await expect(compressOn(t, [Buffer.from('x\n')])).rejects.toThrow(/compressing thread/)
  })
})
