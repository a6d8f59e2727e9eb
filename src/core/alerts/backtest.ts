/**
 * Backtest: run a rule over stored history with the same state machine the live evaluator uses, one step
 * per stored moment, and report when it would have fired and for how long. A threshold rule steps over the
 * stored points of its series; other kinds step over the readings their source rebuilds from stored history
 * (RuleSource.history: a forecast or anomaly computed at each stored point over the history before it, a
 * health check's stored results), turned into inputs exactly as the live engine turns readings (`inputOf`).
 * Pure over steps, so a test can check that it equals a replay of the state machine.
 */
import type { MetricPoint } from '../../shared/metrics'
import { compare, type Rule } from './rules'
import type { Reading } from './source'
import { initialState, step, type Input, type Transition } from './state'

export interface Episode {
  /** When it went to firing. */
  from: number
  /** When it resolved; null if still firing at the end. */
  to: number | null
  peak: number | null
}

export interface BacktestResult {
  points: number
  transitions: Transition[]
  episodes: Episode[]
  firingMs: number
}

/** A reading as the state machine's input: the live engine and the backtest both use this. */
export function inputOf(r: Reading, rule: Pick<Rule, 'op' | 'threshold'>, condition: boolean): Input {
  if (r.error) return { kind: 'error', error: r.error }
  if (r.value === null) return { kind: 'nodata' }
  return { kind: 'value', value: r.value, text: r.text, holds: condition ? r.value > 0 : compare(rule.op, r.value, rule.threshold) }
}

/** Replay the state machine over inputs in time order. */
export function backtestInputs(rule: Rule, steps: { t: number; input: Input }[], end: number): BacktestResult {
  let state = initialState()
  const transitions: Transition[] = []
  const episodes: Episode[] = []
  let open: Episode | null = null
  for (const { t, input } of steps) {
    const r = step(state, input, rule, t)
    state = r.state
    const v = input.kind === 'value' ? input.value : null
    if (open && v !== null) open.peak = open.peak === null ? v : Math.max(open.peak, v)
    if (!r.transition) continue
    transitions.push(r.transition)
    if (r.transition.to === 'firing') {
      open = { from: t, to: null, peak: v }
      episodes.push(open)
    } else if (r.transition.to === 'resolved' && open) {
      open.to = t
      open = null
    }
  }
  const firingMs = episodes.reduce((s, e) => s + ((e.to ?? end) - e.from), 0)
  return { points: steps.length, transitions, episodes, firingMs }
}

export function backtestPoints(rule: Rule, points: MetricPoint[], end: number): BacktestResult {
  return backtestInputs(
    rule,
    points.map((p) => ({ t: p.t, input: inputOf({ labels: {}, value: p.v }, rule, false) })),
    end,
  )
}

/** A source's rebuilt readings, one step each. */
export function backtestReadings(rule: Rule, condition: boolean, steps: { t: number; reading: Reading }[], end: number): BacktestResult {
  return backtestInputs(
    rule,
    steps.map((s) => ({ t: s.t, input: inputOf(s.reading, rule, condition) })),
    end,
  )
}
