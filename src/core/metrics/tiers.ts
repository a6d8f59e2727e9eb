/** Where history lives: raw samples for 48 h, 1-minute rollups for 30 days, 1-hour rollups for a year. */
export const RETENTION = { raw: 48 * 3_600_000, '1m': 30 * 86_400_000, '1h': 365 * 86_400_000 } as const
export type Tier = 'raw' | '1m' | '1h'

/**
 * The tier a range is read from: raw while the range is short and still inside raw retention (up to
 * 6 hours: 21,600 samples at 1 s), 1-minute rollups up to 30 days back, 1-hour rollups beyond.
 */
export function tierFor(from: number, to: number, now = Date.now()): Tier {
  const span = to - from
  if (span <= 6 * 3_600_000 && now - from <= RETENTION.raw) return 'raw'
  if (span <= 31 * 86_400_000 && now - from <= RETENTION['1m']) return '1m'
  return '1h'
}
