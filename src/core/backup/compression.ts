import zlib from 'node:zlib'
import type { Transform, TransformCallback } from 'node:stream'
import { OpsError } from '../../shared/contract'
import { zstdBinding, zstdNapi } from '../deps/lazy'
import { Transform as TransformStream } from 'node:stream'
import type { BlockPool } from './copy-out'

export type Codec = 'gzip' | 'zstd' | 'none'
export interface CompressionParams {
  codec: Codec
  level: number
}

/** The codec a backup is written with when BACKUP_COMPRESSION is not set. */
export const DEFAULT_COMPRESSION = 'zstd:3'

/** zstd is in Node's zlib from 22.15/23.8 (Electron's Node has it); Node 20 has none. Detected, never assumed. */
export const zlibHasZstd = (): boolean => typeof (zlib as unknown as { createZstdCompress?: unknown }).createZstdCompress === 'function'

/** Where zstd comes from: Node's own zlib, or the zstd-napi binding (a native addon, built on install). */
export type ZstdEngine = 'zlib' | 'zstd-napi'

/**
 * The one choice of zstd engine: Node's zlib where this runtime has zstd, otherwise the zstd-napi binding,
 * which is then loaded (on first use, never before: the desktop app, whose Node has zstd, never loads it).
 */
export const zstdEngine = (hasZlibZstd = zlibHasZstd()): ZstdEngine => (hasZlibZstd ? 'zlib' : 'zstd-napi')

/** BACKUP_COMPRESSION: "zstd" | "zstd:1..19" | "gzip" | "gzip:1..9" | "none"; zstd:3 when unset. */
export function parseCompression(spec: string | null | undefined): CompressionParams {
  const [codec, lvl] = (spec || DEFAULT_COMPRESSION).trim().toLowerCase().split(':')
  if (codec === 'none') return { codec: 'none', level: 0 }
  if (codec === 'gzip') {
    const level = lvl === undefined ? 6 : Number(lvl)
    if (!Number.isInteger(level) || level < 1 || level > 9)
      throw new OpsError('bad_setting', 'BACKUP_COMPRESSION gzip level must be 1 to 9, e.g. "gzip:6".')
    return { codec, level }
  }
  if (codec === 'zstd') {
    const level = lvl === undefined ? 3 : Number(lvl)
    if (!Number.isInteger(level) || level < 1 || level > 19)
      throw new OpsError('bad_setting', 'BACKUP_COMPRESSION zstd level must be 1 to 19, e.g. "zstd:3".')
    return { codec, level }
  }
  throw new OpsError('bad_setting', `BACKUP_COMPRESSION "${spec}" is not known: use zstd[:level], gzip[:level] or none.`)
}

export const extensionFor = (c: CompressionParams) => (c.codec === 'gzip' ? '.gz' : c.codec === 'zstd' ? '.zst' : '')

type ZstdNapi = typeof import('zstd-napi')

/** The binding, loaded on first use; a missing or unbuilt one says what to do. */
function binding(): ZstdNapi {
  try {
    return zstdNapi()
  } catch (e) {
    throw new OpsError(
      'zstd_unavailable',
      `zstd needs the zstd-napi module on this Node.js (${process.version}, whose zlib has no zstd), and it cannot be loaded (${(e as Error).message.split('\n')[0]}). Reinstall with "npm ci" (it builds with node-gyp: python3, make and g++), run on Node.js 22.15 or later, or set BACKUP_COMPRESSION=gzip.`,
    )
  }
}

interface ZlibZstd {
  createZstdCompress(o: unknown): Transform
  createZstdDecompress(): Transform
  constants: Record<string, number>
}

/**
 * A compressing Transform (null for none), for small objects (the schema) and where no compressing thread is
 * made: full and incremental backups compress gzip, and zstd through the zstd-napi binding, on a thread per
 * connection (compress-thread.ts). zstd here runs in zlib's thread pool (zlib engine) or in zstd's own
 * worker thread (zstd-napi engine, nbWorkers 1).
 */
export function compressor(c: CompressionParams, engine: ZstdEngine = zstdEngine()): Transform | null {
  // memLevel 9: a larger match table, ~5% faster deflate at the same level and the same output size.
  if (c.codec === 'gzip') return zlib.createGzip({ level: c.level, memLevel: 9, chunkSize: 128 * 1024 })
  if (c.codec === 'zstd') {
    if (engine === 'zlib') {
      const z = zlib as unknown as ZlibZstd
      return z.createZstdCompress({ params: { [z.constants.ZSTD_c_compressionLevel]: c.level } })
    }
    // One zstd worker, so the main thread only hands input over. Backup connections compress on a thread of
    // their own instead (compress-thread.ts): this stream blocks the main thread whenever that worker is busy.
    return new (binding().CompressStream)({ compressionLevel: c.level, nbWorkers: 1 })
  }
  return null
}

