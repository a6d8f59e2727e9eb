/**
 * The sandbox web app's errors, reported with ExamForge's own SDK (packages/error-tracker) to the
 * console's ingest, so the Errors page is live on a first start. A realistic mix: a few recurring bugs
 * (a quiz without questions, a cache timeout, a late Stripe webhook), a rare one (a bad deadline date),
 * and now and then a new one, each thrown from its own function so it groups as a real bug would, with
 * the request's breadcrumbs, user and team.
 */
import { ErrorTracker, type CaptureContext } from '../../../packages/error-tracker/src/index'

const FEATURES = ['certificate', 'leaderboard', 'invite', 'export', 'import', 'webhook', 'grading', 'timer', 'avatar', 'billing']
const FAULTS = ['null reference', 'missing translation', 'stale cache entry', 'duplicate key', 'unexpected status']

function loadQuizQuestions(id: number): never {
  const quiz: { questions?: { length: number } } = {}
  throw new TypeError(`Cannot read properties of undefined (reading 'length') for quiz ${id}: ${quiz.questions!.length}`)
}
function readThroughCache(key: string, ms: number): never {
  throw new Error(`Redis timeout after ${ms}ms reading ${key}`)
}
function formatDeadline(quizId: number): never {
  throw new RangeError(`Invalid time value for the deadline of quiz ${quizId}`)
}
function newFeatureBug(feature: string, fault: string): never {
  const e = new Error(`${fault} in ${feature}`)
  e.name = `${feature[0].toUpperCase()}${feature.slice(1)}Error`
  throw e
}

export class SandboxErrors {
  readonly tracker = new ErrorTracker()
  private on = false

  start(dsn: string): void {
    this.on =
      this.tracker.init({ dsn, release: 'examforge@2.14.0', environment: 'sandbox', captureUnhandled: false, flushIntervalMs: 2000 }) ===
      null
  }

  /** A request began: its breadcrumb. */
  request(method: string, path: string): void {
    if (this.on) this.tracker.addBreadcrumb(`${method} ${path}`, 'http', 'info')
  }

  /** The request failed: raise and report one error of the mix. */
  fail(method: string, path: string): void {
    if (!this.on) return
    const r = Math.random()
    const user = 1 + Math.floor(Math.random() * 300)
    const ctx: CaptureContext = {
      userId: `user-${user}`,
      teamId: `team-${1 + (user % 40)}`,
      request: { method, url: path, headers: { 'user-agent': 'Mozilla/5.0 (sandbox visitor)', cookie: `session=s${user}` } },
    }
    this.tracker.addBreadcrumb(`SELECT … FROM quizzes (${Math.round(2 + Math.random() * 30)} ms)`, 'db.query', 'info')
    try {
      if (r < 0.4) loadQuizQuestions(1 + Math.floor(Math.random() * 200))
      else if (r < 0.7) readThroughCache(`quiz:${Math.floor(Math.random() * 200)}`, 2000 + Math.floor(Math.random() * 500))
      else if (r < 0.85) {
        this.tracker.captureMessage(
          `Stripe webhook evt_1${Math.random().toString(36).slice(2, 12)} arrived ${Math.round(30 + Math.random() * 300)}s late`,
          ctx,
          'warning',
        )
        return
      } else if (r < 0.95) formatDeadline(Math.floor(Math.random() * 200))
      else newFeatureBug(FEATURES[Math.floor(Math.random() * FEATURES.length)], FAULTS[Math.floor(Math.random() * FAULTS.length)])
    } catch (e) {
      this.tracker.captureError(e, ctx, 'error')
    }
  }

  async stop(): Promise<void> {
    if (this.on) await this.tracker.flush(1000)
    this.tracker.close()
    this.on = false
  }
}
