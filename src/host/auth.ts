import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { SESSION_COOKIE } from '../shared/ws-protocol'

const token = () => randomBytes(24).toString('base64url')

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a)
  const bb = Buffer.from(b)
  return ab.length === bb.length && timingSafeEqual(ab, bb)
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=')
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim())
  }
  return out
}

/**
 * Who may talk to the host. A browser opens the printed URL once: its one-time launch token is
 * exchanged for an HttpOnly, SameSite=Strict session cookie. Programs (CLI, Prometheus) send the
 * API token as a Bearer header. Requests must name this host (no DNS rebinding) and, from a
 * browser, come from this origin.
 */
export class HostAuth {
  readonly apiToken: string
  private launchTokens = new Set<string>()
  private sessions = new Set<string>()
  private origins = new Set<string>()
  private hosts = new Set<string>()

  constructor(apiToken?: string) {
    this.apiToken = apiToken ?? token()
  }

  setAddress(port: number): void {
    for (const h of ['127.0.0.1', 'localhost', '[::1]']) {
      this.hosts.add(`${h}:${port}`)
      this.origins.add(`http://${h}:${port}`)
    }
  }

  newLaunchToken(): string {
    const t = token()
    this.launchTokens.add(t)
    return t
  }

  /** Redeem a launch token (once) for a session id. */
  redeem(launch: string | null): string | null {
    if (!launch || !this.launchTokens.has(launch)) return null
    this.launchTokens.delete(launch)
    const s = token()
    this.sessions.add(s)
    return s
  }

  hostAllowed(req: IncomingMessage): boolean {
    return !!req.headers.host && this.hosts.has(req.headers.host)
  }

  /** A browser request from another origin is refused; requests without Origin are programs. */
  originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin
    return origin === undefined || this.origins.has(origin)
  }

  authenticated(req: IncomingMessage): 'session' | 'token' | null {
    const auth = req.headers.authorization
    if (auth?.startsWith('Bearer ') && safeEqual(auth.slice(7), this.apiToken)) return 'token'
    const s = parseCookies(req.headers.cookie)[SESSION_COOKIE]
    if (s && this.sessions.has(s)) return 'session'
    return null
  }
}
