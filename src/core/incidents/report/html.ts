/**
 * The HTML report: one self-contained file (inline CSS, inline SVG charts, no script, no font, no image, no
 * request of any kind — its Content-Security-Policy forbids them all), readable on screen and printed by
 * Chromium to PDF on A4 or Letter. Every text is escaped; notes are rendered from a safe Markdown subset.
 */
import type { IncidentReport, TimelineEntry } from '../../../shared/incidents'
import { duration, LEVEL_MARK, markers, num, seriesStats, TIME_NOTE, titleFacts, TYPE_LABEL, utc, utcDate, utcTime } from './format'
import { esc } from './html-escape'
import { parseNote, type Block, type Inline } from './note-markdown'
import { condenseTimeline, type EntryGroup, type PrintRow } from './condense'
import { chartSvg } from './svg-chart'

export interface HtmlOptions {
  paper: 'A4' | 'Letter'
  /**
   * Compact rows for long timelines (set by renderReport past COMPACT_FROM entries): a smaller font, no
   * per-entry data line, details cut to a few lines — every entry is still listed.
   */
  compact?: boolean
  /**
   * For the PDF: past PRINT_FULL_MAX entries, dense stretches of the timeline are grouped (condense.ts)
   * so a 10,000-entry report prints in seconds; the HTML export itself always lists every entry.
   */
  print?: boolean
}

/** Past this many entries the timeline is printed in compact rows. */
export const COMPACT_FROM = 1500

export function inlineHtml(c: Inline[]): string {
  return c
    .map((x) => {
      switch (x.t) {
        case 'text':
          return esc(x.s)
        case 'code':
          return `<code>${esc(x.s)}</code>`
        case 'em':
          return `<em>${inlineHtml(x.c)}</em>`
        case 'strong':
          return `<strong>${inlineHtml(x.c)}</strong>`
        case 'link':
          // Shown, never followed: the text and the address as text.
          return `${esc(x.text)} <span class="url">(${esc(x.url)})</span>`
      }
    })
    .join('')
}

export function blocksHtml(blocks: Block[]): string {
  return blocks
    .map((b) => {
      if (b.t === 'p') return `<p>${inlineHtml(b.c)}</p>`
      if (b.t === 'code') return `<pre><code>${esc(b.s)}</code></pre>`
      const tag = b.ordered ? 'ol' : 'ul'
      return `<${tag}>${b.items.map((i) => `<li>${inlineHtml(i)}</li>`).join('')}</${tag}>`
    })
    .join('')
}

/** Markdown-subset text (notes, review fields) as HTML. */
export function markdownHtml(src: string): string {
  return blocksHtml(parseNote(src))
}

function dataLine(data: Record<string, unknown>): string {
  const parts: string[] = []
  for (const [k, v] of Object.entries(data)) {
    if (v == null) continue
    const s = typeof v === 'object' ? JSON.stringify(v) : String(v)
    parts.push(`${k}=${s.length > 120 ? `${s.slice(0, 119)}…` : s}`)
  }
  const line = parts.join(' · ')
  return line.length > 400 ? `${line.slice(0, 399)}…` : line
}

/** An e-mail address may wrap after its "@" rather than inside a word. */
function actorHtml(actor: string | null): string {
  return esc(actor ?? '').replace(/@/g, '@<wbr>')
}

function entryRow(e: TimelineEntry, compact: boolean): string {
  let detail = ''
  if (e.detail) {
    if (e.type === 'incident.note') detail = `<div class="note">${markdownHtml(e.detail)}</div>`
    else {
      const d = compact && e.detail.length > 300 ? `${e.detail.slice(0, 299)}…` : e.detail
      detail = `<div class="detail">${esc(d)}</div>`
    }
  }
  const data = !compact && Object.keys(e.data).length ? `<div class="data">${esc(dataLine(e.data))}</div>` : ''
  const src = e.source ? `<span class="src">${esc(e.source.kind)}:${esc(e.source.id)}</span>` : ''
  return (
    `<tr class="entry lv-${e.level}">` +
    `<td class="t">${utcTime(e.at)}</td>` +
    `<td class="ty">${esc(TYPE_LABEL[e.type] ?? e.type)}</td>` +
    `<td class="lv"><span class="mark">${esc(LEVEL_MARK[e.level])}</span></td>` +
    `<td class="what"><div class="title">${esc(e.title)}</div>${detail}${data}</td>` +
    `<td class="actor">${actorHtml(e.actor)}</td>` +
    `<td class="source">${src}</td>` +
    `</tr>`
  )
}

