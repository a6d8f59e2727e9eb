/**
 * Secrets never reach a log line, an error message or a report: every text that leaves core
 * passes through scrub(), which removes registered secret values and anything shaped like one.
 */
const known = new Set<string>()

export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 4) known.add(value)
}

const patterns: [RegExp, string][] = [
  // user:password@ in any URL (postgres://, redis://, https://)
  [/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]+@/gi, '$1•••@'],
  // Stripe-shaped keys
  [/\b(sk|rk|pk)_(live|test)_[A-Za-z0-9]{6,}/g, '$1_$2_•••'],
  // password=... in connection strings and query strings
  [/(password|passwd|pwd|secret|token|sslkey)=([^&\s'"]+)/gi, '$1=•••'],
  // AWS secret access keys are 40 chars of base64-ish; access key ids start with AKIA/ASIA
  [/\b(AKIA|ASIA)[A-Z0-9]{12,}/g, '$1•••'],
]

export function scrub(text: string): string {
  let out = text
  // Longest first so a secret that contains another is removed whole.
  for (const s of [...known].sort((a, b) => b.length - a.length)) out = out.split(s).join('•••')
  for (const [re, rep] of patterns) out = out.replace(re, rep)
  return out
}

/** Query-string parameters of a connection URL that hold a secret (pg accepts all three). */
const secretParams = /([?&](?:password|sslpassword|sslkey)=)[^&#]*/gi

/** The secrets inside a connection URL: its password and any secret query parameter, decoded. */
export function urlSecrets(url: string | undefined | null): string[] {
  if (!url) return []
  try {
    const u = new URL(url)
    const out = [decodeURIComponent(u.password)]
    for (const [k, v] of u.searchParams) if (/^(password|sslpassword|sslkey)$/i.test(k)) out.push(v)
    return out.filter(Boolean)
  } catch {
    return []
  }
}

/** A URL as a person may see it: the password (in the authority or the query string) masked, everything else kept. */
export function maskUrl(url: string | undefined | null): string | null {
  if (!url) return null
  try {
    const u = new URL(url)
    // Built by hand: the URL setters would percent-encode the mask.
    const search = u.search.replace(secretParams, '$1•••')
    const auth = u.password ? `${u.username}:•••@` : u.username ? `${u.username}@` : ''
    if (!u.password && search === u.search) return u.toString()
    return `${u.protocol}//${auth}${u.host}${u.pathname}${search}${u.hash}`
  } catch {
    return scrub(url)
  }
}

/** Show only the shape of a secret: its prefix and last four characters. */
export function maskSecret(value: string | undefined | null): string | null {
  if (!value) return null
  if (value.length <= 8) return '•••'
  const prefix = /^(sk|rk|pk)_(live|test)_/.exec(value)?.[0] ?? ''
  return `${prefix}•••${value.slice(-4)}`
}
