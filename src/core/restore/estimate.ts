/**
 * The plan's time estimate, from what restores really took on this installation: the throughput of the
 * last restores of the same kind (parallel load into an empty database, or replace in one transaction),
 * read from ops.restores. With none timed yet, the estimate is unknown, and says so: a number from someone
 * else's bench (it said 9 s for a restore that took 37 s) is worse than none.
 */
export interface TimedRestore {
  mode: 'replace' | 'load'
  bytes: number
  durationMs: number
}

export interface Estimate {
  seconds: number | null
  basis: string
}

const MB = 1e6

export function estimateRestore(bytes: number, mode: 'replace' | 'load', history: TimedRestore[], samples = 10): Estimate {
  const same = history.filter((h) => h.mode === mode && h.durationMs > 0 && h.bytes >= 0).slice(0, samples)
  const kind = mode === 'load' ? 'into an empty database' : 'in place'
  if (!same.length)
    return { seconds: null, basis: `unknown: no restore ${kind} has been timed here yet (this one will be, for the next estimate)` }
  const totalBytes = same.reduce((n, h) => n + h.bytes, 0)
  const totalS = same.reduce((n, h) => n + h.durationMs / 1000, 0)
  // Throughput including each run's fixed costs (connections, schema, checks): small runs are not faster
  // than their overhead, so the estimate never goes below the quickest run measured.
  const rate = totalBytes / totalS
  const fastest = Math.min(...same.map((h) => h.durationMs / 1000))
  const seconds = Math.max(fastest, rate > 0 ? bytes / rate : fastest)
  return {
    seconds: Math.ceil(seconds),
    basis: `from the last ${same.length === 1 ? 'restore' : `${same.length} restores`} ${kind} here (${(rate / MB).toFixed(1)} MB/s including fixed costs)`,
  }
}
