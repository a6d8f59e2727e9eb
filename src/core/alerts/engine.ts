/**
 * The alert engine: rules (defaults, the UI's in ops.alert_rules, ALERT_RULES_FILE), their sources, the
 * state machine per rule and label set, and notification with Alertmanager's grouping. It evaluates at
 * every metrics collection, but only while it holds the store's notifier lock (leader.ts): exactly one
 * process per ops store evaluates and notifies. State, pending timers and what each channel was last sent
 * live in ops, and are loaded when this process takes the lock, so a restart or a takeover neither resets
 * a timer nor sends anything twice (a group's "sent" record is written before the request goes out).
 */
import { createHash, randomUUID } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import type pg from 'pg'
import { OpsError } from '../../shared/contract'
import type { MetricPoint } from '../../shared/metrics'
import type { AuditLog } from '../audit/audit'
import type { OpsEvents } from '../events'
import type { Logger } from '../log/logger'
import { backtestPoints, backtestReadings, inputOf, type BacktestResult } from './backtest'
import { LeaderLock } from './leader'
import { deliver, type Channel, type DeliveryResult, type Notification, type NotifiedAlert, type SendOptions } from './notify'
import { parseRulesFile, ruleProblem, type Grouping } from './rules-file'
import { ruleInput, sourceParams, type Rule, type RuleInput, type RuleOrigin } from './rules'
import type { Reading, RuleSource } from './source'
import { initialState, step, type AlertState, type Input, type Transition } from './state'
import { round } from './sources'

export interface Matcher {
  name: string
  value: string
  /** "=" equal, "!=" not equal, "=~" regular expression (whole value). */
  op: '=' | '!=' | '=~'
}

export interface Silence {
  id: string
  matchers: Matcher[]
  startsAt: number
  endsAt: number
  createdBy: string
  reason: string
}

interface Tracked {
  rule: string
  fingerprint: string
  labels: Record<string, string>
  severity: Rule['severity']
  state: AlertState
  ackedBy: string | null
  ackedAt: number | null
  /** What was last written to ops.alert_state, to write only changes. */
  persisted: string
}

interface Group {
  channel: string
  groupKey: string
  firstSeen: number
  lastSentAt: number | null
  /** Fingerprints that were firing in the last notification. */
  lastFiring: string[]
}

export interface EngineOptions {
  pool: () => pg.Pool | null
  opsUrl: string | null
  intervalMs: number
  log: Logger
  events: OpsEvents
  audit: AuditLog
  defaults: RuleInput[]
  channels: Channel[]
  rulesFile: string | null
  knowsSeries: (s: string) => boolean
  history: (seriesIds: string[], from: number, to: number) => Promise<{ id: string; points: MetricPoint[] }[]>
  seriesIds: (series: string, host?: string) => string[]
  externalUrl?: string
  send?: SendOptions
  /** Told when this process starts or stops being the store's notifier (ops keeps collection at the interval while it is). */
  onLeaderChange?: (leading: boolean) => void
  /**
   * Alerts that went to firing in this evaluation, told inside the transaction that records their transitions
   * (under a savepoint: a failure here is logged and rolled back alone, never stopping alerting). Incidents
   * open or join here (core/incidents). What it returns runs once the transaction has committed.
   */
  onFiring?: (client: pg.PoolClient, fired: FiredAlert[]) => Promise<(() => void | Promise<void>) | void>
}

/** An alert that went to firing: what opens or joins an incident. */
export interface FiredAlert {
  /** "rule/fingerprint", as alerts.list shows it. */
  id: string
  rule: string
  fingerprint: string
  labels: Record<string, string>
  severity: Rule['severity']
  firedAt: number
  value: number | null
  text: string | null
  summary: string | null
}

export interface RuleView {
  rule: Rule
  origin: RuleOrigin
  firing: number
  pending: number
  /** Why the rule cannot be evaluated (its kind is not registered yet), else null. */
  problem: string | null
}

export interface AlertView {
  id: string
  rule: string
  fingerprint: string
  labels: Record<string, string>
  severity: string
  phase: 'pending' | 'firing'
  value: number | null
  text: string | null
  since: number
  ackedBy: string | null
  silencedBy: string | null
}

const fingerprintOf = (rule: string, labels: Record<string, string>) =>
  createHash('sha256')
    .update(JSON.stringify([rule, Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1))]))
    .digest('hex')
    .slice(0, 16)

const ms = (d: Date | null) => (d ? d.getTime() : null)

export function matches(m: Matcher[], labels: Record<string, string>): boolean {
  return m.every((x) => {
    const v = labels[x.name] ?? ''
    if (x.op === '=') return v === x.value
    if (x.op === '!=') return v !== x.value
    try {
      return new RegExp(`^(?:${x.value})$`).test(v)
    } catch {
      return false
    }
  })
}

function template(text: string, values: Record<string, string>): string {
  return text.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, k: string) => values[k] ?? '')
}

export class AlertEngine {
  private sources = new Map<string, RuleSource<unknown>>()
  private uiRules = new Map<string, Rule>()
  private fileRules = new Map<string, Rule>()
  private fileGrouping: Record<string, Grouping> = {}
  private fileError: string | null = null
  private fileTimer: NodeJS.Timeout | null = null
  private parsedDefaults: Rule[] | null = null
  private loadedStamp: string | null = null
  private tracked = new Map<string, Tracked>()
  private groups = new Map<string, Group>()
  private silences: Silence[] = []
  readonly leader: LeaderLock
  private evaluating: Promise<void> | null = null
  private loaded = false
  private sending = new Set<Promise<unknown>>()
  /** The last evaluation: when, how long in all, how long the rules and state machine took before the store write, errors. */
  lastEvaluation: { at: number; ms: number; computeMs: number; rules: number; error: string | null } | null = null

