/**
 * @examforge/error-tracker: the error tracker the ExamForge web app calls.
 *
 *   errorTracker.init({ dsn: process.env.ERROR_DSN, release, environment })
 *   errorTracker.captureError(error, { userId, teamId, tags, extra }, 'error')
 *   errorTracker.captureMessage('Stripe webhook late', {}, 'warning')
 *   errorTracker.addBreadcrumb('opened quiz 7', 'quiz', 'info', { quizId: 7 })
 *   errorTracker.setUser({ id }) · setTag(k, v) · setContext(name, data)
 *   await errorTracker.flush(2000)
 *
 * It never throws into the app and never blocks it: capturing only records what is needed (a few
 * microseconds); building, scrubbing and sending happen later, off the caller's path, from a bounded
 * queue (events beyond `maxQueue` are dropped and counted), in batches, retried with exponential
 * back-off (honouring Retry-After) up to `maxRetries`. Uncaught exceptions (then the process exits, as
 * Node would) and unhandled rejections are captured automatically. Next.js: see ./nextjs.
 */
import { randomUUID } from 'node:crypto'
import os from 'node:os'
import { scrubValue } from './scrub'
import { parseStack } from './stack'
import { parseDsn, sendEnvelope, type Dsn } from './transport'

/** Marks an error object already captured (a registered symbol: every copy of this module sees the same one). */
const CAPTURED = Symbol.for('examforge.error-tracker.captured')
const TRACKER = Symbol.for('examforge.error-tracker')

export type Level = 'fatal' | 'error' | 'warning' | 'info' | 'debug'

export interface CaptureContext {
  /** The signed-in user and team, as the app knows them. */
  userId?: string
  teamId?: string
  user?: Record<string, unknown>
  tags?: Record<string, string>
  extra?: Record<string, unknown>
  /** The request being handled (headers are scrubbed before sending). */
  request?: { method?: string; url?: string; headers?: Record<string, string> }
  /** A custom grouping fingerprint ("{{ default }}" extends the default grouping). */
  fingerprint?: string[]
}

export interface ErrorTrackerOptions {
  dsn: string
  release?: string
  environment?: string
  serverName?: string
  /** Events waiting to be sent at most (beyond: dropped and counted). Default 1000. */
  maxQueue?: number
  /** Events per envelope. Default 20 (use 1 against Sentry's own servers). */
  batchSize?: number
  /** How often the queue is sent. Default 1000 ms. */
  flushIntervalMs?: number
  /** Attempts per batch before it is dropped. Default 5. */
  maxRetries?: number
  /** Scrub e-mail addresses too. Default true. */
  scrubEmails?: boolean
  /** Capture uncaught exceptions and unhandled rejections. Default true. */
  captureUnhandled?: boolean
  /** Last look at an event before it is queued for sending; return null to drop it. */
  beforeSend?: (event: Record<string, unknown>) => Record<string, unknown> | null
}

export interface TrackerStats {
  captured: number
  sent: number
  /** Dropped: the queue was full, the ingest refused the event, or retries ran out. */
  dropped: number
  queued: number
  retries: number
}

interface Breadcrumb {
  timestamp: number
  message: string
  category: string
  level: Level
  data?: Record<string, unknown>
}

interface Captured {
  id: string
  at: number
  level: Level
  error?: unknown
  message?: string
  stack?: string
  context?: CaptureContext
  breadcrumbs: Breadcrumb[]
  user: Record<string, unknown> | null
  tags: Record<string, string>
  contexts: Record<string, Record<string, unknown>>
}

const SDK = { name: 'examforge.error-tracker', version: '0.1.0' }
const BREADCRUMBS = 100

export class ErrorTracker {
  private opts: Required<Omit<ErrorTrackerOptions, 'release' | 'environment' | 'beforeSend'>> &
    Pick<ErrorTrackerOptions, 'release' | 'environment' | 'beforeSend'> = null as never
  private dsn: Dsn | null = null
  private crumbs: Breadcrumb[] = []
  private crumbAt = 0
  private user: Record<string, unknown> | null = null
  private tags: Record<string, string> = {}
  private contexts: Record<string, Record<string, unknown>> = {}
  private queue: Captured[] = []
  private retry: { events: Record<string, unknown>[]; attempt: number; at: number }[] = []
  private timer: NodeJS.Timeout | null = null
  private sending: Promise<void> | null = null
  private counts: TrackerStats = { captured: 0, sent: 0, dropped: 0, queued: 0, retries: 0 }
  private handlers: { uncaught?: (e: Error) => void; rejection?: (r: unknown) => void } = {}

