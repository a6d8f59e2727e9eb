/**
 * The Markdown report, for a wiki or a repository: the same report as the HTML, with tables for the facts,
 * the action items and the timeline, and each chart summarised as its min / max / last and threshold
 * lines (Markdown has no charts). Every text from the report is escaped, so an entry cannot add a
 * heading, a table column, raw HTML or a live link; notes keep their safe Markdown subset.
 */
import type { IncidentReport, TimelineEntry } from '../../../shared/incidents'
import { duration, LEVEL_MARK, markers, num, seriesStats, TIME_NOTE, titleFacts, TYPE_LABEL, utc, utcDate, utcTime } from './format'
import { parseNote, type Block, type Inline } from './note-markdown'

/**
 * Escape text for Markdown (CommonMark/GFM): backslash before every character that can start markup,
 * HTML or a table cell boundary, line breaks folded to spaces. Safe inline and inside a table cell.
 */
export function escapeMd(s: string): string {
  return (
    s
      .replace(/\s*(?:\r\n?|\n)\s*/g, ' ')
      .replace(/[\\`*_{}[\]()<>#|~&!]/g, (c) => `\\${c}`)
      // What starts a block only at the start of a line: a list item ("- ", "+ ", "1. "), a setext underline or thematic break.
      .replace(/^(\s*)([-+](?=\s|$|-)|=(?==|\s*$)|\d+(?=[.)](?:\s|$)))/, (_m, sp: string, c: string) =>
        /\d/.test(c) ? `${sp}${c}\\` : `${sp}\\${c}`,
      )
  )
}

/** Inline code that cannot be closed early by the text inside it. */
function codeSpan(s: string): string {
  const text = s.replace(/\r\n?|\n/g, ' ').replace(/\|/g, '¦')
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((m) => m.length))
  const ticks = '`'.repeat(longest + 1)
  return `${ticks} ${text} ${ticks}`
}

export function inlineMd(c: Inline[]): string {
  return c
    .map((x) => {
      switch (x.t) {
        case 'text':
          return escapeMd(x.s)
        case 'code':
          return codeSpan(x.s)
        case 'em':
          return `*${inlineMd(x.c)}*`
        case 'strong':
          return `**${inlineMd(x.c)}**`
        case 'link':
          return `${escapeMd(x.text)} (${codeSpan(x.url)})`
      }
    })
    .join('')
}

/** Blocks written for a place with the given indent (a list item's continuation). */
function blocksMd(blocks: Block[], indent: string): string {
  return blocks
    .map((b) => {
      if (b.t === 'p') return `${indent}${inlineMd(b.c)}`
      if (b.t === 'code') {
        // A fence longer than any run of backticks inside, so the code cannot close it early.
        const longest = Math.max(2, ...(b.s.match(/`+/g) ?? []).map((m) => m.length))
        const fence = '`'.repeat(longest + 1)
        return [`${indent}${fence}text`, ...b.s.split('\n').map((l) => `${indent}${l}`), `${indent}${fence}`].join('\n')
      }
      return b.items.map((i, n) => `${indent}${b.ordered ? `${n + 1}.` : '-'} ${inlineMd(i)}`).join('\n')
    })
    .join(`\n\n`)
}

export function noteMd(src: string, indent = ''): string {
  return blocksMd(parseNote(src), indent)
}

/** A table cell: one line, escaped (a note's Markdown shown as its text). */
function cell(s: string | null | undefined): string {
  return s ? escapeMd(s.trim()) : '—'
}

function entryLine(e: TimelineEntry): string {
  const src = e.source ? ` — source ${codeSpan(`${e.source.kind}:${e.source.id}`)}` : ''
  const actor = e.actor ? ` — by ${escapeMd(e.actor)}` : ''
  let out = `- **${utcTime(e.at)}** · ${escapeMd(TYPE_LABEL[e.type] ?? e.type)} · ${escapeMd(LEVEL_MARK[e.level])} · ${escapeMd(e.title)}${actor}${src}`
  if (e.detail) out += `\n\n${e.type === 'incident.note' ? noteMd(e.detail, '  ') : `  ${escapeMd(e.detail.trim())}`}\n`
  return out
}

export function renderMarkdown(r: IncidentReport): string {
  const out: string[] = []
  out.push(`# ${escapeMd(r.title.trim())}`, '')
  out.push(`*ExamForge Ops · ${r.incident ? 'incident report' : 'window report'} · ${escapeMd(TIME_NOTE)}*`, '')
  out.push('| | |', '|---|---|')
  for (const [k, v] of titleFacts(r)) out.push(`| ${escapeMd(k)} | ${escapeMd(v)} |`)
  out.push('')
  if (r.incident?.alerts.length)
    out.push(
      `Alerts in this incident: ${r.incident.alerts.map((a) => `${escapeMd(a.rule)} (${codeSpan(`alert:${a.id}`)})`).join(', ')}`,
      '',
    )
  if (r.incident?.statusChanges.length)
    out.push(
      `Status changes: ${r.incident.statusChanges.map((c) => `${escapeMd(c.to)} at ${utc(c.at)} by ${escapeMd(c.by)}`).join(' → ')}`,
      '',
    )

  out.push('## Summary and review', '')
  const v = r.review
  if (!v) out.push(r.incident ? '*No post-incident review yet.*' : '*A window report has no review.*', '')
  else {
    const field = (label: string, text: string) => out.push(`### ${label}`, '', text.trim() ? noteMd(text) : '—', '')
    field('Summary', v.summary)
    out.push('### Impact', '')
    out.push(`- Duration: ${escapeMd(duration(v.impact.durationMs))}`)
    out.push(`- Services: ${escapeMd(v.impact.services.join(', ') || 'none named')}`)
    out.push(`- Users affected: ${v.impact.usersAffected == null ? 'unknown' : v.impact.usersAffected}`, '')
    if (v.impact.text.trim()) out.push(noteMd(v.impact.text), '')
    field('Root cause', v.rootCause)
    field('What went well', v.wentWell)
    field('What went badly', v.wentBadly)
    out.push('### Action items', '')
    if (!v.actionItems.length) out.push('*No action items.*', '')
    else {
      out.push('| # | Action | Owner | Due | Done |', '|---:|---|---|---|---|')
      v.actionItems.forEach((a, i) =>
        out.push(`| ${i + 1} | ${cell(a.text)} | ${cell(a.owner)} | ${cell(a.due)} | ${a.done ? 'done' : 'open'} |`),
      )
      out.push('')
    }
    out.push(
      v.editedBy
        ? `*Review saved by ${escapeMd(v.editedBy)}${v.editedAt != null ? ` at ${utc(v.editedAt)}` : ''}.*`
        : '*Draft pre-filled from the timeline.*',
      '',
    )
  }

  out.push('## Metrics', '')
  if (!r.series.length) out.push('*No metric series were charted.*', '')
  else {
    const m = markers(r)
    out.push(
      `Markdown has no charts: each series in the window as its range and thresholds${m.length ? ` (${m.map((x) => `${x.label} ${utc(x.at)}`).join(', ')})` : ''}.`,
      '',
    )
    out.push('| Series | Min | Max | Last | Thresholds |', '|---|---:|---:|---:|---|')
    for (const s of r.series) {
      const st = seriesStats(s.points)
      const u = s.unit ? ` ${s.unit}` : ''
      const th = s.thresholds.map((t) => `${t.rule} ${num(t.value)}${u} (${t.severity})`).join('; ')
      out.push(
        `| ${cell(s.name)} | ${st ? escapeMd(num(st.min) + u) : '—'} | ${st ? escapeMd(num(st.max) + u) : '—'} | ${st ? escapeMd(num(st.last) + u) : '—'} | ${th ? escapeMd(th) : '—'} |`,
      )
    }
    out.push('')
  }

  out.push(`## Timeline (${r.timeline.length} entries, UTC)`, '')
  if (!r.timeline.length) out.push('*Nothing was recorded in this window.*', '')
  let day = ''
  for (const e of r.timeline) {
    const d = utcDate(e.at)
    if (d !== day) {
      if (day) out.push('')
      day = d
      out.push(`### ${d}`, '')
    }
    out.push(entryLine(e))
  }
  out.push('')
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`
}
