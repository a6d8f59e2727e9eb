/**
 * The error tracker: the DSN key, the ingest pipeline (validate → symbolicate → scrub → group → store,
 * in batches, one transaction each) and everything the console reads and changes.
 *
 * The DSN key is a secret: ERROR_DSN_KEY, or generated on first start and kept with the source-map
 * upload token in `<data folder>/errors/ingest.json` (0600, folder 0700). The ingest listener is started
 * only by long-lived faces (the host/agent), never by one-shot CLI commands.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import type pg from 'pg'
import type { Config } from '../config/config'
import { registerSecret } from '../log/scrub'
import type { Logger } from '../log/logger'
import { InvalidEvent, normalizeEvent } from './event'
import { groupEvent } from './grouping'
import { connectHost, probeIngest, startIngest, type IngestServer } from './ingest'
import { listGroups, recentGroups, setState, showGroup, type ListFilter, type StateChange } from './queries'
import { scrubEvent, type ScrubOptions } from './scrub'
import { SourceMaps } from './sourcemaps'
import { ErrorStore, type Prepared, type WriteOutcome } from './store'

export const PROJECT_ID = '1'
const BATCH = 500
/** Events waiting for the store beyond which the ingest answers 429 to everyone. */
const BACKLOG = 20_000
/** Minutes of ingest outcomes kept in memory for the health probe. */
const RECENT_MINUTES = 15

interface Pending {
  items: Prepared[]
  done: (r: WriteOutcome[]) => void
  fail: (e: unknown) => void
}

export class ErrorService {
  readonly store: ErrorStore
  readonly sourceMaps: SourceMaps
  private secrets: { key: string; uploadToken: string } | null = null
  private ingest: IngestServer | null = null
  private queue: Pending[] = []
  private queued = 0
  private writing: Promise<void> | null = null
  private outcomes: Record<string, number> = {}
  /** Outcomes per minute (start of the minute in ms → counts), the last RECENT_MINUTES kept, for the health probe. */
  private minutes = new Map<number, Record<string, number>>()
  /** Why the listener could not start, when it was asked for and did not. */
  private ingestFailure: string | null = null
  private timers: NodeJS.Timeout[] = []
  readonly scrub: ScrubOptions
  /** Listeners told after each stored batch (alert sources, the UI's live refresh). */
  private listeners = new Set<(o: WriteOutcome[]) => void>()

  constructor(private o: { config: Config; pool: () => pg.Pool | null; log: Logger }) {
    this.store = new ErrorStore(o.pool)
    this.sourceMaps = new SourceMaps(join(this.dir(), 'sourcemaps'))
    this.scrub = { emails: o.config.errors.scrubEmails, ips: o.config.errors.scrubIps }
  }

  private dir(): string {
    return join(this.o.config.dataDir, 'errors')
  }

  /** The DSN key and upload token: from ERROR_DSN_KEY, or the 0600 file, or generated now and saved. */
  keys(): { key: string; uploadToken: string } {
    if (this.secrets) return this.secrets
    const file = join(this.dir(), 'ingest.json')
    let saved: { key?: string; uploadToken?: string } = {}
    if (existsSync(file)) {
      try {
        saved = JSON.parse(readFileSync(file, 'utf8')) as typeof saved
      } catch {
        this.o.log.warn(`${file} is not readable JSON: a new DSN key is generated (SDKs with the old DSN must be given the new one)`)
      }
    }
    if (!saved.key || !saved.uploadToken) {
      saved = { key: saved.key ?? randomBytes(16).toString('hex'), uploadToken: saved.uploadToken ?? randomBytes(24).toString('hex') }
      mkdirSync(this.dir(), { recursive: true, mode: 0o700 })
      chmodSync(this.dir(), 0o700)
      writeFileSync(file, JSON.stringify(saved), { mode: 0o600 })
      chmodSync(file, 0o600)
    }
    this.secrets = { key: this.o.config.errors.dsnKey ?? saved.key!, uploadToken: saved.uploadToken! }
    registerSecret(this.secrets.key)
    registerSecret(this.secrets.uploadToken)
    return this.secrets
  }

  /** The DSN SDKs are given: http://<key>@<ingest host>:<port>/1 (the listener's port once it runs). */
  dsn(): string {
    const e = this.o.config.errors
    const port = this.ingest?.port ?? e.ingestPort
    let host = e.ingestHost
    if (host === '0.0.0.0' || host === '::') host = os.hostname()
    if (host.includes(':')) host = `[${host}]`
    return `http://${this.keys().key}@${host}:${port}/${PROJECT_ID}`
  }

  ingestUrl(): string | null {
    return this.ingest?.url ?? null
  }

  /**
   * Who takes the DSN's events: this face's own listener ('here', or 'failed' when it could not start); else whatever answers on the configured
   * address — the host/agent with this key ('agent'), an ingest with another key ('other_key': the agent keeps
   * a different data folder), or nothing ('nothing': events sent to the DSN are lost until the agent runs).
   */
  async whereEventsGo(
    timeoutMs = 1500,
  ): Promise<{ where: 'here' | 'failed' | 'agent' | 'other_key' | 'nothing'; url: string; problem?: string }> {
    if (this.ingest) return { where: 'here', url: this.ingest.url }
    const e = this.o.config.errors
    const url = `http://${connectHost(e.ingestHost)}:${e.ingestPort}`
    // This face was to run it and could not: say why rather than what else may hold the address.
    if (this.ingestFailure) return { where: 'failed', url, problem: this.ingestFailure }
    const p = await probeIngest(url, this.keys().key, timeoutMs)
    return { where: p.state === 'ours' ? 'agent' : p.state === 'wrong_key' ? 'other_key' : 'nothing', url }
  }

