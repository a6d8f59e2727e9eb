// The PDF export of a large incident report (issue target: a 24-hour report with 10,000 timeline entries
// printed in ≤ 5 s). bench/incidents.ts calls measurePdfExport with the report its timeline builder made;
// syntheticReport makes one without a database (a realistic mix: a dense incident stretch in a quiet day,
// every entry type, notes with Markdown, two 10-second series over 24 h with thresholds).
import { renderReport, type PdfPrinter } from '../src/core/incidents/report'
import { createChromiumPrinter } from '../src/core/incidents/report/chromium-printer'
import { incidentReport, type IncidentReport, type TimelineEntry } from '../src/shared/incidents'

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]

export interface PdfExportMeasure {
  /** Median wall time of renderReport(report, 'pdf') over the rounds, Chromium's launch included. */
  medianMs: number
  roundsMs: number[]
  pages: number | null
  bytes: number
  entries: number
}

/** Median milliseconds to export the report as PDF (A4), each round a full export as the CLI runs it. */
export async function measurePdfExport(
  report: IncidentReport,
  rounds = 3,
  opts: { paper?: 'A4' | 'Letter'; printPdf?: PdfPrinter } = {},
): Promise<number> {
  return (await measurePdfExportDetail(report, rounds, opts)).medianMs
}

/** The same, with every round's time, the page count and the size of the PDF. */
export async function measurePdfExportDetail(
  report: IncidentReport,
  rounds = 3,
  opts: { paper?: 'A4' | 'Letter'; printPdf?: PdfPrinter } = {},
): Promise<PdfExportMeasure> {
  const printPdf = opts.printPdf ?? createChromiumPrinter({ timeoutMs: 120_000 })
  const times: number[] = []
  let last: Buffer | null = null
  for (let i = 0; i < Math.max(1, rounds); i++) {
    const t = performance.now()
    const out = await renderReport(report, 'pdf', { paper: opts.paper ?? 'A4', printPdf })
    times.push(performance.now() - t)
    last = out.data as Buffer
  }
  // The page count: the root of the PDF's page tree has the largest /Count.
  const counts = last ? [...last.toString('latin1').matchAll(/\/Count\s+(\d+)/g)].map((m) => Number(m[1])) : []
  return {
    medianMs: Math.round(median(times)),
    roundsMs: times.map((t) => Math.round(t)),
    pages: counts.length ? Math.max(...counts) : null,
    bytes: last?.length ?? 0,
    entries: report.timeline.length,
  }
}

const TYPES: TimelineEntry['type'][] = [
  'alert.transition',
  'health.change',
  'error.new_group',
  'error.regressed',
  'error.spike',
  'backup',
  'restore',
  'settings.change',
  'audit',
]

/** A 24-hour report with `entries` timeline entries, two thirds of them in a two-hour incident. */
export function syntheticReport(entries = 10_000, hours = 24): IncidentReport {
  const to = Date.UTC(2026, 10, 30, 12, 0, 0)
  const from = to - hours * 3_600_000
  const incStart = from + 10 * 3_600_000
  const incEnd = incStart + 2 * 3_600_000
  let seed = 42
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  const timeline: TimelineEntry[] = []
  for (let i = 0; i < entries; i++) {
    const dense = i % 3 !== 0
    const at = Math.floor(dense ? incStart + rnd() * (incEnd - incStart) : from + rnd() * (to - from))
    // People's entries (notes, status changes) are rare; the system's are the bulk.
    const type = i % 250 === 0 ? 'incident.note' : i % 400 === 7 ? 'incident.status' : TYPES[i % TYPES.length]
    const level = (['critical', 'warning', 'info', 'ok'] as const)[i % 4]
    timeline.push({
      id: `${type}:${i}`,
      type,
      at,
      title:
        type === 'alert.transition'
          ? `Alert rule_${i % 50} ${i % 2 ? 'firing' : 'resolved'}: value ${(rnd() * 100).toFixed(1)}`
          : type === 'incident.note'
            ? `Note by operator${i % 5}@examforge.test`
            : `${type} event ${i} on service-${i % 12}`,
      detail:
        type === 'incident.note'
          ? `Checked **service-${i % 12}**: \`latency ${Math.round(rnd() * 900)} ms\`.\n\n- restarted the worker\n- see [dashboard](https://grafana.test/d/${i})`
          : i % 7 === 0
            ? `Error: connect ECONNREFUSED 10.0.${i % 255}.${i % 200}:6379\n    at Socket.connect (net.js:${i % 900})`
            : null,
      level,
      actor: type === 'incident.note' || type === 'audit' || type === 'settings.change' ? `operator${i % 5}@examforge.test` : null,
      source: { kind: type.startsWith('error') ? 'error_group' : type === 'alert.transition' ? 'alert' : 'audit', id: `src-${i % 400}` },
      data: { n: i, service: `service-${i % 12}`, value: Math.round(rnd() * 1000) / 10 },
    })
  }
  timeline.sort((a, b) => a.at - b.at)
  const series = ['http_error_rate', 'redis_latency_ms'].map((name, k) => {
    const points: [number, number | null][] = []
    for (let t = from; t <= to; t += 10_000) {
      const inInc = t >= incStart && t <= incEnd
      points.push([t, inInc ? 20 + rnd() * (k ? 400 : 15) : 1 + rnd() * (k ? 20 : 1)])
    }
    return {
      name,
      unit: k ? 'ms' : '%',
      points,
      thresholds: [{ value: k ? 250 : 5, rule: `${name}_high`, severity: 'critical' }],
    }
  })
  return incidentReport.parse({
    schemaVersion: 1,
    generatedAt: to,
    generatedBy: 'bench',
    incident: {
      id: 'inc-bench',
      title: `Synthetic incident with ${entries} timeline entries`,
      severity: 'critical',
      status: 'resolved',
      commander: 'operator0@examforge.test',
      openedAt: incStart,
      openedBy: 'system',
      origin: 'alert',
      alertRule: 'rule_1',
      resolvedAt: incEnd,
      statusChanges: [{ at: incStart, from: null, to: 'investigating', by: 'operator0@examforge.test' }],
      pinnedSeries: [],
      alerts: [{ id: 'al-1', rule: 'rule_1', joinedAt: incStart }],
    },
    window: { from, to, marginMs: 0 },
    title: `Synthetic incident with ${entries} timeline entries`,
    timeline,
    series,
    review: null,
  } satisfies IncidentReport)
}
