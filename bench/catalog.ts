// The catalog at a year's scale: 1,000 sets in S3 (s3rver), listed cold (empty manifest cache) and warm,
// in the console (ops.backups.list, the restore planner's points) and through the CLI in its own process.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { manifestKey } from '../src/core/backup/manifest'
import { loadConfig } from '../src/core/config/config'
import { silentLogger } from '../src/core/log/logger'
import { createOps } from '../src/core/ops'
import { S3Storage } from '../src/core/storage/s3'
import { createS3Client } from '../src/core/storage/s3-client'
import { objectsOf, syntheticManifest } from '../test/helpers/manifests'

const BUCKET = 'bench-catalog'
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const ms = (t0: number) => Math.round(performance.now() - t0)

/**
 * A year of backups as retention leaves them: the last `days` days of daily fulls each followed by 23 hourly
 * incrementals, and before them the older fulls kept (weekly), up to `total` sets.
 */
function yearOfSets(total: number, now = new Date()): { setId: string; type: 'full' | 'incremental'; parent: string | null; time: Date }[] {
  const days = Math.floor(total / 24)
  const older = total - days * 24
  const stamp = (d: Date, type: string, n: number) =>
    `${d
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z')}-${type}-${(n & 0xffff).toString(16).padStart(4, '0')}`
  const out: { setId: string; type: 'full' | 'incremental'; parent: string | null; time: Date }[] = []
  const day0 = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) - days * 86_400_000
  for (let w = older; w >= 1; w--) {
    const time = new Date(day0 - w * 7 * 86_400_000 + 2 * 3_600_000)
    out.push({ setId: stamp(time, 'full', out.length), type: 'full', parent: null, time })
  }
  for (let d = 0; d < days; d++) {
    const t = day0 + d * 86_400_000 + 2 * 3_600_000
    let parent = stamp(new Date(t), 'full', out.length)
    out.push({ setId: parent, type: 'full', parent: null, time: new Date(t) })
    for (let h = 1; h < 24; h++) {
      const time = new Date(t + h * 3_600_000)
      const setId = stamp(time, 'incremental', out.length)
      out.push({ setId, type: 'incremental', parent, time })
      parent = setId
    }
  }
  return out
}

async function inParallel<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++])
    }),
  )
}

/** `examforge-ops backups list --json` in its own process, as an operator runs it. */
function cliList(root: string, env: Record<string, string>): Promise<{ ms: number; sets: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, [join(root, 'out/host/cli.js'), 'backups', 'list', '--json'], {
      env: { PATH: process.env.PATH!, HOME: process.env.HOME!, OPS_LOG_LEVEL: 'error', ...env },
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`backups list failed (${code}): ${err}`))
      resolve({ ms: ms(t0), sets: (JSON.parse(out) as { sets: unknown[] }).sets.length })
    })
  })
}

/**
 * s3rver in its own process: its ListObjectsV2 continuation tokens are DES-encrypted, which Node 20's OpenSSL 3
 * offers only with the legacy provider, and a thousand sets are more than one page of keys.
 */
function startS3rver(root: string, directory: string): Promise<{ port: number; child: ReturnType<typeof spawn> }> {
  const script = `const S3rver = require(${JSON.stringify(join(root, 'node_modules', 's3rver'))});
    new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: ${JSON.stringify(directory)}, configureBuckets: [{ name: ${JSON.stringify(BUCKET)} }] })
      .run().then(({ port }) => console.log('PORT ' + port))`
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      const m = /PORT (\d+)/.exec(out)
      if (m) resolve({ port: Number(m[1]), child })
    })
    child.on('exit', (code) => reject(new Error(`s3rver exited (${code})`)))
  })
}

