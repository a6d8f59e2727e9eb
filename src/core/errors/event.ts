/**
 * An error event as the console keeps it, and the step that makes one from whatever a Sentry-protocol
 * SDK sent: validated (an event with nothing to show is refused), shapes unified (message as string or
 * logentry, breadcrumbs as an array or `{ values }`, tags as an object or pairs, timestamps as seconds or
 * ISO text), and truncated at the documented limits so one huge event can never bloat the store:
 *
 *   strings 8 KiB (messages 8 KiB, exception values 8 KiB), 50 exceptions in a chain, 250 frames per
 *   stack (the innermost kept, as Sentry does), 100 breadcrumbs (the newest), 5 lines of source context
 *   each side, 50 tags, objects 10 levels deep and 200 keys wide.
 */
import { randomUUID } from 'node:crypto'

export const LIMITS = {
  string: 8192,
  exceptions: 50,
  frames: 250,
  breadcrumbs: 100,
  contextLines: 5,
  tags: 50,
  depth: 10,
  keys: 200,
} as const

export type Level = 'fatal' | 'error' | 'warning' | 'info' | 'debug'
const LEVELS: Level[] = ['fatal', 'error', 'warning', 'info', 'debug']

export interface Frame {
  filename: string | null
  absPath: string | null
  module: string | null
  function: string | null
  lineno: number | null
  colno: number | null
  inApp: boolean
  contextLine: string | null
  preContext: string[]
  postContext: string[]
}

export interface ExceptionValue {
  type: string
  value: string
  module: string | null
  /** Oldest call first, as in Sentry's protocol (the innermost frame is last). */
  frames: Frame[]
}

export interface Breadcrumb {
  timestamp: number | null
  category: string | null
  level: string | null
  message: string | null
  type: string | null
  data: Record<string, unknown> | null
}

export interface ErrorEvent {
  eventId: string
  project: string
  /** When the event happened (ms since the epoch). */
  timestamp: number
  received: number
  level: Level
  platform: string
  logger: string | null
  message: string | null
  exceptions: ExceptionValue[]
  breadcrumbs: Breadcrumb[]
  request: { method: string | null; url: string | null; headers: Record<string, string>; query: string | null; data: unknown } | null
  user: { id?: string; email?: string; ip_address?: string; username?: string; [k: string]: unknown } | null
  tags: Record<string, string>
  contexts: Record<string, unknown>
  extra: Record<string, unknown>
  release: string | null
  environment: string | null
  serverName: string | null
  transaction: string | null
  fingerprint: string[] | null
  sdk: string | null
}

export class InvalidEvent extends Error {
  override name = 'InvalidEvent'
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v)

export function cut(s: unknown, max: number = LIMITS.string): string | null {
  if (s == null) return null
  // NUL cannot be stored in PostgreSQL text or jsonb: it goes.
  const t = (typeof s === 'string' ? s : typeof s === 'number' || typeof s === 'boolean' ? String(s) : JSON.stringify(s))
    .replaceAll('\u0000', '')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
  return t.length > max ? t.slice(0, max - 1) + '…' : t
}

/** Any JSON value bounded in depth, width and string length. */
export function bound(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return cut(v)
  if (v == null || typeof v === 'number' || typeof v === 'boolean') return v
  if (depth >= LIMITS.depth) return '[…]'
  if (Array.isArray(v)) return v.slice(0, LIMITS.keys).map((x) => bound(x, depth + 1))
  if (isObj(v)) {
    const out: Record<string, unknown> = {}
    let n = 0
    for (const [k, x] of Object.entries(v)) {
      if (n++ >= LIMITS.keys) break
      out[cut(k, 200)!] = bound(x, depth + 1)
    }
    return out
  }
  return null
}

function time(v: unknown, fallback: number): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v > 1e11 ? v : Math.round(v * 1000)
  if (typeof v === 'string') {
    const n = Number(v)
    if (Number.isFinite(n)) return n > 1e11 ? n : Math.round(n * 1000)
    const d = Date.parse(v)
    if (Number.isFinite(d)) return d
  }
  return fallback
}

const int = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : null)
const strs = (v: unknown, n: number) => (Array.isArray(v) ? v.slice(-n).map((x) => cut(x, 1024) ?? '') : [])

