import { createRequire } from 'node:module'
import { Transform, type TransformCallback } from 'node:stream'
import { Worker } from 'node:worker_threads'
import zlib from 'node:zlib'
import { BlockPool } from './copy-out'
import { zstdEngine, type CompressionParams } from './compression'

/**
 * Compression on a thread of its own, one per backup connection: the main thread hands over 1 MB blocks of
 * COPY text and takes back compressed bytes, and the thread works through its queue without waiting
 * on the main thread between blocks. gzip: Node's zlib stream goes back to the main thread after every
 * chunk (on a busy machine those round trips left a fifth of the CPU idle); the thread drives one
 * zlib gzip stream per object, writing into a buffer it keeps, so each object is exactly the gzip a
 * single zlib stream makes, and the thread makes no garbage per block (with a 64 MB allowance before
 * V8 collects, per-block buffers cost ~50 MB of memory per thread). zstd (the zstd-napi binding, on a
 * Node.js whose zlib has none): the binding's stream, even with zstd's own worker, blocks the main thread
 * whenever that worker is busy, and one blocked main thread holds up every connection; here the thread
 * drives one zstd context per object (a standard zstd frame), and the main thread never waits on it.
 */

type ToThread = { op: 'start' } | { op: 'block'; data: Uint8Array } | { op: 'end' }
export type ThreadCodec = { codec: 'gzip' | 'zstd'; level: number; zstdBinding: string | null }
type FromThread = { out: Uint8Array; back?: Uint8Array } | { error: string }

/** The handle under Node's zlib streams, which their sync path drives (long-standing, and checked before use). */
interface ZlibInternals {
  _handle: {
    writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void
  }
  _writeState: Uint32Array
}

let supported: boolean | null = null
/** Whether this runtime's zlib streams have the handle the thread drives (checked once); if not, backups compress with Node's zlib stream. */
export function gzipThreadSupported(): boolean {
  if (supported === null) {
    const g = zlib.createGzip() as unknown as Partial<ZlibInternals> & { close(): void }
    supported = typeof g._handle?.writeSync === 'function' && g._writeState instanceof Uint32Array && g._writeState.length === 2
    g.close()
  }
  return supported
}

/**
 * A compressing thread for a backup stream: gzip (where this runtime's zlib has the handle it drives) and zstd
 * through the zstd-napi binding; null otherwise (zlib's own zstd, on a runtime that has it, runs in zlib's
 * thread pool; none compresses nothing). The caller closes it.
 */
export function compressThreadFor(c: CompressionParams): CompressThread | null {
  if (c.codec === 'gzip') return gzipThreadSupported() ? new CompressThread({ codec: 'gzip', level: c.level, zstdBinding: null }) : null
  if (c.codec === 'zstd' && zstdEngine() === 'zstd-napi')
    return new CompressThread({ codec: 'zstd', level: c.level, zstdBinding: createRequire(import.meta.url).resolve('zstd-napi/binding') })
  return null
}

/** The thread's code: self-contained, run with `eval`, so there is no second file to bundle and find. */
function compressThread(): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads')
  const zlib = require('node:zlib') as typeof import('node:zlib')
  const { codec, level, zstdBinding } = workerData as ThreadCodec
  // The binding by its resolved path (an eval'd thread resolves modules from the working directory, not from here).
  const zb = zstdBinding ? (require(zstdBinding) as typeof import('zstd-napi/binding')) : null
  /* eslint-enable @typescript-eslint/no-require-imports */
  let zc: import('zstd-napi/binding').CCtx | null = null
  const { Z_NO_FLUSH, Z_FINISH } = zlib.constants
  // Room for a whole compressed block (deflate never grows 1 MB by more than a few hundred bytes).
  let scratch = new Uint8Array(1536 * 1024)
  let gz: (zlib.Gzip & ZlibInternals) | null = null

  /** Compress `input` into the scratch buffer, growing it if need be; the result is copied out to memory of its own. */
  const deflate = (input: Uint8Array, flush: number): Uint8Array => {
    let inOff = 0
    let inLen = input.length
    let used = 0
    for (;;) {
      gz!._handle.writeSync(flush, input, inOff, inLen, scratch, used, scratch.length - used)
      if (gz!.destroyed) throw new Error('zlib failed')
      const availOut = gz!._writeState[0]
      const availIn = gz!._writeState[1]
      used = scratch.length - availOut
      inOff += inLen - availIn
      inLen = availIn
      // zlib stops early only when the output is full: then it goes on with the rest of the input.
      if (availOut !== 0) return scratch.slice(0, used)
      const bigger = new Uint8Array(scratch.length * 2)
      bigger.set(scratch)
      scratch = bigger
    }
  }

  /** zstd: the frame so far for `input` (all of it taken in), or to its end; copied out to memory of its own. */
  const zstd = (input: Uint8Array, end: boolean): Uint8Array => {
    const parts: Uint8Array[] = []
    let src = input
    for (;;) {
      const [ret, produced, consumed] = zc!.compressStream2(scratch, src, end ? zb!.EndDirective.end : zb!.EndDirective.continue)
      if (produced) parts.push(scratch.slice(0, produced))
      src = src.subarray(consumed)
      if (!src.length && (!end || ret === 0)) break
    }
    if (parts.length === 1) return parts[0]
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
    let at = 0
    for (const p of parts) {
      out.set(p, at)
      at += p.length
    }
    return out
  }

  parentPort!.on('message', (m: ToThread) => {
    try {
      if (m.op === 'start') {
        if (codec === 'zstd') {
          zc = new zb!.CCtx()
          zc.setParameter(zb!.CParameter.compressionLevel, level)
        } else {
          gz?.close()
          gz = zlib.createGzip({ level, memLevel: 9 }) as zlib.Gzip & ZlibInternals
        }
        parentPort!.postMessage({ out: new Uint8Array(0) })
      } else if (m.op === 'block') {
        const out = codec === 'zstd' ? zstd(m.data, false) : deflate(m.data, Z_NO_FLUSH)
        parentPort!.postMessage({ out, back: m.data }, [out.buffer as ArrayBuffer, m.data.buffer as ArrayBuffer])
      } else {
        let out: Uint8Array
        if (codec === 'zstd') {
          out = zstd(new Uint8Array(0), true)
          zc = null
        } else {
          out = deflate(new Uint8Array(0), Z_FINISH)
          gz!.close()
          gz = null
        }
        parentPort!.postMessage({ out }, [out.buffer as ArrayBuffer])
      }
    } catch (e) {
      parentPort!.postMessage({ error: e instanceof Error ? e.message : String(e) })
    }
  })
}

