import type pg from 'pg'
import { OpsError } from '../../shared/contract'
import {
  overallStatus,
  type HealthChange,
  type HealthResult,
  type HealthSnapshot,
  type HealthStatus,
  type ServiceId,
} from '../../shared/domain'
import type { OpsEvents } from '../events'
import type { Logger } from '../log/logger'
import { scrub } from '../log/scrub'
import type { Probe, ProbeOutcome } from './probe'
import { applyTransportRule } from './transport'
import { HealthStore } from './store'

interface State {
  status: HealthStatus
  since: string
}

/**
 * Runs every probe in parallel, each under its own timeout; keeps the latest result per service
 * in memory (so the console works while the ops store is down), records results and state
 * changes in the ops store, and emits events for the faces.
 */
export class HealthService {
  private latest = new Map<ServiceId, HealthResult>()
  private state = new Map<ServiceId, State>()
  private timer: NodeJS.Timeout | null = null
  private pruneTimer: NodeJS.Timeout | null = null
  private cycle: Promise<HealthSnapshot> | null = null
  private single = new Map<ServiceId, Promise<HealthSnapshot>>()
  private lastCheckedAt: string | null = null
  private store: HealthStore
  private loadedState = false

  constructor(
    private deps: {
      probes: Probe[]
      timeoutMs: number
      intervalS: number
      events: OpsEvents
      log: Logger
      pool: () => pg.Pool | null
      /** Days of raw results to keep (default 7). */
      retainDays?: number
      /** "Check now" reuses results younger than this instead of probing again (default 5000 ms). */
      freshMs?: number
      /** Why alerts are not being evaluated (shown on the Health page), else null. */
      alertsProblem?: () => string | null
    },
  ) {
    this.store = new HealthStore(deps.pool, deps.log)
  }

  get intervalS(): number {
    return this.deps.intervalS
  }

  start(): void {
    if (this.timer) return
    void this.checkAll()
    this.timer = setInterval(() => void this.checkAll(), this.deps.intervalS * 1000)
    this.timer.unref()
    // Raw results are kept for a week; state and changes are small and kept.
    this.pruneTimer = setInterval(() => void this.store.prune(this.deps.retainDays ?? 7), 3600_000)
    this.pruneTimer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    if (this.pruneTimer) clearInterval(this.pruneTimer)
    this.timer = null
    this.pruneTimer = null
  }

  /** A check's stored statuses over [from, to], for alert backtests (HealthStore.timeline). */
  timeline(service: string, from: number, to: number): ReturnType<HealthStore['timeline']> {
    return this.store.timeline(service, from, to, this.deps.intervalS * 1000)
  }

  /** Drop raw results older than the retention (hourly while scheduled). */
  prune(days = this.deps.retainDays ?? 7): Promise<number> {
    return this.store.prune(days)
  }

  /** The snapshot once every service has been checked at least once (joins the first cycle if it is still running). */
  async ready(): Promise<HealthSnapshot> {
    return this.lastCheckedAt ? this.snapshot() : this.checkAll()
  }

  snapshot(): HealthSnapshot {
    const results = this.deps.probes.map((p) => this.latest.get(p.id) ?? this.pending(p))
    return {
      overall: overallStatus(results),
      results,
      checkedAt: this.lastCheckedAt,
      intervalS: this.deps.intervalS,
      ...(this.deps.alertsProblem ? { alerts: { problem: this.deps.alertsProblem() } } : {}),
    }
  }

  /** Check every service now. A cycle already running is joined rather than doubled. */
  checkAll(): Promise<HealthSnapshot> {
    if (this.cycle) return this.cycle
    this.cycle = (async () => {
      try {
        if (!this.loadedState) await this.loadState()
        const results = await Promise.all(this.deps.probes.map((p) => this.runProbe(p)))
        this.lastCheckedAt = new Date().toISOString()
        await this.store.saveResults(results)
        const snap = this.snapshot()
        this.deps.events.emit('health.updated', snap)
        return snap
      } finally {
        this.cycle = null
      }
    })()
    return this.cycle
  }

