import { createRequire } from 'node:module'

/**
 * Heavy dependencies, loaded the first time they are needed: a CLI backup to a folder starts without
 * the AWS SDK, ioredis, systeminformation or the replication client (about 0.3 s and 35 MB less).
 */
const once = <T>(load: () => Promise<T>) => {
  let p: Promise<T> | null = null
  return () => (p ??= load())
}

export const s3Sdk = once(() => import('@aws-sdk/client-s3'))
export const s3Upload = once(async () => (await import('@aws-sdk/lib-storage')).Upload)
export const ioredis = once(async () => (await import('ioredis')).default)
export const systemInformation = once(async () => (await import('systeminformation')).default)
export const logicalReplication = once(() => import('pg-logical-replication'))

/**
 * The zstd binding (a native addon), for runtimes whose zlib has no zstd (Node 20): loaded synchronously
 * on first use and never before, so a runtime that has zstd in zlib (Electron's Node) never loads it.
 * A require the bundlers leave alone: the module stays external, resolved from node_modules at run time.
 */
let zstd: typeof import('zstd-napi') | null = null
export const zstdNapi = (): typeof import('zstd-napi') => (zstd ??= createRequire(import.meta.url)('zstd-napi'))

/** The same addon's low-level binding (a decompression context driven into our own reused blocks), loaded the same way. */
let zstdLow: typeof import('zstd-napi/binding') | null = null
export const zstdBinding = (): typeof import('zstd-napi/binding') => (zstdLow ??= createRequire(import.meta.url)('zstd-napi/binding'))