/**
 * A decompressing Transform for a set's codec (null for none). `name` says which object it reads
 * ("object sets/…/c0000.copy.zst of set …"): damaged compressed data fails with an error naming it.
 * With a pool (and the zstd-napi engine), zstd decompresses into the pool's blocks, which whoever consumes
 * them hands back (a restore's COPY, once the socket has written them): no new buffer per 128 kB of output.
 */
export function decompressor(c: CompressionParams, name?: string, engine: ZstdEngine = zstdEngine(), pool?: BlockPool): Transform | null {
  if (c.codec === 'gzip') return named(zlib.createGunzip({ chunkSize: 128 * 1024 }), 'gzip', name)
  if (c.codec === 'zstd') {
    if (engine === 'zlib') return named((zlib as unknown as ZlibZstd).createZstdDecompress(), 'zstd', name)
    binding() // a missing addon says what to do
    return named(pool ? new PooledZstdDecompress(pool) : new (binding().DecompressStream)(), 'zstd', name)
  }
  return null
}

/**
 * zstd decompression into whole blocks of a BlockPool (the binding's decompression context driven directly):
 * each block is pushed when full (the last one when the input ends), so every buffer downstream is one
 * block the pool owns and can take back. Measured on a 64 MB chunk: about a third less CPU than the
 * binding's DecompressStream (a new 128 kB buffer per call, each left to the garbage collector).
 */
class PooledZstdDecompress extends TransformStream {
  private dctx = new (zstdBinding().DCtx)()
  private block: Buffer | null = null
  private filled = 0
  /** Inside a frame: the input must not end here. */
  private inFrame = false

  constructor(private pool: BlockPool) {
    super()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      let src = chunk
      for (;;) {
        this.block ??= this.pool.take()
        const [ret, produced, consumed] = this.dctx.decompressStream(this.block.subarray(this.filled), src)
        this.filled += produced
        src = src.subarray(consumed)
        this.inFrame = ret !== 0
        if (this.filled === this.block.length) this.pushBlock()
        else if (!src.length) break
      }
    } catch (e) {
      return done(e as Error)
    }
    done()
  }

  override _flush(done: TransformCallback): void {
    if (this.inFrame) return done(new Error('Stream ended in middle of compressed data frame'))
    if (this.filled) this.pushBlock()
    done()
  }

  private pushBlock(): void {
    const b = this.filled === this.block!.length ? this.block! : this.block!.subarray(0, this.filled)
    this.block = null
    this.filled = 0
    this.push(b)
  }
}

/** Whether an error is the codec's own (damaged or cut-short compressed data), not one passed on from upstream. */
export const isCodecError = (e: unknown): boolean =>
  e instanceof OpsError
    ? e.code === 'object_undecompressable'
    : /^(Z_|ZSTD_|ERR_ZSTD)/.test(String((e as NodeJS.ErrnoException)?.code ?? '')) ||
      /unexpected end of file/.test(String((e as Error)?.message))

function undecompressable(e: Error, codec: string, name: string | undefined): OpsError {
  return new OpsError(
    'object_undecompressable',
    `The ${name ?? 'backup object'} cannot be decompressed as ${codec} (${e.message}): it was altered or damaged.`,
  )
}

/**
 * Errors of the codec itself are reworded to name the object: zlib streams destroy themselves with a
 * coded error, the binding's streams hand theirs to the transform callback.
 */
function named(t: Transform, codec: string, name: string | undefined): Transform {
  const wrap =
    (cb: TransformCallback): TransformCallback =>
    (e, d) =>
      cb(e ? undecompressable(e, codec, name) : null, d)
  const transform = t._transform.bind(t)
  t._transform = (chunk, enc, cb) => transform(chunk, enc, wrap(cb))
  const flush = t._flush?.bind(t)
  if (flush) t._flush = (cb) => flush(wrap(cb))
  const destroy = t.destroy.bind(t)
  t.destroy = (e?: Error) => destroy(e && !(e instanceof OpsError) && isCodecError(e) ? undecompressable(e, codec, name) : e)
  return t
}
