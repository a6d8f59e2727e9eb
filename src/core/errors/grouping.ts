/**
 * Grouping, in Sentry's order, so that a thousand events of one bug are one group:
 *
 * 1. A custom fingerprint sent with the event wins; `{{ default }}` inside it stands for what steps 2–3
 *    would have produced, so an app can split a group further without losing the default.
 * 2. Else the exception chain: each exception's type plus its in-app frames (all frames when none is
 *    in-app), each frame reduced to module (or a normalised file name) and function. Line and column
 *    numbers never count; bundler hashes (`main.3f2a9c1b.js`, `chunk-AB12CD.js`), query strings and
 *    `webpack://` prefixes are removed; anonymous functions (`<anonymous>`, `?`, `Object.<anonymous>`)
 *    are skipped so a refactor that wraps a callback does not split the group.
 * 3. Else the exception type (or the logger) plus the message with its variable parts parameterised:
 *    e-mails, URLs, IPs, UUIDs, hashes, dates and times, durations, hex, numbers, quoted values.
 *
 * Each result carries the explanation of why its events belong together, kept on the group.
 */
import { createHash } from 'node:crypto'
import type { ErrorEvent, Frame } from './event'

export interface Grouping {
  hash: string
  /** What decided the group: 'fingerprint' | 'stacktrace' | 'message'. */
  method: 'fingerprint' | 'stacktrace' | 'message'
  /** The components hashed, as a person can read them. */
  components: string[]
  explanation: string
}

const PARAMS: [RegExp, string | ((m: string) => string)][] = [
  [/[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g, '<email>'],
  [/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, '<url>'],
  [/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<uuid>'],
  [/\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b/g, '<date>'],
  [/\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\b/g, '<time>'],
  [/\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?::\d+)?\b/g, '<ip>'],
  [/\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b/gi, '<ip>'],
  [/\b[0-9a-f]{32}\b|\b[0-9a-f]{40}\b|\b[0-9a-f]{64}\b/gi, '<hash>'],
  [/\b0x[0-9a-f]+\b/gi, '<hex>'],
  // Ids: hex digits with at least one digit, 8 or more long (object ids, short hashes, long numbers); a run of
  // hex letters alone counts from 10 on (a random 12-digit hex id has no digit once in about 130,000, and no
  // word is made of a-f that long), so such an id does not split its group.
  [/(?<![0-9a-z])(?:(?=[0-9a-f]*\d)[0-9a-f]{8,}|[a-f]{10,})(?![0-9a-z])/gi, '<id>'],
  // Other ids mixing letters and digits (Stripe's evt_1Nq2…, base36 keys), also after an underscore.
  [
    /(?<![0-9a-z])(?!\d+(?:ns|us|ms|sec|secs|min|mins|days)(?![0-9a-z]))(?=[0-9a-z]*\d)(?=[0-9a-z]*[a-z])[0-9a-z]{8,}(?![0-9a-z])/gi,
    '<id>',
  ],
  [/\b\d+(?:\.\d+)?\s?(?:ns|µs|us|ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)\b/gi, '<duration>'],
  [/"[^"\n]*"|'[^'\n]*'|`[^`\n]*`/g, '<quoted>'],
  // Numbers, also glued to an underscore or dash (quiz_42, evt_100), not inside words (utf8, v2).
  [/(?<![A-Za-z0-9])-?\d+(?:[.,]\d+)*(?![0-9])/g, '<int>'],
]

/** The message with its variable parts replaced by placeholders. */
export function parameterize(message: string): string {
  let out = message
  for (const [re, rep] of PARAMS) out = typeof rep === 'string' ? out.replace(re, rep) : out.replace(re, rep)
  return out.trim()
}

const ANONYMOUS = /^(?:<anonymous>|\?|anonymous|Object\.<anonymous>|<unknown>|null|undefined|)$/

/** A function name as it counts for grouping: wrappers and anonymous noise removed. */
export function normalizeFunction(fn: string | null): string | null {
  if (!fn) return null
  let f = fn
    .replace(/^async\s+/, '')
    .replace(/^(?:Module|Object|exports|module\.exports)\./, '')
    .replace(/\s*\[as [^\]]+\]$/, '')
    .replace(/\/<+$/, '') // Firefox's nested-function marks
    .trim()
  if (ANONYMOUS.test(f) || /^Object\.$/.test(f)) return null
  f = f.replace(/\$\d+$/, '') // bundler-renamed duplicates (foo$1)
  return f || null
}

