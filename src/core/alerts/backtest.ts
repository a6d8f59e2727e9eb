/**
 * Backtest: run a rule over stored history with the same state machine the live evaluator uses, one step
 * per stored point, and report when it would have fired and for how long. Pure over points, so a test can
 * check that it equals a replay of the state machine.
 */
import type { MetricPoint } from '../../shared/metrics'
import { compare, type Rule } from './rules'
import { initialState, step, type Transition } from './state'

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

export function backtestPoints(rule: Rule, points: MetricPoint[], end: number): BacktestResult {
  let state = initialState()
  const transitions: Transition[] = []
  const episodes: Episode[] = []
  let open: Episode | null = null
  for (const p of points) {
    const input =
      p.v === null ? ({ kind: 'nodata' } as const) : ({ kind: 'value', value: p.v, holds: compare(rule.op, p.v, rule.threshold) } as const)
    const r = step(state, input, rule, p.t)
    state = r.state
    if (open && p.v !== null) open.peak = open.peak === null ? p.v : Math.max(open.peak, p.v)
    if (!r.transition) continue
    transitions.push(r.transition)
    if (r.transition.to === 'firing') {
      open = { from: p.t, to: null, peak: p.v }
      episodes.push(open)
    } else if (r.transition.to === 'resolved' && open) {
      open.to = p.t
      open = null
    }
  }
  const firingMs = episodes.reduce((s, e) => s + ((e.to ?? end) - e.from), 0)
  return { points: points.length, transitions, episodes, firingMs }
}
