import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import MarkdownIt from 'markdown-it'
import { describe, expect, it } from 'vitest'
import { reportFileName, slugify } from '../../src/core/incidents/report'
import { markdownHtml } from '../../src/core/incidents/report/html'
import { reportJsonSchemaText } from '../../src/core/incidents/report/json'
import { escapeMd, noteMd, renderMarkdown } from '../../src/core/incidents/report/markdown'
import { downsample } from '../../src/core/incidents/report/svg-chart'
import { buildIncidentFixture } from '../helpers/incident-report-fixture'

const root = join(__dirname, '../..')
const schemaFile = join(root, 'docs/incident-report.schema.json')

describe('the JSON Schema of the incident report', () => {
  it('is committed as docs/incident-report.schema.json exactly as the code generates it', () => {
    const generated = reportJsonSchemaText()
    // UPDATE_SCHEMA=1 npx vitest run test/unit/incident-report.test.ts rewrites it after a schema change.
    if (process.env.UPDATE_SCHEMA === '1') writeFileSync(schemaFile, generated)
    expect(readFileSync(schemaFile, 'utf8')).toBe(generated)
    const schema = JSON.parse(generated)
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema')
    expect(schema.required).toEqual(expect.arrayContaining(['schemaVersion', 'timeline', 'series', 'review', 'incident']))
    expect(schema.properties.schemaVersion.const).toBe(1)
  })
})

// html: true, so raw HTML in the Markdown would come through: only the escaping keeps it out.
const md = new MarkdownIt({ html: true, linkify: false })

describe('Markdown escaping', () => {
  const hostile = [
    '<script>alert(1)</script>',
    '# heading',
    '| a | b |',
    '**bold** _em_ `code`',
    '[click](javascript:alert(1))',
    '![img](http://x.test/a.png)',
    '1. not a list',
    '2) not a list either',
    '+ not a list',
    '===',
    '0.2 % stays plain',
    '- not a list',
    '> not a quote',
    '---',
    '\\<b>backslash first</b>',
    'line one\nline two\n\n# second heading',
    '&lt;b&gt;entity&lt;/b&gt;',
  ]

  it.each(hostile)('keeps %j as the same text, inline and in a table cell', (s) => {
    const inline = md.renderInline(escapeMd(s))
    // Whatever the text, it renders as itself: no tag, no link, no image, no emphasis.
    expect(inline).not.toMatch(/<(?!\/?p>)[a-z]/i)
    const text = inline
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&')
    expect(text).toBe(s.replace(/\s*\n\s*/g, ' '))
    // As a block of its own it is one paragraph: no list, heading, quote, rule or HTML block.
    const block = md.render(escapeMd(s)).trim()
    expect(block).toMatch(/^<p>[\s\S]*<\/p>$/)
    expect(block.slice(3)).not.toMatch(/<(p|ul|ol|h\d|blockquote|hr|pre)\b/)
    // In a table cell it stays one cell of one row.
    const table = md.render(`| x | y |\n|---|---|\n| ${escapeMd(s)} | end |\n`)
    expect(table.match(/<td>/g)).toHaveLength(2)
    expect(table).toContain('<td>end</td>')
    expect(table).not.toMatch(/<(script|h\d|a |img|ol|ul|blockquote|hr|b>)/)
  })

  it('leaves ordinary text readable: no backslash where nothing could start markup', () => {
    expect(escapeMd('0.2 % of 2026-11-30 09:42 requests = fine')).toBe('0.2 % of 2026-11-30 09:42 requests = fine')
  })

  it('is what a report writes for titles, actors and action items: the structure stays whole', () => {
    const base = buildIncidentFixture()
    const evil = '<script>alert("x")</script> | # H | **b** [l](javascript:x)'
    const r = {
      ...base,
      title: evil,
      timeline: base.timeline.map((e, i) => (i === 3 ? { ...e, title: `${evil}\n# injected heading`, actor: '| actor |' } : e)),
      review: { ...base.review!, actionItems: [{ text: evil, owner: '|o|', due: '2026-12-01', done: false }] },
    }
    const html = md.render(renderMarkdown(r))
    expect(html).not.toContain('<script')
    expect(html).not.toMatch(/<a /)
    expect(html).not.toContain('<h1>injected')
    expect(html.match(/<h1>/g)).toHaveLength(1)
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;')
    // The action items table: a header and one row of five cells.
    const actions = /<h3>Action items<\/h3>\s*<table>([\s\S]*?)<\/table>/.exec(html)![1]
    expect(actions.match(/<tr>/g)).toHaveLength(2)
    expect(actions.match(/<td[ >]/g)).toHaveLength(5)
  })

  it("keeps a note's safe subset and turns links into their text and address", () => {
    const note =
      'Checked **redis** with `redis-cli ping`: *no answer*.\n\n- one\n- [runbook](https://wiki.test/r)\n\n```\n<b>raw</b>\n```\n\n<img src=x onerror=alert(1)> # title'
    const out = md.render(noteMd(note))
    expect(out).toContain('<strong>redis</strong>')
    expect(out).toContain('<code>redis-cli ping</code>')
    expect(out).toContain('<em>no answer</em>')
    expect(out).toMatch(/<ul>\s*<li>one<\/li>\s*<li>runbook \(<code>https:\/\/wiki\.test\/r<\/code>\)<\/li>/)
    expect(out).toContain('&lt;b&gt;raw&lt;/b&gt;')
    expect(out).not.toMatch(/<img|<a |<h1/)
    // A code block holding a fence of its own stays one code block, its text unchanged.
    const fenced = md.render(noteMd('~~~\n```\n# inside the code\n```\n~~~'))
    expect(fenced).not.toContain('<h1>')
    expect(fenced.match(/<pre>/g)).toHaveLength(1)
    expect(fenced).toContain('```\n# inside the code\n```')
    // The HTML report renders the same subset, escaping the rest.
    const h = markdownHtml(note)
    expect(h).toContain('<strong>redis</strong>')
    expect(h).toContain('runbook <span class="url">(https://wiki.test/r)</span>')
    expect(h).toContain('&lt;img src=x onerror=alert(1)&gt; # title')
    expect(h).not.toMatch(/<img|<a /)
  })
})