  /** Start (or restart) the tracker. A bad DSN disables it and is reported as the return value, never thrown. */
  init(o: ErrorTrackerOptions): string | null {
    try {
      this.close()
      this.dsn = parseDsn(o.dsn)
    } catch (e) {
      this.dsn = null
      return (e as Error).message
    }
    this.opts = {
      maxQueue: 1000,
      batchSize: 20,
      flushIntervalMs: 1000,
      maxRetries: 5,
      scrubEmails: true,
      captureUnhandled: true,
      serverName: os.hostname(),
      ...o,
    }
    this.timer = setInterval(() => void this.send(), this.opts.flushIntervalMs)
    this.timer.unref()
    if (this.opts.captureUnhandled) {
      this.handlers.uncaught = (e: Error) => {
        this.captureError(e, {}, 'fatal')
        // As Node would without a handler: report, then exit with 1 (after trying to send for 2 s).
        void this.flush(2000).finally(() => {
          if (process.listenerCount('uncaughtException') <= 1) {
            process.stderr.write(`${e?.stack ?? String(e)}\n`)
            process.exit(1)
          }
        })
      }
      this.handlers.rejection = (r: unknown) => this.captureError(r, { tags: { mechanism: 'unhandledrejection' } }, 'error')
      process.on('uncaughtException', this.handlers.uncaught)
      process.on('unhandledRejection', this.handlers.rejection)
    }
    return null
  }

  /** Record an error; returns its event id (or '' when the tracker is off). Never throws. */
  /**
   * Capture an error. The same error object is captured once: a route wrapper that captures and rethrows,
   * then Next.js's onRequestError (or the uncaught-exception handler) seeing it again, add no second event;
   * the later calls return the first event's id.
   */
  captureError(error: unknown, context?: CaptureContext, level: Level = 'error'): string {
    try {
      if (!this.dsn) return ''
      const seen = error !== null && typeof error === 'object' ? (error as { [CAPTURED]?: string })[CAPTURED] : undefined
      if (seen) return seen
      const id = this.enqueue({ error, stack: error instanceof Error ? error.stack : undefined, context, level })
      if (id && error !== null && typeof error === 'object' && Object.isExtensible(error))
        Object.defineProperty(error, CAPTURED, { value: id, enumerable: false, configurable: true })
      return id
    } catch {
      return ''
    }
  }

  captureMessage(message: string, context?: CaptureContext, level: Level = 'info'): string {
    try {
      if (!this.dsn) return ''
      return this.enqueue({ message: String(message), context, level })
    } catch {
      return ''
    }
  }

  /** Remember what led up to an error (the last 100 are kept). */
  addBreadcrumb(message: string, category = 'default', level: Level = 'info', data?: Record<string, unknown>): void {
    try {
      const b: Breadcrumb = { timestamp: Date.now() / 1000, message: String(message), category, level, data }
      if (this.crumbs.length < BREADCRUMBS) this.crumbs.push(b)
      else {
        this.crumbs[this.crumbAt] = b
        this.crumbAt = (this.crumbAt + 1) % BREADCRUMBS
      }
    } catch {
      /* never into the app */
    }
  }

  setUser(user: { id?: string; email?: string; username?: string; [k: string]: unknown } | null): void {
    this.user = user ? { ...user } : null
  }

  setTag(key: string, value: string): void {
    this.tags[String(key)] = String(value)
  }

  setContext(name: string, data: Record<string, unknown> | null): void {
    if (data) this.contexts[name] = { ...data }
    else delete this.contexts[name]
  }

  stats(): TrackerStats {
    return { ...this.counts, queued: this.queue.length + this.retry.reduce((n, r) => n + r.events.length, 0) }
  }

