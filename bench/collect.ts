// The collector process of the metrics bench: only what the console's collection loads (no browser driver), so its CPU is the collectors'.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import pg from 'pg'
import { OpsEvents } from '../src/core/events'
import { createLogger } from '../src/core/log/logger'
import { appCollector } from '../src/core/metrics/collectors/app'
import { hostCollector } from '../src/core/metrics/collectors/host'
import { postgresCollector } from '../src/core/metrics/collectors/postgres'
import { redisCollector } from '../src/core/metrics/collectors/redis'
import { MetricsService } from '../src/core/metrics/service'

const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d

/** Run in a child process: the real collectors at 1 s for `seconds`, writing to the ops store; prints its own CPU time. */
export async function collectorChild(seconds: number, url: string, redisUrl: string, appUrl: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  const m = new MetricsService({
    collectors: [
      hostCollector(),
      postgresCollector(url),
      redisCollector(redisUrl),
      appCollector({ url: appUrl, healthPath: '/api/health', timeoutMs: 2000 }),
    ].filter((c) => !process.env.BENCH_ONLY || c.id === process.env.BENCH_ONLY),
    intervalMs: 1000,
    pool: () => pool,
    events: new OpsEvents(),
    log: createLogger({ level: 'error' }),
    host: 'bench-collector',
  })
  m.watch()
  // Warm up for 10 s (connections, first samples, the runtime compiling what was just loaded), then measure.
  m.start()
  await new Promise((r) => setTimeout(r, 10_000))
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  // Event-loop delay from the runtime's own histogram, sampled twice a second (a finer resolution would itself cost CPU).
  const delay = monitorEventLoopDelay({ resolution: 500 })
  delay.enable()
  await new Promise((r) => setTimeout(r, seconds * 1000))
  delay.disable()
  const lag = Math.max(0, delay.max / 1e6 - 500) // the histogram counts from the previous sample
  const cpu = process.cpuUsage(cpu0)
  const wall = performance.now() - t0
  await m.stop()
  await pool.end()
  process.stdout.write(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, wallMs: wall, maxEventLoopDelayMs: round(lag) }) + '\n')
}