describe('file names', () => {
  it('are incident-<id>-<slug>.<ext> with only [a-z0-9-] in the slug, capped', () => {
    const r = buildIncidentFixture()
    expect(reportFileName(r, 'pdf')).toBe('incident-inc-42-redis-outage-during-the-exam-finals-grading.pdf')
    const nasty = { ...r, title: '../../etc/passwd <script> Ünïcödé — CON: "x"?*'.repeat(5) }
    const name = reportFileName(nasty, 'html')
    expect(name).toMatch(/^incident-inc-42-[a-z0-9-]+\.html$/)
    expect(name.length).toBeLessThanOrEqual('incident-'.length + 40 + 1 + 60 + '.html'.length)
    expect(slugify('***')).toBe('report')
    expect(slugify('Ünïcödé')).toBe('unicode')
  })

  it('name a window export by its times', () => {
    const r = buildIncidentFixture({ incident: null, review: null })
    expect(reportFileName(r, 'md')).toBe('incidents-window-20261130t0827z-20261130t0957z.md')
  })
})

describe('chart downsampling', () => {
  it('keeps every peak of a dense series', () => {
    const pts: [number, number | null][] = []
    for (let i = 0; i < 10_000; i++) pts.push([i * 1000, i === 4321 ? 999 : i === 8000 ? -50 : Math.sin(i / 100)])
    const out = downsample(pts, 0, 10_000_000, 200)
    expect(out.length).toBeLessThanOrEqual(2 * 200 + 2)
    const vals = out.map(([, v]) => v)
    expect(vals).toContain(999)
    expect(vals).toContain(-50)
  })
})

describe('a long timeline condensed for print', () => {
  it("keeps every entry counted, people's entries whole, the rows under budget and in time order", async () => {
    const { syntheticReport } = await import('../../bench/incidents-pdf')
    const { condenseTimeline, PRINT_ROW_BUDGET } = await import('../../src/core/incidents/report/condense')
    const r = syntheticReport(10_000)
    const { rows, bucketMs } = condenseTimeline(r.timeline)
    expect(bucketMs).not.toBeNull()
    expect(rows.length).toBeLessThanOrEqual(PRINT_ROW_BUDGET)
    const counted = rows.reduce((n, row) => n + (row.kind === 'entry' ? 1 : row.g.count), 0)
    expect(counted).toBe(10_000)
    const people = r.timeline.filter((e) => e.type.startsWith('incident.'))
    expect(people.length).toBeGreaterThan(20)
    const shown = new Set(rows.flatMap((row) => (row.kind === 'entry' ? [row.e.id] : [])))
    for (const e of people) expect(shown.has(e.id)).toBe(true)
    const times = rows.map((row) => (row.kind === 'entry' ? row.e.at : row.g.from))
    // Rows within a bucket follow the first entry of each group; buckets are in order.
    for (let i = 1; i < times.length; i++)
      expect(Math.floor(times[i] / bucketMs!)).toBeGreaterThanOrEqual(Math.floor(times[i - 1] / bucketMs!))
    // A short timeline is printed whole.
    expect(condenseTimeline(buildIncidentFixture().timeline).bucketMs).toBeNull()
  })
})
