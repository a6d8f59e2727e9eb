import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Identity } from '../core/auth/identity'
import { OpsError } from '../shared/contract'
import { SESSION_COOKIE } from '../shared/ws-protocol'

const token = () => randomBytes(24).toString('base64url')

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a)
  const bb = Buffer.from(b)
  return ab.length === bb.length && timingSafeEqual(ab, bb)
}

/** Cookies as sent; values are not percent-decoded (ours are base64url), so no value can make this throw. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of (typeof header === 'string' ? header : '').split(';')) {
    const i = part.indexOf('=')
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim()
  }
  return out
}

/**
 * The shortest token the host accepts. Anyone on the machine can send it guesses as fast as it answers
 * (thousands a second on loopback), so a short or word-like token would fall in minutes.
 */
export const MIN_TOKEN_LENGTH = 16

function checkStrength(token: string, name: string): void {
  if (token.length < MIN_TOKEN_LENGTH)
    throw new OpsError(
      'bad_setting',
      `${name} is only ${token.length} characters: any local user could guess it. Use at least ${MIN_TOKEN_LENGTH} random characters (for example the output of "openssl rand -base64 24") and start again.`,
    )
}

export interface Session {
  readonly secret: string
  readonly cookie: string
  readonly identity: Identity
  readonly created: number
  lastUsed: number
}

/** A caller the host let in, and the key its calls are rate-limited under. */
export interface Caller {
  identity: Identity
  key: string
  /** The browser session's secret, when it is one. */
  session: string | null
}

export type Redeemed = { secret: string; cookie: string } | 'used' | 'expired' | 'unknown'

export interface AuthOptions {
  /** The read-only token for programs (OPS_API_TOKEN). */
  apiToken?: string
  /** Administrators' tokens (OPS_API_TOKENS). */
  adminTokens?: { email: string; token: string }[]
  /** A browser session ends after this long without a call (default 30 min)... */
  idleMs?: number
  /** ...and this long after sign-in whatever (default 12 h). */
  maxMs?: number
  /** An unused launch link expires after this long (default 5 min). */
  launchTtlMs?: number
  /** Calls per caller: a bucket of `burst` refilled at `perSecond` (default 240, 40/s). */
  rate?: { burst?: number; perSecond?: number }
  now?: () => number
}

/**
 * Who may talk to the host. A browser opens a one-time launch link (minted for whoever asked for
 * it: the OS user running the host, or an administrator's token), which becomes a session: an
 * HttpOnly cookie plus a per-tab secret the page keeps and sends with every call. Sessions end
 * when idle, when old, or on sign-out. Programs send a token as a Bearer header: an administrator's
 * (OPS_API_TOKENS) or the read-only program token (OPS_API_TOKEN). Requests must name this host
 * (no DNS rebinding) and, from a browser, come from this origin. Every caller's calls go through
 * a token bucket.
 */
export class HostAuth {
  readonly apiToken: string | null
  /** Lets `examforge-ops open` (the OS user who can read the 0600 control file) mint launch links. */
  readonly localSecret = token()
  readonly idleMs: number
  readonly maxMs: number
  readonly launchTtlMs: number
  private readonly now: () => number
  private readonly burst: number
  private readonly perSecond: number
  private adminTokens: { email: string; token: string }[]
  private launchTokens = new Map<string, { identity: Identity; expires: number }>()
  /** Launch tokens no longer valid, to say why (bounded). */
  private retired = new Map<string, 'used' | 'expired'>()
  private sessions = new Map<string, Session>()
  private buckets = new Map<string, { tokens: number; at: number }>()
  private origins = new Set<string>()
  private hosts = new Set<string>()

  constructor(o: AuthOptions = {}) {
    this.apiToken = o.apiToken || null
    this.adminTokens = o.adminTokens ?? []
    if (this.apiToken) checkStrength(this.apiToken, 'OPS_API_TOKEN')
    for (const t of this.adminTokens) checkStrength(t.token, `The OPS_API_TOKENS token of ${t.email}`)
    this.idleMs = o.idleMs ?? 30 * 60_000
    this.maxMs = o.maxMs ?? 12 * 3600_000
    this.launchTtlMs = o.launchTtlMs ?? 5 * 60_000
    this.burst = o.rate?.burst ?? 240
    this.perSecond = o.rate?.perSecond ?? 40
    this.now = o.now ?? Date.now
  }

  setAddress(port: number): void {
    for (const h of ['127.0.0.1', 'localhost', '[::1]']) {
      this.hosts.add(`${h}:${port}`)
      this.origins.add(`http://${h}:${port}`)
    }
  }

  newLaunchToken(identity: Identity): string {
    const t = token()
    this.launchTokens.set(t, { identity, expires: this.now() + this.launchTtlMs })
    return t
  }

  private retire(t: string, why: 'used' | 'expired') {
    this.launchTokens.delete(t)
    this.retired.set(t, why)
    if (this.retired.size > 1000) this.retired.delete(this.retired.keys().next().value!)
  }

