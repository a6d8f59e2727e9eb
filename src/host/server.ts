import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { SESSION_COOKIE, WS_PATH, type ClientFrame, type ServerFrame } from '../shared/ws-protocol'
import { prometheusText } from '../core/metrics/prometheus'
import { dispatch } from '../core/dispatch'
import type { Ops } from '../core/ops'
import { HostAuth } from './auth'
import { serveStatic } from './static'

export interface HostServer {
  port: number
  origin: string
  auth: HostAuth
  /** A URL with a fresh one-time launch token, to open in a browser. */
  launchUrl(): string
  close(): Promise<void>
}

function refuse(res: ServerResponse, status: 401 | 403 | 404 | 405 | 413, message: string) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
  res.end(
    JSON.stringify({ ok: false, error: { code: status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : 'not_found', message } }),
  )
}

async function readBody(req: IncomingMessage, limit = 1_000_000): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of req) {
    size += (c as Buffer).length
    if (size > limit) throw new Error('body too large')
    chunks.push(c as Buffer)
  }
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}
}

/**
 * The headless host: serves the built renderer and the contract over WebSocket (and plain HTTP
 * POST for scripts), bound to 127.0.0.1. Everything but the launch redirect requires a session
 * cookie or the API token.
 */
export async function startHostServer(o: {
  ops: Ops
  rendererDir: string
  port?: number
  bind?: string
  apiToken?: string
}): Promise<HostServer> {
  const auth = new HostAuth(o.apiToken)
  const bind = o.bind ?? '127.0.0.1'
  const sockets = new Set<WebSocket>()

  const server = createServer((req, res) => {
    void handle(req, res).catch((e) => {
      if (!res.headersSent) refuse(res, 413, (e as Error).message)
      else res.end()
    })
  })

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (!auth.hostAllowed(req)) return refuse(res, 403, 'This host only answers requests addressed to 127.0.0.1 or localhost.')
    if (!auth.originAllowed(req)) return refuse(res, 403, 'Requests from another origin are refused.')
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`)
    // Launch: a one-time token in the URL becomes a session cookie, then the token leaves the address bar.
    if (url.searchParams.has('token') && req.method === 'GET') {
      const session = auth.redeem(url.searchParams.get('token'))
      if (!session)
        return refuse(
          res,
          401,
          'This launch link was already used or is wrong. Ask the host for a new one (restart "npm run serve" or run "examforge-ops open").',
        )
      res.writeHead(302, {
        'Set-Cookie': `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`,
        Location: '/',
        'Cache-Control': 'no-store',
      })
      return res.end()
    }
    const who = auth.authenticated(req)
    if (!who) return refuse(res, 401, 'Not signed in: open the URL with the token that "npm run serve" printed.')
    if (url.pathname.startsWith('/api/call/')) {
      if (req.method !== 'POST') return refuse(res, 405, 'Use POST.')
      const method = decodeURIComponent(url.pathname.slice('/api/call/'.length))
      const reply = await dispatch(o.ops, method, await readBody(req), { actor: who === 'token' ? 'api-token' : 'browser-session' })
      res.writeHead(reply.ok ? 200 : 400, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
      return res.end(JSON.stringify(reply))
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'Only GET is served here.')
    // For Prometheus: "Authorization: Bearer $OPS_API_TOKEN" (or a signed-in browser).
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Cache-Control': 'no-store' })
      return res.end(prometheusText(o.ops.metrics.latest()))
    }
    if (!serveStatic(o.rendererDir, url.pathname, res))
      refuse(res, 404, `The UI is not built: run "npm run build" (looked in ${o.rendererDir}).`)
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: 1_000_000 })
  server.on('upgrade', (req, socket, head) => {
    const deny = (status: number, text: string) => {
      socket.write(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      socket.destroy()
    }
    if (new URL(req.url ?? '/', 'http://x').pathname !== WS_PATH) return deny(404, 'Not Found')
    if (!auth.hostAllowed(req) || !auth.originAllowed(req)) return deny(403, 'Forbidden')
    const who = auth.authenticated(req)
    if (!who) return deny(401, 'Unauthorized')
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws)
      const send = (f: ServerFrame) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(f))
      const off = o.ops.events.onAny((event, payload) => send({ event, payload }))
      ws.on('close', () => {
        off()
        sockets.delete(ws)
      })
      ws.on('message', (data) => {
        let frame: ClientFrame
        try {
          frame = JSON.parse(String(data)) as ClientFrame
          if (typeof frame.id !== 'number') throw new Error('no id')
        } catch {
          return ws.close(1003, 'Frames must be JSON {id, method, input}.')
        }
        void dispatch(o.ops, frame.method, frame.input, { actor: who === 'token' ? 'api-token' : 'browser-session' }).then((r) =>
          send({ id: frame.id, ...r } as ServerFrame),
        )
      })
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port ?? 0, bind, () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  auth.setAddress(port)
  const origin = `http://127.0.0.1:${port}`
  return {
    port,
    origin,
    auth,
    launchUrl: () => `${origin}/?token=${auth.newLaunchToken()}`,
    async close() {
      for (const s of sockets) s.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}
