import { Transform, type TransformCallback } from 'node:stream'

/**
 * An order-independent digest of a table's rows, computed over COPY text (one row per line):
 * two independent 32-bit hashes per row (FNV-1a and a multiplicative mix, each finalised with
 * murmur3's fmix), summed modulo 2^32 across rows. Sums commute, so chunks read in any order, or
 * a restored table read back in another physical order, give the same digest for the same rows.
 * COPY escapes newlines inside values, so a raw "\n" always ends a row.
 */
export class RowDigest {
  rows = 0
  rawBytes = 0
  private s1 = 0
  private s2 = 0
  private h1 = 0x811c9dc5
  private h2 = 0x9747b28c
  private len = 0

  update(buf: Buffer): void {
    let h1 = this.h1
    let h2 = this.h2
    let len = this.len
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i]
      if (c === 10) {
        this.s1 = (this.s1 + fmix(h1 ^ len)) >>> 0
        this.s2 = (this.s2 + fmix(h2 + Math.imul(len, 0x27d4eb2d))) >>> 0
        this.rows++
        h1 = 0x811c9dc5
        h2 = 0x9747b28c
        len = 0
      } else {
        h1 = Math.imul(h1 ^ c, 0x01000193)
        h2 = Math.imul(h2 + c, 0x5bd1e995) ^ (h2 >>> 15)
        len++
      }
    }
    this.h1 = h1
    this.h2 = h2
    this.len = len
    this.rawBytes += buf.length
  }

  /** "rows:hex16". */
  value(): string {
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

/** A pass-through stream that digests what flows by. */
export function digestTap(d: RowDigest): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      d.update(chunk)
      cb(null, chunk)
    },
  })
}