  /** Send what is queued; true when everything left within the time. */
  async flush(timeoutMs = 2000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    try {
      while (Date.now() < deadline) {
        await Promise.race([this.send(true), new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())).unref())])
        if (!this.queue.length && !this.retry.length && !this.sending) return true
        await new Promise((r) => setTimeout(r, 20).unref())
      }
    } catch {
      /* never into the app */
    }
    return !this.queue.length && !this.retry.length
  }

  /** Stop: no more sends, handlers removed (queued events are kept until flush or dropped). */
  close(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    if (this.handlers.uncaught) process.off('uncaughtException', this.handlers.uncaught)
    if (this.handlers.rejection) process.off('unhandledRejection', this.handlers.rejection)
    this.handlers = {}
  }

  private enqueue(c: Omit<Captured, 'id' | 'at' | 'breadcrumbs' | 'user' | 'tags' | 'contexts'>): string {
    this.counts.captured++
    if (this.queue.length >= this.opts.maxQueue) {
      this.counts.dropped++
      return ''
    }
    const id = randomUUID().replace(/-/g, '')
    const crumbs =
      this.crumbs.length < BREADCRUMBS ? this.crumbs.slice() : [...this.crumbs.slice(this.crumbAt), ...this.crumbs.slice(0, this.crumbAt)]
    this.queue.push({ ...c, id, at: Date.now(), breadcrumbs: crumbs, user: this.user, tags: { ...this.tags }, contexts: this.contexts })
    if (this.queue.length >= this.opts.batchSize) setImmediate(() => void this.send())
    return id
  }

  /** The Sentry event for a capture, scrubbed. Done when sending, not on the caller's path. */
  private build(c: Captured): Record<string, unknown> | null {
    const ctx = c.context ?? {}
    const user = { ...(c.user ?? {}), ...(ctx.user ?? {}), ...(ctx.userId ? { id: ctx.userId } : {}) }
    const tags = { ...c.tags, ...(ctx.tags ?? {}), ...(ctx.teamId ? { team_id: ctx.teamId } : {}) }
    const ev: Record<string, unknown> = {
      event_id: c.id,
      timestamp: c.at / 1000,
      level: c.level,
      platform: 'node',
      release: this.opts.release,
      environment: this.opts.environment,
      server_name: this.opts.serverName,
      sdk: SDK,
      user: Object.keys(user).length ? user : undefined,
      tags,
      contexts: { ...c.contexts, runtime: { name: 'node', version: process.version } },
      extra: ctx.extra,
      fingerprint: ctx.fingerprint,
      breadcrumbs: c.breadcrumbs,
      request: ctx.request,
    }
    if (c.message != null) ev.message = c.message
    else {
      const e = c.error
      const err = e instanceof Error ? e : null
      const chain: Record<string, unknown>[] = []
      let cur: unknown = e
      for (let depth = 0; cur != null && depth < 5; depth++) {
        const x = cur instanceof Error ? cur : null
        chain.unshift({
          type: x ? x.name || x.constructor?.name || 'Error' : 'Error',
          value: x ? x.message : typeof cur === 'string' ? cur : safeJson(cur),
          stacktrace: { frames: parseStack(depth === 0 ? (c.stack ?? undefined) : x?.stack) },
          mechanism: { type: 'generic', handled: c.level !== 'fatal' },
        })
        cur = x && 'cause' in x ? (x as { cause?: unknown }).cause : null
      }
      ev.exception = { values: chain }
      if (!err && chain.length === 0) ev.message = String(e)
    }
    const scrubbed = scrubValue(ev, this.opts.scrubEmails) as Record<string, unknown>
    return this.opts.beforeSend ? this.opts.beforeSend(scrubbed) : scrubbed
  }

  private send(force = false): Promise<void> {
    if (this.sending) return this.sending
    if (!this.dsn || (!this.queue.length && !this.retry.length)) return Promise.resolve()
    this.sending = (async () => {
      try {
        const now = Date.now()
        const due = this.retry.filter((r) => force || r.at <= now)
        this.retry = this.retry.filter((r) => !due.includes(r))
        const batches = [...due]
        while (this.queue.length) {
          const events = this.queue
            .splice(0, this.opts.batchSize)
            .map((c) => {
              try {
                return this.build(c)
              } catch {
                return null
              }
            })
            .filter((e): e is Record<string, unknown> => !!e)
          if (events.length) batches.push({ events, attempt: 0, at: now })
        }
        for (const b of batches) {
          const r = await sendEnvelope(this.dsn!, b.events, SDK)
          if (r.status != null && r.status >= 200 && r.status < 300) this.counts.sent += b.events.length
          else if (r.status != null && r.status !== 429 && r.status < 500) this.counts.dropped += b.events.length
          else if (b.attempt + 1 >= this.opts.maxRetries) this.counts.dropped += b.events.length
          else {
            this.counts.retries++
            const backoff = Math.min(30_000, 1000 * 2 ** b.attempt) * (0.8 + Math.random() * 0.4)
            this.retry.push({ events: b.events, attempt: b.attempt + 1, at: Date.now() + Math.max(backoff, (r.retryAfterS ?? 0) * 1000) })
            if (force) break
          }
        }
      } catch {
        /* never into the app */
      } finally {
        this.sending = null
      }
    })()
    return this.sending
  }
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v)?.slice(0, 1000) ?? String(v)
  } catch {
    return String(v)
  }
}

/**
 * The one tracker the app uses: one per process, even when a bundler puts a copy of this module in each bundle
 * (Next.js builds instrumentation.ts and every route separately), so `init` in instrumentation.ts starts the
 * tracker the route handlers capture with, and breadcrumbs are one trail.
 */
export const errorTracker: ErrorTracker = ((globalThis as { [TRACKER]?: ErrorTracker })[TRACKER] ??= new ErrorTracker())

export { wrapRouteHandler, wrapServerAction, onRequestError } from './nextjs'
