import { createHash } from 'node:crypto'
import { PassThrough, Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { BackupStorage } from '../storage/storage'
import { compressor, type CompressionParams } from './compression'
import { encryptStream } from './crypto'
import type { CompressThread } from './compress-thread'

/**
 * What a backup object goes through on its way to storage: compression (gzip on the connection's thread when
 * it has one, zstd off the main thread by itself), then encryption, bound to the object's set and key by associated data (objectAad).
 */
export function storeStages(
  compression: CompressionParams,
  encryption: { key: Buffer; aad: Buffer } | null,
  thread: CompressThread | null = null,
): Transform[] {
  const stages = [thread ? thread.stream() : compressor(compression), encryption ? encryptStream(encryption.key, encryption.aad) : null]
  return stages.filter((t) => t !== null)
}

/**
 * Stream a source through transforms into storage, hashing the stored bytes on the way.
 * Memory stays bounded by stream buffers, whatever the object size.
 */
export async function storeObject(
  storage: BackupStorage,
  key: string,
  source: Readable,
  transforms: Transform[],
  signal: AbortSignal,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256')
  let size = 0
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk)
      size += chunk.length
      cb(null, chunk)
    },
  })
  const out = new PassThrough({ highWaterMark: 1024 * 1024 })
  const writing = storage.put(key, out, signal)
  const reading = pipeline([source, ...transforms, tap, out], { signal })
  try {
    await Promise.all([reading, writing])
  } catch (e) {
    out.destroy()
    source.destroy()
    await Promise.allSettled([reading, writing])
    throw e
  }
  return { size, sha256: hash.digest('hex') }
}
