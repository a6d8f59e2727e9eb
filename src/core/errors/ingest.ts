/**
 * The Sentry-compatible ingest listener, on its own address (ERROR_INGEST_ADDR, default
 * 127.0.0.1:7481), run by the host/agent. It serves only:
 *
 *   POST /api/<project>/envelope/      envelopes (Sentry's SDKs since v7, and ours)
 *   POST /api/<project>/store/         single events (older SDKs)
 *   POST /api/<project>/sourcemaps/?release=R&name=N   a source map (Authorization: Bearer <upload token>)
 *
 * so binding it to a public interface behind TLS exposes nothing else. Every request is authenticated
 * by the DSN's public key (`X-Sentry-Auth: Sentry sentry_key=…`, `?sentry_key=…`, or the envelope
 * header's `dsn`). Bodies may be gzip, deflate or br; at most 1 MiB as sent and 5 MiB unpacked (413
 * beyond). A client (by address) sending more than ERROR_INGEST_RATE events per second gets 429 with
 * `Retry-After` and `X-Sentry-Rate-Limits`; so does everyone while the store lags too far behind.
 * Malformed input is answered 400 (bad JSON, a broken envelope, an event with nothing in it), 401/403
 * (no or wrong key), 404 (anything else), 405, 415 (unknown encoding); every outcome is counted.
 * An envelope is checked whole before any of it is handed on, and answered only once stored.
 */
import { timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import type { Logger } from '../log/logger'
import { EnvelopeError, parseEnvelope } from './envelope'

export const MAX_BODY = 1024 * 1024
/** Request headers a browser may send cross-origin (relay's list). */
export const CORS_ALLOW_HEADERS =
  'Content-Type, X-Sentry-Auth, Authorization, Content-Encoding, Accept, Origin, Referer, X-Requested-With, Baggage, Sentry-Trace'
export const MAX_UNPACKED = 5 * 1024 * 1024

export interface IngestSink {
  /** Validate, scrub, group and store these events (all or none); InvalidEvent for bad ones. */
  accept(project: string, events: unknown[]): Promise<string[]>
  /** Store a source map for a release. */
  saveSourceMap(release: string, name: string, text: string): void
  /** Whether the store is too far behind to take more now. */
  saturated(): boolean
  count(outcome: string, n?: number): void
}

export interface IngestServer {
  url: string
  host: string
  port: number
  close(): Promise<void>
}

const gunzip = promisify(zlib.gunzip)
const inflate = promisify(zlib.inflate)
const brotli = promisify(zlib.brotliDecompress)

class HttpError extends Error {
  constructor(
    public status: number,
    public outcome: string,
    message: string,
    public headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

function authKey(req: IncomingMessage, url: URL): string | null {
  const h = req.headers['x-sentry-auth'] ?? (req.headers.authorization?.startsWith('Sentry ') ? req.headers.authorization : undefined)
  const m = typeof h === 'string' ? /sentry_key\s*=\s*([^,\s]+)/.exec(h) : null
  return m?.[1] ?? url.searchParams.get('sentry_key')
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > MAX_BODY) throw new HttpError(413, 'too_large', `The body is larger than ${MAX_BODY} bytes.`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length
    if (size > MAX_BODY) throw new HttpError(413, 'too_large', `The body is larger than ${MAX_BODY} bytes.`)
    chunks.push(c)
  }
  const raw = Buffer.concat(chunks)
  const enc = String(req.headers['content-encoding'] ?? 'identity')
    .toLowerCase()
    .trim()
  try {
    if (enc === 'identity' || enc === '') return raw
    const opts = { maxOutputLength: MAX_UNPACKED }
    if (enc === 'gzip' || enc === 'x-gzip') return await gunzip(raw, opts)
    if (enc === 'deflate') return await inflate(raw, opts).catch(() => promisify(zlib.inflateRaw)(raw, opts))
    if (enc === 'br') return await brotli(raw, opts)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError)
      throw new HttpError(413, 'too_large', `The body unpacks to more than ${MAX_UNPACKED} bytes.`)
    throw new HttpError(400, 'malformed', `The body is not valid ${enc}.`)
  }
  throw new HttpError(415, 'bad_encoding', `Content-Encoding "${enc.slice(0, 40)}" is not supported: use gzip, deflate, br or none.`)
}

/** A token bucket per client address: `rate` events a second, bursts of twice that. */
class RateLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>()
  constructor(private rate: number) {}
  take(client: string, n: number, now = Date.now()): number {
    let b = this.buckets.get(client)
    if (!b) {
      if (this.buckets.size > 10_000) this.buckets.clear()
      b = { tokens: this.rate * 2, at: now }
      this.buckets.set(client, b)
    }
    b.tokens = Math.min(this.rate * 2, b.tokens + ((now - b.at) / 1000) * this.rate)
    b.at = now
    if (b.tokens >= n) {
      b.tokens -= n
      return 0
    }
    return Math.max(1, Math.ceil((n - b.tokens) / this.rate))
  }
}

