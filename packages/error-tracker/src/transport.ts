/**
 * Sending: Sentry envelopes over HTTP(S) to the DSN's `/api/<project>/envelope/`, authenticated with
 * `X-Sentry-Auth`, gzipped above 8 KiB. Several events go in one envelope (the ExamForge Ops ingest
 * accepts that; Sentry's own servers take one event per envelope, so use batchSize 1 against them).
 * Resolves with the HTTP status and the Retry-After seconds (null on a network failure); never throws.
 */
import http from 'node:http'
import https from 'node:https'
import { gzipSync } from 'node:zlib'

export interface Dsn {
  protocol: 'http' | 'https'
  publicKey: string
  host: string
  port: number
  projectId: string
  url: string
}

export function parseDsn(dsn: string): Dsn {
  const m = /^(https?):\/\/([^:@/]+)(?::[^@/]*)?@([^/:]+|\[[^\]]+\])(?::(\d+))?\/(?:.*\/)?(\w+)\/?$/.exec(dsn.trim())
  if (!m) throw new Error('The DSN is not of the form http(s)://<key>@<host>[:port]/<project>.')
  const protocol = m[1] as 'http' | 'https'
  const port = m[4] ? Number(m[4]) : protocol === 'https' ? 443 : 80
  return { protocol, publicKey: m[2], host: m[3], port, projectId: m[5], url: `${protocol}://${m[3]}:${port}/api/${m[5]}/envelope/` }
}

export interface SendResult {
  status: number | null
  retryAfterS: number | null
}

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 4 }), https: new https.Agent({ keepAlive: true, maxSockets: 4 }) }

export function sendEnvelope(
  dsn: Dsn,
  events: Record<string, unknown>[],
  sdk: { name: string; version: string },
  timeoutMs = 10_000,
): Promise<SendResult> {
  const header = JSON.stringify({ sent_at: new Date().toISOString(), sdk, event_id: events[0]?.event_id })
  const parts = [header]
  for (const e of events) {
    const body = JSON.stringify(e)
    parts.push(JSON.stringify({ type: 'event', length: Buffer.byteLength(body) }), body)
  }
  let body: Buffer = Buffer.from(parts.join('\n') + '\n')
  const headers: Record<string, string> = {
    'Content-Type': 'application/x-sentry-envelope',
    'X-Sentry-Auth': `Sentry sentry_version=7, sentry_client=${sdk.name}/${sdk.version}, sentry_key=${dsn.publicKey}`,
  }
  if (body.length > 8192) {
    body = gzipSync(body)
    headers['Content-Encoding'] = 'gzip'
  }
  headers['Content-Length'] = String(body.length)
  return new Promise((resolve) => {
    let done = false
    const finish = (r: SendResult) => {
      if (!done) {
        done = true
        resolve(r)
      }
    }
    try {
      const req = (dsn.protocol === 'https' ? https : http).request(
        dsn.url,
        { method: 'POST', headers, agent: agents[dsn.protocol], timeout: timeoutMs },
        (res) => {
          res.resume()
          res.on('error', () => finish({ status: null, retryAfterS: null }))
          const ra = Number(res.headers['retry-after'])
          res.on('end', () => finish({ status: res.statusCode ?? null, retryAfterS: Number.isFinite(ra) ? ra : null }))
        },
      )
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', () => finish({ status: null, retryAfterS: null }))
      req.end(body)
    } catch {
      finish({ status: null, retryAfterS: null })
    }
  })
}
