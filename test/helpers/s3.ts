import { mkdirSync } from 'node:fs'
// s3rver: a real S3 HTTP endpoint, spoken to through the real AWS SDK.
import S3rver from 's3rver'

export interface S3Server {
  endpoint: string
  close(): Promise<void>
}

export const TEST_BUCKET = 'examforge-backups'
export const S3_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }

export async function startS3(directory: string): Promise<S3Server> {
  mkdirSync(directory, { recursive: true })
  const srv = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: TEST_BUCKET }] })
  const { port } = (await srv.run()) as { port: number }
  return { endpoint: `http://127.0.0.1:${port}`, close: () => srv.close() }
}
