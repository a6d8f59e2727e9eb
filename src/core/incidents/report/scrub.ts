/**
 * The last scrub every export format goes through. Core scrubs the timeline's data when it builds the
 * report; this runs again over the whole report right before rendering, so a secret that reached an
 * error's context, a note, a title or an action item never reaches a file (PDF, HTML, Markdown or JSON).
 *
 * It scrubs values, not the rendered text: the rules of core/errors/scrub.ts (values under keys like
 * password / token / secret, bearer and basic tokens, passwords inside connection strings, key=value
 * pairs, JWTs, Luhn-valid card numbers) and core/log/scrub.ts (secrets the process registered: its
 * database password, S3 keys …) on every string at any depth. Numbers (times, metric values) are left
 * alone — a 13-digit millisecond time is not a card number — and so are e-mail addresses, which name
 * the people in the report (commander, actors, owners).
 */
import type { IncidentReport } from '../../../shared/incidents'
import { FILTERED, isSensitiveKey, scrubText, type ScrubOptions } from '../../errors/scrub'
import { scrub as scrubKnown } from '../../log/scrub'

const TEXT_OPTS: ScrubOptions = { emails: false, ips: false }

export function scrubString(s: string): string {
  return scrubText(scrubKnown(s), TEXT_OPTS)
}

/**
 * Every string scrubbed at any depth; below an entry's `data` a sensitive key's whole value is filtered too
 * (the report's own keys — title, detail, actor … — are structure, not data).
 */
type Memo = Map<string, string>

function scrubMemo(s: string, memo: Memo): string {
  let out = memo.get(s)
  if (out === undefined) {
    out = scrubString(s)
    // Names, kinds, services and people repeat thousands of times in a long timeline: scrub each once.
    if (s.length <= 200) memo.set(s, out)
  }
  return out
}

function scrubAny(v: unknown, inData: boolean, depth: number, memo: Memo): unknown {
  if (depth > 40) return FILTERED
  if (typeof v === 'string') return scrubMemo(v, memo)
  if (Array.isArray(v)) return v.map((x) => scrubAny(x, inData, depth + 1, memo))
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      // Inside an entry's data (and anything below it) a sensitive key's value goes whole.
      const sensitive = inData && isSensitiveKey(k) && x != null && x !== ''
      out[scrubMemo(k, memo)] = sensitive ? FILTERED : scrubAny(x, inData || k === 'data', depth + 1, memo)
    }
    return out
  }
  return v
}

/** A scrubbed copy of the report; the input is untouched. */
export function scrubReport(report: IncidentReport): IncidentReport {
  const memo: Memo = new Map()
  // A series' points are numbers only (checked by the schema before this runs): copied, not walked.
  const { series, ...rest } = report
  return {
    ...(scrubAny(rest, false, 0, memo) as Omit<IncidentReport, 'series'>),
    series: series.map(({ points, ...s }) => ({
      ...(scrubAny(s, false, 0, memo) as Omit<typeof s, never>),
      points: points.map(([t, v]) => [t, v]),
    })),
  }
}
