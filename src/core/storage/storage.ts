import type { Readable } from 'node:stream'

export interface StoredObject {
  key: string
  size: number
  modified: Date
  /**
   * What changes when the object is replaced (S3: its ETag; a local file: its inode, mtime and size): the
   * catalog's manifest cache is keyed by it. Absent where the store gives none (then nothing is cached).
   */
  tag?: string
}

/**
 * Where backup sets live: a local folder or an S3 bucket, behind one interface. Keys use "/".
 * put() resolves only once the object is durably stored; an aborted or failed put leaves at
 * most a partial that cleanupIncomplete() removes, never an object that looks complete.
 */
export interface BackupStorage {
  readonly kind: 'local' | 's3'
  /** Where, for people: a folder path or s3://bucket/prefix. */
  readonly location: string
  put(key: string, body: Readable, signal?: AbortSignal): Promise<{ size: number }>
  putSmall(key: string, data: Buffer | string): Promise<void>
  get(key: string, signal?: AbortSignal): Promise<Readable>
  getBuffer(key: string): Promise<Buffer>
  /** A small object with the tag (see StoredObject) of the bytes read; null when it changed while being read. */
  getTagged(key: string): Promise<{ data: Buffer; tag: string | null }>
  exists(key: string): Promise<boolean>
  list(prefix: string): Promise<StoredObject[]>
  /**
   * Unfinished writes under the prefix (local "<key>.partial" files, S3 multipart uploads in progress),
   * by the key they will have: they take space, so the catalog counts them.
   */
  listPartial(prefix: string): Promise<StoredObject[]>
  delete(keys: string[]): Promise<void>
  /**
   * Remove everything under the prefix, partial writes and (local) the folder itself: a set that never got its
   * manifest (failed or cancelled) leaves nothing behind, not even an empty folder.
   */
  discard(prefix: string): Promise<void>
  /** Remove partial writes (and abort stale multipart uploads) older than the given age. */
  cleanupIncomplete(olderThanMs: number): Promise<{ removed: number }>
}

export class StorageError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}
