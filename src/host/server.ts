import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import os from 'node:os'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import {
  LAUNCH_PATH,
  SESSION_COOKIE,
  SESSION_FRAGMENT,
  SESSION_HEADER,
  SESSION_PROTOCOL_PREFIX,
  SIGNED_OUT_PATH,
  SIGN_OUT_PATH,
  WS_PATH,
  WS_PROTOCOL,
  WS_SESSION_ENDED,
  clientFrame,
  type ServerFrame,
} from '../shared/ws-protocol'
import type { Identity } from '../core/auth/identity'
import { prometheusText } from '../core/metrics/prometheus'
import { dispatch } from '../core/dispatch'
import type { Ops } from '../core/ops'
import { HostAuth, type AuthOptions, type Caller } from './auth'
import { removeControlFile, writeControlFile } from './control'
import { messages, refuse, sendJson, sendPage } from './replies'
import { serveStatic } from './static'

export interface HostServer {
  port: number
  origin: string
  auth: HostAuth
  /** A URL with a fresh one-time launch token, for the OS user running the host (or another identity). */
  launchUrl(identity?: Identity): string
  close(): Promise<void>
}

const BODY_LIMIT = 1_000_000
/** Open WebSockets per caller (session or token): a tab needs one; more only feed a flood (every event goes to each). */
const SOCKETS_PER_CALLER = 8
/**
 * Connections at once. An operator's tabs need a few; without a cap one local client holding half-sent
 * requests takes every file descriptor the process has, and the database pools, backups and restores
 * running in it start failing. Past it, new connections are closed at once until some end.
 */
const MAX_CONNECTIONS = 256
/** A request's headers must arrive within this (a "slowloris" holds each connection for as long as allowed)... */
const HEADERS_TIMEOUT_MS = 10_000
/** ...and the whole request (at most a 1 MB body on loopback) within this. WebSockets, once open, are not affected. */
const REQUEST_TIMEOUT_MS = 30_000
/** Replies and events queued for a socket that does not read: past this it is cut instead of growing the host's memory. */
const SEND_BUFFER_LIMIT = 8_000_000
/** Calls an open page makes by itself: they keep nothing signed in (a forgotten tab still goes idle). */
const HEARTBEATS: ReadonlySet<string> = new Set(['metrics.watch'])

class BodyError extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/**
 * The request's JSON body. A body over the limit is read to its end (up to 8 times the limit, then
 * the connection is cut) so the caller receives the 413 instead of a reset connection.
 */
function readBody(req: IncomingMessage, limit = BODY_LIMIT): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const tooLarge = () => new BodyError(413, 'too_large', `The request body is over ${limit / 1_000_000} MB: send less.`)
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size <= limit) chunks.push(c)
      else if (size > limit * 8) req.destroy()
    })
    req.on('close', () => reject(tooLarge())) // cut off: settles only if 'end' did not
    req.on('error', () => {})
    req.on('end', () => {
      if (size > limit) return reject(tooLarge())
      if (!chunks.length) return resolve({})
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
      } catch {
        reject(new BodyError(400, 'invalid_json', 'The request body is not valid JSON: send the input as a JSON object, e.g. {}.'))
      }
    })
  })
}

/** The path and query of a request target, or null when it is not an origin-form path ("//", "*", garbage). */
function parseTarget(raw: string | undefined): URL | null {
  if (typeof raw !== 'string' || !raw.startsWith('/')) return null
  try {
    return new URL(`http://host${raw}`)
  } catch {
    return null
  }
}

const header = (req: IncomingMessage, name: string): string | null => {
  const v = req.headers[name]
  return typeof v === 'string' ? v : null
}

/** The session secret the page offered as a WebSocket subprotocol. */
function protocolSecret(req: IncomingMessage): string | null {
  const offered = header(req, 'sec-websocket-protocol')?.split(',') ?? []
  const p = offered.map((s) => s.trim()).find((s) => s.startsWith(SESSION_PROTOCOL_PREFIX))
  return p ? p.slice(SESSION_PROTOCOL_PREFIX.length) : null
}

