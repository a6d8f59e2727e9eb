/**
 * Scrubbing before an event leaves the app: the same rules as the console's ingest
 * (src/core/errors/scrub.ts there; this package may not import it). Values under sensitive keys
 * (Relay's default pattern), bearer/basic tokens, key=value secrets, passwords in connection strings,
 * Luhn-valid card numbers and, unless turned off, e-mail addresses become "[Filtered]".
 */
export const FILTERED = '[Filtered]'
const SENSITIVE_KEY =
  /password|passwd|passphrase|secret|api[-_]?key|auth|credentials|mysql_pwd|private[-_]?key|token|session|cookie|csrf|xsrf|bearer|dsn|sentry_key/i
const KEY_WORDS =
  'password|passwd|passphrase|pwd|secret|api[-_]?key|apikey|auth[a-z_]*|credentials?|mysql_pwd|private[-_]?key|[a-z_]*token|session[a-z_]*|cookie|csrf[a-z_]*|xsrf[a-z_]*'

function luhn(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

/** A quick look for any sensitive key word, before the full key patterns. */
const KEYISH = /pass|pwd|secret|key|auth|cred|token|session|cookie|csrf|xsrf/i

function digitCount(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 48 && c <= 57) n++
  }
  return n
}

const RULES: [RegExp, (m: string, ...g: string[]) => string, (s: string) => boolean][] = [
  [/([a-z][a-z0-9+.-]*:\/\/[^:/@\s"']*:)[^@\s"']+@/gi, (_m, head: string) => `${head}${FILTERED}@`, (s) => s.includes('://')],
  [/\b(bearer|basic|token|digest)\s+[A-Za-z0-9._~+/=-]{6,}/gi, (_m, kind: string) => `${kind} ${FILTERED}`, (s) => s.includes(' ')],
  [
    new RegExp(`(["']?(?:${KEY_WORDS})["']?\\s*:\\s*)(["'])(?:(?!\\2).)*\\2`, 'gi'),
    (_m, head: string, q: string) => `${head}${q}${FILTERED}${q}`,
    (s) => s.includes(':') && KEYISH.test(s),
  ],
  [
    new RegExp(`\\b((?:${KEY_WORDS})\\s*[=:]\\s*)(?!\\[Filtered\\])[^\\s&;,'"]+`, 'gi'),
    (_m, head: string) => `${head}${FILTERED}`,
    (s) => s.includes('=') || s.includes(':'),
  ],
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, () => FILTERED, (s) => s.includes('eyJ')],
  [
    /\b\d(?:[ -]?\d){12,18}\b/g,
    (m: string) => {
      const d = m.replace(/[ -]/g, '')
      return d.length >= 13 && d.length <= 19 && luhn(d) ? FILTERED : m
    },
    (s) => s.length >= 13 && digitCount(s) >= 13,
  ],
]
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g

export function scrubText(s: string, emails: boolean): string {
  let out = s
  for (const [re, rep, maybe] of RULES) if (maybe(out)) out = out.replace(re, rep as (m: string) => string)
  return emails && out.includes('@') ? out.replace(EMAIL, FILTERED) : out
}

export function scrubValue(v: unknown, emails: boolean, depth = 0): unknown {
  if (depth > 12) return FILTERED
  if (typeof v === 'string') return scrubText(v, emails)
  if (Array.isArray(v)) {
    if (v.length === 2 && typeof v[0] === 'string' && SENSITIVE_KEY.test(v[0]) && v[1] != null) return [v[0], FILTERED]
    return v.map((x) => scrubValue(x, emails, depth + 1))
  }
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>))
      out[k] = SENSITIVE_KEY.test(k) && k.toLowerCase() !== 'author' && x != null && x !== '' ? FILTERED : scrubValue(x, emails, depth + 1)
    return out
  }
  return v
}