function frame(f: unknown): Frame | null {
  if (!isObj(f)) return null
  return {
    filename: cut(f.filename, 1024),
    absPath: cut(f.abs_path, 1024),
    module: cut(f.module, 512),
    function: cut(f.function, 512),
    lineno: int(f.lineno),
    colno: int(f.colno),
    inApp: f.in_app === true || (f.in_app == null && typeof f.filename === 'string' && !/node_modules|^node:|^internal\//.test(f.filename)),
    contextLine: cut(f.context_line, 1024),
    preContext: strs(f.pre_context, LIMITS.contextLines),
    postContext: Array.isArray(f.post_context) ? strs(f.post_context.slice(0, LIMITS.contextLines), LIMITS.contextLines) : [],
  }
}

function exceptions(v: unknown): ExceptionValue[] {
  const list = isObj(v) && Array.isArray(v.values) ? v.values : Array.isArray(v) ? v : []
  return list
    .slice(-LIMITS.exceptions)
    .filter(isObj)
    .map((e) => {
      const st = isObj(e.stacktrace) ? e.stacktrace : null
      const frames = (st && Array.isArray(st.frames) ? st.frames : [])
        .slice(-LIMITS.frames)
        .map(frame)
        .filter((f): f is Frame => !!f)
      return { type: cut(e.type, 256) ?? 'Error', value: cut(e.value) ?? '', module: cut(e.module, 512), frames }
    })
}

function breadcrumbs(v: unknown): Breadcrumb[] {
  const list = isObj(v) && Array.isArray(v.values) ? v.values : Array.isArray(v) ? v : []
  return list
    .slice(-LIMITS.breadcrumbs)
    .filter(isObj)
    .map((b) => ({
      timestamp: b.timestamp == null ? null : time(b.timestamp, 0) || null,
      category: cut(b.category, 256),
      level: cut(b.level, 32),
      message: cut(b.message),
      type: cut(b.type, 64),
      data: isObj(b.data) ? (bound(b.data) as Record<string, unknown>) : null,
    }))
}

function tags(v: unknown): Record<string, string> {
  const pairs: [unknown, unknown][] = Array.isArray(v)
    ? v.filter(Array.isArray).map((p) => [p[0], p[1]])
    : isObj(v)
      ? Object.entries(v)
      : []
  const out: Record<string, string> = {}
  for (const [k, x] of pairs.slice(0, LIMITS.tags)) if (typeof k === 'string' && x != null) out[cut(k, 200)!] = cut(x, 200)!
  return out
}

function headers(v: unknown): Record<string, string> {
  const pairs: [unknown, unknown][] = Array.isArray(v)
    ? v.filter(Array.isArray).map((p) => [p[0], p[1]])
    : isObj(v)
      ? Object.entries(v)
      : []
  const out: Record<string, string> = {}
  for (const [k, x] of pairs.slice(0, LIMITS.keys)) if (typeof k === 'string') out[cut(k, 256)!] = cut(x, 2048) ?? ''
  return out
}

function messageOf(raw: Record<string, unknown>): string | null {
  const m = raw.logentry ?? raw.message
  if (typeof m === 'string') return cut(m)
  if (isObj(m)) return cut(m.formatted ?? m.message)
  return null
}

/** Make an event from a decoded Sentry event payload; InvalidEvent when it is not one. */
export function normalizeEvent(raw: unknown, project: string, now = Date.now()): ErrorEvent {
  if (!isObj(raw)) throw new InvalidEvent('the event is not a JSON object')
  const exc = exceptions(raw.exception ?? raw.exceptions)
  const message = messageOf(raw)
  if (!exc.length && !message) throw new InvalidEvent('the event has neither an exception nor a message')
  const id =
    typeof raw.event_id === 'string' && /^[0-9a-f-]{32,36}$/i.test(raw.event_id) ? raw.event_id.replace(/-/g, '').toLowerCase() : null
  const req = isObj(raw.request) ? raw.request : null
  const level =
    typeof raw.level === 'string' && (LEVELS as string[]).includes(raw.level)
      ? (raw.level as Level)
      : raw.level === 'warn'
        ? 'warning'
        : 'error'
  const ts = time(raw.timestamp, now)
  return {
    eventId: id ?? cryptoId(),
    project,
    // A clock far off is no reason to lose an event: keep it within a day of its arrival.
    timestamp: Math.abs(ts - now) > 86_400_000 ? now : ts,
    received: now,
    level,
    platform: cut(raw.platform, 64) ?? 'other',
    logger: cut(raw.logger, 256),
    message,
    exceptions: exc,
    breadcrumbs: breadcrumbs(raw.breadcrumbs),
    request: req
      ? {
          method: cut(req.method, 16),
          url: cut(req.url, 2048),
          headers: headers(req.headers),
          query:
            typeof req.query_string === 'string'
              ? cut(req.query_string, 2048)
              : req.query_string
                ? cut(JSON.stringify(req.query_string), 2048)
                : null,
          data: bound(req.data ?? null),
        }
      : null,
    user: isObj(raw.user) ? (bound(raw.user) as ErrorEvent['user']) : null,
    tags: tags(raw.tags),
    contexts: isObj(raw.contexts) ? (bound(raw.contexts) as Record<string, unknown>) : {},
    extra: isObj(raw.extra) ? (bound(raw.extra) as Record<string, unknown>) : {},
    release: cut(raw.release, 200),
    environment: cut(raw.environment, 64),
    serverName: cut(raw.server_name, 256),
    transaction: cut(raw.transaction, 512),
    fingerprint: Array.isArray(raw.fingerprint) ? raw.fingerprint.slice(0, 20).map((x) => cut(x, 256) ?? '') : null,
    sdk: isObj(raw.sdk) ? cut(`${String(raw.sdk.name ?? '')}/${String(raw.sdk.version ?? '')}`, 128) : null,
  }
}

const cryptoId = () => randomUUID().replace(/-/g, '')