  constructor(private o: EngineOptions) {
    this.leader = new LeaderLock({
      url: o.opsUrl,
      intervalMs: o.intervalMs,
      log: o.log,
      onChange: (leading) => {
        // Taking over: state, timers and what was sent come from the store; letting go: forget them.
        this.loaded = false
        if (!leading) {
          this.tracked.clear()
          this.groups.clear()
        }
        o.onLeaderChange?.(leading)
      },
    })
  }

  registerSource(source: RuleSource<unknown>): void {
    if (this.sources.has(source.kind)) throw new Error(`a rule source of kind "${source.kind}" is already registered`)
    this.sources.set(source.kind, source)
  }

  sourceKinds(): { kind: string; describe: string; condition: boolean }[] {
    return [...this.sources.values()].map((s) => ({ kind: s.kind, describe: s.describe, condition: s.condition }))
  }

  // ---- rules --------------------------------------------------------------------------------------

  /** Load UI rules from ops and the rules file; start following the file. */
  async start(opts: { evaluate: boolean }): Promise<void> {
    await this.loadUiRules()
    if (this.o.rulesFile) {
      this.loadFile()
      // Polled once a second against what was last read (the baseline is taken with the read itself, so an
      // edit right after start is never missed, and editors that replace the file are followed too).
      this.fileTimer = setInterval(() => {
        if (this.fileStamp() !== this.loadedStamp) this.loadFile()
      }, 1000)
      this.fileTimer.unref()
    }
    if (opts.evaluate) this.leader.start()
  }

  private async loadUiRules(): Promise<void> {
    const pool = this.o.pool()
    if (!pool) return
    const { rows } = await pool.query<{ name: string; spec: unknown }>('SELECT name, spec FROM ops.alert_rules')
    this.uiRules.clear()
    for (const r of rows) {
      const res = ruleInput.safeParse(r.spec)
      if (res.success) this.uiRules.set(r.name, res.data)
      else
        this.o.log.warn(`the stored alert rule "${r.name}" is not valid any more and is skipped`, { error: res.error.issues[0]?.message })
    }
  }

  private fileStamp(): string {
    try {
      const st = statSync(this.o.rulesFile!)
      return `${st.mtimeMs}:${st.size}:${st.ino}`
    } catch (e) {
      return `missing:${(e as NodeJS.ErrnoException).code}`
    }
  }

  /** (Re)read the rules file; on any problem the previous rules stay and the problem is kept for the UI. */
  loadFile(): void {
    const file = this.o.rulesFile
    if (!file) return
    this.loadedStamp = this.fileStamp()
    try {
      const text = readFileSync(file, 'utf8')
      const parsed = parseRulesFile(text, file, { sources: this.sources, knowsSeries: this.o.knowsSeries })
      this.fileRules = new Map(parsed.rules.map((r) => [r.name, r]))
      this.fileGrouping = parsed.channels
      if (this.fileError) this.o.log.info(`alert rules file ${file} loaded again`)
      this.fileError = null
    } catch (e) {
      const msg =
        e instanceof OpsError
          ? e.message
          : `${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the previous rules stay in force.`
      if (msg !== this.fileError) this.o.log.warn(msg)
      this.fileError = msg
    }
  }

  get rulesFileProblem(): string | null {
    return this.fileError
  }

  /** The rules in force: defaults, replaced by UI rules of the same name, replaced by file rules. */
  rules(): { rule: Rule; origin: RuleOrigin }[] {
    const out = new Map<string, { rule: Rule; origin: RuleOrigin }>()
    this.parsedDefaults ??= this.o.defaults.map((d) => ruleInput.parse(d))
    for (const r of this.parsedDefaults) out.set(r.name, { rule: r, origin: 'default' })
    for (const [n, r] of this.uiRules) out.set(n, { rule: r, origin: 'ui' })
    for (const [n, r] of this.fileRules) out.set(n, { rule: r, origin: 'file' })
    return [...out.values()]
  }

  rule(name: string): Rule {
    const r = this.rules().find((x) => x.rule.name === name)
    if (!r) throw new OpsError('unknown_rule', `There is no alert rule "${name}". "examforge-ops alerts rules" lists them.`)
    return r.rule
  }

  ruleViews(): RuleView[] {
    return this.rules().map(({ rule, origin }) => {
      const mine = [...this.tracked.values()].filter((t) => t.rule === rule.name)
      return {
        rule,
        origin,
        firing: mine.filter((t) => t.state.phase === 'firing').length,
        pending: mine.filter((t) => t.state.phase === 'pending').length,
        problem: this.sources.has(rule.kind) ? null : `waiting for its source "${rule.kind}" (not registered yet)`,
      }
    })
  }

