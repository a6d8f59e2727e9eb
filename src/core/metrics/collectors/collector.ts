/** One reading of a series at a collection: null with a note when there is no value (a first sample of a rate, a service down). */
export interface Sample {
  name: string
  labels?: Record<string, string>
  v: number | null
  note?: string
}

export interface Collector {
  id: 'host' | 'postgres' | 'redis' | 'app'
  configured: boolean
  collect(nowMs: number): Promise<Sample[]>
  close(): Promise<void>
}

export const FIRST = 'a rate needs two samples: the next collection has it'
