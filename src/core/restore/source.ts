import { createHash } from 'node:crypto'
import { Transform, Writable, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createInterface } from 'node:readline'
import { OpsError } from '../../shared/contract'
import type { BackupStorage } from '../storage/storage'
import { decompressor } from '../backup/compression'
import { decryptStream, keyForSet } from '../backup/crypto'
import type { Manifest } from '../backup/manifest'
import type { ChangeLine } from '../backup/incremental'

export interface Keys {
  key: string | null
  passphrase: string | null
}

/** The sets a restore reads, with each set's decryption key (a wrong or missing key is refused here, before anything). */
export class SetReader {
  private keys = new Map<string, Buffer | null>()

  constructor(
    readonly storage: BackupStorage,
    readonly sets: Manifest[],
    keys: Keys,
  ) {
    for (const m of sets) this.keys.set(m.setId, m.encryption ? keyForSet(m.encryption, keys) : null)
  }

  /** An object's plaintext: decrypted (authenticated) and decompressed on the way. */
  async open(m: Manifest, key: string, signal: AbortSignal): Promise<Readable> {
    const k = this.keys.get(m.setId) ?? null
    const source = await this.storage.get(key, signal)
    const stages = [k ? decryptStream(k, key) : null, decompressor(m.compression)].filter((s): s is Transform => s !== null)
    if (!stages.length) return source
    let out: Readable = source
    for (const s of stages) {
      out.on('error', (e) => s.destroy(e))
      out = out.pipe(s)
    }
    return out
  }

  async schema(m: Manifest, signal: AbortSignal): Promise<{ pre: string[]; post: string[] }> {
    const obj = m.objects.find((o) => o.kind === 'schema')
    if (!obj) throw new OpsError('incomplete_set', `The set ${m.setId} holds no schema.`)
    const chunks: Buffer[] = []
    await pipeline(await this.open(m, obj.key, signal), new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }))
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
        if (size !== obj.size || sha.digest('hex') !== obj.sha256)
          throw new OpsError(
            'object_damaged',
            `The backup object ${obj.key} does not match its manifest (${size !== obj.size ? `size ${size}, expected ${obj.size}` : 'SHA-256 differs'}): it was altered or damaged. Nothing was restored; choose another backup set.`,
          )
      }
  }
}
