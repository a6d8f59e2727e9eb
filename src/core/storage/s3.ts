import type { S3Client, ServerSideEncryption } from '@aws-sdk/client-s3'
import { Transform, type Readable } from 'node:stream'
import { s3Sdk, s3Upload } from '../deps/lazy'
import { describeS3Error } from './s3-client'
import { StorageError, type BackupStorage, type StoredObject } from './storage'

export interface S3StorageOptions {
  /** Made on first use, so nothing loads the AWS SDK until S3 is used. */
  client: () => Promise<S3Client>
  bucket: string
  prefix: string
  /** Server-side encryption: AES256, or aws:kms with an optional key id. */
  sse?: { type: 'AES256' | 'aws:kms'; kmsKeyId?: string } | null
  partSizeBytes?: number
  queueSize?: number
}

/** An S3 bucket: streaming multipart uploads (memory bounded by part size × queue), optional SSE. */
export class S3Storage implements BackupStorage {
  readonly kind = 's3' as const
  readonly location: string
  private prefix: string

  constructor(private o: S3StorageOptions) {
    this.prefix = o.prefix && !o.prefix.endsWith('/') ? `${o.prefix}/` : o.prefix
    this.location = `s3://${o.bucket}/${this.prefix}`
  }

  private sdkAndClient: Promise<{ client: S3Client; sdk: Awaited<ReturnType<typeof s3Sdk>> }> | null = null
  private s3() {
    return (this.sdkAndClient ??= Promise.all([this.o.client(), s3Sdk()]).then(([client, sdk]) => ({ client, sdk })))
  }

  private sse() {
    if (!this.o.sse) return {}
    return {
      ServerSideEncryption: this.o.sse.type as ServerSideEncryption,
      ...(this.o.sse.type === 'aws:kms' && this.o.sse.kmsKeyId ? { SSEKMSKeyId: this.o.sse.kmsKeyId } : {}),
    }
  }

  private wrap(e: unknown): Error {
    if (e instanceof StorageError) return e
    if ((e as Error)?.name === 'AbortError') return e as Error
    return new StorageError('s3', describeS3Error(e, this.o.bucket))
  }

  async put(key: string, body: Readable, signal?: AbortSignal): Promise<{ size: number }> {
    const [{ client }, Upload] = await Promise.all([this.s3(), s3Upload()])
    let size = 0
    // Counted on the way through (a 'data' listener would start the flow before the upload reads it).
    const counted = new Transform({
      transform(c: Buffer, _e, cb) {
        size += c.length
        cb(null, c)
      },
    })
    body.on('error', (e) => counted.destroy(e))
    body.pipe(counted)
    const upload = new Upload({
      client,
      params: { Bucket: this.o.bucket, Key: this.prefix + key, Body: counted, ...this.sse() },
      partSize: this.o.partSizeBytes ?? 16 * 1024 * 1024,
      queueSize: this.o.queueSize ?? 2,
      leavePartsOnError: false,
    })
    const abort = () => void upload.abort().catch(() => {})
    signal?.addEventListener('abort', abort, { once: true })
    try {
      await upload.done()
    } catch (e) {
      body.destroy()
      throw signal?.aborted ? (signal.reason ?? e) : this.wrap(e)
    } finally {
      signal?.removeEventListener('abort', abort)
    }
    return { size }
  }

  async putSmall(key: string, data: Buffer | string): Promise<void> {
    const { client, sdk } = await this.s3()
    try {
      await client.send(new sdk.PutObjectCommand({ Bucket: this.o.bucket, Key: this.prefix + key, Body: data, ...this.sse() }))
    } catch (e) {
      throw this.wrap(e)
    }
  }

  async get(key: string, signal?: AbortSignal): Promise<Readable> {
    const { client, sdk } = await this.s3()
    try {
      const r = await client.send(new sdk.GetObjectCommand({ Bucket: this.o.bucket, Key: this.prefix + key }), { abortSignal: signal })
      return r.Body as Readable
    } catch (e) {
      if ((e as { name?: string }).name === 'NoSuchKey')
        throw new StorageError('not_found', `The object ${key} is missing from ${this.location}.`)
      throw this.wrap(e)
    }
  }

  async getBuffer(key: string): Promise<Buffer> {
    const stream = await this.get(key)
    const chunks: Buffer[] = []
    for await (const c of stream) chunks.push(c as Buffer)
    return Buffer.concat(chunks)
  }