  /** Validate a rule as the editor sends it; the parsed rule, or an OpsError saying what to fix. */
  validate(input: unknown): Rule {
    const res = ruleInput.safeParse(input)
    if (!res.success) {
      const i = res.error.issues[0]
      throw new OpsError('invalid_rule', `The rule is not valid${i?.path.length ? ` at "${i.path.join('.')}"` : ''}: ${i?.message}.`)
    }
    const p = ruleProblem(res.data, { sources: this.sources, knowsSeries: this.o.knowsSeries })
    if (p) throw new OpsError('invalid_rule', `The rule is not valid at "${p.path.join('.')}": ${p.message}.`)
    return res.data
  }

  async saveRule(input: unknown, who: string): Promise<Rule> {
    const rule = this.validate(input)
    if (this.fileRules.has(rule.name))
      throw new OpsError('rule_in_file', `The rule "${rule.name}" is defined in the rules file (ALERT_RULES_FILE): change it there.`)
    const pool = this.requirePool()
    await pool.query(
      `INSERT INTO ops.alert_rules (name, spec, updated_by) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec, updated_by = EXCLUDED.updated_by, updated_at = now()`,
      [rule.name, JSON.stringify(input), who],
    )
    this.uiRules.set(rule.name, rule)
    await this.o.audit.record({ actor: who, action: 'alerts.rule.save', target: rule.name, outcome: 'saved', details: { rule: input } })
    return rule
  }

  async deleteRule(name: string, who: string): Promise<{ deleted: boolean; disabled: boolean }> {
    if (this.fileRules.has(name))
      throw new OpsError('rule_in_file', `The rule "${name}" is defined in the rules file (ALERT_RULES_FILE): remove it there.`)
    const pool = this.requirePool()
    const isDefault = this.o.defaults.some((d) => d.name === name)
    if (isDefault && !this.uiRules.has(name)) {
      // A default cannot disappear (it would come back): it is stored switched off. Deleting the stored
      // version of a default (edited or switched off) brings the default back.
      const d = this.o.defaults.find((x) => x.name === name)!
      await this.saveRule({ ...d, enabled: false }, who)
      return { deleted: false, disabled: true }
    }
    const { rowCount } = await pool.query('DELETE FROM ops.alert_rules WHERE name = $1', [name])
    this.uiRules.delete(name)
    await this.o.audit.record({ actor: who, action: 'alerts.rule.delete', target: name, outcome: rowCount ? 'deleted' : 'not found' })
    return { deleted: !!rowCount, disabled: false }
  }

  private requirePool(): pg.Pool {
    const pool = this.o.pool()
    if (!pool)
      throw new OpsError(
        'store_unavailable',
        'The ops store is not reachable, so alerts cannot be changed now. Check OPS_DATABASE_URL and try again.',
      )
    return pool
  }

  // ---- evaluation ---------------------------------------------------------------------------------

  /** One evaluation of every rule; nothing unless this process holds the notifier lock (or `force`, for tests and benches). */
  evaluate(now = Date.now(), force = false): Promise<void> {
    if (!force && !this.leader.isLeader) {
      // Not the notifier: still say so when the store is out of reach (then nobody here can evaluate).
      this.announce()
      return Promise.resolve()
    }
    this.evaluating ??= this.evaluateNow(now).finally(() => {
      this.evaluating = null
      this.announce()
    })
    return this.evaluating
  }

  /**
   * Why alerts are not being evaluated, in a sentence, else null: the last evaluation here failed, or the ops
   * store (where the notifier lock, state and timers live) cannot be reached, so no process here evaluates.
   */
  problem(): string | null {
    if (this.lastEvaluation?.error)
      return `Alerts are not being evaluated: ${this.lastEvaluation.error}. Nothing is notified until the ops store answers again.`
    if (!this.o.pool())
      return 'Alerts are not being evaluated: the ops store is not reachable, so nothing is notified until it answers again; check OPS_DATABASE_URL and that its server is up.'
    return null
  }

  private announced: string | null = null
  /** Said once when evaluation stops (a desktop notification too), and again only after it has recovered. */
  private announce(): void {
    const p = this.problem()
    if (p && !this.announced)
      this.o.events.emit('alerts.notify', { title: 'Alerts are not being evaluated', body: p, severity: 'critical' })
    this.announced = p
  }

  private async loadState(): Promise<void> {
    const pool = this.o.pool()
    if (!pool) throw new Error('the ops store is not reachable')
    const [st, gr, si] = await Promise.all([
      pool.query(`SELECT * FROM ops.alert_state`),
      pool.query(`SELECT * FROM ops.alert_groups`),
      this.loadSilences(pool),
    ])
    void si
    await this.loadUiRules()
    this.tracked.clear()
    for (const r of st.rows) {
      const state: AlertState = {
        phase: r.phase,
        activeAt: ms(r.active_at),
        firedAt: ms(r.fired_at),
        lastTrueAt: ms(r.last_true_at),
        resolvedAt: ms(r.resolved_at),
        value: r.value,
        text: r.text,
      }
      const t: Tracked = {
        rule: r.rule,
        fingerprint: r.fingerprint,
        labels: r.labels,
        severity: r.severity,
        state,
        ackedBy: r.acked_by,
        ackedAt: ms(r.acked_at),
        persisted: '',
      }
      t.persisted = this.rowKey(t)
      this.tracked.set(`${r.rule}|${r.fingerprint}`, t)
    }
    this.groups.clear()
    for (const g of gr.rows)
      this.groups.set(`${g.channel}|${g.group_key}`, {
        channel: g.channel,
        groupKey: g.group_key,
        firstSeen: g.first_seen.getTime(),
        lastSentAt: ms(g.last_sent_at),
        lastFiring: g.last_digest ? (JSON.parse(g.last_digest) as string[]) : [],
      })
    this.loaded = true
  }

