/**
 * Durations as rules and rule files write them ("30s", "5m", "4h", "7d", "1h30m", "0"), to and from
 * milliseconds. One parser for rules, channels and the CLI, so "5m" means the same everywhere.
 */
const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** Milliseconds, or null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  const t = text.trim()
  if (t === '0') return 0
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/.test(t)) return null
  let ms = 0
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) ms += Number(m[1]) * UNIT[m[2]]
  return Math.round(ms)
}

/** The shortest spelling: 300000 → "5m", 5400000 → "1h30m". */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s'
  let rest = ms
  let out = ''
  for (const [u, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    const n = Math.floor(rest / size)
    if (n) out += `${n}${u}`
    rest -= n * size
  }
  if (rest) out += `${rest}ms`
  return out
}