  async getTagged(key: string): Promise<{ data: Buffer; tag: string | null }> {
    const { client, sdk } = await this.s3()
    try {
      const r = await client.send(new sdk.GetObjectCommand({ Bucket: this.o.bucket, Key: this.prefix + key }))
      const chunks: Buffer[] = []
      for await (const c of r.Body as Readable) chunks.push(c as Buffer)
      return { data: Buffer.concat(chunks), tag: r.ETag ?? null }
    } catch (e) {
      if ((e as { name?: string }).name === 'NoSuchKey')
        throw new StorageError('not_found', `The object ${key} is missing from ${this.location}.`)
      throw this.wrap(e)
    }
  }

  async exists(key: string): Promise<boolean> {
    const { client, sdk } = await this.s3()
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: this.o.bucket, Key: this.prefix + key }))
      return true
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
      if (status === 404) return false
      throw this.wrap(e)
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const { client, sdk } = await this.s3()
    const out: StoredObject[] = []
    let token: string | undefined
    try {
      do {
        const r = await client.send(
          new sdk.ListObjectsV2Command({ Bucket: this.o.bucket, Prefix: this.prefix + prefix, ContinuationToken: token }),
        )
        for (const o of r.Contents ?? [])
          out.push({
            key: o.Key!.slice(this.prefix.length),
            size: o.Size ?? 0,
            modified: o.LastModified ?? new Date(0),
            ...(o.ETag ? { tag: o.ETag } : {}),
          })
        token = r.IsTruncated ? r.NextContinuationToken : undefined
      } while (token)
    } catch (e) {
      throw this.wrap(e)
    }
    return out.sort((a, b) => a.key.localeCompare(b.key))
  }

  /** Multipart uploads in progress under the prefix, each with the bytes of the parts uploaded so far. */
  async listPartial(prefix: string): Promise<StoredObject[]> {
    const { client, sdk } = await this.s3()
    const out: StoredObject[] = []
    try {
      let keyMarker: string | undefined
      let uploadIdMarker: string | undefined
      do {
        const r = await client.send(
          new sdk.ListMultipartUploadsCommand({
            Bucket: this.o.bucket,
            Prefix: this.prefix + prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        )
        for (const u of r.Uploads ?? []) {
          let size = 0
          let part: string | undefined
          do {
            const parts = await client.send(
              new sdk.ListPartsCommand({ Bucket: this.o.bucket, Key: u.Key!, UploadId: u.UploadId!, PartNumberMarker: part }),
            )
            size += (parts.Parts ?? []).reduce((n, p) => n + (p.Size ?? 0), 0)
            part = parts.IsTruncated ? parts.NextPartNumberMarker : undefined
          } while (part)
          out.push({ key: u.Key!.slice(this.prefix.length), size, modified: u.Initiated ?? new Date(0) })
        }
        keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined
        uploadIdMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined
      } while (keyMarker)
    } catch (e) {
      // Some S3-compatible stores do not implement the listing: there is nothing to count there.
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
      if (status === 501 || status === 405 || status === 404) return out
      throw this.wrap(e)
    }
    return out.sort((a, b) => a.key.localeCompare(b.key))
  }

  async discard(prefix: string): Promise<void> {
    // S3 has no folders: the objects under the prefix are all there is (stale multipart uploads: cleanupIncomplete).
    await this.delete((await this.list(prefix)).map((o) => o.key))
  }

  async delete(keys: string[]): Promise<void> {
    const { client, sdk } = await this.s3()
    try {
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000)
        const r = await client.send(
          new sdk.DeleteObjectsCommand({
            Bucket: this.o.bucket,
            Delete: { Objects: batch.map((k) => ({ Key: this.prefix + k })), Quiet: true },
          }),
        )
        if (r.Errors?.length)
          throw new StorageError('s3', `S3 refused to delete ${r.Errors.length} object(s), e.g. ${r.Errors[0].Key}: ${r.Errors[0].Message}`)
      }
    } catch (e) {
      throw this.wrap(e)
    }
  }

  /** Abort multipart uploads under our prefix started longer ago than the given age (crashed or killed backups). */
  async cleanupIncomplete(olderThanMs: number): Promise<{ removed: number }> {
    const { client, sdk } = await this.s3()
    let removed = 0
    try {
      const r = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: this.o.bucket, Prefix: this.prefix }))
      for (const u of r.Uploads ?? []) {
        if (u.Initiated && Date.now() - u.Initiated.getTime() < olderThanMs) continue
        await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.o.bucket, Key: u.Key!, UploadId: u.UploadId! }))
        removed++
      }
    } catch (e) {
      // Some S3-compatible stores do not implement the listing; nothing to clean there.
      if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 501) return { removed }
      throw this.wrap(e)
    }
    return { removed }
  }
}
