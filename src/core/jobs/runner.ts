import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { OpsError } from '../../shared/contract'
import type { JobInfo, JobProgress } from '../../shared/domain'
import type { OpsEvents } from '../events'
import type { Logger } from '../log/logger'
import { scrub } from '../log/scrub'
import type { AuditLog } from '../audit/audit'

/** Advisory lock space of running jobs: a job's lock is held by its process's session while it runs. */
const JOB_LOCK = `hashtext('examforge-ops job')`

export type ProgressUpdate = Omit<JobProgress, 'jobId' | 'etaS'> & { etaS?: number | null }

export interface JobContext {
  signal: AbortSignal
  onProgress(p: ProgressUpdate): void
}

export type JobFn<I, R> = (input: I, ctx: JobContext) => Promise<R>

interface Running {
  info: JobInfo
  controller: AbortController
  promise: Promise<void>
  startedMs: number
}

const BY_OPERATOR = 'cancelled by the operator'
const SHUTTING_DOWN = 'cancelled because the console was shutting down'

/**
 * Why a job was cancelled, in the one wording every message uses (job errors, restore records):
 * "cancelled by the operator" or "cancelled because the console was shutting down". Whatever a library
 * threw on the abort ("The operation was aborted") is never what the operator reads.
 */
export function cancelReason(signal: AbortSignal): string {
  const r = signal.reason as { message?: string } | undefined
  return r?.message?.includes(SHUTTING_DOWN) ? SHUTTING_DOWN : BY_OPERATOR
}

/**
 * An honest ETA: from the rate over the last 20 seconds (not since the start, so a slow start or a
 * wait for a lock does not skew it), only once there is something to go on (a second of progress
 * and 1% done), and none rather than an absurd one (more than 100 times the time spent so far, or
 * over two days).
 */
export function etaEstimator(windowMs = 20_000): (done: number, total: number | null, elapsedMs: number) => number | null {
  const samples: { t: number; done: number }[] = []
  return (done, total, elapsedMs) => {
    samples.push({ t: elapsedMs, done })
    while (samples.length > 2 && samples[0].t < elapsedMs - windowMs) samples.shift()
    if (!total || done <= 0 || done / total < 0.01) return null
    const first = samples[0]
    const span = elapsedMs - first.t
    const rate = span > 0 ? (done - first.done) / span : 0
    if (elapsedMs < 1000 || span < 500 || rate <= 0) return null
    const eta = (total - done) / rate / 1000
    if (eta > Math.max(60, (100 * elapsedMs) / 1000) || eta > 2 * 86_400) return null
    return Math.max(0, Math.round(eta))
  }
}

/**
 * Long work as jobs: start returns an id at once; progress and the outcome arrive as events;
 * cancel by id; drain on quit. Every job and its outcome goes to ops.jobs and the audit log
 * when the ops store is reachable (a job never fails because its bookkeeping could not be written).
 */
export class JobRunner {
  private jobs = new Map<string, Running>()
  private finished: JobInfo[] = []
  /**
   * One session of the ops store (outside its pool) holding an advisory lock per running job: "this run is
   * alive". When the process dies the session and its locks go, and reconcile() can tell.
   */
  private alive: Promise<pg.Client | null> | null = null
  private held = new Set<string>()

  constructor(private deps: { events: OpsEvents; log: Logger; store: () => pg.Pool | null; audit: AuditLog }) {}

  start<I, R>(kind: string, input: I, fn: JobFn<I, R>, actor = 'operator'): string {
    const id = randomUUID()
    const controller = new AbortController()
    const info: JobInfo = {
      id,
      kind,
      state: 'running',
      startedAt: new Date().toISOString(),
      finishedAt: null,
      progress: null,
      error: null,
    }
    const startedMs = Date.now()
    let lastEmit = 0
    const eta = etaEstimator()
    const ctx: JobContext = {
      signal: controller.signal,
      onProgress: (p) => {
        // Once cancelled, the job only cleans up: say so, and promise no time.
        if (controller.signal.aborted) p = { ...p, phase: 'cancelling', etaS: null }
        const etaS = p.etaS !== undefined ? p.etaS : eta(p.done, p.total, Date.now() - startedMs)
        info.progress = { ...p, jobId: id, etaS }
        const now = Date.now()
        // At most ~10 events a second: progress is for eyes, not a log.
        if (now - lastEmit >= 100 || p.done === p.total) {
          lastEmit = now
          this.deps.events.emit('job.progress', info.progress)
        }
      },
    }
    // Alive first, then recorded as running: a start elsewhere never takes a live job for an interrupted one.
    const recorded = this.hold(id).then(() => this.record(info, input))
    const promise = (async () => {
      try {
        info.result = await fn(input, ctx)
        info.state = 'succeeded'
      } catch (e) {
        if (controller.signal.aborted) {
          info.state = 'cancelled'
          // A job that knows better what its cancel left behind says so with its own "cancelled" error.
          const own = e instanceof OpsError && e.code === 'cancelled' && e !== controller.signal.reason ? e.message : null
          info.error = {
            code: 'cancelled',
            message: scrub(own ?? `The ${kind} job was ${cancelReason(controller.signal)}; nothing after the cancel point was kept.`),
          }
        } else {
          info.state = 'failed'
          info.error = {
            code: e instanceof OpsError ? e.code : 'job_failed',
            message: scrub(e instanceof Error ? e.message : String(e)),
          }
          this.deps.log.warn(`job ${kind} failed`, { jobId: id, error: info.error.message })
        }
      } finally {
        info.finishedAt = new Date().toISOString()
        this.jobs.delete(id)
        this.finished.unshift(info)
        this.finished.length = Math.min(this.finished.length, 100)
        this.deps.events.emit('job.finished', info)
        await recorded // the "running" row is written before the outcome, never after it
        await this.record(info, input)
        await this.release(id)
        await this.deps.audit.record({
          actor,
          action: `job.${kind}`,
          target: id,
          outcome: info.state,
          details: info.error ? { error: info.error.message } : {},
        })
      }
    })()
    this.jobs.set(id, { info, controller, promise, startedMs })
    return id
  }

