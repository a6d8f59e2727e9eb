/** One reading of a series at a collection: null with a note when there is no value (a first sample of a rate, a service down). */
export interface Sample {
  name: string
  labels?: Record<string, string>
  v: number | null
  note?: string
  /**
   * For a rate: the raw counter it was computed from (bytes, transactions, commands since the service
   * started), kept for /metrics, where Prometheus computes rates itself without losing events between scrapes.
   */
  raw?: number | null
}

/** What a collector adds to /metrics beyond its series: the app's request histogram (see prometheus.ts). */
export interface Histogram {
  /** Upper bounds, in seconds, ascending (+Inf is implied). */
  bounds: number[]
  /** Cumulative counts per bound, then the +Inf count (= count). */
  counts: number[]
  sum: number
  count: number
}

export interface Collector {
  id: 'host' | 'postgres' | 'redis' | 'app'
  configured: boolean
  collect(nowMs: number): Promise<Sample[]>
  /** The app collector: every probe request since start, as a latency histogram and by outcome. */
  requests?(): { latency: Histogram; ok: number; failed: number }
  close(): Promise<void>
}

export const FIRST = 'a rate needs two samples: the next collection has it'
