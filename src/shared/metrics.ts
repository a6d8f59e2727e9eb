/** Metric series as the UI, the CLI and (next) the alert rules see them. */
import { z } from 'zod'

export const seriesInfo = z.object({
  /** e.g. "host.cpu_percent" or "host.disk_used_percent{mount=/}". */
  id: z.string(),
  name: z.string(),
  group: z.enum(['host', 'database', 'redis', 'app']),
  unit: z.enum(['%', 'bytes', 'bytes/s', 'ops/s', 'tx/s', 'ms', 's', 'count', 'ratio', 'req/min', 'load']),
  labels: z.record(z.string(), z.string()),
  help: z.string(),
})
export type SeriesInfo = z.infer<typeof seriesInfo>

export const metricPoint = z.object({ t: z.number(), v: z.number().nullable(), min: z.number().optional(), max: z.number().optional() })
export type MetricPoint = z.infer<typeof metricPoint>

export const latestValue = seriesInfo.extend({
  host: z.string(),
  t: z.number().nullable(),
  v: z.number().nullable(),
  note: z.string().nullable(),
})
export type LatestValue = z.infer<typeof latestValue>

export const historyResult = z.object({
  series: z.string(),
  host: z.string(),
  tier: z.enum(['live', 'raw', '1m', '1h']),
  from: z.number(),
  to: z.number(),
  points: z.array(metricPoint),
})
export type HistoryResult = z.infer<typeof historyResult>

/** Ranges the Metrics page offers, in milliseconds. */
export const RANGES = { live: 10 * 60_000, '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 } as const
export type RangeName = keyof typeof RANGES
