/**
 * Scrubbing of error events: nothing that looks like a credential or a card number is stored. The same
 * rules run in our SDK before an event leaves the web app (packages/error-tracker has its own copy, as
 * it may not import the console) and again here at ingest, because an SDK can be old or misconfigured.
 *
 * - Values under keys matching Relay's default "password" key pattern (password, passwd, secret,
 *   api_key, apikey, auth, credentials, mysql_pwd, privatekey, private_key, token, session, cookie,
 *   csrf, …) become `[Filtered]`, at any depth (headers, cookies, query strings, extra, contexts, breadcrumb
 *   data, frame variables). `Authorization` and `Cookie` headers match through "auth" and "cookie".
 * - Inside every string, also messages and breadcrumbs (Sentry does not scrub those): bearer/basic
 *   tokens, `key=value` and `"key": "value"` pairs with a sensitive key, passwords inside connection
 *   strings (`scheme://user:password@host`), and card numbers that pass the Luhn check.
 * - E-mail addresses and IP addresses optionally (on by default at ingest, see ERROR_SCRUB_EMAILS/IPS).
 *
 * What was scrubbed is replaced by a mark, never silently dropped.
 */
export const FILTERED = '[Filtered]'

/** Relay's default sensitive-key pattern (its `@password` rule), matched anywhere in a key, case-insensitively. */
export const SENSITIVE_KEY =
  /password|passwd|passphrase|secret|api[-_]?key|auth|credentials|mysql_pwd|private[-_]?key|token|session|cookie|csrf|xsrf|bearer|dsn|sentry_key/i

/** Keys whose value is structure, not data: never filtered even if the pattern would match (e.g. "author"). */
const STRUCTURAL = new Set(['author'])

export interface ScrubOptions {
  emails: boolean
  ips: boolean
}

export const defaultScrub: ScrubOptions = { emails: true, ips: false }

/** Luhn check over the digits of a candidate card number. */
export function luhn(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (d < 0 || d > 9) return false
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

const KEY_WORDS =
  'password|passwd|passphrase|pwd|secret|api[-_]?key|apikey|auth[a-z_]*|credentials?|mysql_pwd|private[-_]?key|[a-z_]*token|session[a-z_]*|cookie|csrf[a-z_]*|xsrf[a-z_]*'
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

/** Each rule with a cheap test first: most strings (names, paths, short values) skip the costly patterns. */
const TEXT_RULES: [RegExp, (m: string, ...g: string[]) => string, (s: string) => boolean][] = [
  // scheme://user:password@host (connection strings, URLs with credentials)
  [/([a-z][a-z0-9+.-]*:\/\/[^:/@\s"']*:)[^@\s"']+@/gi, (_m, head: string) => `${head}${FILTERED}@`, (s) => s.includes('://')],
  // Authorization-style values: "Bearer abc.def", "Basic dXNlcjpwYXNz"
  [/\b(bearer|basic|token|digest)\s+[A-Za-z0-9._~+/=-]{6,}/gi, (_m, kind: string) => `${kind} ${FILTERED}`, (s) => s.includes(' ')],
  // "key": "value" / 'key': 'value' (JSON or object literals inside messages)
  [
    new RegExp(`(["']?(?:${KEY_WORDS})["']?\\s*:\\s*)(["'])(?:(?!\\2).)*\\2`, 'gi'),
    (_m, head: string, q: string) => `${head}${q}${FILTERED}${q}`,
    (s) => s.includes(':') && KEYISH.test(s),
  ],
  // key=value and key: value (query strings, connection strings, log-ish messages)
  [
    new RegExp(`\\b((?:${KEY_WORDS})\\s*[=:]\\s*)(?!\\[Filtered\\])[^\\s&;,'"]+`, 'gi'),
    (_m, head: string) => `${head}${FILTERED}`,
    (s) => s.includes('=') || s.includes(':'),
  ],
  // JSON Web Tokens anywhere
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, () => FILTERED, (s) => s.includes('eyJ')],
  // Card numbers: 13 to 19 digits, optionally grouped by spaces or dashes, that pass Luhn
  [
    /\b\d(?:[ -]?\d){12,18}\b/g,
    (m: string) => {
      const digits = m.replace(/[ -]/g, '')
      return digits.length >= 13 && digits.length <= 19 && luhn(digits) ? FILTERED : m
    },
    (s) => s.length >= 13 && digitCount(s) >= 13,
  ],
]
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g
const IPV4 = /\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b/g
const IPV6 = /\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b/gi

/** Scrub one string. */
export function scrubText(s: string, opts: ScrubOptions = defaultScrub): string {
  let out = s
  for (const [re, rep, maybe] of TEXT_RULES) if (maybe(out)) out = out.replace(re, rep as (m: string) => string)
  if (opts.emails && out.includes('@')) out = out.replace(EMAIL, FILTERED)
  if (opts.ips) out = out.replace(IPV4, FILTERED).replace(IPV6, FILTERED)
  return out
}

export function isSensitiveKey(key: string): boolean {
  return !STRUCTURAL.has(key.toLowerCase()) && SENSITIVE_KEY.test(key)
}

/**
 * Scrub any JSON-like value: sensitive keys filtered whole, every string scrubbed, a header list
 * ([name, value] pairs, as Sentry allows) treated as an object. Returns a new value; the input is untouched.
 */
export function scrubValue(v: unknown, opts: ScrubOptions = defaultScrub, depth = 0): unknown {
  if (depth > 20) return FILTERED
  if (typeof v === 'string') return scrubText(v, opts)
  if (Array.isArray(v)) {
    if (v.length === 2 && typeof v[0] === 'string' && isSensitiveKey(v[0]) && v[1] != null) return [v[0], FILTERED]
    return v.map((x) => scrubValue(x, opts, depth + 1))
  }
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      out[k] = isSensitiveKey(k) && x != null && x !== '' ? FILTERED : scrubValue(x, opts, depth + 1)
    }
    return out
  }
  return v
}

/** Email addresses and IPs in the user object: kept only when their scrubbing is off. */
export function scrubUser<T extends { email?: string | null; ip_address?: string | null } | null>(user: T, opts: ScrubOptions): T {
  if (!user) return user
  const u = scrubValue(user, opts) as T & Record<string, unknown>
  if (opts.emails && u.email) u.email = FILTERED
  if (opts.ips && u.ip_address) u.ip_address = FILTERED
  return u
}

/** Scrub a whole event: every field that can carry data (the id, times and level cannot). */
export function scrubEvent<
  E extends { user: unknown; eventId: string; project: string; timestamp: number; received: number; level: string },
>(ev: E, opts: ScrubOptions = defaultScrub): E {
  const { eventId, project, timestamp, received, level, user, ...rest } = ev
  return {
    ...(scrubValue(rest, opts) as object),
    eventId,
    project,
    timestamp,
    received,
    level,
    user: scrubUser(user as { email?: string } | null, opts),
  } as E
}