function groupRow(g: EntryGroup): string {
  const levels = (['critical', 'warning', 'info', 'ok'] as const)
    .filter((l) => g.levels[l])
    .map((l) => `${g.levels[l]} ${l}`)
    .join(' · ')
  const samples = g.samples.map((t) => `“${t}”`).join(', ')
  return (
    `<tr class="entry group lv-${g.level}">` +
    `<td class="t">${utcTime(g.from)}<br>–${utcTime(g.to)}</td>` +
    `<td class="ty">${esc(TYPE_LABEL[g.type] ?? g.type)}</td>` +
    `<td class="lv"><span class="mark">${esc(LEVEL_MARK[g.level])}</span></td>` +
    `<td class="what"><div class="title">${g.count} ${esc(TYPE_LABEL[g.type] ?? g.type)} entries</div><div class="detail">${esc(levels)}; e.g. ${esc(samples)}</div></td>` +
    `<td class="actor">${actorHtml(g.actors.join(', '))}</td>` +
    `<td class="source">${g.sources} ${g.sources === 1 ? 'source' : 'sources'}</td>` +
    `</tr>`
  )
}

function timelineHtml(r: IncidentReport, compact: boolean, printed: PrintRow[]): string {
  if (!r.timeline.length) return '<p class="empty">Nothing was recorded in this window.</p>'
  const rows: string[] = []
  let day = ''
  for (const row of printed) {
    const at = row.kind === 'entry' ? row.e.at : row.g.from
    const d = utcDate(at)
    if (d !== day) {
      day = d
      rows.push(`<tr class="day"><th colspan="6">${d} (UTC)</th></tr>`)
    }
    rows.push(row.kind === 'entry' ? entryRow(row.e, compact) : groupRow(row.g))
  }
  return (
    `<table class="timeline${compact ? ' compact' : ''}">` +
    `<colgroup><col class="c-t"><col class="c-ty"><col class="c-lv"><col class="c-what"><col class="c-actor"><col class="c-src"></colgroup>` +
    `<thead><tr><th>Time</th><th>Type</th><th>Level</th><th>What happened</th><th>Actor</th><th>Source</th></tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table>`
  )
}

function reviewHtml(r: IncidentReport): string {
  const v = r.review
  if (!v)
    return `<p class="empty">${r.incident ? 'No post-incident review yet (it is written after the incident is resolved).' : 'A window report has no review.'}</p>`
  const field = (label: string, text: string) =>
    `<div class="field"><h3>${esc(label)}</h3>${text.trim() ? markdownHtml(text) : '<p class="empty">—</p>'}</div>`
  const impact =
    `<div class="field"><h3>Impact</h3><dl class="facts small">` +
    `<dt>Duration</dt><dd>${esc(duration(v.impact.durationMs))}</dd>` +
    `<dt>Services</dt><dd>${esc(v.impact.services.join(', ') || 'none named')}</dd>` +
    `<dt>Users affected</dt><dd>${v.impact.usersAffected == null ? 'unknown' : esc(String(v.impact.usersAffected))}</dd>` +
    `</dl>${v.impact.text.trim() ? markdownHtml(v.impact.text) : ''}</div>`
  const items = v.actionItems.length
    ? `<table class="actions"><thead><tr><th>#</th><th>Action</th><th>Owner</th><th>Due</th><th>Done</th></tr></thead><tbody>${v.actionItems
        .map(
          (a, i) =>
            `<tr><td>${i + 1}</td><td>${esc(a.text)}</td><td>${esc(a.owner ?? '—')}</td><td>${esc(a.due ?? '—')}</td><td>${a.done ? '✔ done' : 'open'}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '<p class="empty">No action items.</p>'
  const edited = v.editedBy
    ? `Review saved by ${esc(v.editedBy)}${v.editedAt != null ? ` at ${utc(v.editedAt)}` : ''}.`
    : 'Draft pre-filled from the timeline; not yet edited.'
  return (
    field('Summary', v.summary) +
    impact +
    field('Root cause', v.rootCause) +
    field('What went well', v.wentWell) +
    field('What went badly', v.wentBadly) +
    `<div class="field"><h3>Action items</h3>${items}</div>` +
    `<p class="meta">${edited}</p>`
  )
}

