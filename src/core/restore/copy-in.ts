import { Writable } from 'node:stream'
import type { BlockPool } from '../backup/copy-out'

/** The parts of pg's Connection a COPY FROM STDIN uses. */
interface PgConnection {
  stream: NodeJS.WritableStream & { write(b: Buffer, cb?: (err?: Error | null) => void): boolean }
  query(text: string): void
}
/** pg's Connection has it (pg-copy-streams calls it too); its type declarations do not say so. */
const sendCopyFail = (c: PgConnection, msg: string) => (c as unknown as { sendCopyFail(m: string): void }).sendCopyFail(msg)

const COPY_DATA = 0x64 // 'd'
const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4]) // 'c', length 4

/**
 * COPY ... FROM STDIN written straight to the connection's socket: each buffer that arrives becomes one
 * CopyData message (a 5-byte header, then the buffer itself, not copied). A buffer that belongs to the
 * pool (the restore's decompressed blocks) goes back to it once the socket has written it, so a load
 * reuses a handful of blocks instead of leaving a buffer per write to the garbage collector. Submitted
 * with client.query(copyIn) like pg-copy-streams' `from`, which it replaces for the restore's load:
 * the write ends when the server has confirmed the COPY (its row count is then in rowCount); destroying
 * it sends CopyFail, so the server rolls the COPY back.
 */
export class CopyIn extends Writable {
  rowCount = 0
  private connection: PgConnection | null = null
  private started = false
  /** Writes waiting for the server's CopyInResponse. */
  private queued: { chunk: Buffer; cb: (e?: Error | null) => void }[] = []
  private onReady: ((e?: Error | null) => void) | null = null
  private onDestroyed: ((e?: Error | null) => void) | null = null

  constructor(
    private text: string,
    private pool?: BlockPool,
  ) {
    super({ highWaterMark: 4 * 1024 * 1024 })
  }

  /** Called by pg's client.query(submittable). */
  submit(connection: PgConnection): void {
    this.connection = connection
    connection.query(this.text)
  }

  /** pg's query timeout mechanism looks for this. */
  callback(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (!this.started) this.queued.push({ chunk, cb })
    else this.send(chunk, cb)
  }

  private send(chunk: Buffer, cb: (e?: Error | null) => void): void {
    const stream = this.connection!.stream
    const header = Buffer.allocUnsafe(5)
    header[0] = COPY_DATA
    header.writeUInt32BE(chunk.length + 4, 1)
    stream.write(header)
    const pool = this.pool
    const ok = stream.write(chunk, pool?.owns(chunk) ? () => pool.give(chunk.buffer as ArrayBuffer) : undefined)
    if (ok) cb()
    else stream.once('drain', () => cb())
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.onReady = cb
    const done = () => this.connection?.stream.write(COPY_DONE)
    if (this.started) done()
    else this.queued.push({ chunk: COPY_DONE, cb: () => {} })
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    // Done already (the server answered), or its end already sent (a CopyFail after CopyDone would break the
    // connection's protocol): nothing to tell the server.
    if (!this.connection || this.onReady) return cb(err)
    this.queued = []
    this.onDestroyed = cb
    if (this.started) sendCopyFail(this.connection, err ? err.message : 'the restore stopped this COPY')
    // Before the server's CopyInResponse, the fail is sent as soon as it comes.
  }

  /** pg calls these as the COPY goes on and ends. */
  handleCopyInResponse(): void {
    this.started = true
    if (this.onDestroyed) return sendCopyFail(this.connection!, 'the restore stopped this COPY')
    const waiting = this.queued
    this.queued = []
    for (const w of waiting) {
      if (w.chunk === COPY_DONE) this.connection!.stream.write(COPY_DONE)
      else this.send(w.chunk, w.cb)
    }
  }

  handleError(e: Error): void {
    this.connection = null
    const cb = this.onDestroyed ?? this.onReady
    this.onDestroyed = this.onReady = null
    if (cb) cb(e)
    else this.destroy(e)
  }

  handleCommandComplete(msg: { text?: string }): void {
    const m = /COPY (\d+)/.exec(msg?.text ?? '')
    if (m) this.rowCount = Number(m[1])
  }

  handleReadyForQuery(): void {
    this.connection = null
    const cb = this.onReady ?? this.onDestroyed
    this.onReady = this.onDestroyed = null
    cb?.()
  }
}
