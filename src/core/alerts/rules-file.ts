/**
 * Rules as code: ALERT_RULES_FILE, YAML or JSON (JSON is YAML), read into validated rules with the line
 * of every problem and what to fix. Refused as a whole on any problem (a bad duration, an unknown kind or
 * series, a duplicate name), so the rules in force stay as they were. Optional `channels:` overrides a
 * channel's grouping times: `channels: { webhook: { group_wait: 10s, group_interval: 5m, repeat_interval: 4h } }`.
 */
import { LineCounter, parseDocument, stringify } from 'yaml'
import { z } from 'zod'
import { OpsError } from '../../shared/contract'
import { parseDuration } from './duration'
import { ruleInput, ruleToFile, sourceParams, type Rule } from './rules'
import type { RuleSource } from './source'

export interface Grouping {
  groupWaitMs?: number
  groupIntervalMs?: number
  repeatIntervalMs?: number
}

export interface RulesFile {
  rules: Rule[]
  channels: Record<string, Grouping>
}

export interface Validation {
  /** Kinds registered with the engine. */
  sources: Map<string, RuleSource<unknown>>
  /** Whether a series name or id is known (the metrics registry). */
  knowsSeries: (s: string) => boolean
}

/** Check a parsed rule against the registered kinds and series; the problem as a sentence, or null. */
export function ruleProblem(rule: Rule, v: Validation): { path: (string | number)[]; message: string } | null {
  const source = v.sources.get(rule.kind)
  if (!source) {
    // Error kinds arrive with the error tracker; until then such rules read "no data".
    if (rule.kind.startsWith('errors.')) return null
    return { path: ['kind'], message: `unknown kind "${rule.kind}"; use one of ${[...v.sources.keys()].join(', ')}` }
  }
  const params = sourceParams(rule)
  const res = source.params.safeParse(params)
  if (!res.success) {
    const i = res.error.issues[0]
    const key = i?.path[0]
    const top = key === 'series' || key === 'host'
    return {
      path: top ? [String(key)] : ['params', ...(i?.path ?? []).map((p) => (typeof p === 'number' ? p : String(p)))],
      message: i?.message ?? 'invalid parameters',
    }
  }
  const series = (params as { series?: unknown }).series
  if (typeof series === 'string' && !v.knowsSeries(series))
    return {
      path: ['series'],
      message: `unknown series "${series}"; use a name from "examforge-ops metrics --json" such as host.cpu_percent`,
    }
  return null
}

const grouping = z
  .object({ group_wait: z.string().optional(), group_interval: z.string().optional(), repeat_interval: z.string().optional() })
  .strict()

/** Parse and validate a rules file's text; throws an OpsError naming the file, the line and the fix. */
export function parseRulesFile(text: string, file: string, v: Validation): RulesFile {
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false })
  const fail = (offset: number | undefined, message: string): never => {
    const line = offset === undefined ? null : lc.linePos(offset).line
    throw new OpsError(
      'bad_rules_file',
      `${file}${line ? ` line ${line}` : ''}: ${message}. Fix it and save again; the previous rules stay in force.`,
    )
  }
  if (doc.errors.length) fail(doc.errors[0].pos[0], `not valid YAML or JSON (${doc.errors[0].message.split('\n')[0]})`)
  const at = (path: (string | number)[]): number | undefined => {
    for (let p = path; p.length; p = p.slice(0, -1)) {
      const node = doc.getIn(p, true) as { range?: [number, number, number] } | undefined
      if (node && typeof node === 'object' && node.range) return node.range[0]
      // A missing key: point at its parent.
    }
    return undefined
  }
  const data = doc.toJS() as unknown
  if (!data || typeof data !== 'object' || !Array.isArray((data as { rules?: unknown }).rules))
    fail(
      0,
      'the file must hold an object with a "rules" list, e.g. {"rules": [{"name": "cpu_high", "series": "host.cpu_percent", "op": ">", "threshold": 80, "for": "5m"}]}',
    )
  const raw = (data as { rules: unknown[] }).rules
  const rules: Rule[] = []
  const seen = new Map<string, number>()
  raw.forEach((r, i) => {
    const res = ruleInput.safeParse(r)
    if (!res.success) {
      const issue = res.error.issues[0]
      const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)))
      const key = path.length ? `"${path.join('.')}"` : 'the rule'
      fail(at(['rules', i, ...path]), `rule ${i + 1}: ${key}: ${issue.message}`)
    }
    const rule = res.data!
    const problem = ruleProblem(rule, v)
    if (problem) fail(at(['rules', i, ...problem.path]), `rule "${rule.name}": ${problem.message}`)
    if (seen.has(rule.name))
      fail(
        at(['rules', i, 'name']),
        `duplicate rule name "${rule.name}" (also rule ${seen.get(rule.name)! + 1}); give each rule its own name`,
      )
    seen.set(rule.name, i)
    rules.push(rule)
  })
  const channels: Record<string, Grouping> = {}
  const ch = (data as { channels?: unknown }).channels
  if (ch !== undefined) {
    if (!ch || typeof ch !== 'object') fail(at(['channels']), '"channels" must map a channel name to its grouping times')
    for (const [name, g] of Object.entries(ch as Record<string, unknown>)) {
      const res = grouping.safeParse(g)
      if (!res.success)
        fail(
          at(['channels', name]),
          `channel "${name}": ${res.error.issues[0].message} (allowed: group_wait, group_interval, repeat_interval)`,
        )
      const out: Grouping = {}
      for (const [k, field] of [
        ['group_wait', 'groupWaitMs'],
        ['group_interval', 'groupIntervalMs'],
        ['repeat_interval', 'repeatIntervalMs'],
      ] as const) {
        const t = res.data![k]
        if (t === undefined) continue
        const ms = parseDuration(t)
        if (ms === null) fail(at(['channels', name, k]), `channel "${name}": ${k} must be a duration such as "30s" or "5m"; it is "${t}"`)
        out[field] = ms!
      }
      channels[name] = out
    }
  }
  return { rules, channels }
}

/** Rules as a file in the same form (YAML), for export from the UI. */
export function exportRules(rules: Rule[]): string {
  return stringify({ rules: rules.map(ruleToFile) })
}
