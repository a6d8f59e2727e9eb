import { request } from 'node:http'
import WebSocket from 'ws'
import { SESSION_FRAGMENT, SESSION_HEADER, SESSION_PROTOCOL_PREFIX, WS_PROTOCOL } from '../../src/shared/ws-protocol'

export type HttpReply = { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/** One plain HTTP request on loopback, as a browser or a program would send it. */
export function http(url: string, headers: Record<string, string> = {}, method = 'GET', body?: string) {
  return new Promise<HttpReply>((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let data = ''
      res.on('data', (c) => (data += c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: data }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** What a signed-in tab holds: the session cookie (the browser's) and the secret (the page's). */
export interface Tab {
  cookie: string
  secret: string
  /** Headers for an HTTP call from the page: cookie and secret. */
  headers: Record<string, string>
}

/** Open a launch link as the browser does: follow the 302, keep the cookie, take the secret from the fragment. */
export async function signIn(link: string, cookie?: string): Promise<Tab> {
  const r = await http(link, cookie ? { cookie } : {})
  if (r.status !== 302) throw new Error(`launch link answered ${r.status}: ${r.body}`)
  const setCookie = r.headers['set-cookie']
  const jar = setCookie ? String(setCookie).split(';')[0] : cookie!
  const location = String(r.headers.location)
  const secret = location.slice(location.indexOf(SESSION_FRAGMENT) + SESSION_FRAGMENT.length)
  return { cookie: jar, secret, headers: { cookie: jar, [SESSION_HEADER]: secret } }
}

/** POST a contract call over HTTP and parse the reply. */
export async function call(origin: string, method: string, input: unknown, headers: Record<string, string>) {
  const r = await http(`${origin}/api/call/${method}`, headers, 'POST', JSON.stringify(input))
  return { status: r.status, reply: JSON.parse(r.body) as { ok: boolean; value?: unknown; error?: { code: string; message: string } } }
}

/** Open the host's WebSocket: a socket, or the HTTP status the handshake was refused with. */
export function wsOpen(url: string, headers: Record<string, string>, secret?: string): Promise<{ ws: WebSocket } | { status: number }> {
  return new Promise((resolve, reject) => {
    const protocols = secret !== undefined ? [WS_PROTOCOL, `${SESSION_PROTOCOL_PREFIX}${secret}`] : undefined
    const ws = new WebSocket(url, protocols, { headers })
    ws.on('open', () => resolve({ ws }))
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode! }))
    ws.on('error', (e) => reject(e))
  })
}

/** A signed-in tab's WebSocket, with its frames collected. */
export async function tabSocket(origin: string, tab: Tab) {
  const opened = await wsOpen(origin.replace('http', 'ws') + '/ws', { origin, cookie: tab.cookie }, tab.secret)
  if (!('ws' in opened)) throw new Error(`WebSocket refused: ${opened.status}`)
  const ws = opened.ws
  const frames: Record<string, unknown>[] = []
  ws.on('message', (d) => frames.push(JSON.parse(String(d)) as Record<string, unknown>))
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: String(reason) })))
  return { ws, frames, closed, reply: (id: number) => frames.find((f) => f.id === id) }
}