  /** Why the ingest is not listening though it was asked to (null when it listens or was never started). */
  ingestProblem(): string | null {
    return this.ingest ? null : this.ingestFailure
  }

  /** Count an ingest outcome, in the totals flushed to ops.error_ingest_stats and in the per-minute ring. */
  private count(k: string, n = 1, now = Date.now()) {
    this.outcomes[k] = (this.outcomes[k] ?? 0) + n
    const m = now - (now % 60_000)
    let b = this.minutes.get(m)
    if (!b) {
      b = {}
      this.minutes.set(m, b)
      for (const t of this.minutes.keys()) if (t <= m - RECENT_MINUTES * 60_000) this.minutes.delete(t)
    }
    b[k] = (b[k] ?? 0) + n
  }

  /** Ingest outcomes in this process over the last `minutes` (at most RECENT_MINUTES), whole minutes. */
  recentOutcomes(minutes = 5, now = Date.now()): Record<string, number> {
    const from = now - (now % 60_000) - (Math.min(minutes, RECENT_MINUTES) - 1) * 60_000
    const out: Record<string, number> = {}
    for (const [t, b] of this.minutes) if (t >= from) for (const [k, n] of Object.entries(b)) out[k] = (out[k] ?? 0) + n
    return out
  }

  /** Start the listener (host/agent only) and the retention timer. */
  async startIngest(): Promise<IngestServer> {
    if (this.ingest) return this.ingest
    const e = this.o.config.errors
    this.ingestFailure = `it could not listen on ${e.ingestHost}:${e.ingestPort}`
    try {
      this.ingest = await this.listen()
    } catch (err) {
      this.ingestFailure = `it could not listen on ${e.ingestHost}:${e.ingestPort} (${(err as Error).message})`
      throw err
    }
    this.ingestFailure = null
    const flushStats = setInterval(() => void this.flushOutcomes(), 5000)
    const prune = setInterval(
      () => void this.prune().catch((err: Error) => this.o.log.warn('error retention failed', { error: err.message })),
      3_600_000,
    )
    flushStats.unref()
    prune.unref()
    this.timers.push(flushStats, prune)
    return this.ingest
  }

  private listen(): Promise<IngestServer> {
    const e = this.o.config.errors
    return startIngest({
      host: e.ingestHost,
      port: e.ingestPort,
      key: () => this.keys().key,
      uploadToken: () => this.keys().uploadToken,
      ratePerClient: e.ratePerClient,
      log: this.o.log,
      sink: {
        accept: (project, events) => this.accept(project, events),
        saveSourceMap: (r, n, t) => this.sourceMaps.save(r, n, t),
        saturated: () => this.queued > BACKLOG,
        count: (k, n = 1) => this.count(k, n),
      },
    })
  }

  onStored(fn: (o: WriteOutcome[]) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** Make events ready to store: validated, symbolicated, scrubbed, grouped. InvalidEvent refuses the lot. */
  async prepare(project: string, raw: unknown[], now = Date.now()): Promise<Prepared[]> {
    const normal = raw.map((r) => normalizeEvent(r, project, now))
    const out: Prepared[] = []
    for (const n of normal) {
      const ev = scrubEvent(await this.sourceMaps.apply(n), this.scrub)
      out.push({ ev, grouping: groupEvent(ev) })
    }
    return out
  }

  /** Store events (all or none), answering once they are committed. */
  async accept(project: string, raw: unknown[]): Promise<string[]> {
    if (!this.o.pool()) throw new Error('the ops store is not reachable')
    const items = await this.prepare(project, raw)
    await new Promise<WriteOutcome[]>((done, fail) => {
      this.queue.push({ items, done, fail })
      this.queued += items.length
      this.kick()
    })
    this.count('accepted', items.length)
    return items.map((p) => p.ev.eventId)
  }

  private kick() {
    if (this.writing) return
    this.writing = (async () => {
      // Let concurrent requests join the batch.
      await new Promise((r) => setImmediate(r))
      while (this.queue.length) {
        const take: Pending[] = []
        let n = 0
        while (this.queue.length && (n === 0 || n + this.queue[0].items.length <= BATCH)) {
          const p = this.queue.shift()!
          take.push(p)
          n += p.items.length
        }
        try {
          const out = await this.store.write(take.flatMap((p) => p.items))
          this.queued -= n
          for (const p of take) p.done(out)
          for (const l of this.listeners) l(out)
        } catch (e) {
          this.queued -= n
          for (const p of take) p.fail(e)
        }
      }
    })().finally(() => {
      this.writing = null
      if (this.queue.length) this.kick()
    })
  }

  private async flushOutcomes(): Promise<void> {
    const o = this.outcomes
    this.outcomes = {}
    await this.store.countOutcomes(o).catch(() => {
      for (const [k, n] of Object.entries(o)) this.outcomes[k] = (this.outcomes[k] ?? 0) + n
    })
  }

  /** Ingest outcomes so far (stored plus not yet flushed). */
  async stats(): Promise<Record<string, number>> {
    await this.flushOutcomes()
    return this.store.outcomes()
  }

  prune(now = Date.now()) {
    return this.store.prune(this.o.config.errors.retainDays, this.o.config.errors.eventsPerGroup, now)
  }

  list(f: ListFilter) {
    return listGroups(this.store.db(), f)
  }

  show(id: string, eventId?: string) {
    return showGroup(this.store.db(), id, eventId)
  }

  setState(ids: string[], change: StateChange) {
    return setState(this.store.db(), ids, change)
  }

  recent(sinceMs: number) {
    return recentGroups(this.store.db(), sinceMs)
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t)
    await this.ingest?.close()
    this.ingest = null
    await this.writing
    await this.flushOutcomes()
    this.sourceMaps.close()
  }
}

export { InvalidEvent }