  /**
   * "Check now" from a face: joins the check already running (the whole cycle, or this service's),
   * and reuses results younger than freshMs, so a loop of clicks or calls probes Stripe and the
   * others once, not once per call.
   */
  checkNow(service?: ServiceId): Promise<HealthSnapshot> {
    if (this.cycle) return this.cycle
    const fresh = Date.now() - (this.deps.freshMs ?? 5000)
    if (!service) {
      if (this.lastCheckedAt && Date.parse(this.lastCheckedAt) > fresh) return Promise.resolve(this.snapshot())
      return this.checkAll()
    }
    const running = this.single.get(service)
    if (running) return running
    const last = this.latest.get(service)
    if (last && Date.parse(last.checkedAt) > fresh) return Promise.resolve(this.snapshot())
    const p = this.checkOne(service).finally(() => this.single.delete(service))
    this.single.set(service, p)
    return p
  }

  async checkOne(service: ServiceId): Promise<HealthSnapshot> {
    const probe = this.deps.probes.find((p) => p.id === service)
    if (!probe) throw new OpsError('unknown_service', `There is no health check for "${service}".`)
    const result = await this.runProbe(probe)
    await this.store.saveResults([result])
    const snap = this.snapshot()
    this.deps.events.emit('health.updated', snap)
    return snap
  }

  history(service: ServiceId, limit: number) {
    return this.store.history(service, limit)
  }

  private pending(p: Probe): HealthResult {
    const configured = p.configured()
    return {
      service: p.id,
      label: p.label,
      status: configured ? 'unhealthy' : 'not_configured',
      latencyMs: null,
      reason: configured ? 'Not checked yet.' : p.howToConfigure,
      details: {},
      transport: null,
      checkedAt: new Date(0).toISOString(),
      lastChangeAt: null,
    }
  }

  private async runProbe(p: Probe): Promise<HealthResult> {
    const checkedAt = new Date().toISOString()
    let outcome: ProbeOutcome
    let elapsed: number | null = null
    if (!p.configured()) {
      outcome = { status: 'not_configured', reason: p.howToConfigure }
    } else {
      const controller = new AbortController()
      const t0 = performance.now()
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<ProbeOutcome>((resolve) => {
        timer = setTimeout(() => {
          controller.abort()
          resolve({ status: 'unhealthy', reason: `${p.label} did not answer within ${this.deps.timeoutMs / 1000} s (probe timeout).` })
        }, this.deps.timeoutMs)
      })
      try {
        outcome = await Promise.race([p.run(controller.signal), timeout])
      } catch (e) {
        outcome = { status: 'unhealthy', reason: `${p.label} check failed: ${(e as Error)?.message ?? String(e)}` }
      } finally {
        clearTimeout(timer)
      }
      elapsed = performance.now() - t0
      outcome = applyTransportRule(outcome, p.howToEncrypt ?? 'use an encrypted connection.')
    }
    const latency = outcome.latencyMs ?? elapsed
    const result: HealthResult = {
      service: p.id,
      label: p.label,
      status: outcome.status,
      latencyMs: latency === null ? null : Math.round(latency * 10) / 10,
      reason: scrub(outcome.reason),
      details: JSON.parse(scrub(JSON.stringify(outcome.details ?? {}))) as HealthResult['details'],
      transport: outcome.transport ? { ...outcome.transport, detail: scrub(outcome.transport.detail) } : null,
      checkedAt,
      lastChangeAt: null,
    }
    const prev = this.state.get(p.id)
    if (!prev || prev.status !== result.status) {
      const change: HealthChange = { service: p.id, from: prev?.status ?? null, to: result.status, reason: result.reason, at: checkedAt }
      this.state.set(p.id, { status: result.status, since: checkedAt })
      await this.store.saveChange(change)
      if (prev) {
        this.deps.log.info(`health: ${p.id} ${prev.status} -> ${result.status}`, { reason: result.reason })
        this.deps.events.emit('health.changed', change)
      }
    }
    result.lastChangeAt = this.state.get(p.id)!.since
    this.latest.set(p.id, result)
    return result
  }

  /** Pick up where the last run left off so "last change" survives restarts. */
  private async loadState(): Promise<void> {
    this.loadedState = true
    for (const s of await this.store.loadState()) {
      if (!this.state.has(s.service)) this.state.set(s.service, { status: s.status, since: s.since })
    }
  }
}
