import type { S3Client } from '@aws-sdk/client-s3'
import { s3Sdk } from '../deps/lazy'
import type { Config } from '../config/config'

/**
 * One S3 client for every S3 use (health canary, backups). An explicit endpoint (S3_ENDPOINT)
 * means an S3-compatible store (MinIO, s3rver, R2...): path-style addressing, and checksums only
 * where the API requires them, since many such stores reject the SDK's newer default headers.
 */
export async function createS3Client(s3: Config['s3'], timeoutMs = 10_000): Promise<S3Client> {
  const { S3Client } = await s3Sdk()
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint ?? undefined,
    forcePathStyle: !!s3.endpoint,
    credentials: s3.accessKeyId && s3.secretAccessKey ? { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } : undefined,
    requestChecksumCalculation: s3.endpoint ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
    responseChecksumValidation: s3.endpoint ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
    maxAttempts: 2,
    requestHandler: { requestTimeout: timeoutMs, connectionTimeout: timeoutMs },
  })
}

/** Turn an S3 error into what happened and what to do. */
export function describeS3Error(e: unknown, bucket: string): string {
  const err = e as { name?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number }; code?: string }
  const name = err?.name ?? err?.Code ?? ''
  const status = err?.$metadata?.httpStatusCode
  if (name === 'NoSuchBucket' || (name === 'NotFound' && status === 404))
    return `The bucket "${bucket}" does not exist (or is in another region): create it or fix BACKUP_S3_BUCKET / AWS_REGION.`
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'UnrecognizedClientException')
    return 'S3 rejected the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.'
  if (name === 'AccessDenied' || name === 'Forbidden' || status === 403)
    return `Access to the bucket "${bucket}" was denied: the credentials need s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on it.`
  if (name === 'CredentialsProviderError')
    return 'No AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile/role).'
  const code = err?.code ?? (err as { cause?: { code?: string } })?.cause?.code
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT' || name === 'TimeoutError')
    return `The S3 endpoint could not be reached (${code ?? name}): check S3_ENDPOINT / AWS_REGION and the network.`
  return `S3 request failed: ${name ? name + ': ' : ''}${err?.message ?? String(e)}`
}
