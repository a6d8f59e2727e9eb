/**
 * The state machine of one alert (one rule and one label set), with Prometheus' semantics:
 *
 * - inactive/resolved → pending when the condition first holds (→ firing at once when `for` is 0);
 * - pending → firing once it has held for `for` without a break; pending → inactive when it stops holding
 *   before that (the pending timer is cancelled, nothing was ever sent);
 * - firing → resolved when it stops holding, unless it held less than `keep_firing_for` ago (hysteresis
 *   against flapping: the alert stays firing until the condition has been false that long).
 *
 * "No data" and "the check itself failed" are inputs of their own, mapped by the rule: `alert` counts as
 * the condition holding, `ok` as not holding, `keep` leaves the state (and its timers) exactly as it is.
 * Never a silent resolve. A pure function of (state, input, rule, now), so the live evaluator, a replay
 * after a restart and the backtest all run the very same code.
 */
import type { Rule } from './rules'

export type AlertPhase = 'inactive' | 'pending' | 'firing' | 'resolved'

export interface AlertState {
  phase: AlertPhase
  /** When the condition started holding (the pending timer's start). */
  activeAt: number | null
  /** When it went to firing. */
  firedAt: number | null
  /** The last evaluation at which the condition held (for keep_firing_for). */
  lastTrueAt: number | null
  resolvedAt: number | null
  value: number | null
  /** The reading's text, or why there is no value ("no data", the check's error). */
  text: string | null
}

export type Input = { kind: 'value'; value: number; holds: boolean; text?: string } | { kind: 'nodata' } | { kind: 'error'; error: string }

export interface Transition {
  from: AlertPhase
  to: AlertPhase
  at: number
  value: number | null
  text: string | null
}

export const initialState = (): AlertState => ({
  phase: 'inactive',
  activeAt: null,
  firedAt: null,
  lastTrueAt: null,
  resolvedAt: null,
  value: null,
  text: null,
})

/** One evaluation: the next state, and the transition it made (null when the phase did not change). */
export function step(
  prev: AlertState,
  input: Input,
  rule: Pick<Rule, 'for' | 'keep_firing_for' | 'no_data' | 'on_error'>,
  now: number,
): { state: AlertState; transition: Transition | null } {
  let holds: boolean | null
  let value: number | null = prev.value
  let text: string | null
  if (input.kind === 'value') {
    holds = input.holds
    value = input.value
    text = input.text ?? null
  } else if (input.kind === 'nodata') {
    holds = rule.no_data === 'keep' ? null : rule.no_data === 'alert'
    text = 'no data'
  } else {
    holds = rule.on_error === 'keep' ? null : rule.on_error === 'alert'
    text = `the check failed: ${input.error}`
  }
  const s: AlertState = { ...prev, value, text }
  if (holds === null) return { state: s, transition: null }

  const from = prev.phase
  if (holds) {
    s.lastTrueAt = now
    if (from === 'inactive' || from === 'resolved') {
      s.activeAt = now
      s.resolvedAt = null
      s.firedAt = null
      s.phase = rule.for <= 0 ? 'firing' : 'pending'
      if (s.phase === 'firing') s.firedAt = now
    } else if (from === 'pending' && now - (prev.activeAt ?? now) >= rule.for) {
      s.phase = 'firing'
      s.firedAt = now
    }
  } else if (from === 'pending') {
    s.phase = 'inactive'
    s.activeAt = null
  } else if (from === 'firing') {
    const heldAgo = now - (prev.lastTrueAt ?? 0)
    if (rule.keep_firing_for > 0 && heldAgo < rule.keep_firing_for) return { state: s, transition: null }
    s.phase = 'resolved'
    s.resolvedAt = now
    s.activeAt = null
  }
  return {
    state: s,
    transition: s.phase === from ? null : { from, to: s.phase, at: now, value: s.value, text: s.text },
  }
}