export async function catalogBench({ root }: { root: string }) {
  const total = Number(process.env.BENCH_CATALOG_SETS ?? 1000)
  const rounds = Number(process.env.BENCH_CATALOG_ROUNDS ?? 3)
  const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'bench-catalog-'))
  const srv = await startS3rver(root, join(work, 's3'))
  const port = srv.port
  const s3 = {
    bucket: BUCKET,
    prefix: '',
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
  }
  const prefix = 'bench/'
  const env = {
    BACKUP_S3_BUCKET: BUCKET,
    S3_ENDPOINT: s3.endpoint,
    S3_PREFIX: prefix,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  }
  try {
    const storage = new S3Storage({ client: () => createS3Client(s3, 60_000), bucket: BUCKET, prefix })
    const sets = yearOfSets(total)
    const t0 = performance.now()
    let objects = 0
    let manifestBytes = 0
    await inParallel(sets, 16, async (s) => {
      const m = syntheticManifest({ ...s, tables: 20 })
      for (const o of objectsOf(s.setId, s.type, 20)) await storage.putSmall(o.key, o.body)
      const body = JSON.stringify(m)
      await storage.putSmall(manifestKey(s.setId), body)
      objects += objectsOf(s.setId, s.type, 20).length + 1
      manifestBytes += body.length
    })
    process.stderr.write(`${sets.length} sets (${objects} objects) written to s3rver in ${ms(t0)} ms\n`)

    // Before the cache: one listing, then every manifest fetched one after the other (what the catalog did).
    const b0 = performance.now()
    const listed = new Set((await storage.list('sets/')).map((o) => o.key))
    for (const s of sets) if (listed.has(manifestKey(s.setId))) await storage.getBuffer(manifestKey(s.setId))
    const beforeMs = ms(b0)

    const runs: Record<string, number[]> = {
      listingOnly: [],
      coldList: [],
      warmList: [],
      warmPoints: [],
      newProcessWarmList: [],
      cliCold: [],
      cliWarm: [],
    }
    /** This process's CPU time (the catalog's own work; s3rver runs in its own process). */
    const cpu: Record<string, number[]> = { listingOnly: [], coldList: [], warmList: [], warmPoints: [], newProcessWarmList: [] }
    const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      const r = await fn()
      runs[name].push(ms(t0))
      const d = process.cpuUsage(c0)
      cpu[name].push(Math.round((d.user + d.system) / 1000))
      return r
    }
    for (let r = 0; r < rounds; r++) {
      // What storage alone takes to list the sets' prefix (ListObjectsV2 pages, multipart uploads): the floor.
      await timed('listingOnly', () => Promise.all([storage.list('sets/'), storage.listPartial('sets/')]))
      const dataDir = mkdtempSync(join(work, 'data-'))
      const open = () => createOps({ config: loadConfig({ env, dataDir }), face: 'host', log: silentLogger, schedule: false })
      let ops = await open()
      try {
        const cold = await timed('coldList', () => ops.backups.list())
        if (cold.length !== sets.length || cold.some((s) => s.status !== 'complete'))
          throw new Error(`the catalog lists ${cold.length} sets, ${cold.filter((s) => s.status !== 'complete').length} not complete`)
        await timed('warmList', () => ops.backups.list())
        const points = await timed('warmPoints', () => ops.restores.points())
        if (points.chains.length !== sets.filter((s) => s.type === 'full').length) throw new Error('the restore points miss chains')
      } finally {
        await ops.close()
      }
      // Another console on the same data folder (a restart): the cache on disk, nothing in memory.
      ops = await open()
      try {
        await timed('newProcessWarmList', () => ops.backups.list())
      } finally {
        await ops.close()
      }
      const cliData = mkdtempSync(join(work, 'cli-'))
      const c1 = await cliList(root, { ...env, OPS_DATA_DIR: cliData })
      const c2 = await cliList(root, { ...env, OPS_DATA_DIR: cliData })
      if (c1.sets !== sets.length || c2.sets !== sets.length) throw new Error('the CLI lists another number of sets')
      runs.cliCold.push(c1.ms)
      runs.cliWarm.push(c2.ms)
      rmSync(dataDir, { recursive: true, force: true })
      rmSync(cliData, { recursive: true, force: true })
    }
    const medians = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]))
    return {
      note: 'Indicative: the machine is shared. Milliseconds (wall; cpuMs: this process only); medians of the rounds. listingOnly is storage listing the prefix alone, the floor under every list. s3rver on loopback (no network latency: real S3 adds ~10-30 ms per request, which the cache saves on every manifest).',
      sets: sets.length,
      fulls: sets.filter((s) => s.type === 'full').length,
      objects,
      averageManifestBytes: Math.round(manifestBytes / sets.length),
      rounds,
      beforeCacheSequentialMs: beforeMs,
      medians,
      cpuMsMedians: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, median(v)])),
      runs,
    }
  } finally {
    srv.child.kill()
    rmSync(work, { recursive: true, force: true })
  }
}
