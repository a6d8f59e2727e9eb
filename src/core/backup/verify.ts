import { createHash } from 'node:crypto'
import { Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { OpsError } from '../../shared/contract'
import type { JobContext } from '../jobs/runner'
import type { BackupStorage } from '../storage/storage'
import { aadFor } from './authenticity'
import { readSet } from './catalog'
import { decompressor, isCodecError } from './compression'
import { decryptStream, keyForSet, type KeySource } from './crypto'
import { manifestKey } from './manifest'
import { RowDigest } from './digest'

export interface ObjectCheck {
  key: string
  ok: boolean
  problem: string | null
}

export interface VerifyReport {
  setId: string
  ok: boolean
  objects: ObjectCheck[]
  checkedBytes: number
}

/** How messages name an object: "object sets/<id>/data/t0001/c0000.copy.gz.enc of set <id>". */
export const objectName = (setId: string, key: string) => `object ${key} of set ${setId}`

/**
 * Re-read every object of a set: size and SHA-256 as stored, then decrypt (authenticated, bound to
 * this set and key) and decompress, and for data the row count and row digest against the manifest.
 * Reports per stored object, the manifest first (read and checked when the set is opened); a manifest
 * that fails its own authentication check is the one bad object.
 */
export async function verifySet(storage: BackupStorage, setId: string, keys: KeySource, ctx: JobContext): Promise<VerifyReport> {
  const set = await readSet(storage, setId, keys)
  if (!set)
    throw new OpsError(
      'unknown_set',
      `There is no backup set "${setId}" in ${storage.location}. List them with "examforge-ops backups list".`,
    )
  if (set.status === 'tampered')
    return { setId, ok: false, objects: [{ key: manifestKey(setId), ok: false, problem: set.problem }], checkedBytes: 0 }
  if (!set.manifest) throw new OpsError('incomplete_set', `The set ${setId} has no readable manifest: ${set.problem}`)
  const m = set.manifest
  const key = m.encryption ? keyForSet(m.encryption, keys) : null
  const chunks = new Map(m.tables.flatMap((t) => t.chunks.map((c) => [c.key, { ...c, table: `${t.schema}.${t.name}` }] as const)))
  const total = m.objects.reduce((n, o) => n + o.size, 0)
  let done = 0
  // The manifest is one of the set's stored objects too: reading the set above checked it (and, for an
  // authenticated set, its authentication tag), so the report counts what the set's listing counts.
  const results: ObjectCheck[] = [{ key: manifestKey(setId), ok: true, problem: null }]
  for (const obj of m.objects) {
    ctx.signal.throwIfAborted()
    const sha = createHash('sha256')
    let size = 0
    const digest = new RowDigest()
    const hashTap = new Transform({
      transform(c: Buffer, _e, cb) {
        sha.update(c)
        size += c.length
        done += c.length
        cb(null, c)
      },
    })
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        digest.update(c)
        cb()
      },
    })
    let problem: string | null = null
    try {
      const stages = [
        hashTap,
        key ? decryptStream(key, objectName(setId, obj.key), aadFor(m, obj.key)) : null,
        decompressor(m.compression, objectName(setId, obj.key)),
        sink,
      ].filter((s) => s !== null)
      await pipeline([await storage.get(obj.key, ctx.signal), ...stages], { signal: ctx.signal })
      if (size !== obj.size) problem = `size is ${size} bytes, the manifest says ${obj.size}: the object was altered or damaged`
      else if (sha.digest('hex') !== obj.sha256)
        problem = 'SHA-256 does not match the manifest: the object was altered or damaged, or does not belong here (moved from elsewhere)'
      else {
        const c = chunks.get(obj.key)
        if (c && (digest.rows !== c.rows || digest.value() !== c.digest))
          problem = `its rows do not match the manifest (${digest.rows} rows read, ${c.rows} expected)`
      }
    } catch (e) {
      if (ctx.signal.aborted) throw e
      const err = e as NodeJS.ErrnoException
      problem = isCodecError(err)
        ? err.message.replace(`The ${objectName(setId, obj.key)} `, '')
        : err.message.replace(`${objectName(setId, obj.key)} `, '')
    }
    results.push({ key: obj.key, ok: problem === null, problem })
    ctx.onProgress({ phase: `verifying ${obj.key.split('/').slice(2).join('/')}`, done, total, unit: 'bytes' })
  }
  return { setId, ok: results.every((r) => r.ok), objects: results, checkedBytes: done }
}