function chartsHtml(r: IncidentReport, compact: boolean): string {
  if (!r.series.length) return '<p class="empty">No metric series were charted for this report.</p>'
  const from = r.window.from - r.window.marginMs
  const m = markers(r)
  return r.series
    .map((s) => {
      const st = seriesStats(s.points)
      const unit = s.unit ? ` ${s.unit}` : ''
      const stats = st ? `min ${num(st.min)}${unit} · max ${num(st.max)}${unit} · last ${num(st.last)}${unit}` : 'no values in the window'
      const th = s.thresholds.map((t) => `${t.rule}: ${num(t.value)}${unit} (${t.severity})`).join(' · ')
      return (
        `<figure class="chart-fig">${chartSvg(s, { from, to: r.window.to, markers: m, maxColumns: compact ? 300 : 500 })}` +
        `<figcaption><strong>${esc(s.name)}</strong> — ${esc(stats)}${th ? `<br>Thresholds: ${esc(th)}` : ''}</figcaption></figure>`
      )
    })
    .join('')
}

function sourcesHtml(r: IncidentReport): string {
  const seen = new Map<string, { kind: string; id: string; n: number }>()
  for (const e of r.timeline) {
    if (!e.source) continue
    const k = `${e.source.kind}:${e.source.id}`
    const s = seen.get(k)
    if (s) s.n++
    else seen.set(k, { kind: e.source.kind, id: e.source.id, n: 1 })
  }
  for (const a of r.incident?.alerts ?? []) if (!seen.has(`alert:${a.id}`)) seen.set(`alert:${a.id}`, { kind: 'alert', id: a.id, n: 0 })
  if (!seen.size) return '<p class="empty">No entries link to a source.</p>'
  const list = [...seen.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.id.localeCompare(b.id))
  const CAP = 300
  const shown = list.slice(0, CAP)
  return (
    `<ul class="sources">${shown.map((s) => `<li><span class="src">${esc(s.kind)}:${esc(s.id)}</span> <span class="n">${s.n} ${s.n === 1 ? 'entry' : 'entries'}</span></li>`).join('')}</ul>` +
    (list.length > CAP ? `<p class="meta">and ${list.length - CAP} more sources (each is named in its timeline entry).</p>` : '')
  )
}

