import type pg from 'pg'
import { pgClient } from '../../db/connect'
import { Rates } from '../rates'
import { FIRST, type Collector, type Sample } from './collector'
import { round } from './host'
import { connectTimeouts } from '../../db/timeouts'

const DOWN = 'the database did not answer'

/** PostgreSQL through one connection kept open: pg_stat_database counters as rates, connections, size, the longest transaction, replication. */
export function postgresCollector(url: string | null): Collector {
  const rates = new Rates()
  let client: pg.Client | null = null
  let size: { at: number; v: number | null } = { at: 0, v: null }
  const names = [
    'pg.tps',
    'pg.cache_hit_ratio',
    'pg.connections',
    'pg.connections_percent',
    'pg.db_size_bytes',
    'pg.longest_tx_s',
    'pg.deadlocks_per_s',
    'pg.temp_bytes_per_s',
    'pg.replication_lag_bytes',
    'pg.slot_retained_bytes',
  ]
  return {
    id: 'postgres',
    configured: !!url,
    async collect(now) {
      try {
        if (!client) {
          // Kept open: keepalives notice a vanished server, and no query may hang a collection.
          const c = pgClient(url!, { application_name: 'examforge-ops:metrics',
            ...connectTimeouts({ connectTimeoutMs: 5000, statementTimeoutMs: 10_000 }),
          })
          c.on('error', () => {
            if (client === c) client = null
          })
          await c.connect()
          client = c
        }
        const { rows } = await client.query(`
          SELECT (d.xact_commit + d.xact_rollback)::float8 AS xacts, d.blks_hit::float8 AS hit, (d.blks_hit + d.blks_read)::float8 AS reads,
                 d.deadlocks::float8 AS deadlocks, d.temp_bytes::float8 AS temp,
                 (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS conns,
                 current_setting('max_connections')::int AS max_conns,
                 (SELECT extract(epoch FROM max(clock_timestamp() - xact_start)) FROM pg_stat_activity
                   WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend')::float8 AS longest,
                 (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)) FROM pg_stat_replication)::float8 AS lag,
                 (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) FROM pg_replication_slots)::float8 AS slot
            FROM pg_stat_database d WHERE d.datname = current_database()`)
        const r = rows[0]
        if (now - size.at >= 30_000) {
          size = { at: now, v: Number((await client.query(`SELECT pg_database_size(current_database())::float8 AS s`)).rows[0].s) }
        }
        const rate = (name: string, v: number | null): Sample => {
          const x = rates.rate(name, v, now)
          return { name, v: round(x), ...(x === null ? { note: FIRST } : {}) }
        }
        const hit = rates.ratio('hit', r.hit, r.reads, now)
        return [
          rate('pg.tps', r.xacts),
          {
            name: 'pg.cache_hit_ratio',
            v: hit === null ? null : round(100 * hit),
            ...(hit === null ? { note: 'no block reads in the interval yet' } : {}),
          },
          { name: 'pg.connections', v: r.conns },
          { name: 'pg.connections_percent', v: round((100 * r.conns) / r.max_conns) },
          { name: 'pg.db_size_bytes', v: size.v },
          { name: 'pg.longest_tx_s', v: round(r.longest ?? 0) },
          rate('pg.deadlocks_per_s', r.deadlocks),
          rate('pg.temp_bytes_per_s', r.temp),
          { name: 'pg.replication_lag_bytes', v: r.lag, ...(r.lag === null ? { note: 'no replicas' } : {}) },
          { name: 'pg.slot_retained_bytes', v: r.slot, ...(r.slot === null ? { note: 'no replication slots' } : {}) },
        ]
      } catch (e) {
        await client?.end().catch(() => {})
        client = null
        return names.map((name) => ({ name, v: null, note: `${DOWN}: ${(e as Error).message.slice(0, 120)}` }))
      }
    },
    async close() {
      await client?.end().catch(() => {})
      client = null
    },
  }
}
