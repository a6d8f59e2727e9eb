import type { Config } from '../config/config'
import { LocalStorage } from './local'
import { S3Storage } from './s3'
import { createS3Client } from './s3-client'
import type { BackupStorage } from './storage'

/** S3 when a bucket is configured, else the local backup folder. */
export function openStorage(config: Config): BackupStorage {
  if (config.s3.bucket) {
    const sse = config.backup.s3Sse
    return new S3Storage({
      client: () => createS3Client(config.s3, 60_000),
      bucket: config.s3.bucket,
      prefix: config.s3.prefix,
      sse: sse ? { type: sse, kmsKeyId: config.backup.s3KmsKeyId ?? undefined } : null,
    })
  }
  return new LocalStorage(config.localBackupPath)
}
