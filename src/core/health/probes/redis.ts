import { explainRedisTlsError, redisConnection, redisTransport } from '../../db/redis'
import { ioredis } from '../../deps/lazy'
import { maskUrl } from '../../log/scrub'
import { describeNetError, degraded, formatBytes, ok, unhealthy, type Probe, type ProbeOutcome } from '../probe'

export function parseRedisInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':')
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1)
  }
  return out
}

export function redisProbe(o: { url: string | null; timeoutMs: number; memoryWarnRatio?: number }): Probe {
  return {
    id: 'redis',
    label: 'Redis',
    howToConfigure: 'Set REDIS_URL, e.g. redis://host:6379 (a password goes in the URL).',
    howToEncrypt: 'enable TLS on the Redis server and use rediss:// in REDIS_URL (REDIS_TLS_CA for a private CA).',
    configured: () => !!o.url,
    async run(signal) {
      const conn = redisConnection(o.url!)
      if (conn.problem) return unhealthy(conn.problem, { target: maskUrl(o.url) })
      const Redis = await ioredis()
      const client = new Redis(conn.url, {
        ...conn.options,
        lazyConnect: true,
        connectTimeout: o.timeoutMs,
        commandTimeout: o.timeoutMs,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: () => null,
        reconnectOnError: () => false,
      })
      // ioredis rejects connect() with "Connection is closed"; the cause arrives as an error event.
      let lastError: unknown = null
      client.on('error', (e) => (lastError = e))
      const abort = () => client.disconnect()
      signal.addEventListener('abort', abort, { once: true })
      try {
        try {
          await client.connect()
        } catch (e) {
          const cause = lastError ?? e
          return unhealthy(explainRedisTlsError(cause, conn) ?? describeNetError(cause, 'Redis'), { target: maskUrl(o.url) })
        }
        const transport = redisTransport(client.stream, conn)
        const t0 = performance.now()
        try {
          await client.ping()
        } catch (e) {
          const msg = (e as Error).message
          if (/NOAUTH|WRONGPASS/i.test(msg)) return unhealthy('Redis refused the credentials: check the password in REDIS_URL.')
          return unhealthy(describeNetError(e, 'Redis'))
        }
        const pingMs = performance.now() - t0
        const info = parseRedisInfo(await client.info())
        const used = Number(info.used_memory ?? 0)
        const max = Number(info.maxmemory ?? 0)
        const details = {
          version: info.redis_version ?? null,
          role: info.role ?? null,
          connectedClients: Number(info.connected_clients ?? 0),
          usedMemory: formatBytes(used),
          maxMemory: max > 0 ? formatBytes(max) : 'no limit',
          usedMemoryBytes: used,
          maxMemoryBytes: max,
          pingMs: Math.round(pingMs * 10) / 10,
        }
        const withTransport = (x: ProbeOutcome): ProbeOutcome => ({ ...x, transport })
        if (max > 0 && used / max >= (o.memoryWarnRatio ?? 0.9))
          return withTransport(
            degraded(
              `Redis uses ${Math.round((used / max) * 100)}% of maxmemory (${details.usedMemory} of ${details.maxMemory}); keys will be evicted.`,
              details,
              pingMs,
            ),
          )
        return withTransport(
          ok(
            `PING answered in ${details.pingMs} ms; ${details.usedMemory} used, ${details.connectedClients} clients, ${details.role}.`,
            details,
            pingMs,
          ),
        )
      } finally {
        signal.removeEventListener('abort', abort)
        client.disconnect()
      }
    },
  }
}
