import { describeNetError, degraded, ok, unhealthy, type Probe } from '../probe'
import { withUrlTransport } from '../transport'

/** The ExamForge web app: HTTP status and latency of its health URL, with an optional expected keyword. */
export function appProbe(o: { url: string | null; healthPath: string; keyword: string | null; timeoutMs: number; slowMs?: number }): Probe {
  return withUrlTransport(appProbeOf(o), () => o.url)
}

function appProbeOf(o: Parameters<typeof appProbe>[0]): Probe {
  return {
    id: 'app',
    label: 'Web app',
    howToConfigure: 'Set APP_URL (and APP_HEALTH_PATH, default /api/health).',
    howToEncrypt: 'serve the app over https and use an https:// APP_URL.',
    configured: () => !!o.url,
    async run(signal) {
      let target: string
      try {
        target = new URL(o.healthPath, o.url!).toString()
      } catch {
        return unhealthy(`APP_URL "${o.url}" is not a valid URL: use e.g. https://examforge.example.com.`)
      }
      const t0 = performance.now()
      let res: Response
      try {
        res = await fetch(target, { signal, redirect: 'follow', headers: { 'User-Agent': 'examforge-ops-health' } })
      } catch (e) {
        if (signal.aborted) throw e
        return unhealthy(describeNetError((e as { cause?: unknown }).cause ?? e, 'The web app'), { url: target })
      }
      const text = await res.text()
      const ms = performance.now() - t0
      const details = { url: target, httpStatus: res.status, bytes: text.length }
      if (res.status >= 500) return unhealthy(`The health URL answered ${res.status}: the app is failing. Check its logs.`, details, ms)
      if (res.status >= 400) return unhealthy(`The health URL answered ${res.status}: check APP_URL and APP_HEALTH_PATH.`, details, ms)
      if (o.keyword && !text.includes(o.keyword))
        return degraded(`The health URL answered ${res.status} but without the expected keyword "${o.keyword}".`, details, ms)
      if (ms > (o.slowMs ?? 2000)) return degraded(`The health URL is slow: ${Math.round(ms)} ms.`, details, ms)
      return ok(`Answered ${res.status} in ${Math.round(ms)} ms.`, details, ms)
    },
  }
}