function denyUpgrade(socket: Duplex, status: number, text: string) {
  if (socket.writable) socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
  socket.destroy()
}

/**
 * The headless host: serves the built renderer and the contract over WebSocket (and plain HTTP
 * POST for programs), bound to 127.0.0.1. Everything but the launch redirect requires a browser
 * session (cookie and per-tab secret) or a token; see auth.ts. No request, header, cookie or frame
 * can stop it: every listener is guarded, every socket has an error listener, every frame is
 * validated before use, and every promise is caught.
 */
export async function startHostServer(o: {
  ops: Ops
  rendererDir: string
  port?: number
  bind?: string
  /** The read-only program token (OPS_API_TOKEN). */
  apiToken?: string
  /** Sessions, launch links and rate limits (defaults in auth.ts); administrators' tokens come from the config. */
  auth?: Omit<AuthOptions, 'apiToken' | 'adminTokens'>
  /** Write host.json (0600) here so `examforge-ops open` can ask for launch links. */
  controlDir?: string
  /** How often ended sessions' sockets are closed and old links dropped (default 5 s). */
  sweepMs?: number
}): Promise<HostServer> {
  const auth = new HostAuth({ ...o.auth, apiToken: o.apiToken, adminTokens: o.ops.config.apiTokens })
  const log = o.ops.log
  const bind = o.bind ?? '127.0.0.1'
  const hostUser: Identity = { via: 'browser', osUser: os.userInfo().username, email: null }
  /** Open sockets: the browser session each belongs to (null for a token), and its caller's rate key. */
  const sockets = new Map<WebSocket, { session: string | null; key: string }>()
  let origin = ''
  const launchUrl = (identity: Identity = hostUser) => `${origin}/?token=${auth.newLaunchToken(identity)}`
  const ended = messages.sessionEnded(Math.round(auth.idleMs / 60_000), Math.round(auth.maxMs / 3600_000))

  const closeSession = (secret: string) => {
    for (const [ws, s] of sockets) if (s.session === secret) ws.close(WS_SESSION_ENDED, 'Session ended: sign in again.')
  }
  const sweeper = setInterval(() => auth.sweep().forEach(closeSession), o.sweepMs ?? 5000)
  sweeper.unref()

  const server = createServer(
    { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
    (req, res) => {
      handle(req, res).catch((e: unknown) => {
        if (e instanceof BodyError) return refuse(req, res, e.status, e.code, e.message)
        log.error('host: a request failed', { error: e instanceof Error ? e.message : 'not an error' })
        if (!res.headersSent) refuse(req, res, 500, 'internal', 'The host could not answer this request; its log says why.')
        else res.destroy()
      })
    },
  )
  server.maxConnections = MAX_CONNECTIONS
  // A malformed request (bad request line, huge headers) is answered 400/431, one too slow 408, and closed
  // (destroyed once the answer is written: a client that ignores the close must not keep the socket); never thrown.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy()
    const status =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request'
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy())
  })
  server.on('connection', (s: Socket) => s.on('error', () => s.destroy()))

  /** The caller of an API request: a token, or a browser session (cookie and secret header). */
  function caller(req: IncomingMessage): Caller | 'ended' | null {
    return auth.bearer(req) ?? auth.session(req, header(req, SESSION_HEADER))
  }
  const unauthorized = (req: IncomingMessage, res: ServerResponse, c: 'ended' | null) =>
    refuse(req, res, 401, c === 'ended' ? 'session_ended' : 'unauthorized', c === 'ended' ? ended : messages.notSignedIn)
  const rateLimited = () => ({
    ok: false as const,
    error: {
      code: 'rate_limited',
      message: `Too many calls (more than ${auth.ratePerSecond} a second, sustained): slow down; calls are accepted again within a second.`,
    },
  })

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (!auth.hostAllowed(req))
      return refuse(req, res, 403, 'forbidden', 'This host only answers requests addressed to 127.0.0.1 or localhost.')
    if (!auth.originAllowed(req)) return refuse(req, res, 403, 'forbidden', 'Requests from another origin are refused.')
    const url = parseTarget(req.url)
    if (!url) return refuse(req, res, 400, 'bad_request', 'The request target is not a path on this host.')
    const path = url.pathname

    // Launch: a one-time token in the URL becomes a session; the page takes its secret from the fragment.
    if (req.method === 'GET' && url.searchParams.has('token')) {
      const r = auth.redeem(url.searchParams.get('token') ?? '', req)
      if (typeof r === 'string') {
        const message =
          r === 'used'
            ? messages.linkUsed
            : r === 'expired'
              ? messages.linkExpired(Math.round(auth.launchTtlMs / 60_000))
              : messages.linkUnknown
        return refuse(req, res, 401, `link_${r}`, message)
      }
      res.writeHead(302, {
        'Set-Cookie': `${SESSION_COOKIE}=${r.cookie}; HttpOnly; SameSite=Strict; Path=/`,
        Location: `/#${SESSION_FRAGMENT}${r.secret}`,
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'no-referrer',
      })
      return res.end()
    }
    if (path === SIGNED_OUT_PATH && req.method === 'GET') return sendPage(res, 200, messages.signedOut)

    // `examforge-ops open`: the control file's secret mints a link for the host's OS user, an administrator's token for its e-mail.
    if (path === LAUNCH_PATH) {
      if (req.method !== 'POST') return refuse(req, res, 405, 'method_not_allowed', 'Use POST.')
      const by = auth.isLocal(req) ? hostUser : auth.bearer(req)?.identity
      if (!by)
        return refuse(
          req,
          res,
          401,
          'unauthorized',
          'Ask with the secret in the host control file (examforge-ops open) or an administrator token.',
        )
      if (by.via === 'program-token')
        return refuse(req, res, 403, 'forbidden', 'OPS_API_TOKEN is a read-only token for programs: it cannot open browser sessions.')
      const identity: Identity = by.via === 'admin-token' ? { via: 'browser', osUser: null, email: by.email } : by
      return sendJson(res, 200, { ok: true, value: { url: launchUrl(identity), expiresInS: Math.round(auth.launchTtlMs / 1000) } })
    }

    if (path === SIGN_OUT_PATH) {
      if (req.method !== 'POST') return refuse(req, res, 405, 'method_not_allowed', 'Use POST.')
      const c = auth.session(req, header(req, SESSION_HEADER))
      if (!c || c === 'ended') return unauthorized(req, res, c)
      const lastOfBrowser = auth.end(c.session!)
      closeSession(c.session!)
      return sendJson(
        res,
        200,
        { ok: true, value: { signedOut: true } },
        lastOfBrowser ? { 'Set-Cookie': `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` } : {},
      )
    }

    if (path.startsWith('/api/call/')) {
      if (req.method !== 'POST') return refuse(req, res, 405, 'method_not_allowed', 'Use POST.')
      const method = path.slice('/api/call/'.length)
      const c = auth.bearer(req) ?? auth.session(req, header(req, SESSION_HEADER), !HEARTBEATS.has(method))
      if (!c || c === 'ended') return unauthorized(req, res, c)
      if (!auth.take(c.key)) return sendJson(res, 429, rateLimited(), { 'Retry-After': '1' })
      const reply = await dispatch(o.ops, method, await readBody(req), { actor: c.identity })
      const status = reply.ok ? 200 : reply.error.code === 'forbidden' ? 403 : 400
      return sendJson(res, status, reply)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(req, res, 405, 'method_not_allowed', 'Only GET is served here.')

    // For Prometheus: "Authorization: Bearer $OPS_API_TOKEN" (or a signed-in page).
    if (path === '/metrics') {
      const c = caller(req)
      if (!c || c === 'ended') return unauthorized(req, res, c)
      if (!auth.take(c.key)) return sendJson(res, 429, rateLimited(), { 'Retry-After': '1' })
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Cache-Control': 'no-store' })
      return res.end(prometheusText(o.ops.metrics.exposition()))
    }

    // The UI's files are no secret: the cookie is enough to load them; calls need the page's secret too.
    const p = auth.page(req)
    if (p !== 'ok') return unauthorized(req, res, p === 'ended' ? 'ended' : null)
    const served = serveStatic(o.rendererDir, path, res)
    if (served === 'bad_path') return refuse(req, res, 404, 'not_found', 'There is nothing at this address.')
    if (served === 'not_built') {
      log.warn('host: the UI is not built', { looked: o.rendererDir })
      return refuse(req, res, 404, 'not_found', 'The UI is not built: run "npm run build" and restart the host.')
    }
  }

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1_000_000,
    // The browser offers ops.v1 plus its secret; only ops.v1 is answered back.
    handleProtocols: (protocols) => (protocols.has(WS_PROTOCOL) ? WS_PROTOCOL : false),
  })
  wss.on('error', (e) => log.warn('host: WebSocket server error', { error: e.message }))

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    if (parseTarget(req.url)?.pathname !== WS_PATH) return denyUpgrade(socket, 404, 'Not Found')
    if (!auth.hostAllowed(req) || !auth.originAllowed(req)) return denyUpgrade(socket, 403, 'Forbidden')
    const c = auth.bearer(req) ?? auth.session(req, protocolSecret(req))
    if (!c || c === 'ended') return denyUpgrade(socket, 401, 'Unauthorized')
    let open = 0
    for (const s of sockets.values()) if (s.key === c.key) open++
    if (open >= SOCKETS_PER_CALLER) return denyUpgrade(socket, 429, 'Too Many Requests')
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.set(ws, { session: c.session, key: c.key })
      // Over the size limit (1009) or invalid UTF-8 (1007): ws reports an error and closes; nothing else to do.
      ws.on('error', () => ws.terminate())
      const send = (f: ServerFrame) => {
        if (ws.readyState !== ws.OPEN) return
        if (ws.bufferedAmount > SEND_BUFFER_LIMIT) return ws.terminate()
        ws.send(JSON.stringify(f), (e) => e && ws.terminate())
      }
      const off = o.ops.events.onAny((event, payload) => send({ event, payload }))
      ws.on('close', () => {
        off()
        sockets.delete(ws)
      })
      ws.on('message', (data, isBinary) => {
        try {
          if (isBinary || !Buffer.isBuffer(data)) return ws.close(1003, 'Frames must be JSON text {id, method, input}.')
          let parsed: unknown
          try {
            parsed = JSON.parse(data.toString('utf8'))
          } catch {
            return ws.close(1003, 'Frames must be JSON text {id, method, input}.')
          }
          const frame = clientFrame.safeParse(parsed)
          if (!frame.success) return ws.close(1003, 'Frames must be JSON {id: integer, method: string, input}.')
          const { id, method, input } = frame.data
          if (c.session && !auth.touch(c.session, !HEARTBEATS.has(method)))
            return ws.close(WS_SESSION_ENDED, 'Session ended: sign in again.')
          if (!auth.take(c.key)) return send({ id, ...rateLimited() })
          dispatch(o.ops, method, input, { actor: c.identity })
            .then((r) => send({ id, ...r } as ServerFrame))
            .catch(() => send({ id, ok: false, error: { code: 'internal', message: 'The call failed; the host log says why.' } }))
        } catch (e) {
          log.warn('host: a WebSocket frame failed', { error: e instanceof Error ? e.message : 'not an error' })
          ws.terminate()
        }
      })
    })
  }
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    try {
      upgrade(req, socket, head)
    } catch (e) {
      log.warn('host: an upgrade request failed', { error: e instanceof Error ? e.message : 'not an error' })
      socket.destroy()
    }
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port ?? 0, bind, () => resolve())
  })
  server.on('error', (e) => log.error('host: server error', { error: e.message }))
  const port = (server.address() as AddressInfo).port
  auth.setAddress(port)
  origin = `http://127.0.0.1:${port}`
  if (o.controlDir) writeControlFile(o.controlDir, { pid: process.pid, port, origin, secret: auth.localSecret })
  return {
    port,
    origin,
    auth,
    launchUrl,
    async close() {
      clearInterval(sweeper)
      if (o.controlDir) removeControlFile(o.controlDir, auth.localSecret)
      for (const s of sockets.keys()) s.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}