function css(paper: 'A4' | 'Letter'): string {
  return `
@page { size: ${paper === 'Letter' ? 'letter' : 'A4'} portrait; margin: 16mm 14mm 18mm 14mm; }
:root { color-scheme: light; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0 auto; max-width: 190mm; padding: 8mm 0; font: 10.5pt/1.45 "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; color: #1b1f24; background: #fff; }
h1 { font-size: 22pt; line-height: 1.2; margin: 0 0 6mm; overflow-wrap: anywhere; }
h2 { font-size: 14pt; margin: 8mm 0 3mm; padding-bottom: 1mm; border-bottom: 1.5pt solid #c9d1db; break-after: avoid; }
h3 { font-size: 11pt; margin: 4mm 0 1.5mm; break-after: avoid; }
p { margin: 0 0 2mm; }
code, pre { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 0.92em; background: #f2f4f7; border-radius: 2px; }
code { padding: 0 2px; }
pre { padding: 2mm; white-space: pre-wrap; overflow-wrap: anywhere; margin: 1mm 0 2mm; }
ul, ol { margin: 0 0 2mm; padding-left: 6mm; }
.url { color: #4a5563; overflow-wrap: anywhere; }
.brand { font-size: 9pt; letter-spacing: 0.08em; text-transform: uppercase; color: #5b6675; margin-bottom: 3mm; }
.title-page { break-after: page; padding-top: 6mm; margin-bottom: 6mm; }
.sev { display: inline-block; padding: 1mm 3mm; border-radius: 2mm; font-weight: bold; font-size: 10pt; margin-bottom: 5mm; border: 1pt solid currentColor; }
.sev-critical { color: #a4161a; background: #fdecec; } .sev-warning { color: #8a5200; background: #fff4de; } .sev-info { color: #1d4f91; background: #e8f0fb; } .sev-window { color: #3c4654; background: #eef1f5; }
dl.facts { display: grid; grid-template-columns: 34mm 1fr; gap: 1.5mm 4mm; margin: 0 0 6mm; }
dl.facts dt { color: #5b6675; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
dl.facts.small { grid-template-columns: 30mm 1fr; font-size: 10pt; }
.tz, .meta { color: #5b6675; font-size: 9pt; }
.empty { color: #5b6675; font-style: italic; }
.field { break-inside: avoid; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: 1.2mm 1.5mm; border-bottom: 0.5pt solid #d5dbe3; overflow-wrap: anywhere; }
thead { display: table-header-group; }
thead th { background: #eef1f5; font-size: 9pt; color: #3c4654; }
tr { break-inside: avoid; page-break-inside: avoid; }
table.actions td:first-child { width: 7mm; color: #5b6675; }
table.actions td:nth-child(3) { width: 42mm; } table.actions td:nth-child(4) { width: 22mm; white-space: nowrap; } table.actions td:nth-child(5) { width: 16mm; white-space: nowrap; }
table.timeline { table-layout: fixed; font-size: 9pt; }
col.c-t { width: 16.5mm; } col.c-ty { width: 20.5mm; } col.c-lv { width: 20mm; } col.c-actor { width: 32.5mm; } col.c-src { width: 27mm; }
td.ty { overflow-wrap: normal; font-size: 8.5pt; }
tr.day th { background: #f7f8fa; font-size: 9pt; color: #3c4654; padding-top: 2mm; break-after: avoid; }
td.t { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.actor, td.source, .src { font-size: 8pt; color: #3c4654; }
td.actor { overflow-wrap: break-word; }
.src { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; }
.what .title { font-weight: 600; }
.what .detail { white-space: pre-wrap; color: #2e3640; }
.what .data { font-size: 8pt; color: #5b6675; font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; }
.what .note { color: #2e3640; } .what .note p:last-child { margin-bottom: 0; }
.mark { white-space: nowrap; font-weight: 600; font-size: 8.5pt; }
.lv-critical .mark { color: #a4161a; } .lv-warning .mark { color: #8a5200; } .lv-info .mark { color: #1d4f91; } .lv-ok .mark { color: #1e6b35; }
tr.lv-critical td.lv { border-left: 2pt solid #a4161a; } tr.lv-warning td.lv { border-left: 2pt solid #c98a12; } tr.lv-info td.lv { border-left: 2pt solid #6b93c9; } tr.lv-ok td.lv { border-left: 2pt solid #3b9a58; }
table.compact { font-size: 7.5pt; line-height: 1.25; }
table.compact td, table.compact th { padding: 0.5mm 1mm; }
table.compact .what .detail { display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; }
figure.chart-fig { margin: 0 0 5mm; break-inside: avoid; }
figure.chart-fig figcaption { font-size: 9pt; color: #3c4654; margin-top: 1mm; }
svg.chart { width: 100%; height: auto; max-width: 182mm; display: block; }
svg.chart text { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10px; fill: #3c4654; }
svg.chart .grid { stroke: #e3e7ec; stroke-width: 1; }
svg.chart .axis, svg.chart .tick { stroke: #6b7685; stroke-width: 1; }
svg.chart .line { fill: none; stroke: #1f5fa8; stroke-width: 1.5; stroke-linejoin: round; }
svg.chart .threshold { stroke-width: 1.2; stroke-dasharray: 6 4; }
svg.chart .threshold.crit { stroke: #b3261e; } svg.chart .threshold.warn { stroke: #c98a12; }
svg.chart text.tlab { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
svg.chart text.tlab.crit { fill: #b3261e; } svg.chart text.tlab.warn { fill: #8a5200; }
svg.chart .marker { stroke: #3c4654; stroke-width: 1; stroke-dasharray: 2 2; }
svg.chart text.mlab { font-size: 9px; fill: #1b1f24; }
ul.sources { columns: 2; font-size: 9pt; } ul.sources li { break-inside: avoid; } ul.sources .n { color: #5b6675; }
@media print { body { max-width: none; padding: 0; } .title-page { padding-top: 40mm; min-height: 200mm; margin-bottom: 0; } }
`
}

