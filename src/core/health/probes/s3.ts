import type { S3Client } from '@aws-sdk/client-s3'
import { s3Sdk } from '../../deps/lazy'
import { randomUUID } from 'node:crypto'
import { ok, unhealthy, type Probe } from '../probe'
import { describeS3Error } from '../../storage/s3-client'
import { withUrlTransport } from '../transport'

/** The S3 bucket: reachable, and a put/get/delete canary round trip under the key prefix. */
export function s3Probe(o: {
  bucket: string | null
  prefix: string
  client: () => Promise<S3Client>
  region: string
  endpoint: string | null
}): Probe {
  return withUrlTransport(s3ProbeOf(o), () => o.endpoint ?? `https://s3.${o.region}.amazonaws.com`)
}

function s3ProbeOf(o: Parameters<typeof s3Probe>[0]): Probe {
  return {
    id: 's3',
    label: 'S3 backups',
    howToConfigure: 'Set BACKUP_S3_BUCKET and AWS_REGION (and S3_ENDPOINT for an S3-compatible store).',
    howToEncrypt: 'use an https:// S3_ENDPOINT.',
    configured: () => !!o.bucket,
    async run(signal) {
      const bucket = o.bucket!
      const [s3, { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand }] = await Promise.all([o.client(), s3Sdk()])
      const key = `${o.prefix}.ops-canary/${randomUUID()}`
      const details = { bucket, region: o.region, endpoint: o.endpoint ?? 'AWS' }
      const t0 = performance.now()
      try {
        await s3.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal })
      } catch (e) {
        return unhealthy(describeS3Error(e, bucket), details)
      }
      const headMs = performance.now() - t0
      try {
        const body = `canary ${new Date().toISOString()}`
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }), { abortSignal: signal })
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal })
        const text = await got.Body?.transformToString()
        if (text !== body) return unhealthy(`The canary object read back from "${bucket}" differs from what was written.`, details)
      } catch (e) {
        return unhealthy(`The bucket answers but the canary failed: ${describeS3Error(e, bucket)}`, details)
      } finally {
        await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => {})
      }
      const totalMs = performance.now() - t0
      return ok(
        `Bucket reachable; put/get/delete canary passed in ${Math.round(totalMs)} ms.`,
        { ...details, headMs: Math.round(headMs) },
        totalMs,
      )
    },
  }
}
