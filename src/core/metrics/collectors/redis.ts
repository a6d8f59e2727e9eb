import type Redis from 'ioredis'
import { redisConnection } from '../../db/redis'
import { ioredis } from '../../deps/lazy'
import { parseRedisInfo } from '../../health/probes/redis'
import { Rates } from '../rates'
import { FIRST, type Collector, type Sample } from './collector'
import { round } from './host'

/** Redis INFO: commands and evictions as rates, memory against maxmemory, clients, keyspace hit rate over the interval. */
export function redisCollector(url: string | null): Collector {
  const rates = new Rates()
  let client: Redis | null = null
  const names = ['redis.ops_per_s', 'redis.mem_used_bytes', 'redis.mem_percent', 'redis.clients', 'redis.hit_rate', 'redis.evicted_per_s']
  return {
    id: 'redis',
    configured: !!url,
    async collect(now) {
      try {
        if (!client) {
          const Redis = await ioredis()
          const conn = redisConnection(url!)
          if (conn.problem) throw new Error(conn.problem)
          client = new Redis(conn.url, {
            ...conn.options,
            lazyConnect: true,
            connectTimeout: 3000,
            commandTimeout: 3000,
            maxRetriesPerRequest: 0,
            enableOfflineQueue: false,
            retryStrategy: () => null,
          })
          client.on('error', () => {}) // the failing command says what happened
        }
        if (client.status === 'wait' || client.status === 'end') await client.connect()
        const i = parseRedisInfo(await client.info())
        const num = (k: string) => (i[k] === undefined ? null : Number(i[k]))
        const rate = (name: string, v: number | null): Sample => {
          const x = rates.rate(name, v, now)
          return { name, v: round(x), raw: v, ...(x === null ? { note: FIRST } : {}) }
        }
        const hits = rates.rate('hits', num('keyspace_hits'), now)
        const misses = rates.rate('misses', num('keyspace_misses'), now)
        const lookups = hits !== null && misses !== null ? hits + misses : null
        const max = num('maxmemory')
        return [
          rate('redis.ops_per_s', num('total_commands_processed')),
          { name: 'redis.mem_used_bytes', v: num('used_memory') },
          {
            name: 'redis.mem_percent',
            v: max ? round((100 * num('used_memory')!) / max) : null,
            ...(max ? {} : { note: 'no maxmemory set' }),
          },
          { name: 'redis.clients', v: num('connected_clients') },
          {
            name: 'redis.hit_rate',
            v: lookups ? round((100 * hits!) / lookups) : null,
            ...(lookups ? {} : { note: lookups === 0 ? 'no lookups in the interval' : FIRST }),
          },
          rate('redis.evicted_per_s', num('evicted_keys')),
        ]
      } catch (e) {
        client?.disconnect() // the next collection connects again
        client = null
        return names.map((name) => ({ name, v: null, note: `Redis did not answer: ${(e as Error).message.slice(0, 120)}` }))
      }
    },
    async close() {
      client?.disconnect()
      client = null
    },
  }
}
