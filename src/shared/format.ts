/** Byte counts for people (1024-based), shared by the CLI, core messages and the UI. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let i = 0
  let v = n
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`
}

/**
 * One rule for time everywhere a person reads it (UI, CLI, reports): the reader's local time with its
 * zone named ("30 Nov 2026, 16:28:09 UTC"); ISO UTC is for hover titles and JSON.
 */
/**
 * Formatters by options: `toLocaleString(locale, options)` builds a new Intl.DateTimeFormat on every call (about a
 * millisecond in Chromium), which made a list of 200 error groups with two times each take most of a second.
 */
const timeFormats = new Map<string, Intl.DateTimeFormat>()

export function formatTime(at: string | number | Date, o: { seconds?: boolean; timeZone?: string } = {}): string {
  const d = new Date(at)
  if (Number.isNaN(d.getTime())) return '—'
  const key = `${o.seconds === false ? 0 : 1}|${o.timeZone ?? ''}`
  let f = timeFormats.get(key)
  if (!f) {
    f = new Intl.DateTimeFormat(undefined, {
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      ...(o.seconds === false ? {} : { second: '2-digit' }),
      timeZoneName: 'short',
      ...(o.timeZone ? { timeZone: o.timeZone } : {}),
    })
    timeFormats.set(key, f)
  }
  return f.format(d)
}

/** ISO 8601 moments inside a text (a restore point's label, a record's note): what localizeTimes replaces. */
const ISO_IN_TEXT = /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})\b/g

/**
 * A label built in core (e.g. "full backup <id> (2026-11-30T17:02:03.456Z)") as a person reads it: every
 * ISO moment in it becomes the local time with its zone. JSON keeps the ISO form.
 */
export function localizeTimes(text: string, o: { timeZone?: string } = {}): string {
  return text.replace(ISO_IN_TEXT, (iso) => formatTime(iso, { timeZone: o.timeZone }))
}

/** A connection's transport in a few words (Health tiles, the CLI): how it travels and whether the peer was verified. */
export function transportText(t: { encrypted: boolean; verified: boolean; loopback: boolean } | null | undefined): string | null {
  if (!t) return null
  if (t.encrypted) return t.verified ? 'Encrypted, verified' : 'Encrypted, not verified'
  return t.loopback ? 'Clear text (loopback)' : 'Not encrypted'
}

/** A count with its noun, singular for one: plural(1, 'table') → "1 table", plural(12000, 'row') → "12,000 rows". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`
}
