/**
 * One evaluator and notifier per ops store: a PostgreSQL session-level advisory lock, held on a dedicated
 * connection for as long as this process leads. Consoles, hosts and agents on the same store all try
 * (pg_try_advisory_lock, never waiting); the one that holds it evaluates and notifies, the others retry
 * each interval. When the holder dies its session ends, the server releases the lock, and a stand-by takes
 * over at its next try (within one interval). A leader whose connection breaks stops leading at once.
 */
import type pg from 'pg'
import { pgClient } from '../db/connect'
import { connectTimeouts } from '../db/timeouts'
import type { Logger } from '../log/logger'

/** The lock's key: hashtext of this text, the same in every process on the store. */
export const LEADER_LOCK = 'examforge-ops:alerts-notifier'

export class LeaderLock {
  private client: pg.Client | null = null
  private leading = false
  private timer: NodeJS.Timeout | null = null
  private trying: Promise<boolean> | null = null
  private stopped = false

  constructor(private o: { url: string | null; intervalMs: number; log: Logger; onChange?: (leading: boolean) => void }) {}

  get isLeader(): boolean {
    return this.leading
  }

  start(): void {
    this.stopped = false
    void this.tryOnce()
    this.timer = setInterval(() => void this.tryOnce(), this.o.intervalMs)
    this.timer.unref()
  }

  /** One attempt to take (or confirm) the lock. */
  tryOnce(): Promise<boolean> {
    this.trying ??= this.attempt().finally(() => (this.trying = null))
    return this.trying
  }

  private async attempt(): Promise<boolean> {
    if (this.stopped || !this.o.url) return false
    try {
      if (!this.client) {
        const c = pgClient(this.o.url, { application_name: 'examforge-ops:alerts-leader', ...connectTimeouts() })
        c.on('error', (e) => this.lost(`the lock's connection failed: ${e.message}`))
        c.on('end', () => this.lost('the lock connection ended'))
        await c.connect()
        if (this.stopped) {
          await c.end().catch(() => {})
          return false
        }
        this.client = c
      }
      if (this.leading) {
        // Still leading only while the session that holds the lock answers.
        await this.client.query('SELECT 1')
        return true
      }
      const { rows } = await this.client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS ok`, [LEADER_LOCK])
      if (rows[0]?.ok && !this.stopped) this.set(true)
      return this.leading
    } catch (e) {
      this.lost(`could not reach the ops store: ${(e as Error).message}`)
      return false
    }
  }

  private lost(why: string): void {
    const c = this.client
    this.client = null
    void c?.end().catch(() => {})
    if (this.leading) {
      this.o.log.warn(`no longer the alert notifier: ${why}`)
      this.set(false)
    }
  }

  private set(leading: boolean): void {
    if (this.leading === leading) return
    this.leading = leading
    if (leading) this.o.log.info('this process evaluates and notifies alerts for the ops store')
    this.o.onChange?.(leading)
  }

  /** Let go: the session ends, which releases the lock for a stand-by. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    await this.trying?.catch(() => {})
    const c = this.client
    this.client = null
    this.set(false)
    await c?.end().catch(() => {})
  }
}
