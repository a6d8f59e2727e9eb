import { pgClient, pgTransport } from '../../db/connect'
import { maskUrl } from '../../log/scrub'
import { connectTimeouts } from '../../db/timeouts'
import { degraded, describeNetError, formatBytes, ok, unhealthy, type Probe, type ProbeOutcome } from '../probe'

export interface PostgresProbeOptions {
  url: string | null
  timeoutMs: number
  /** Degrade when connections exceed this share of max_connections. */
  connectionsWarnRatio?: number
  /** Degrade when a transaction has been open longer than this. */
  longTransactionWarnS?: number
}

export function postgresProbe(o: PostgresProbeOptions): Probe {
  return {
    id: 'postgres',
    label: 'PostgreSQL',
    howToConfigure: 'Set DATABASE_URL to the ExamForge database (postgres://user:password@host:5432/db).',
    howToEncrypt: "turn ssl on in the server and add sslmode=verify-full (with sslrootcert, the server's CA) to DATABASE_URL.",
    configured: () => !!o.url,
    async run(signal) {
      const client = pgClient(o.url!, {
        ...connectTimeouts({ connectTimeoutMs: o.timeoutMs, statementTimeoutMs: o.timeoutMs }),
        application_name: 'examforge-ops:health',
      })
      const abort = () => void client.end().catch(() => {})
      signal.addEventListener('abort', abort, { once: true })
      try {
        try {
          await client.connect()
        } catch (e) {
          const code = (e as { code?: string }).code
          // A TLS setting or certificate problem, already explained by the connection helper.
          if (code === 'TLS_SETTINGS' || (e as Error).cause !== undefined)
            return unhealthy((e as Error).message, { target: maskUrl(o.url), sslmode: client.tls.mode })
          if (code === '28P01' || code === '28000')
            return unhealthy('PostgreSQL rejected the credentials: check the user and password in DATABASE_URL.')
          if (code === '3D000') return unhealthy('The database named in DATABASE_URL does not exist on that server.')
          return unhealthy(describeNetError(e, 'PostgreSQL'), { target: maskUrl(o.url), sslmode: client.tls.mode })
        }
        const transport = pgTransport(client)
        const t0 = performance.now()
        await client.query('SELECT 1')
        const roundTripMs = performance.now() - t0
        const { rows } = await client.query(`
          SELECT current_setting('server_version') AS version,
                 current_setting('max_connections')::int AS max_connections,
                 (SELECT count(*) FROM pg_stat_activity)::int AS connections,
                 pg_database_size(current_database())::bigint AS db_size,
                 current_database() AS database,
                 current_setting('wal_level') AS wal_level,
                 pg_is_in_recovery() AS in_recovery,
                 COALESCE((SELECT EXTRACT(EPOCH FROM max(now() - xact_start))
                             FROM pg_stat_activity
                            WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()
                              AND backend_type = 'client backend'), 0)::float8 AS longest_xact_s,
                 (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl,
                 (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl_version`)
        const r = rows[0]
        const connRatio = r.connections / r.max_connections
        const details = {
          version: r.version as string,
          database: r.database as string,
          connections: r.connections as number,
          maxConnections: r.max_connections as number,
          databaseSize: formatBytes(Number(r.db_size)),
          databaseBytes: Number(r.db_size),
          longestTransactionS: Math.round(r.longest_xact_s),
          walLevel: r.wal_level as string,
          role: r.in_recovery ? 'replica' : 'primary',
          roundTripMs: Math.round(roundTripMs * 10) / 10,
          sslmode: client.tls.mode,
          // The server's own view of this connection (pg_stat_ssl), next to what our socket says.
          serverSeesTls: r.ssl === true,
          tlsVersion: (r.ssl_version as string | null) ?? null,
        }
        const withTransport = (x: ProbeOutcome): ProbeOutcome => ({ ...x, transport })
        const warnRatio = o.connectionsWarnRatio ?? 0.8
        const warnXact = o.longTransactionWarnS ?? 300
        if (connRatio >= warnRatio)
          return withTransport(
            degraded(
              `${r.connections} of ${r.max_connections} connections in use (${Math.round(connRatio * 100)}%): close idle clients or raise max_connections.`,
              details,
              roundTripMs,
            ),
          )
        if (r.longest_xact_s >= warnXact)
          return withTransport(
            degraded(
              `A transaction has been open for ${Math.round(r.longest_xact_s)} s; long transactions block vacuum. Find it in pg_stat_activity.`,
              details,
              roundTripMs,
            ),
          )
        return withTransport(
          ok(
            `PostgreSQL ${String(r.version).split(' ')[0]} answers; ${r.connections}/${r.max_connections} connections, ${details.databaseSize}.`,
            details,
            roundTripMs,
          ),
        )
      } finally {
        signal.removeEventListener('abort', abort)
        await client.end().catch(() => {})
      }
    },
  }
}