  private async loadSilences(pool: pg.Pool): Promise<void> {
    const { rows } = await pool.query(`SELECT * FROM ops.alert_silences WHERE ends_at > now() AND expired_by IS NULL`)
    this.silences = rows.map((r) => ({
      id: r.id,
      matchers: r.matchers,
      startsAt: r.starts_at.getTime(),
      endsAt: r.ends_at.getTime(),
      createdBy: r.created_by,
      reason: r.reason,
    }))
  }

  private rowKey(t: Tracked): string {
    return JSON.stringify([t.state, t.severity, t.ackedBy])
  }

  private async evaluateNow(now: number): Promise<void> {
    const started = performance.now()
    let error: string | null = null
    let computeMs = 0
    const rules = this.rules().filter((r) => r.rule.enabled)
    try {
      if (!this.loaded) await this.loadState()
      const transitions: { t: Tracked; tr: Transition }[] = []
      const live = new Set<string>()
      await Promise.all(
        rules.map(async ({ rule }) => {
          const source = this.sources.get(rule.kind)
          let readings: Reading[]
          if (!source) readings = []
          else
            try {
              // Parsed, so a kind's defaults (an anomaly's window and baseline) apply to rules that leave them out.
              const params = source.params.safeParse(sourceParams(rule))
              readings = params.success
                ? await source.evaluate(params.data, now)
                : [{ labels: {}, value: null, error: `bad parameters: ${params.error.issues[0]?.message}` }]
            } catch (e) {
              readings = [{ labels: {}, value: null, error: (e as Error).message }]
            }
          const seen = new Set<string>()
          for (const r of readings) {
            const fp = fingerprintOf(rule.name, r.labels)
            seen.add(fp)
            const input = inputOf(r, rule, !!source?.condition)
            this.apply(rule, fp, r.labels, input, now, transitions)
            live.add(`${rule.name}|${fp}`)
          }
          // Label sets that stopped reporting read "no data" (never a silent resolve).
          for (const t of this.tracked.values())
            if (t.rule === rule.name && !seen.has(t.fingerprint)) {
              this.apply(rule, t.fingerprint, t.labels, { kind: 'nodata' }, now, transitions)
              live.add(`${rule.name}|${t.fingerprint}`)
            }
        }),
      )
      // Rules removed or switched off: their alerts end (resolved if they were firing, so a notice goes out).
      for (const [k, t] of this.tracked)
        if (!live.has(k) && t.state.phase !== 'inactive' && t.state.phase !== 'resolved') {
          const from = t.state.phase
          t.state = {
            ...t.state,
            phase: from === 'firing' ? 'resolved' : 'inactive',
            resolvedAt: now,
            activeAt: null,
            text: 'the rule was removed or switched off',
          }
          transitions.push({ t, tr: { from, to: t.state.phase, at: now, value: t.state.value, text: t.state.text } })
        }
      computeMs = performance.now() - started
      await this.persist(transitions)
      if (transitions.length) this.o.events.emit('alerts.changed', this.counts())
      await this.notify(now)
    } catch (e) {
      error = (e as Error).message
      this.o.log.warn('alert evaluation failed; will retry at the next collection', { error })
    }
    this.lastEvaluation = { at: now, ms: performance.now() - started, computeMs, rules: rules.length, error }
  }

  private apply(
    rule: Rule,
    fp: string,
    labels: Record<string, string>,
    input: Input,
    now: number,
    out: { t: Tracked; tr: Transition }[],
  ): void {
    const key = `${rule.name}|${fp}`
    let t = this.tracked.get(key)
    if (!t) {
      if (input.kind === 'value' && !input.holds && rule.no_data !== 'alert') return // nothing to track until something happens
      t = {
        rule: rule.name,
        fingerprint: fp,
        labels,
        severity: rule.severity,
        state: initialState(),
        ackedBy: null,
        ackedAt: null,
        persisted: '',
      }
      this.tracked.set(key, t)
    }
    t.severity = rule.severity
    const r = step(t.state, input, rule, now)
    t.state = r.state
    if (r.transition) {
      if (r.transition.to === 'firing' || r.transition.to === 'pending') {
        t.ackedBy = null
        t.ackedAt = null
      }
      out.push({ t, tr: r.transition })
    }
  }

