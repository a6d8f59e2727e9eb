import type { LatestValue } from '../../shared/metrics'

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

/** The newest value of every series in Prometheus' text exposition format (gauges; series without a value are left out). */
export function prometheusText(latest: LatestValue[]): string {
  const byName = new Map<string, LatestValue[]>()
  for (const l of latest) byName.set(l.name, [...(byName.get(l.name) ?? []), l])
  const out: string[] = []
  for (const [name, ls] of byName) {
    const metric = `examforge_${name.replace(/[^a-zA-Z0-9_]/g, '_')}`
    out.push(`# HELP ${metric} ${ls[0].help} (${ls[0].unit})`, `# TYPE ${metric} gauge`)
    for (const l of ls) {
      if (l.v === null || !Number.isFinite(l.v)) continue
      const labels = { host: l.host, ...l.labels }
      const text = Object.entries(labels)
        .map(([k, v]) => `${k}="${esc(v)}"`)
        .join(',')
      out.push(`${metric}{${text}} ${l.v}`)
    }
  }
  return out.join('\n') + '\n'
}
