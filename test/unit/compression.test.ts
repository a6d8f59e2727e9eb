import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { Readable, Writable, type Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import { describe, expect, it } from 'vitest'
import {
  compressor,
  decompressor,
  DEFAULT_COMPRESSION,
  isCodecError,
  parseCompression,
  zlibHasZstd,
  zstdEngine,
  type CompressionParams,
} from '../../src/core/backup/compression'
import { BLOCK_SIZE, BlockPool } from '../../src/core/backup/copy-out'
import { parsers } from '../../src/core/config/parse'
import { settingKeys } from '../../src/core/config/keys'

/** COPY-like text: compressible, with repeats further apart than one block. */
function copyText(bytes: number): Buffer {
  const rows: string[] = []
  let n = 0
  for (let i = 0; n < bytes; i++) {
    const row = `${i}\t${i % 97}\t{"ms": ${i * 7}, "text": "answer ${(i * 2654435761) >>> 0}"}\t${i % 3 ? 'f' : 't'}\t2026-11-30 20:04:${String(i % 60).padStart(2, '0')}+00\n`
    rows.push(row)
    n += row.length
  }
  return Buffer.from(rows.join('')).subarray(0, bytes)
}

async function through(t: Transform | null, pieces: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = []
  await pipeline([
    Readable.from(pieces),
    ...(t ? [t] : []),
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c)
        cb()
      },
    }),
  ])
  return Buffer.concat(out)
}

const cut = (b: Buffer, at: number[]) => [0, ...at, b.length].slice(1).map((c, i, a) => b.subarray(i ? a[i - 1] : 0, c))
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** The system's own zstd/gzip (other implementations than the one that wrote it) read it back, where installed. */
function system(tool: 'zstd' | 'gzip', data: Buffer): Buffer | null {
  const r = spawnSync(tool, ['-dc'], { input: data, maxBuffer: 64 * 1024 * 1024 })
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return null
  if (r.status !== 0) throw new Error(`${tool} -dc failed: ${r.stderr}`)
  return r.stdout
}

describe('BACKUP_COMPRESSION', () => {
  it('is zstd level 3 unless set; zstd 1-19, gzip 1-9 and none are accepted, on every Node.js', () => {
    expect(DEFAULT_COMPRESSION).toBe('zstd:3')
    expect(parseCompression(undefined)).toEqual({ codec: 'zstd', level: 3 })
    expect(parseCompression('')).toEqual({ codec: 'zstd', level: 3 })
    expect(parseCompression('zstd')).toEqual({ codec: 'zstd', level: 3 })
    expect(parseCompression('ZSTD:19')).toEqual({ codec: 'zstd', level: 19 })
    expect(parseCompression('zstd:1')).toEqual({ codec: 'zstd', level: 1 })
    expect(parseCompression('gzip')).toEqual({ codec: 'gzip', level: 6 })
    expect(parseCompression('gzip:9')).toEqual({ codec: 'gzip', level: 9 })
    expect(parseCompression('none')).toEqual({ codec: 'none', level: 0 })
    expect(() => parseCompression('zstd:20')).toThrow(/zstd level must be 1 to 19, e.g. "zstd:3"/)
    expect(() => parseCompression('zstd:0')).toThrow(/zstd level must be 1 to 19/)
    expect(() => parseCompression('gzip:10')).toThrow(/gzip level must be 1 to 9/)
    expect(() => parseCompression('brotli')).toThrow(/"brotli" is not known: use zstd\[:level\], gzip\[:level\] or none/)
  })

  it('the setting defaults to zstd:3 in the settings list and in its parser', () => {
    expect(settingKeys.find((k) => k.key === 'BACKUP_COMPRESSION')?.default).toBe('zstd:3')
    expect(settingKeys.find((k) => k.key === 'BACKUP_COMPRESSION')?.label).toMatch(/zstd\[:1-19\], gzip\[:1-9\] or none/)
    expect(parsers.BACKUP_COMPRESSION(undefined)).toBe('zstd:3')
    expect(parsers.BACKUP_COMPRESSION('gzip:6')).toBe('gzip:6')
  })
})

describe('the zstd engine', () => {
  it("is Node's zlib where the runtime has zstd, the zstd-napi binding otherwise (one choice, in zstdEngine)", () => {
    expect(zstdEngine(true)).toBe('zlib')
    expect(zstdEngine(false)).toBe('zstd-napi')
    expect(zstdEngine()).toBe(zlibHasZstd() ? 'zlib' : 'zstd-napi')
  })
})

// Every codec and, for zstd, every engine this runtime can run (the zlib engine needs Node 22.15+; Node 20 runs the binding).
const engines = zlibHasZstd() ? (['zlib', 'zstd-napi'] as const) : (['zstd-napi'] as const)
const cases: { name: string; c: CompressionParams; engine?: (typeof engines)[number] }[] = [
  ...engines.flatMap((engine) =>
    [1, 3, 19].map((level) => ({ name: `zstd:${level} (${engine})`, c: { codec: 'zstd' as const, level }, engine })),
  ),
  { name: 'gzip:6', c: { codec: 'gzip', level: 6 } },
  { name: 'gzip:1', c: { codec: 'gzip', level: 1 } },
  { name: 'none', c: { codec: 'none', level: 0 } },
]

