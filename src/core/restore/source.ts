import { createHash } from 'node:crypto'
import { Readable, Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createInterface } from 'node:readline'
import { OpsError } from '../../shared/contract'
import type { BackupStorage } from '../storage/storage'
import { decompressor } from '../backup/compression'
import type { BlockPool } from '../backup/copy-out'
import { aadFor } from '../backup/authenticity'
import { decryptStream, keyForSet, type KeySource } from '../backup/crypto'
import type { Manifest } from '../backup/manifest'
import type { ChangeLine } from '../backup/incremental'
import { objectName } from '../backup/verify'

export type Keys = KeySource

/**
 * The sets a restore reads, with each set's decryption key (a wrong or missing key is refused here, before
 * anything). Objects of an authenticated set decrypt only where they were written (their set and key).
 */
export class SetReader {
  private keys = new Map<string, Buffer | null>()

  constructor(
    readonly storage: BackupStorage,
    readonly sets: Manifest[],
    keys: Keys,
  ) {
    for (const m of sets) this.keys.set(m.setId, m.encryption ? keyForSet(m.encryption, keys) : null)
  }

  /** An object's plaintext: decrypted (authenticated) and decompressed on the way (into the pool's blocks, when given one). */
  async open(m: Manifest, key: string, signal: AbortSignal, pool?: BlockPool): Promise<Readable> {
    const k = this.keys.get(m.setId) ?? null
    const source = await this.storage.get(key, signal)
    const stages = [
      k ? decryptStream(k, objectName(m.setId, key), aadFor(m, key)) : null,
      decompressor(m.compression, objectName(m.setId, key), undefined, pool),
    ].filter((s): s is Transform => s !== null)
    if (!stages.length) return source
    let out: Readable = source
    for (const s of stages) {
      out.on('error', (e) => s.destroy(e))
      out = out.pipe(s)
    }
    return out
  }

  /** The schema (DDL) a restore executes: checked against the SHA-256 its manifest records before it is even parsed. */
  async schema(m: Manifest, signal: AbortSignal): Promise<{ pre: string[]; post: string[] }> {
    const obj = m.objects.find((o) => o.kind === 'schema')
    if (!obj) throw new OpsError('incomplete_set', `The set ${m.setId} holds no schema.`)
    const stored = await this.storage.getBuffer(obj.key)
    signal.throwIfAborted()
    if (stored.length !== obj.size || createHash('sha256').update(stored).digest('hex') !== obj.sha256) throw damaged(m, obj, stored.length)
    const chunks: Buffer[] = []
    const k = this.keys.get(m.setId) ?? null
    const stages = [
      k ? decryptStream(k, objectName(m.setId, obj.key), aadFor(m, obj.key)) : null,
      decompressor(m.compression, objectName(m.setId, obj.key)),
    ]
    try {
      await pipeline([
        Readable.from([stored]),
        ...stages.filter((s): s is Transform => s !== null),
        new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }),
      ])
    } catch (e) {
      throw refused(e)
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  }

  /** Every change line of an incremental set, in commit order. */
  async *changes(m: Manifest, signal: AbortSignal): AsyncGenerator<ChangeLine> {
    for (const obj of m.objects.filter((o) => o.kind === 'changes').sort((a, b) => a.key.localeCompare(b.key))) {
      const lines = createInterface({ input: await this.open(m, obj.key, signal), crlfDelay: Infinity })
      for await (const line of lines) if (line) yield JSON.parse(line) as ChangeLine
    }
  }

  /**
   * Quick: every object of every set is in storage with the size its manifest records (one listing per
   * set, nothing read). Returns what is wrong, one line per object; empty when all is there.
   */
  async checkPresence(): Promise<string[]> {
    const problems: string[] = []
    for (const m of this.sets) {
      const stored = new Map((await this.storage.list(`sets/${m.setId}/`)).map((o) => [o.key, o.size]))
      for (const obj of m.objects) {
        const size = stored.get(obj.key)
        if (size === undefined) problems.push(`The backup object ${obj.key} is missing from ${this.storage.location}.`)
        else if (size !== obj.size)
          problems.push(
            `The backup object ${obj.key} is ${size} bytes, not the ${obj.size} its manifest records: it was altered or damaged.`,
          )
      }
    }
    return problems
  }

  /**
   * Before touching a target: every object of every set is there, with the size and SHA-256 its manifest
   * records. A damaged or missing object is named, and nothing is restored.
   */
  async verifyObjects(signal: AbortSignal, onBytes: (n: number) => void): Promise<void> {
    for (const m of this.sets)
      for (const obj of m.objects) {
        signal.throwIfAborted()
        const sha = createHash('sha256')
        let size = 0
        try {
          await pipeline(
            await this.storage.get(obj.key, signal),
            new Writable({
              write(c: Buffer, _e, cb) {
                sha.update(c)
                size += c.length
                onBytes(c.length)
                cb()
              },
            }),
            { signal },
          )
        } catch (e) {
          if (signal.aborted) throw e
          throw new OpsError(
            'object_missing',
            `The backup object ${obj.key} cannot be read (${(e as Error).message}): nothing was restored.`,
          )
        }
        if (size !== obj.size || sha.digest('hex') !== obj.sha256) throw damaged(m, obj, size)
      }
  }
}

function damaged(m: Manifest, obj: Manifest['objects'][number], size: number): OpsError {
  return new OpsError(
    'object_damaged',
    `The ${objectName(m.setId, obj.key)} does not match its manifest (${size !== obj.size ? `size ${size}, expected ${obj.size}` : 'SHA-256 differs'}): it was altered or damaged, or does not belong to this set. Nothing was restored; choose another backup set, and find out who or what can write to the backup storage.`,
  )
}

/** A decryption that failed its tag names the object (crypto.ts says which and why); nothing was restored yet. */
function refused(e: unknown): unknown {
  return e instanceof OpsError && e.code === 'corrupt'
    ? new OpsError(
        'object_damaged',
        `The ${e.message.replace(/\.$/, '')}. Nothing was restored; choose another backup set, and find out who or what can write to the backup storage.`,
      )
    : e
}