const SOURCE = `(${compressThread.toString()})()`

/** A compressing thread, used block after block and object after object by one backup connection. */
export class CompressThread {
  /** Where COPY text is gathered: the blocks come back from the thread and are used again. */
  readonly pool = new BlockPool()
  private worker: Worker
  private waiting: { resolve: (b: Buffer) => void; reject: (e: Error) => void }[] = []
  private failed: Error | null = null

  constructor(private codec: ThreadCodec) {
    this.worker = new Worker(SOURCE, { eval: true, workerData: codec })
    this.worker.on('message', (m: FromThread) => {
      const w = this.waiting.shift()
      if ('error' in m) return w?.reject(new Error(`${this.codec.codec} failed: ${m.error}`))
      if (m.back) this.pool.give(m.back.buffer as ArrayBuffer)
      w?.resolve(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength))
    })
    const fail = (e: Error) => {
      this.failed ??= e
      for (const w of this.waiting.splice(0)) w.reject(this.failed)
    }
    this.worker.on('error', fail)
    this.worker.on('exit', () => fail(new Error('the compressing thread stopped')))
  }

  /** Blocks sent and not yet back. */
  get pending(): number {
    return this.waiting.length
  }

  private send(m: ToThread): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed)
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject })
      if (m.op !== 'block') return this.worker.postMessage(m)
      // The pool's blocks are handed over without a copy; anything else is copied once into memory of its own.
      let data = m.data
      if (!this.pool.owns(data)) {
        const copy = Buffer.allocUnsafeSlow(data.byteLength)
        copy.set(data)
        data = copy
      }
      this.worker.postMessage({ op: 'block', data }, [data.buffer as ArrayBuffer])
    })
  }

  /** A compressing Transform for one object, compressed on this thread, with up to `depth` blocks in flight. */
  stream(depth = 3): Transform {
    let order: Promise<unknown> = Promise.resolve()
    let started = false
    let waitingRoom: TransformCallback | null = null
    const pending = () => this.pending
    // Results are pushed in the order the blocks were sent (the thread answers in that order too).
    // A failure surfaces once, through the chain; the promises behind it are marked as seen.
    const then = (t: Transform, m: ToThread) => {
      if (!started && m.op !== 'start') then(t, { op: 'start' }).catch(() => {})
      started = true
      const result = this.send(m)
      result.catch(() => {})
      order = order.then(() => result).then((out) => (t.destroyed || !out.length ? undefined : t.push(out)))
      return order
    }
    return new Transform({
      writableHighWaterMark: 2 * 1024 * 1024,
      transform(chunk: Buffer, _e, cb) {
        if (!chunk.length) return cb()
        then(this, { op: 'block', data: chunk }).then(
          () => {
            const go = waitingRoom
            waitingRoom = null
            go?.()
          },
          (e: Error) => this.destroy(e),
        )
        if (pending() < depth) cb()
        else waitingRoom = cb
      },
      flush(cb) {
        then(this, { op: 'end' }).then(
          () => cb(),
          (e: Error) => cb(e),
        )
      },
    })
  }

  async close(): Promise<void> {
    this.failed ??= new Error('the compressing thread was closed')
    await this.worker.terminate()
  }
}
