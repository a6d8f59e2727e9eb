/**
 * A decoder for pgoutput (protocol version 1) messages, as returned one per row by
 * pg_logical_slot_peek_binary_changes. Column values stay exactly as PostgreSQL's text output
 * (no type parsing, so nothing is rounded or reinterpreted); null is NULL; undefined marks an
 * unchanged TOAST value that an UPDATE did not send (replay must leave that column alone).
 */
export type Tuple = Record<string, string | null | undefined>

export interface Relation {
  id: number
  schema: string
  name: string
  replicaIdentity: 'default' | 'nothing' | 'full' | 'index'
  /** In the table's column order; typmod as PostgreSQL records it (-1: none). */
  columns: { name: string; key: boolean; typeOid: number; typmod: number }[]
}

export type PgoutputMessage =
  | { tag: 'begin'; finalLsn: string; commitTime: string; xid: number }
  | { tag: 'commit'; commitLsn: string; endLsn: string; commitTime: string }
  | { tag: 'relation'; relation: Relation }
  | { tag: 'insert'; relation: Relation; new: Tuple }
  | { tag: 'update'; relation: Relation; key: Tuple | null; old: Tuple | null; new: Tuple }
  | { tag: 'delete'; relation: Relation; key: Tuple | null; old: Tuple | null }
  | { tag: 'truncate'; relations: Relation[]; cascade: boolean; restartIdentity: boolean }
  /** A logical decoding message (pg_logical_emit_message), sent only when the read asks for messages. */
  | { tag: 'message'; transactional: boolean; prefix: string; content: string }
  | { tag: 'other'; code: string }

// PostgreSQL's epoch is 2000-01-01; times are microseconds since then.
const PG_EPOCH_US = 946_684_800_000_000n

export function lsnToString(v: bigint): string {
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`
}

export function lsnToBigInt(lsn: string): bigint {
  const [hi, lo] = lsn.split('/')
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`)
}

/** ISO time with microseconds, from a PostgreSQL timestamp in µs since 2000-01-01. */
export function pgTimeToIso(us: bigint): string {
  const unixUs = us + PG_EPOCH_US
  const ms = unixUs / 1000n
  const micro = Number(unixUs % 1_000_000n)
  return new Date(Number(ms)).toISOString().replace(/\.\d{3}Z$/, `.${String(micro).padStart(6, '0')}Z`)
}

export class PgoutputDecoder {
  readonly relations = new Map<number, Relation>()

  decode(buf: Buffer): PgoutputMessage {
    let o = 1
    const u8 = () => buf[o++]
    const i16 = () => {
      const v = buf.readInt16BE(o)
      o += 2
      return v
    }
    const i32 = () => {
      const v = buf.readInt32BE(o)
      o += 4
      return v
    }
    const i64 = () => {
      const v = buf.readBigUInt64BE(o)
      o += 8
      return v
    }
    const str = () => {
      const end = buf.indexOf(0, o)
      const s = buf.toString('utf8', o, end)
      o = end + 1
      return s
    }
    const rel = (id: number) => {
      const r = this.relations.get(id)
      if (!r) throw new Error(`pgoutput: a change for relation ${id} arrived before its description`)
      return r
    }
    const tuple = (r: Relation): Tuple => {
      const n = i16()
      const t: Tuple = {}
      for (let i = 0; i < n; i++) {
        const kind = u8()
        const name = r.columns[i].name
        if (kind === 0x6e)
          t[name] = null // 'n'
        else if (kind === 0x75)
          t[name] = undefined // 'u': unchanged TOAST
        else if (kind === 0x74) {
          // 't'
          const len = i32()
          t[name] = buf.toString('utf8', o, o + len)
          o += len
        } else throw new Error(`pgoutput: unexpected column kind ${String.fromCharCode(kind)}`)
      }
      return t
    }
    const tag = String.fromCharCode(buf[0])
    switch (tag) {
      case 'B': {
        const finalLsn = lsnToString(i64())
        const commitTime = pgTimeToIso(i64())
        return { tag: 'begin', finalLsn, commitTime, xid: i32() }
      }
      case 'C': {
        u8() // flags
        const commitLsn = lsnToString(i64())
        const endLsn = lsnToString(i64())
        return { tag: 'commit', commitLsn, endLsn, commitTime: pgTimeToIso(i64()) }
      }
      case 'R': {
        const id = i32()
        const schema = str()
        const name = str()
        const ident = String.fromCharCode(u8())
        const n = i16()
        const columns: Relation['columns'] = []
        for (let i = 0; i < n; i++) {
          const flags = u8()
          const colName = str()
          const typeOid = i32()
          const typmod = i32()
          columns.push({ name: colName, key: (flags & 1) === 1, typeOid, typmod })
        }
        const relation: Relation = {
          id,
          schema,
          name,
          replicaIdentity: ({ d: 'default', n: 'nothing', f: 'full', i: 'index' } as const)[ident as 'd'] ?? 'default',
          columns,
        }
        this.relations.set(id, relation)
        return { tag: 'relation', relation }
      }
      case 'I': {
        const r = rel(i32())
        u8() // 'N'
        return { tag: 'insert', relation: r, new: tuple(r) }
      }
      case 'U': {
        const r = rel(i32())
        let kind = u8()
        let key: Tuple | null = null
        let old: Tuple | null = null
        if (kind === 0x4b)
          key = tuple(r) // 'K'
        else if (kind === 0x4f) old = tuple(r) // 'O'
        if (key || old) kind = u8()
        return { tag: 'update', relation: r, key, old, new: tuple(r) }
      }
      case 'D': {
        const r = rel(i32())
        const kind = u8()
        const t = tuple(r)
        return { tag: 'delete', relation: r, key: kind === 0x4b ? t : null, old: kind === 0x4f ? t : null }
      }
      case 'T': {
        const n = i32()
        const flags = u8()
        const relations: Relation[] = []
        for (let i = 0; i < n; i++) relations.push(rel(i32()))
        return { tag: 'truncate', relations, cascade: (flags & 1) === 1, restartIdentity: (flags & 2) === 2 }
      }
      case 'M': {
        const transactional = (u8() & 1) === 1
        i64() // the message's LSN
        const prefix = str()
        const len = i32()
        const content = buf.toString('utf8', o, o + len)
        o += len
        return { tag: 'message', transactional, prefix, content }
      }
      default:
        return { tag: 'other', code: tag } // type, origin, logical message: nothing to back up
    }
  }
}
