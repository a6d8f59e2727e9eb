import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { S3Storage } from '../../src/core/storage/s3'
import { createS3Client } from '../../src/core/storage/s3-client'
import { cli } from '../helpers/cli'
import { createDatabase } from '../helpers/db'
import { startHttp } from '../helpers/http'
import { S3_CREDENTIALS, TEST_BUCKET } from '../helpers/s3'
import { seedExamforge } from '../helpers/seed'

/**
 * s3rver takes server-side encryption headers and ignores them, so what S3 would be asked is read off
 * the wire: a recording proxy in front of s3rver passes every request on unchanged (signatures hold,
 * the Host header is the one signed) and keeps the method, path, query and headers of each.
 */
interface Seen {
  method: string
  url: string
  headers: Record<string, string | string[] | undefined>
}
async function recordingProxy(target: string) {
  const seen: Seen[] = []
  const to = new URL(target)
  const server = await startHttp((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers })
    const up = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    up.on('error', () => res.writeHead(502).end())
    req.pipe(up)
  })
  return { ...server, seen }
}

const SSE = 'x-amz-server-side-encryption'
const KMS_KEY = 'x-amz-server-side-encryption-aws-kms-key-id'
/** Requests that create an object: PutObject, and CreateMultipartUpload (POST ?uploads); parts carry no SSE headers. */
const creates = (s: Seen) => (s.method === 'PUT' && !/[?&]partNumber=/.test(s.url)) || (s.method === 'POST' && /[?&]uploads/.test(s.url))
const parts = (s: Seen) => s.method === 'PUT' && /[?&]partNumber=/.test(s.url)

describe('S3 server-side encryption on the wire', () => {
  let proxy: Awaited<ReturnType<typeof recordingProxy>>
  beforeAll(async () => {
    proxy = await recordingProxy(inject('s3Endpoint'))
  })
  afterAll(() => proxy?.close())

  const storage = (sse: { type: 'AES256' | 'aws:kms'; kmsKeyId?: string }, prefix: string) =>
    new S3Storage({
      client: () =>
        createS3Client(
          {
            bucket: TEST_BUCKET,
            region: 'us-east-1',
            endpoint: proxy.url,
            prefix: '',
            accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID,
            secretAccessKey: S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
          },
          10_000,
        ),
      bucket: TEST_BUCKET,
      prefix,
      sse,
      partSizeBytes: 5 * 1024 * 1024,
    })

  it('asks for AES256 on a multipart upload and on a small object, and not on the parts', async () => {
    proxy.seen.length = 0
    const s = storage({ type: 'AES256' }, 'sse-aes/')
    const body = randomBytes(12 * 1024 * 1024)
    await s.put('big.bin', Readable.from([body.subarray(0, 7_000_000), body.subarray(7_000_000)]))
    await s.putSmall('small.json', '{"ok":true}')
    expect((await s.getBuffer('big.bin')).equals(body)).toBe(true)
    const made = proxy.seen.filter(creates)
    expect(made.map((r) => r.method).sort()).toEqual(['POST', 'PUT'])
    for (const r of made) expect(r.headers[SSE], `${r.method} ${r.url}`).toBe('AES256')
    const uploaded = proxy.seen.filter(parts)
    expect(uploaded.length).toBe(3)
    for (const r of uploaded) expect(r.headers[SSE]).toBeUndefined()
  })

  it('a full backup from the CLI asks for aws:kms with the configured key on every object it stores, and the manifest says so', async () => {
    const db = await createDatabase(inject('pgUrl'), 'sse')
    try {
      await seedExamforge(db.url, 0.1)
      proxy.seen.length = 0
      const prefix = `sse-kms-${Date.now()}/`
      const env = {
        PATH: process.env.PATH!,
        HOME: process.env.HOME!,
        OPS_DATA_DIR: mkdtempSync(join(tmpdir(), 'ops-sse-')),
        DATABASE_URL: db.url,
        BACKUP_S3_BUCKET: TEST_BUCKET,
        S3_ENDPOINT: proxy.url,
        S3_PREFIX: prefix,
        AWS_REGION: 'us-east-1',
        S3_SSE: 'aws:kms',
        S3_SSE_KMS_KEY_ID: 'alias/examforge-backups',
        ...S3_CREDENTIALS,
      }
      const r = await cli(['backup', 'full', '--json'], env)
      expect(r.code, r.stderr).toBe(0)
      const setId = JSON.parse(r.stdout).result.setId as string
      const made = proxy.seen.filter(creates).filter((x) => x.url.includes(prefix))
      // Schema, every data chunk, and the manifest.
      expect(made.length).toBeGreaterThanOrEqual(3)
      expect(made.some((x) => x.url.includes(`${setId}/manifest.json`))).toBe(true)
      for (const x of made) {
        expect(x.headers[SSE], `${x.method} ${x.url}`).toBe('aws:kms')
        expect(x.headers[KMS_KEY], `${x.method} ${x.url}`).toBe('alias/examforge-backups')
      }
      const list = (await cli(['backups', 'list', '--json'], env)).stdout
      const { location, sets } = JSON.parse(list) as { location: string; sets: { setId: string; status: string }[] }
      expect(location).toBe(`s3://${TEST_BUCKET}/${prefix}`)
      expect(sets.find((s) => s.setId === setId)?.status).toBe('complete')
      const manifest = await storage({ type: 'aws:kms' }, prefix).getBuffer(`sets/${setId}/manifest.json`)
      expect(JSON.parse(manifest.toString()).storage).toEqual({ serverSideEncryption: 'aws:kms' })
    } finally {
      await db.drop()
    }
  })
})