export async function startIngest(o: {
  host: string
  port: number
  key: () => string
  uploadToken: () => string
  ratePerClient: number
  sink: IngestSink
  log: Logger
}): Promise<IngestServer> {
  const limiter = new RateLimiter(o.ratePerClient)

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    if (res.headersSent || res.destroyed) return
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Expose-Headers': 'X-Sentry-Error, X-Sentry-Rate-Limits, Retry-After',
      ...headers,
    })
    res.end(JSON.stringify(body))
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://ingest')
    const m = /^\/api\/([A-Za-z0-9_-]{1,64})\/(envelope|store|sourcemaps)\/?$/.exec(url.pathname)
    if (!m) throw new HttpError(404, 'not_found', 'Only /api/<project>/envelope/ and /api/<project>/store/ are served here.')
    if (req.method === 'OPTIONS') {
      // A browser's CORS preflight, answered as Sentry's relay does (any origin: the DSN key is public).
      res.writeHead(204, {
        'Access-Control-Allow-Origin': '*',
        'Access-Control-Allow-Methods': 'POST, OPTIONS',
        'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS,
        'Access-Control-Max-Age': '3600',
        Vary: 'Origin',
      })
      return void res.end()
    }
    if (req.method !== 'POST') throw new HttpError(405, 'bad_method', 'Only POST is accepted.', { Allow: 'POST, OPTIONS' })
    const [, project, route] = m
    if (route === 'sourcemaps') {
      const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')
      if (!auth || !sameKey(auth[1], o.uploadToken()))
        throw new HttpError(
          401,
          'rejected_auth',
          'Uploading source maps needs "Authorization: Bearer <upload token>" (examforge-ops errors dsn --upload-token).',
        )
      const release = url.searchParams.get('release')
      const name = url.searchParams.get('name')
      if (!release || !name) throw new HttpError(400, 'malformed', 'Say which map this is: ?release=<release>&name=<file>.map')
      const body = await readBody(req)
      try {
        o.sink.saveSourceMap(release, name, body.toString('utf8'))
      } catch (e) {
        throw new HttpError(400, 'malformed', (e as Error).message)
      }
      o.sink.count('sourcemap')
      return send(res, 200, { saved: name, release })
    }
    let key = authKey(req, url)
    // A wrong key in the header or query is refused before the body is read.
    if (key && !sameKey(key, o.key()))
      throw new HttpError(403, 'rejected_auth', 'The DSN key is not this ingest\'s: use the DSN "examforge-ops errors dsn" prints.')
    const body = await readBody(req)
    const enc = String(req.headers['content-encoding'] ?? '').toLowerCase()
    if (enc && enc !== 'identity') o.sink.count(`encoding_${enc}`)
    let events: unknown[]
    if (route === 'store') {
      try {
        events = [JSON.parse(body.toString('utf8'))]
      } catch {
        throw new HttpError(400, 'malformed', 'The event is not valid JSON.')
      }
    } else {
      let env
      try {
        env = parseEnvelope(body)
      } catch (e) {
        if (e instanceof EnvelopeError) throw new HttpError(400, 'malformed', `The envelope is malformed: ${e.message}.`)
        throw e
      }
      if (!key && typeof env.header.dsn === 'string') key = /\/\/([^:@/]+)(?::[^@]*)?@/.exec(env.header.dsn)?.[1] ?? null
      for (const [t, n] of Object.entries(env.discarded)) o.sink.count(`discarded_${t}`, n)
      if (env.unknown) o.sink.count('unknown_item', env.unknown)
      if (!env.events.length && env.unknown && !Object.keys(env.discarded).length)
        throw new HttpError(400, 'malformed', 'The envelope holds no item type this ingest knows.')
      events = env.events
    }
    if (!key) throw new HttpError(401, 'rejected_auth', 'No DSN key: send X-Sentry-Auth with sentry_key, or ?sentry_key=.')
    if (!sameKey(key, o.key()))
      throw new HttpError(403, 'rejected_auth', 'The DSN key is not this ingest\'s: use the DSN "examforge-ops errors dsn" prints.')
    if (!events.length) return send(res, 200, {})
    const client = req.socket.remoteAddress ?? 'unknown'
    const backlog = o.sink.saturated()
    const wait = backlog ? 5 : limiter.take(`${client}`, events.length)
    if (backlog) o.sink.count('shed_backlog')
    if (wait)
      throw new HttpError(429, 'rate_limited', 'Too many events: slow down.', {
        'Retry-After': String(wait),
        'X-Sentry-Rate-Limits': `${wait}::${backlog ? 'organization' : 'key'}`,
      })
    const ids = await o.sink.accept(project, events)
    send(res, 200, { id: ids[0] ?? null })
  }

  const server: Server = createServer((req, res) => {
    req.on('error', () => {})
    res.on('error', () => {})
    handle(req, res).catch((e: unknown) => {
      if (e instanceof HttpError) {
        o.sink.count(e.outcome)
        send(res, e.status, { detail: e.message }, { 'X-Sentry-Error': e.message, ...e.headers })
      } else if ((e as Error)?.name === 'InvalidEvent') {
        o.sink.count('invalid_event')
        send(res, 400, { detail: `The event was refused: ${(e as Error).message}.` })
      } else {
        o.sink.count('internal_error')
        o.log.warn('error ingest: could not store events', { error: (e as Error)?.message })
        send(res, 503, { detail: 'The events could not be stored now; try again.' }, { 'Retry-After': '10' })
      }
      // The rest of a refused body is not read: close the connection after answering.
      if (!req.complete) res.once('finish', () => req.socket.destroy())
    })
  })
  server.headersTimeout = 10_000
  server.requestTimeout = 30_000
  server.on('clientError', (_err, socket) => {
    o.sink.count('malformed_http')
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
    else socket.destroy()
  })
  server.on('connection', (s: Socket) => s.on('error', () => s.destroy()))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => resolve())
  })
  server.on('error', (e) => o.log.error('error ingest: server error', { error: e.message }))
  const port = (server.address() as AddressInfo).port
  const host = o.host.includes(':') ? `[${o.host}]` : o.host
  return {
    url: `http://${host}:${port}`,
    host: o.host,
    port,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

/**
 * Whether our ingest answers at `url` with this DSN key: an envelope holding only its header is accepted
 * (200, nothing stored) with the right key and refused (403) with another. Never throws.
 */
export async function probeIngest(
  url: string,
  key: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ state: 'ours' | 'wrong_key' | 'not_ingest' | 'none'; latencyMs: number; error?: unknown }> {
  const t0 = performance.now()
  const sig = signal ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs)
  try {
    const r = await fetch(`${url}/api/1/envelope/`, {
      method: 'POST',
      body: '{}',
      headers: { 'X-Sentry-Auth': `Sentry sentry_version=7, sentry_key=${key}`, 'User-Agent': 'examforge-ops/probe' },
      signal: sig,
    })
    await r.arrayBuffer().catch(() => null)
    const latencyMs = performance.now() - t0
    if (r.status === 200 && r.headers.get('access-control-expose-headers')?.includes('X-Sentry-Rate-Limits')) return { state: 'ours', latencyMs }
    if (r.status === 403 && r.headers.get('x-sentry-error')) return { state: 'wrong_key', latencyMs }
    return { state: 'not_ingest', latencyMs }
  } catch (error) {
    return { state: 'none', latencyMs: performance.now() - t0, error }
  }
}

/** Where to connect to reach a listener bound to `host` (a wildcard address is reached on loopback). */
export function connectHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}
