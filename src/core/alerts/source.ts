/**
 * The rule-source interface: what the alert engine evaluates a rule against. Each capability that has
 * something worth alerting on registers its sources with the engine (metrics, health and backups in
 * core/alerts; the error tracker in core/errors registers "≥ N events in M minutes", "new error group",
 * "regression" and "spike"), so the engine never needs to know how a source computes its value.
 *
 * A source turns a rule's parameters into readings at a moment: one reading per label set (a host, a
 * mount, an error group). The engine compares each reading's value with the rule's threshold (or, for a
 * condition-like source, treats a value above zero as "the condition holds"), and feeds the state
 * machine. "No data" (value null) and "the check itself failed" (error set) are inputs of their own: the
 * rule decides what they mean, never a silent resolve.
 */
import type { z } from 'zod'

export interface Reading {
  /** What distinguishes this reading within the rule (e.g. { host: 'db1' } or { group: 'a1b2…' }). */
  labels: Record<string, string>
  /** The value compared with the rule's threshold; null when there is no data. */
  value: number | null
  /** Set when the source could not evaluate (the store is down, a probe failed): not the same as no data. */
  error?: string
  /** A short, human description of the value ("14 events in 5 min", "73 % CPU"); never a secret. */
  text?: string
  /** Links back to what the reading is about (an error group, a backup set), for notifications and incidents. */
  source?: { kind: string; id: string }
}

export interface RuleSource<P = unknown> {
  /** Stable id used in rules and rule files, e.g. "errors.count" or "errors.new_group". */
  kind: string
  /** One line for the rule editor. */
  describe: string
  /** The parameters a rule of this kind takes (validated with line-precise errors in rule files). */
  params: z.ZodType<P>
  /**
   * Condition-like sources (new group, regression) read 1 when the condition holds and 0 when it does
   * not; the rule's comparison is then "> 0". Value-like sources (counts, rates) read a number.
   */
  condition: boolean
  /** Readings at `now` (ms since the epoch) for a rule with these parameters. */
  evaluate(params: P, now: number): Promise<Reading[]>
  /**
   * For backtests: the readings this source would have given at each stored moment in [from, to], per label
   * set, rebuilt from stored history with the same computation `evaluate` uses. Absent when the source's
   * past inputs are not stored (the backtest then refuses the rule and says why).
   */
  history?(params: P, from: number, to: number): Promise<{ labels: Record<string, string>; steps: { t: number; reading: Reading }[] }[]>
  /** Why this kind cannot be backtested, when it has no `history`. */
  noHistory?: string
}
