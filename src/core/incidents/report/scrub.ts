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
function scrubAny(v: unknown, inData: boolean, depth: number): unknown {
  if (depth > 40) return FILTERED
  if (typeof v === 'string') return scrubString(v)
  if (Array.isArray(v)) return v.map((x) => scrubAny(x, inData, depth + 1))
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      // Inside an entry's data (and anything below it) a sensitive key's value goes whole.
      const sensitive = inData && isSensitiveKey(k) && x != null && x !== ''
      out[scrubString(k)] = sensitive ? FILTERED : scrubAny(x, inData || k === 'data', depth + 1)
    }
    return out
  }
  return v
}

/** A scrubbed copy of the report; the input is untouched. */
export function scrubReport(report: IncidentReport): IncidentReport {
  return scrubAny(report, false, 0) as IncidentReport
}