describe.each(cases)('$name', ({ c, engine }) => {
  // Level 19 is slow (about 2 MB/s on a loaded machine): a smaller object for it, still several blocks and pieces.
  const k = c.level === 19 ? 5 : 1
  const text = Buffer.concat([copyText(3_000_000 / k), randomBytes(300_000 / k), copyText(700_000 / k)])
  const pieces = cut(text, [1, 7, 65_536, 1_048_576 / k, 1_048_576 / k + 1, 3_300_000 / k])

  it('round-trips byte-exact, whatever the pieces, and compresses COPY text', async () => {
    const packed = await through(compressor(c, engine), pieces)
    if (c.codec !== 'none') expect(packed.length).toBeLessThan(text.length / 2)
    else expect(packed.equals(text)).toBe(true)
    const back = await through(decompressor(c, 'object x of set y', engine), cut(packed, [3, Math.floor(packed.length / 2)]))
    expect(back.length).toBe(text.length)
    expect(sha(back)).toBe(sha(text))
    // Another implementation reads it (the format is the standard one, not the library's own).
    const other =
      c.codec === 'zstd' ? system('zstd', packed) : c.codec === 'gzip' ? (system('gzip', packed) ?? zlib.gunzipSync(packed)) : packed
    if (other) expect(sha(other)).toBe(sha(text))
  })

  it('writes a valid empty object', async () => {
    const packed = await through(compressor(c, engine), [])
    expect((await through(decompressor(c, 'object x of set y', engine), [packed])).length).toBe(0)
  })

  // An uncompressed object has no format to damage: only the codecs have this test.
  if (c.codec !== 'none')
    it('names the object when its compressed data is damaged or cut short', async () => {
      const packed = await through(compressor(c, engine), pieces)
      const name = 'object sets/s1/data/t0001/c0000.copy.x of set s1'
      const damaged = Buffer.from(packed)
      // Garbage over the middle (past the header): the data no longer decodes.
      for (let i = Math.floor(damaged.length / 3); i < Math.floor(damaged.length / 3) + 4096; i++) damaged[i] ^= 0x5a
      const codec = c.codec
      const failure = await through(decompressor(c, name, engine), [damaged]).then(
        () => null,
        (e: Error) => e,
      )
      expect(failure).not.toBeNull()
      expect(failure!.message).toMatch(
        new RegExp(`^The ${name} cannot be decompressed as ${codec} \\(.+\\): it was altered or damaged\\.$`),
      )
      expect(isCodecError(failure)).toBe(true)
      const short = await through(decompressor(c, name, engine), [packed.subarray(0, packed.length - 100)]).then(
        () => null,
        (e: Error) => e,
      )
      expect(short?.message).toMatch(new RegExp(`^The ${name} cannot be decompressed as ${codec} .*altered or damaged`))
      const foreign = await through(decompressor(c, name, engine), [Buffer.from('plain text, never compressed\n')]).then(
        () => null,
        (e: Error) => e,
      )
      expect(foreign?.message).toMatch(new RegExp(`^The ${name} cannot be decompressed as ${codec}`))
    })
})

describe('the zstd-napi engine', () => {
  it('reads what the command-line zstd writes (standard frames)', async () => {
    const text = copyText(2_000_000)
    const cli = spawnSync('zstd', ['-3', '-c'], { input: text, maxBuffer: 64 * 1024 * 1024 })
    if (cli.error) return // no zstd command here: covered by the round trips above
    expect(sha(await through(decompressor({ codec: 'zstd', level: 3 }, 'o', 'zstd-napi'), [cli.stdout]))).toBe(sha(text))
  })
})

describe('zstd decompressed into a pool of blocks (the restore load)', () => {
  const c = { codec: 'zstd' as const, level: 3 }
  const text = Buffer.concat([copyText(2_500_000), randomBytes(200_000), copyText(900_000)])

  it('round-trips byte-exact in whole pool blocks, across pieces and across concatenated frames', async () => {
    const packed = await through(compressor(c, 'zstd-napi'), cut(text, [5, 70_000, 1_048_576]))
    const tail = await through(compressor(c, 'zstd-napi'), [copyText(50_000)])
    const pool = new BlockPool()
    const sizes: number[] = []
    const owned: boolean[] = []
    const out: Buffer[] = []
    await pipeline([
      Readable.from(cut(Buffer.concat([packed, tail]), [1, 4, 9_000, Math.floor(packed.length / 2), packed.length + 3])),
      decompressor(c, 'o', 'zstd-napi', pool)!,
      new Writable({
        write(b: Buffer, _e, cb) {
          sizes.push(b.length)
          owned.push(pool.owns(b))
          out.push(Buffer.from(b))
          pool.give(b.buffer as ArrayBuffer) // as the COPY does once the socket has written it
          cb()
        },
      }),
    ])
    expect(sha(Buffer.concat(out))).toBe(sha(Buffer.concat([text, copyText(50_000)])))
    expect(sizes.slice(0, -1).every((s) => s === BLOCK_SIZE)).toBe(true)
    expect(owned.every(Boolean)).toBe(true)
    // Blocks were reused, not one allocated per output.
    expect(pool.spare).toBeLessThanOrEqual(2)
  })

  it('names the object when its data is damaged, cut short or not zstd', async () => {
    const packed = await through(compressor(c, 'zstd-napi'), [text])
    const name = 'object sets/s1/data/t0001/c0000.copy.zst of set s1'
    const damaged = Buffer.from(packed)
    for (let i = Math.floor(damaged.length / 3); i < Math.floor(damaged.length / 3) + 4096; i++) damaged[i] ^= 0x5a
    for (const bad of [damaged, packed.subarray(0, packed.length - 100), Buffer.from('plain text, never compressed\n')]) {
      const failure = await through(decompressor(c, name, 'zstd-napi', new BlockPool()), [bad]).then(
        () => null,
        (e: Error) => e,
      )
      expect(failure?.message).toMatch(new RegExp(`^The ${name} cannot be decompressed as zstd .*altered or damaged`))
    }
  })
})
