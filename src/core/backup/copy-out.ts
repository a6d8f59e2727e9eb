import { Readable } from 'node:stream'
import type { RowDigest } from './digest'

/** The parts of pg's Connection a submittable query uses. */
interface PgConnection {
  stream: Omit<NodeJS.ReadableStream, 'read'> & { read(): Buffer | null; pause(): void; resume(): void }
  query(text: string): void
}

/** The size of the blocks COPY text is gathered into before it goes downstream. */
export const BLOCK_SIZE = 1024 * 1024

/**
 * Blocks of BLOCK_SIZE bytes, handed back by whoever is done with them (the compressing thread) and
 * used again, so reading a database allocates a handful of buffers rather than one per megabyte
 * (which kept V8's garbage collector marking the heap over and over). The pool knows its own
 * blocks, so only those are ever handed to another thread.
 */
export class BlockPool {
  private free: ArrayBuffer[] = []
  private mine = new WeakSet<ArrayBuffer>()

  take(): Buffer {
    const ab = this.free.pop()
    if (ab) return Buffer.from(ab, 0, BLOCK_SIZE)
    const b = Buffer.allocUnsafeSlow(BLOCK_SIZE)
    this.mine.add(b.buffer as ArrayBuffer)
    return b
  }

  /** Blocks back and waiting to be used again. */
  get spare(): number {
    return this.free.length
  }

  owns(b: Uint8Array): boolean {
    return b.byteOffset === 0 && this.mine.has(b.buffer as ArrayBuffer)
  }

  /** A block back from the thread it was handed to (a new ArrayBuffer object on this side, so it is known afresh). */
  give(ab: ArrayBuffer): void {
    if (ab.byteLength !== BLOCK_SIZE || this.free.length >= 16) return
    this.mine.add(ab)
    this.free.push(ab)
  }
}

const COPY_DATA = 0x64 // 'd'
const ERROR_RESPONSE = 0x45 // 'E'
/** Messages that may come between CopyData messages: CopyOutResponse, ParameterStatus, NoticeResponse, NotificationResponse. */
const INTERSPERSED = new Set([0x48, 0x53, 0x4e, 0x41])

/**
 * COPY ... TO STDOUT read straight off the connection's socket: each CopyData message (one row in text
 * format) is digested and moved down over the message headers in the same buffer, in a single pass;
 * socket reads are then gathered into 1 MB blocks. Nothing downstream sees per-row buffers, and no
 * per-row object is made. Takes over the socket the way pg-copy-streams does
 * (pg's own parser is detached for the COPY and handed back after CopyDone or an error).
 */
export class CopyOut extends Readable {
  rowCount = 0
  private connection: PgConnection | null = null
  private pgDataHandler: ((b: Buffer) => void) | null = null
  private onReadableEvent = () => this.forward()
  private drained = false
  private forwarding = false
  /** Bytes of an incomplete message, and how many the message needs in all (0: its header is not in yet). */
  private pending: Buffer[] = []
  private pendingSize = 0
  private need = 0

  constructor(
    private text: string,
    private digest: RowDigest,
    private onBytes: (n: number) => void,
    private pool: BlockPool = new BlockPool(),
  ) {
    super({ highWaterMark: 4 })
  }

  /** Called by pg's client.query(submittable). */
  submit(connection: PgConnection): void {
    this.connection = connection
    const stream = connection.stream
    const listeners = stream.listeners('data') as ((b: Buffer) => void)[]
    if (listeners.length !== 1) throw new Error('unexpected connection state for COPY')
    this.pgDataHandler = listeners[0]
    stream.removeListener('data', this.pgDataHandler)
    stream.pause()
    stream.on('readable', this.onReadableEvent)
    connection.query(this.text)
  }

  override _read(): void {
    this.drained = true
    this.forward()
  }

  private forward(): void {
    if (this.forwarding || !this.drained || !this.connection) return
    this.forwarding = true
    const stream = this.connection.stream
    let chunk: Buffer | null
    while (this.drained && this.connection && (chunk = stream.read()) !== null) this.drained = this.parse(chunk)
    this.forwarding = false
  }