  private async persist(transitions: { t: Tracked; tr: Transition }[]): Promise<void> {
    const pool = this.o.pool()
    if (!pool) throw new Error('the ops store is not reachable')
    const changed = [...this.tracked.values()].filter((t) => this.rowKey(t) !== t.persisted)
    if (!changed.length && !transitions.length) return
    const c = await pool.connect()
    try {
      await c.query('BEGIN')
      if (changed.length)
        await c.query(
          `INSERT INTO ops.alert_state (rule, fingerprint, labels, phase, active_at, fired_at, last_true_at, resolved_at, value, text, severity, acked_by, acked_at, updated_at)
           SELECT x.rule, x.fp, x.labels::jsonb, x.phase, to_timestamp(x.a / 1000.0), to_timestamp(x.f / 1000.0), to_timestamp(x.l / 1000.0),
                  to_timestamp(x.r / 1000.0), x.v, x.t, x.s, x.ab, to_timestamp(x.aa / 1000.0), now()
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[],
                         $10::text[], $11::text[], $12::text[], $13::float8[]) AS x(rule, fp, labels, phase, a, f, l, r, v, t, s, ab, aa)
           ON CONFLICT (rule, fingerprint) DO UPDATE SET phase = EXCLUDED.phase, active_at = EXCLUDED.active_at, fired_at = EXCLUDED.fired_at,
             last_true_at = EXCLUDED.last_true_at, resolved_at = EXCLUDED.resolved_at, value = EXCLUDED.value, text = EXCLUDED.text,
             severity = EXCLUDED.severity, acked_by = EXCLUDED.acked_by, acked_at = EXCLUDED.acked_at, labels = EXCLUDED.labels, updated_at = now()`,
          [
            changed.map((t) => t.rule),
            changed.map((t) => t.fingerprint),
            changed.map((t) => JSON.stringify(t.labels)),
            changed.map((t) => t.state.phase),
            changed.map((t) => t.state.activeAt),
            changed.map((t) => t.state.firedAt),
            changed.map((t) => t.state.lastTrueAt),
            changed.map((t) => t.state.resolvedAt),
            changed.map((t) => (t.state.value !== null && Number.isFinite(t.state.value) ? t.state.value : null)),
            changed.map((t) => t.state.text),
            changed.map((t) => t.severity),
            changed.map((t) => t.ackedBy),
            changed.map((t) => t.ackedAt),
          ],
        )
      if (transitions.length)
        await c.query(
          `INSERT INTO ops.alert_transitions (rule, fingerprint, labels, from_phase, to_phase, value, text, at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::text[], $6::float8[], $7::text[], $8::timestamptz[])`,
          [
            transitions.map((x) => x.t.rule),
            transitions.map((x) => x.t.fingerprint),
            transitions.map((x) => JSON.stringify(x.t.labels)),
            transitions.map((x) => x.tr.from),
            transitions.map((x) => x.tr.to),
            transitions.map((x) => (x.tr.value !== null && Number.isFinite(x.tr.value) ? x.tr.value : null)),
            transitions.map((x) => x.tr.text),
            transitions.map((x) => new Date(x.tr.at)),
          ],
        )
      let afterCommit: (() => void | Promise<void>) | void = undefined
      const fired = transitions.filter((x) => x.tr.to === 'firing')
      if (fired.length && this.o.onFiring) {
        const rules = new Map(this.rules().map((r) => [r.rule.name, r.rule]))
        await c.query('SAVEPOINT on_firing')
        try {
          afterCommit = await this.o.onFiring(
            c,
            fired.map(({ t, tr }) => ({
              id: `${t.rule}/${t.fingerprint}`,
              rule: t.rule,
              fingerprint: t.fingerprint,
              labels: t.labels,
              severity: t.severity,
              firedAt: t.state.firedAt ?? tr.at,
              value: tr.value !== null && Number.isFinite(tr.value) ? tr.value : null,
              text: tr.text,
              summary: (() => {
                const rule = rules.get(t.rule)
                const text = rule?.annotations.summary
                if (!text) return null
                const labels = this.alertLabels(t, rule)
                return template(text, { ...labels, value: t.state.value === null ? (t.state.text ?? '') : String(round(t.state.value)) })
              })(),
            })),
          )
          await c.query('RELEASE SAVEPOINT on_firing')
        } catch (e) {
          await c.query('ROLLBACK TO SAVEPOINT on_firing')
          this.o.log.warn('could not open or join an incident for the alerts that fired', { error: (e as Error).message })
        }
      }
      await c.query('COMMIT')
      for (const t of changed) t.persisted = this.rowKey(t)
      if (afterCommit)
        await Promise.resolve()
          .then(afterCommit)
          .catch((e) => this.o.log.warn('incident follow-up failed', { error: (e as Error).message }))
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {})
      throw e
    } finally {
      c.release()
    }
  }

  // ---- notification -------------------------------------------------------------------------------

  private silencedBy(labels: Record<string, string>, now: number): Silence | null {
    return this.silences.find((s) => s.startsAt <= now && s.endsAt > now && matches(s.matchers, labels)) ?? null
  }

  private alertLabels(t: Tracked, rule: Rule | undefined): Record<string, string> {
    return { alertname: t.rule, severity: t.severity, ...(rule?.labels ?? {}), ...t.labels }
  }

  private notified(t: Tracked, rule: Rule | undefined, status: 'firing' | 'resolved'): NotifiedAlert {
    const labels = this.alertLabels(t, rule)
    const values = { ...labels, value: t.state.value === null ? (t.state.text ?? '') : String(round(t.state.value)) }
    const annotations = Object.fromEntries(Object.entries(rule?.annotations ?? {}).map(([k, v]) => [k, template(v, values)]))
    return {
      rule: t.rule,
      fingerprint: t.fingerprint,
      status,
      severity: t.severity,
      labels,
      annotations,
      value: t.state.value,
      text: t.state.text,
      startsAt: t.state.firedAt ?? t.state.activeAt ?? Date.now(),
      endsAt: status === 'resolved' ? (t.state.resolvedAt ?? Date.now()) : null,
    }
  }

  private grouping(ch: Channel): Required<Grouping> {
    const g = this.fileGrouping[ch.name] ?? {}
    return {
      groupWaitMs: g.groupWaitMs ?? ch.groupWaitMs,
      groupIntervalMs: g.groupIntervalMs ?? ch.groupIntervalMs,
      repeatIntervalMs: g.repeatIntervalMs ?? ch.repeatIntervalMs,
    }
  }

  /** Alertmanager's decisions per channel and group (one group per rule): group_wait, group_interval, repeat_interval, resolved notices. */
  private async notify(now: number): Promise<void> {
    const pool = this.o.pool()
    if (!pool) return
    if (this.silences.some((s) => s.endsAt <= now)) this.silences = this.silences.filter((s) => s.endsAt > now)
    const rules = new Map(this.rules().map((r) => [r.rule.name, r.rule]))
    const byRule = new Map<string, Tracked[]>()
    for (const t of this.tracked.values()) {
      const list = byRule.get(t.rule) ?? []
      list.push(t)
      byRule.set(t.rule, list)
    }
    const ruleNames = new Set([...byRule.keys(), ...[...this.groups.values()].map((g) => g.groupKey)])
    for (const ch of this.o.channels) {
      const g = this.grouping(ch)
      for (const name of ruleNames) {
        const rule = rules.get(name)
        if (rule?.channels && !rule.channels.includes(ch.name)) continue
        const key = `${ch.name}|${name}`
        const all = byRule.get(name) ?? []
        const firing = all.filter((t) => t.state.phase === 'firing' && !this.silencedBy(this.alertLabels(t, rule), now))
        const firingFps = firing.map((t) => t.fingerprint).sort()
        let group = this.groups.get(key)
        if (!group) {
          if (!firing.length) continue
          group = { channel: ch.name, groupKey: name, firstSeen: now, lastSentAt: null, lastFiring: [] }
          this.groups.set(key, group)
          await pool.query(
            `INSERT INTO ops.alert_groups (channel, group_key, first_seen) VALUES ($1, $2, $3) ON CONFLICT (channel, group_key) DO NOTHING`,
            [ch.name, name, new Date(now)],
          )
        }
        const silencedNow = new Set(all.filter((t) => this.silencedBy(this.alertLabels(t, rule), now)).map((t) => t.fingerprint))
        const resolved = group.lastFiring.filter((fp) => !firingFps.includes(fp) && !silencedNow.has(fp))
        const changed = JSON.stringify(firingFps) !== JSON.stringify(group.lastFiring)
        let send = false
        if (group.lastSentAt === null) {
          if (!firing.length) {
            // It ended within group_wait: nothing was sent, nothing to resolve.
            this.groups.delete(key)
            await pool.query(`DELETE FROM ops.alert_groups WHERE channel = $1 AND group_key = $2`, [ch.name, name])
            continue
          }
          send = now - group.firstSeen >= g.groupWaitMs
        } else if (changed && (firingFps.some((fp) => !group.lastFiring.includes(fp)) || resolved.length)) {
          send = now - group.lastSentAt >= g.groupIntervalMs
        } else if (firing.length && firing.some((t) => !t.ackedBy)) {
          send = now - group.lastSentAt >= g.repeatIntervalMs
        } else if (!firing.length && !resolved.length) {
          // Everything in it is silenced: drop the group quietly.
          this.groups.delete(key)
          await pool.query(`DELETE FROM ops.alert_groups WHERE channel = $1 AND group_key = $2`, [ch.name, name])
          continue
        }
        if (!send) continue
        const resolvedTracked = resolved.map((fp) => all.find((t) => t.fingerprint === fp)).filter((t): t is Tracked => !!t)
        const n: Notification = {
          channel: ch.name,
          groupKey: `{}:{alertname="${name}"}`,
          status: firing.length ? 'firing' : 'resolved',
          groupLabels: { alertname: name },
          alerts: [
            ...firing.map((t) => this.notified(t, rule, 'firing')),
            ...resolvedTracked.map((t) => this.notified(t, rule, 'resolved')),
          ],
          externalUrl: this.o.externalUrl ?? '',
        }
        // Recorded as sent before it goes: a crash mid-send never sends it again (at most once).
        group.lastSentAt = now
        group.lastFiring = firingFps
        if (firing.length)
          await pool.query(`UPDATE ops.alert_groups SET last_sent_at = $3, last_digest = $4 WHERE channel = $1 AND group_key = $2`, [
            ch.name,
            name,
            new Date(now),
            JSON.stringify(firingFps),
          ])
        else {
          this.groups.delete(key)
          await pool.query(`DELETE FROM ops.alert_groups WHERE channel = $1 AND group_key = $2`, [ch.name, name])
        }
        this.track(this.send(ch, n))
      }
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.sending.add(p)
    void p.finally(() => this.sending.delete(p))
    return p
  }

  /** Deliver and log: one ops.alert_deliveries row per notification and channel. */
  private async send(ch: Channel, n: Notification): Promise<DeliveryResult> {
    const pool = this.o.pool()
    let id: string | null = null
    try {
      const r = await pool?.query<{ id: string }>(
        `INSERT INTO ops.alert_deliveries (channel, group_key, status, alerts, outcome) VALUES ($1, $2, $3, $4, 'sending') RETURNING id`,
        [
          ch.name,
          n.groupKey,
          n.status,
          JSON.stringify(n.alerts.map((a) => ({ rule: a.rule, fingerprint: a.fingerprint, status: a.status, labels: a.labels }))),
        ],
      )
      id = r?.rows[0]?.id ?? null
    } catch (e) {
      this.o.log.warn('could not write the delivery log', { error: (e as Error).message })
    }
    const result = await deliver(ch, n, { ...this.o.send, desktop: (d) => this.o.events.emit('alerts.notify', d) })
    if (!result.ok) this.o.log.warn(`alert notification not delivered: ${result.error}`)
    if (id)
      await pool
        ?.query(`UPDATE ops.alert_deliveries SET attempts = $2, outcome = $3, error = $4, finished_at = now() WHERE id = $1`, [
          id,
          result.attempts,
          result.ok ? 'sent' : 'failed',
          result.error,
        ])
        .catch(() => {})
    return result
  }

  /** Wait for notifications in flight (tests, shutdown). */
  async drain(): Promise<void> {
    while (this.sending.size) await Promise.allSettled([...this.sending])
  }

  /** A test notification to one channel, logged like any other. */
  async testChannel(name: string, who: string): Promise<DeliveryResult> {
    const ch = this.o.channels.find((c) => c.name === name)
    if (!ch)
      throw new OpsError(
        'unknown_channel',
        `There is no alert channel "${name}". Configured: ${this.o.channels.map((c) => c.name).join(', ') || 'none'} (set ALERT_WEBHOOK_URL, ALERT_SLACK_WEBHOOK_URL, ALERT_DISCORD_WEBHOOK_URL or SMTP_URL).`,
      )
    const now = Date.now()
    const n: Notification = {
      channel: name,
      groupKey: '{}:{alertname="test"}',
      status: 'firing',
      groupLabels: { alertname: 'test' },
      alerts: [
        {
          rule: 'test',
          fingerprint: 'test',
          status: 'firing',
          severity: 'info',
          labels: { alertname: 'test', severity: 'info' },
          annotations: { summary: `A test notification from ExamForge Ops, sent by ${who}` },
          value: null,
          text: 'test',
          startsAt: now,
          endsAt: null,
        },
      ],
      externalUrl: this.o.externalUrl ?? '',
    }
    const r = await this.track(this.send(ch, n))
    await this.o.audit.record({
      actor: who,
      action: 'alerts.test',
      target: name,
      outcome: r.ok ? 'sent' : 'failed',
      details: { error: r.error },
    })
    return r
  }

  channels(): { name: string; type: string; groupWaitMs: number; groupIntervalMs: number; repeatIntervalMs: number }[] {
    return this.o.channels.map((c) => ({ name: c.name, type: c.type, ...this.grouping(c) }))
  }

  // ---- reads (from the store, so any process on it answers the same) ------------------------------

  counts(): { firing: number; pending: number } {
    const all = [...this.tracked.values()]
    return { firing: all.filter((t) => t.state.phase === 'firing').length, pending: all.filter((t) => t.state.phase === 'pending').length }
  }

  async active(): Promise<AlertView[]> {
    const pool = this.o.pool()
    if (!pool) return []
    const [{ rows }] = await Promise.all([
      pool.query(`SELECT * FROM ops.alert_state WHERE phase IN ('pending', 'firing') ORDER BY phase, COALESCE(fired_at, active_at)`),
      this.loadSilences(pool),
    ])
    const now = Date.now()
    const rules = new Map(this.rules().map((x) => [x.rule.name, x.rule]))
    return rows.map((r) => {
      const labels = {
        alertname: r.rule,
        severity: r.severity,
        ...(rules.get(r.rule)?.labels ?? {}),
        ...r.labels,
      }
      return {
        id: `${r.rule}/${r.fingerprint}`,
        rule: r.rule,
        fingerprint: r.fingerprint,
        labels,
        severity: r.severity,
        phase: r.phase,
        value: r.value,
        text: r.text,
        since: (r.fired_at ?? r.active_at).getTime(),
        ackedBy: r.acked_by,
        silencedBy: this.silencedBy(labels, now)?.id ?? null,
      }
    })
  }

  async transitions(
    limit = 100,
  ): Promise<
    { rule: string; labels: Record<string, string>; from: string; to: string; value: number | null; text: string | null; at: number }[]
  > {
    const pool = this.o.pool()
    if (!pool) return []
    const { rows } = await pool.query(`SELECT * FROM ops.alert_transitions ORDER BY at DESC, id DESC LIMIT $1`, [limit])
    return rows.map((r) => ({
      rule: r.rule,
      labels: r.labels,
      from: r.from_phase,
      to: r.to_phase,
      value: r.value,
      text: r.text,
      at: r.at.getTime(),
    }))
  }

  async deliveries(limit = 100): Promise<
    {
      id: number
      channel: string
      groupKey: string
      status: string
      attempts: number
      outcome: string
      error: string | null
      at: number
      rules: string[]
    }[]
  > {
    const pool = this.o.pool()
    if (!pool) return []
    const { rows } = await pool.query(`SELECT * FROM ops.alert_deliveries ORDER BY id DESC LIMIT $1`, [limit])
    return rows.map((r) => ({
      id: Number(r.id),
      channel: r.channel,
      groupKey: r.group_key,
      status: r.status,
      attempts: r.attempts,
      outcome: r.outcome,
      error: r.error,
      at: r.created_at.getTime(),
      rules: [...new Set((r.alerts as { rule: string }[]).map((a) => a.rule))],
    }))
  }

  // ---- silences and acknowledgements -----------------------------------------------------------------

  async listSilences(): Promise<Silence[]> {
    const pool = this.requirePool()
    await this.loadSilences(pool)
    return this.silences
  }

  async silence(matchers: Matcher[], endsAt: number, who: string, reason: string): Promise<Silence> {
    if (!matchers.length) throw new OpsError('invalid_silence', 'A silence needs at least one label matcher, e.g. alertname=cpu_high.')
    if (endsAt <= Date.now()) throw new OpsError('invalid_silence', 'A silence must end in the future.')
    for (const m of matchers)
      if (m.op === '=~')
        try {
          new RegExp(m.value)
        } catch {
          throw new OpsError('invalid_silence', `The matcher ${m.name}=~${m.value} is not a valid regular expression.`)
        }
    const pool = this.requirePool()
    const s: Silence = { id: randomUUID(), matchers, startsAt: Date.now(), endsAt, createdBy: who, reason }
    await pool.query(
      `INSERT INTO ops.alert_silences (id, matchers, starts_at, ends_at, created_by, reason) VALUES ($1, $2, $3, $4, $5, $6)`,
      [s.id, JSON.stringify(matchers), new Date(s.startsAt), new Date(endsAt), who, reason],
    )
    this.silences.push(s)
    await this.o.audit.record({
      actor: who,
      action: 'alerts.silence',
      target: s.id,
      outcome: 'created',
      details: { matchers, endsAt: new Date(endsAt).toISOString(), reason },
    })
    return s
  }

  async expireSilence(id: string, who: string): Promise<{ expired: boolean }> {
    const pool = this.requirePool()
    const { rowCount } = await pool.query(
      `UPDATE ops.alert_silences SET ends_at = now(), expired_by = $2 WHERE id = $1 AND ends_at > now()`,
      [id, who],
    )
    this.silences = this.silences.filter((s) => s.id !== id)
    await this.o.audit.record({ actor: who, action: 'alerts.silence.expire', target: id, outcome: rowCount ? 'expired' : 'not active' })
    return { expired: !!rowCount }
  }

  /** Acknowledge a firing alert ("rule/fingerprint", or a rule name for all of its alerts): no repeats, still shown. */
  async ack(id: string, who: string): Promise<{ acknowledged: number }> {
    const pool = this.requirePool()
    const [rule, fp] = id.split('/')
    const { rows } = await pool.query<{ rule: string; fingerprint: string }>(
      `UPDATE ops.alert_state SET acked_by = $3, acked_at = now() WHERE rule = $1 AND ($2::text IS NULL OR fingerprint = $2) AND phase = 'firing'
       RETURNING rule, fingerprint`,
      [rule, fp ?? null, who],
    )
    if (!rows.length)
      throw new OpsError('unknown_alert', `No firing alert "${id}": "examforge-ops alerts list" shows the ids of those firing now.`)
    for (const r of rows) {
      const t = this.tracked.get(`${r.rule}|${r.fingerprint}`)
      if (t) {
        t.ackedBy = who
        t.ackedAt = Date.now()
        t.persisted = this.rowKey(t)
      }
    }
    await this.o.audit.record({ actor: who, action: 'alerts.ack', target: id, outcome: 'acknowledged', details: { alerts: rows.length } })
    return { acknowledged: rows.length }
  }

  // ---- backtest -----------------------------------------------------------------------------------

  async backtest(input: unknown, days: number, now = Date.now()): Promise<{ series: string; result: BacktestResult }[]> {
    const rule = typeof input === 'string' ? this.rule(input) : this.validate(input)
    const from = now - days * 86_400_000
    if (rule.kind === 'threshold') {
      if (!rule.series) throw new OpsError('bad_rule', `The threshold rule "${rule.name}" names no series to backtest.`)
      const ids = this.o.seriesIds(rule.series, rule.host)
      if (!ids.length) throw new OpsError('unknown_series', `No stored series matches "${rule.series}".`)
      const hist = await this.o.history(ids, from, now)
      return hist.map((h) => ({ series: h.id, result: backtestPoints(rule, h.points, now) }))
    }
    // Other kinds: their source rebuilds, at each stored moment, the reading it would have given then.
    const source = this.sources.get(rule.kind)
    if (!source)
      throw new OpsError('not_backtestable', `"${rule.name}" is a ${rule.kind} rule, and no source of that kind is registered yet.`)
    if (!source.history)
      throw new OpsError(
        'not_backtestable',
        source.noHistory ?? `"${rule.name}" is a ${rule.kind} rule, whose past inputs are not stored, so it cannot be backtested.`,
      )
    const parsed = source.params.safeParse(sourceParams(rule))
    if (!parsed.success)
      throw new OpsError('bad_rule', `The ${rule.kind} rule "${rule.name}" has bad parameters: ${parsed.error.issues[0]?.message}.`)
    const sets = await source.history(parsed.data, from, now)
    if (!sets.length) throw new OpsError('unknown_series', `Nothing stored matches the ${rule.kind} rule "${rule.name}".`)
    return sets.map((set) => ({
      series: Object.entries(set.labels)
        .filter(([, v]) => v !== '')
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
      result: backtestReadings(rule, source.condition, set.steps, now),
    }))
  }

  async stop(): Promise<void> {
    if (this.fileTimer) clearInterval(this.fileTimer)
    await this.leader.stop()
    await this.evaluating
    await this.drain()
  }
}