/** A file name as it counts for grouping: no origin, query, bundler hash or version segment. */
export function normalizeFile(file: string | null): string | null {
  if (!file) return null
  return (
    file
      .replace(/^(?:webpack|webpack-internal|app|file):\/\/\/?(?:\([^)]*\)\/)?/, '')
      .replace(/^https?:\/\/[^/]+/, '')
      .replace(/[?#].*$/, '')
      .replace(/^\.?\//, '')
      // main.3f2a9c1b.js, chunk-AB12CD34.js, 123-4f5e6d7c8b9a.js
      .replace(/[.-][0-9a-f]{6,}(?=\.[a-z]+$)/gi, '')
      .replace(/[.-][A-Za-z0-9_]{8,}(?=\.(?:m?js|cjs)$)/g, (m) => (/\d/.test(m) && /[A-Za-z]/.test(m) ? '' : m))
      .replace(/\/\d+(?=\.(?:m?js)$)/, '/<n>')
      .replace(/@\d+\.\d+\.\d+[^/]*/g, '')
  )
}

function frameComponent(f: Frame): string | null {
  const fn = normalizeFunction(f.function)
  if (!fn) return null
  const where = f.module ?? normalizeFile(f.filename ?? f.absPath)
  return where ? `${where} ${fn}` : fn
}

const sha = (parts: string[]) => createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 32)

function defaultGrouping(ev: ErrorEvent): Omit<Grouping, 'hash'> {
  const withFrames = ev.exceptions.filter((e) => e.frames.length)
  const components: string[] = []
  let inApp = true
  for (const e of ev.exceptions) {
    const frames = e.frames.filter((f) => f.inApp).length ? e.frames.filter((f) => f.inApp) : ((inApp = false), e.frames)
    const parts = frames.map(frameComponent).filter((c): c is string => !!c)
    if (parts.length) components.push(`${e.type}`, ...parts.map((p) => `  ${p}`))
  }
  if (withFrames.length && components.length) {
    return {
      method: 'stacktrace',
      components,
      explanation: `Same exception type and the same ${inApp ? 'in-app ' : ''}call path (module and function of each frame; line numbers, bundler hashes and anonymous functions ignored).`,
    }
  }
  const top = ev.exceptions[ev.exceptions.length - 1]
  const type = top?.type ?? ev.logger ?? 'message'
  const text = parameterize(top ? top.value || ev.message || '' : ev.message || '')
  return {
    method: 'message',
    components: [type, text],
    explanation: `No usable stack trace: same ${top ? 'exception type' : 'logger'} and the same message once its variable parts (numbers, ids, e-mails, URLs, dates, quoted values) are set aside.`,
  }
}

export function groupEvent(ev: ErrorEvent): Grouping {
  const def = defaultGrouping(ev)
  const fp = ev.fingerprint?.filter((x) => x !== '')
  if (fp && fp.length) {
    const components = fp.flatMap((x) => (/^\{\{\s*default\s*\}\}$/.test(x) ? def.components : [x]))
    const usesDefault = fp.some((x) => /^\{\{\s*default\s*\}\}$/.test(x))
    return {
      hash: sha(['fingerprint', ...components]),
      method: 'fingerprint',
      components,
      explanation: usesDefault
        ? `The app sent a custom fingerprint that extends the default grouping: ${def.explanation}`
        : 'The app sent a custom fingerprint: every event with the same fingerprint is one group.',
    }
  }
  return { hash: sha([def.method, ...def.components]), ...def }
}

/** A group's title and culprit as Sentry shows them. */
export function titleOf(ev: ErrorEvent): { title: string; culprit: string; type: string } {
  const top = ev.exceptions[ev.exceptions.length - 1]
  const title = top ? `${top.type}${top.value ? `: ${top.value}` : ''}` : (ev.message ?? '(no message)')
  const frame = top ? ([...top.frames].reverse().find((f) => f.inApp) ?? top.frames[top.frames.length - 1]) : undefined
  const culprit = frame
    ? `${normalizeFunction(frame.function) ?? '?'} (${frame.module ?? normalizeFile(frame.filename ?? frame.absPath) ?? '?'})`
    : (ev.transaction ?? ev.request?.url ?? '')
  return { title: title.split('\n')[0].slice(0, 300), culprit: culprit.slice(0, 300), type: top?.type ?? 'message' }
}
