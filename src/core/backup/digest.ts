/**
 * An order-independent digest of a table's rows, computed over COPY text (one row per line):
 * two independent 32-bit hashes per row (murmur3's block mix and a multiplicative mix, each
 * finalised with murmur3's fmix), summed modulo 2^32 across rows. Sums commute, so chunks read in any order, or
 * a restored table read back in another physical order, give the same digest for the same rows.
 * COPY escapes newlines inside values, so a raw "\n" always ends a row.
 */
export class RowDigest {
  rows = 0
  rawBytes = 0
  private s1 = 0
  private s2 = 0
  /** The start of a row that continues in the next chunk. */
  private carry: Buffer | null = null
  /** A view of the buffer rows are read from, for 4-byte little-endian loads (one unaligned load, not four byte loads). */
  private viewOf: Buffer | null = null
  private view: DataView = new DataView(new ArrayBuffer(0))

  update(buf: Buffer): void {
    this.rawBytes += buf.length
    let start = 0
    for (;;) {
      // memchr in native code finds row ends; only the row bodies are hashed in JS.
      const nl = buf.indexOf(10, start)
      if (nl === -1) {
        if (start < buf.length)
          this.carry = this.carry ? Buffer.concat([this.carry, buf.subarray(start)]) : Buffer.from(buf.subarray(start))
        return
      }
      if (this.carry) {
        const row = Buffer.concat([this.carry, buf.subarray(start, nl)])
        this.carry = null
        this.row(row, 0, row.length)
      } else this.row(buf, start, nl)
      start = nl + 1
    }
  }

  /** One whole row (its bytes from s to e, without the newline), whose COPY text takes raw bytes with it. */
  addRow(b: Buffer, s: number, e: number, raw: number): void {
    this.rawBytes += raw
    this.row(b, s, e)
  }

  /** Two independent 32-bit hashes of one row, mixing four bytes per step (murmur3-style). */
  private row(b: Buffer, s: number, e: number): void {
    const len = e - s
    let h1 = 0x811c9dc5 ^ len
    let h2 = 0x9747b28c
    let i = s
    if (b !== this.viewOf) {
      this.viewOf = b
      this.view = new DataView(b.buffer, b.byteOffset, b.byteLength)
    }
    const v = this.view
    for (; i + 4 <= e; i += 4) {
      let k = v.getInt32(i, true)
      h2 = Math.imul(h2 ^ k, 0x5bd1e995)
      k = Math.imul(k, 0xcc9e2d51)
      k = (k << 15) | (k >>> 17)
      h1 ^= Math.imul(k, 0x1b873593)
      h1 = (h1 << 13) | (h1 >>> 19)
      h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0
    }
    let k = 0
    for (let sh = 0; i < e; i++, sh += 8) k |= b[i] << sh
    h1 ^= Math.imul((Math.imul(k, 0xcc9e2d51) << 15) | (Math.imul(k, 0xcc9e2d51) >>> 17), 0x1b873593)
    h2 = Math.imul(h2 ^ k ^ len, 0x5bd1e995)
    this.s1 = (this.s1 + fmix(h1)) >>> 0
    this.s2 = (this.s2 + fmix(h2)) >>> 0
    this.rows++
  }

  /** "rows:hex16". */
  value(): string {
    this.viewOf = null
    return formatDigest(this.rows, this.s1, this.s2)
  }
}

function fmix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

function formatDigest(rows: number, s1: number, s2: number): string {
  return `${rows}:${s1.toString(16).padStart(8, '0')}${s2.toString(16).padStart(8, '0')}`
}

/** Combine chunk digests into the table's digest (the same as digesting all rows at once). */
export function combineDigests(digests: string[]): string {
  let rows = 0
  let s1 = 0
  let s2 = 0
  for (const d of digests) {
    const [r, hex] = d.split(':')
    rows += Number(r)
    s1 = (s1 + parseInt(hex.slice(0, 8), 16)) >>> 0
    s2 = (s2 + parseInt(hex.slice(8, 16), 16)) >>> 0
  }
  return formatDigest(rows, s1, s2)
}
