import http from 'node:http'
import https from 'node:https'
import { round } from './host'
import type { Collector, Sample } from './collector'

/**
 * The web app from its health URL: one request per collection; percentiles, throughput and error rate
 * over the last minute of those requests (the window).
 */
// node:http with kept-alive connections: a fraction of fetch's cost per request, which matters at one request a second.
const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 1 }), https: new https.Agent({ keepAlive: true, maxSockets: 1 }) }

/** True when the app answered below 500 within the timeout. */
function get(url: URL, timeoutMs: number): Promise<boolean> {
  const mod = url.protocol === 'https:' ? https : http
  return new Promise((resolve) => {
    const req = mod.get(url, { agent: url.protocol === 'https:' ? agents.https : agents.http, timeout: timeoutMs }, (res) => {
      res.resume()
      res.on('end', () => resolve((res.statusCode ?? 599) < 500))
      res.on('error', () => resolve(false))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve(false))
  })
}

/** Histogram bounds for the app's response time, in seconds (Prometheus' default buckets). */
const BOUNDS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export function appCollector(o: { url: string | null; healthPath: string; timeoutMs: number; windowMs?: number }): Collector {
  const windowMs = o.windowMs ?? 60_000
  const seen: { t: number; ms: number; ok: boolean }[] = []
  // Every request since start, for /metrics: a latency histogram of the answered ones, and counts by outcome.
  const latency = { bounds: BOUNDS_S, counts: new Array<number>(BOUNDS_S.length + 1).fill(0), sum: 0, count: 0 }
  let ok = 0
  let failed = 0
  return {
    id: 'app',
    configured: !!o.url,
    requests: () => ({ latency: { ...latency, counts: [...latency.counts] }, ok, failed }),
    async collect(now) {
      const target = new URL(o.healthPath, o.url!)
      const t0 = performance.now()
      const answered_ = await get(target, o.timeoutMs)
      const ms = performance.now() - t0
      seen.push({ t: now, ms, ok: answered_ })
      if (answered_) {
        ok++
        const s = ms / 1000
        for (let i = 0; i < BOUNDS_S.length; i++) if (s <= BOUNDS_S[i]) latency.counts[i]++
        latency.counts[BOUNDS_S.length]++
        latency.sum += s
        latency.count++
      } else failed++
      while (seen.length && seen[0].t < now - windowMs) seen.shift()
      const answered = seen
        .filter((s) => s.ok)
        .map((s) => s.ms)
        .sort((a, b) => a - b)
      const pct = (p: number): Sample['v'] =>
        answered.length ? round(answered[Math.min(answered.length - 1, Math.ceil((p / 100) * answered.length) - 1)]) : null
      const span = Math.max(1000, seen.length > 1 ? now - seen[0].t : windowMs)
      const none = answered.length ? {} : { note: 'no successful request in the window' }
      return [
        { name: 'app.p50_ms', v: pct(50), ...none },
        { name: 'app.p95_ms', v: pct(95), ...none },
        { name: 'app.p99_ms', v: pct(99), ...none },
        { name: 'app.throughput_rpm', v: round((answered.length * 60_000) / span) },
        { name: 'app.error_rate', v: round((100 * (seen.length - answered.length)) / seen.length) },
      ]
    },
    async close() {},
  }
}