  cancel(id: string): boolean {
    const job = this.jobs.get(id)
    if (!job) return false
    job.controller.abort(new OpsError('cancelled', `The job was ${BY_OPERATOR}.`))
    // Show the cancel at once, even if the job reports no progress while it cleans up.
    job.info.progress = {
      ...(job.info.progress ?? { jobId: id, done: 0, total: null, unit: 'steps' }),
      phase: 'cancelling',
      etaS: null,
    }
    this.deps.events.emit('job.progress', job.info.progress)
    return true
  }

  get(id: string): JobInfo | undefined {
    return this.jobs.get(id)?.info ?? this.finished.find((j) => j.id === id)
  }

  async wait(id: string): Promise<JobInfo> {
    const running = this.jobs.get(id)
    if (running) await running.promise
    const info = this.get(id)
    if (!info) throw new OpsError('unknown_job', `There is no job ${id}.`)
    return info
  }

  list(): JobInfo[] {
    return [...[...this.jobs.values()].map((j) => j.info), ...this.finished]
  }

  /** On quit: cancel what is running and wait (bounded) for it to clean up. */
  async drain(timeoutMs = 10_000): Promise<void> {
    const running = [...this.jobs.values()]
    for (const j of running) j.controller.abort(new OpsError('cancelled', `The job was ${SHUTTING_DOWN}.`))
    await Promise.race([Promise.allSettled(running.map((j) => j.promise)), new Promise((r) => setTimeout(r, timeoutMs).unref())])
    // Closing the alive session releases the locks of anything still running: it reads as interrupted.
    const alive = this.alive
    this.alive = null
    this.held.clear()
    await (await alive)?.end().catch(() => {})
  }

  /** Take the job's lock on the alive session (opened on first need). Bookkeeping only: a failure is logged. */
  private async hold(id: string): Promise<void> {
    const pool = this.deps.store()
    if (!pool) return
    this.alive ??= this.openAlive(pool)
    const c = await this.alive
    if (!c) return
    try {
      await c.query(`SELECT pg_advisory_lock(${JOB_LOCK}, hashtext($1))`, [id])
      this.held.add(id)
    } catch (e) {
      this.deps.log.warn('could not mark the job alive', { error: (e as Error).message })
    }
  }

  private openAlive(pool: pg.Pool): Promise<pg.Client | null> {
    const session: Promise<pg.Client | null> = (async () => {
      // The pool's own client class and options (TLS as its URL asks, through db/connect).
      const Client = (pool.options as { Client?: typeof pg.Client }).Client ?? pg.Client
      const c = new Client({ ...pool.options, application_name: 'examforge-ops:jobs-alive' })
      c.on('error', () => {
        // The session is gone, and its locks with it: the next job opens a new one.
        if (this.alive === session) this.alive = null
        this.held.clear()
      })
      await c.connect()
      return c
    })().catch((e: Error) => {
      if (this.alive === session) this.alive = null
      this.deps.log.warn('could not open the session that marks running jobs alive', { error: e.message })
      return null
    })
    return session
  }

  private async release(id: string): Promise<void> {
    const alive = this.alive
    if (!alive || !this.held.delete(id)) return
    const c = await alive
    if (!c) return
    await c.query(`SELECT pg_advisory_unlock(${JOB_LOCK}, hashtext($1))`, [id]).catch(() => {})
  }

  /**
   * Jobs recorded as running whose process is gone (their lock is free) were interrupted: say so in ops.jobs.
   * Run when a face starts and whenever restore history is read. Returns how many were corrected.
   */
  async reconcile(): Promise<number> {
    const pool = this.deps.store()
    if (!pool) return 0
    try {
      const r = await pool.query(
        `UPDATE ops.jobs j SET state = 'interrupted', finished_at = COALESCE(finished_at, now()),
                error = jsonb_build_object('code', 'interrupted', 'message',
                  'The process running this job ended (killed or crashed) before it recorded the outcome.')
          WHERE state = 'running'
            AND CASE WHEN pg_try_advisory_lock(${JOB_LOCK}, hashtext(j.id))
                     THEN pg_advisory_unlock(${JOB_LOCK}, hashtext(j.id)) ELSE false END`,
      )
      return r.rowCount ?? 0
    } catch (e) {
      this.deps.log.warn('could not correct interrupted jobs in ops.jobs', { error: (e as Error).message })
      return 0
    }
  }

  private async record(info: JobInfo, input: unknown): Promise<void> {
    const pool = this.deps.store()
    if (!pool) return
    try {
      await pool.query(
        `INSERT INTO ops.jobs (id, kind, state, input, progress, result, error, started_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, progress = EXCLUDED.progress,
           result = EXCLUDED.result, error = EXCLUDED.error, finished_at = EXCLUDED.finished_at`,
        [
          info.id,
          info.kind,
          info.state,
          JSON.stringify(input ?? {}),
          info.progress ? JSON.stringify(info.progress) : null,
          info.result === undefined ? null : JSON.stringify(info.result),
          info.error ? JSON.stringify(info.error) : null,
          info.startedAt,
          info.finishedAt,
        ],
      )
    } catch (e) {
      this.deps.log.warn('could not record the job in ops.jobs', { error: (e as Error).message })
    }
  }
}