function timelineNote(compact: boolean, bucket: number | null): string {
  if (bucket != null)
    return `<p class="meta">A long timeline: in busy stretches the entries of one type within ${esc(duration(bucket))} are grouped into one row (how many, their levels, a few of their titles); people's notes and status changes are shown whole. The HTML, Markdown and JSON exports list every entry.</p>`
  if (compact)
    return '<p class="meta">A long timeline: every entry is listed in compact rows (details shortened; the JSON export has them whole).</p>'
  return ''
}

export function renderHtml(r: IncidentReport, o: HtmlOptions): string {
  const compact = o.compact ?? r.timeline.length > COMPACT_FROM
  const printed = o.print ? condenseTimeline(r.timeline) : { rows: r.timeline.map((e): PrintRow => ({ kind: 'entry', e })), bucketMs: null }
  const sev = r.incident ? r.incident.severity : 'window'
  const facts = titleFacts(r)
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`)
    .join('')
  const alerts = r.incident?.alerts.length
    ? `<p class="meta">Alerts in this incident: ${r.incident.alerts.map((a) => `${esc(a.rule)} <span class="src">alert:${esc(a.id)}</span>`).join(', ')}</p>`
    : ''
  const changes = r.incident?.statusChanges.length
    ? `<p class="meta">Status: ${r.incident.statusChanges.map((c) => `${esc(c.to)} at ${utcTime(c.at)} by ${esc(c.by)}`).join(' → ')}</p>`
    : ''
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ExamForge Ops">
<title>${esc(r.title)}</title>
<style>${css(o.paper)}</style>
</head>
<body>
<section class="title-page">
<div class="brand">ExamForge Ops · ${r.incident ? 'Incident report' : 'Window report'}</div>
<h1>${esc(r.title)}</h1>
<div class="sev sev-${sev}">${esc(r.incident ? `${r.incident.severity} · ${r.incident.status}` : 'no incident declared')}</div>
<dl class="facts">${facts}</dl>
${alerts}${changes}
<p class="tz">${esc(TIME_NOTE)} Report schema version ${r.schemaVersion}.</p>
</section>
<section class="review"><h2>Summary and review</h2>${reviewHtml(r)}</section>
<section class="charts"><h2>Metrics</h2>${chartsHtml(r, compact)}</section>
<section class="timeline-sec"><h2>Timeline (${r.timeline.length} entries, UTC)</h2>${timelineNote(compact, printed.bucketMs)}${timelineHtml(r, compact, printed.rows)}</section>
<section class="sources-sec"><h2>Sources</h2>${sourcesHtml(r)}</section>
</body>
</html>
`
}