  /** Returns whether the consumer wants more now. */
  private parse(chunk: Buffer): boolean {
    if (this.pendingSize) {
      // A message began in an earlier read: join only its own bytes (not the whole new read) and handle it alone.
      let rest = chunk
      const take = (n: number) => {
        const t = Math.min(n, rest.length)
        if (t > 0) {
          this.pending.push(rest.subarray(0, t))
          this.pendingSize += t
          rest = rest.subarray(t)
        }
      }
      if (!this.need) {
        take(5 - this.pendingSize)
        if (this.pendingSize < 5) return true
        const head = Buffer.concat(this.pending, this.pendingSize)
        this.pending = [head]
        this.need = 1 + head.readUInt32BE(1)
      }
      take(this.need - this.pendingSize)
      if (this.pendingSize < this.need) return true // a long row: gather its pieces, join them once
      const msg = Buffer.concat(this.pending, this.pendingSize)
      this.pending = []
      this.pendingSize = 0
      this.need = 0
      // Anything but a row or a message that may come between rows ends the COPY: pg takes the rest as it is.
      if (msg[0] !== COPY_DATA && !INTERSPERSED.has(msg[0])) return this.parseBuffer(rest.length ? Buffer.concat([msg, rest]) : msg)
      const more = this.parseBuffer(msg)
      // The rest of this read is parsed now whatever the consumer said (its answer only holds back the next read).
      return rest.length ? this.parseBuffer(rest) && more : more
    }
    return this.parseBuffer(chunk)
  }

  /** Messages from the start of buf; what is left (the start of a message) waits for the next read. */
  private parseBuffer(buf: Buffer): boolean {
    // Rows are moved down over the 5-byte message headers inside this buffer (a native memmove, no
    // allocation per row), so the buffer's front becomes plain COPY text, passed on as one view.
    let first = -1
    let w = 0
    let pos = 0
    const end = buf.length
    while (end - pos >= 5) {
      const code = buf[pos]
      const len = buf.readUInt32BE(pos + 1)
      if (code === ERROR_RESPONSE) {
        this.emit_(buf, first, w)
        return this.detach(buf.subarray(pos), false)
      }
      if (end - pos < 1 + len) break
      const s = pos + 5
      const e = pos + 1 + len
      pos = e
      if (code === COPY_DATA) {
        this.digest.addRow(buf, s, buf[e - 1] === 10 ? e - 1 : e, e - s)
        this.rowCount++
        if (first < 0) {
          first = s
          w = e
        } else {
          buf.copyWithin(w, s, e)
          w += e - s
        }
      } else if (!INTERSPERSED.has(code)) {
        // CopyDone (or anything else): the rest belongs to pg (CommandComplete, ReadyForQuery).
        this.emit_(buf, first, w)
        return this.detach(buf.subarray(pos), true)
      }
    }
    // What is left is the start of a message (rows were only moved below it).
    if (pos < end) {
      const rest = buf.subarray(pos)
      this.pending = [rest]
      this.pendingSize = rest.length
      this.need = rest.length >= 5 ? 1 + rest.readUInt32BE(1) : 0
    } else this.need = 0
    return this.emit_(buf, first, w)
  }

  /** Rows are copied from the socket reads into 1 MB blocks (one memcpy per read, not per row) before they go downstream. */
  private block: Buffer | null = null
  private filled = 0

  private emit_(buf: Buffer, first: number, w: number): boolean {
    let more = true
    while (first >= 0 && first < w) {
      this.block ??= this.pool.take()
      const n = buf.copy(this.block, this.filled, first, w)
      this.filled += n
      first += n
      if (this.filled === this.block.length) more = this.flushBlock()
    }
    return more
  }

  private flushBlock(): boolean {
    if (!this.filled) return true
    const b = this.filled === this.block!.length ? this.block! : this.block!.subarray(0, this.filled)
    this.block = null
    this.filled = 0
    this.onBytes(b.length)
    return this.push(b)
  }

  private detach(rest: Buffer, done: boolean): boolean {
    const stream = this.connection!.stream
    stream.removeListener('readable', this.onReadableEvent)
    stream.addListener('data', this.pgDataHandler!)
    const handler = this.pgDataHandler!
    this.connection = null
    if (done) {
      this.flushBlock()
      this.push(null)
    }
    handler(rest)
    // pg's handler may pause the stream while handling: resume once it is done.
    process.nextTick(() => stream.resume())
    return false
  }

  /** pg calls these as the query completes or fails. */
  handleError(err: Error): void {
    this.destroy(err)
  }

  handleCommandComplete(msg: { text?: string }): void {
    const m = /COPY (\d+)/.exec(msg?.text ?? '')
    if (m) this.rowCount = Number(m[1])
  }

  handleReadyForQuery(): void {}
}