  /** Redeem a launch token (once) for a session; a browser that already has a live cookie keeps it. */
  redeem(launch: string, req: IncomingMessage): Redeemed {
    const l = this.launchTokens.get(launch)
    if (!l) return this.retired.get(launch) ?? 'unknown'
    if (l.expires <= this.now()) {
      this.retire(launch, 'expired')
      return 'expired'
    }
    this.retire(launch, 'used')
    const cookie = this.liveCookie(req) ?? token()
    const secret = token()
    const at = this.now()
    this.sessions.set(secret, { secret, cookie, identity: l.identity, created: at, lastUsed: at })
    return { secret, cookie }
  }

  hostAllowed(req: IncomingMessage): boolean {
    return typeof req.headers.host === 'string' && this.hosts.has(req.headers.host)
  }

  /** A browser request from another origin is refused; requests without Origin are programs. */
  originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin
    return origin === undefined || this.origins.has(origin)
  }

  private bearerValue(req: IncomingMessage): string | null {
    const a = req.headers.authorization
    return typeof a === 'string' && a.startsWith('Bearer ') ? a.slice(7).trim() : null
  }

  /** A Bearer token: an administrator's, or the read-only program token. */
  bearer(req: IncomingMessage): Caller | null {
    const b = this.bearerValue(req)
    if (!b) return null
    for (const t of this.adminTokens)
      if (safeEqual(b, t.token))
        return { identity: { via: 'admin-token', osUser: null, email: t.email }, key: `token:${t.email}`, session: null }
    if (this.apiToken && safeEqual(b, this.apiToken))
      return { identity: { via: 'program-token', osUser: null, email: null }, key: 'program-token', session: null }
    return null
  }

  /** The local secret of the control file (examforge-ops open). */
  isLocal(req: IncomingMessage): boolean {
    const b = this.bearerValue(req)
    return !!b && safeEqual(b, this.localSecret)
  }

  private cookieOf(req: IncomingMessage): string | null {
    return parseCookies(req.headers.cookie)[SESSION_COOKIE] ?? null
  }

  private alive(s: Session, at = this.now()): boolean {
    return at - s.lastUsed < this.idleMs && at - s.created < this.maxMs
  }

  /** The cookie, if a live session of this browser holds it. */
  private liveCookie(req: IncomingMessage): string | null {
    const c = this.cookieOf(req)
    if (!c) return null
    for (const s of this.sessions.values()) if (this.alive(s) && safeEqual(s.cookie, c)) return c
    return null
  }

  /** The UI's files need the cookie only (they are no secret); 'ended' when the browser sends a cookie no session holds. */
  page(req: IncomingMessage): 'ok' | 'ended' | 'none' {
    if (this.liveCookie(req)) return 'ok'
    return this.cookieOf(req) ? 'ended' : 'none'
  }

  /** A browser session: its cookie AND its secret. Using it counts as activity unless `active` is false. */
  session(req: IncomingMessage, secret: string | null, active = true): Caller | 'ended' | null {
    const cookie = this.cookieOf(req)
    if (!cookie || !secret) return cookie ? 'ended' : null
    const s = this.sessions.get(secret)
    if (!s || !safeEqual(s.cookie, cookie)) return 'ended'
    if (!this.touch(secret, active)) return 'ended'
    return { identity: s.identity, key: `session:${secret}`, session: secret }
  }

  /**
   * Check a session is still alive and, unless the call is the page's own heartbeat (active false),
   * mark it used now; false (and it is gone) when it had already ended.
   */
  touch(secret: string, active = true): boolean {
    const s = this.sessions.get(secret)
    if (!s) return false
    const at = this.now()
    if (!this.alive(s, at)) {
      this.end(secret)
      return false
    }
    if (active) s.lastUsed = at
    return true
  }

  /** Sign out; true when no other session of this browser still uses its cookie (so the cookie can go). */
  end(secret: string): boolean {
    const s = this.sessions.get(secret)
    this.sessions.delete(secret)
    this.buckets.delete(`session:${secret}`)
    return !s || ![...this.sessions.values()].some((o) => o.cookie === s.cookie)
  }

  /** End idle or old sessions and expire unused launch links; returns the ended sessions' secrets. */
  sweep(): string[] {
    const at = this.now()
    const ended: string[] = []
    for (const s of this.sessions.values())
      if (!this.alive(s, at)) {
        this.end(s.secret)
        ended.push(s.secret)
      }
    for (const [t, l] of this.launchTokens) if (l.expires <= at) this.retire(t, 'expired')
    return ended
  }

  /** Take one call from the caller's bucket; false when it is empty (the caller should slow down). */
  take(key: string): boolean {
    const at = this.now()
    const b = this.buckets.get(key) ?? { tokens: this.burst, at }
    b.tokens = Math.min(this.burst, b.tokens + ((at - b.at) / 1000) * this.perSecond)
    b.at = at
    this.buckets.set(key, b)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  get ratePerSecond(): number {
    return this.perSecond
  }
}
