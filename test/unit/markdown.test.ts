import { describe, expect, it } from 'vitest'
import { parseInline, parseMarkdown, safeHref, type MdBlock, type MdInline } from '../../src/shared/markdown'

/** Every link target in a tree (what a renderer would put in href). */
const hrefs = (blocks: MdBlock[]): string[] => {
  const inl = (xs: MdInline[]): string[] => xs.flatMap((x) => (x.t === 'link' ? [x.href, ...inl(x.c)] : 'c' in x ? inl(x.c) : []))
  return blocks.flatMap((b) =>
    b.t === 'p' || b.t === 'h' ? inl(b.c) : b.t === 'ul' || b.t === 'ol' ? b.items.flatMap(inl) : b.t === 'quote' ? hrefs(b.c) : [],
  )
}
/** The text a reader sees, with the structure flattened. */
const text = (xs: MdInline[]): string => xs.map((x) => (x.t === 'text' || x.t === 'code' ? x.v : x.t === 'br' ? '\n' : text(x.c))).join('')

describe('notes as safe Markdown', () => {
  it('reads paragraphs, headings, lists, code and quotes', () => {
    const md = [
      '# Redis down',
      '',
      'Cache **unreachable** since 03:12, *paging* the `redis` owner.',
      'Second line.',
      '',
      '- restarted redis',
      '- checked `INFO`',
      '',
      '2. then this',
      '3. and that',
      '',
      '```',
      'redis-cli ping',
      '<b>not bold</b>',
      '```',
      '> quoted _text_',
    ].join('\n')
    const b = parseMarkdown(md)
    expect(b.map((x) => x.t)).toEqual(['h', 'p', 'ul', 'ol', 'pre', 'quote'])
    expect(b[1]).toEqual({
      t: 'p',
      c: [
        { t: 'text', v: 'Cache ' },
        { t: 'strong', c: [{ t: 'text', v: 'unreachable' }] },
        { t: 'text', v: ' since 03:12, ' },
        { t: 'em', c: [{ t: 'text', v: 'paging' }] },
        { t: 'text', v: ' the ' },
        { t: 'code', v: 'redis' },
        { t: 'text', v: ' owner.' },
        { t: 'br' },
        { t: 'text', v: 'Second line.' },
      ],
    })
    expect(b[2]).toMatchObject({ t: 'ul', items: [[{ t: 'text', v: 'restarted redis' }], [{ t: 'text' }, { t: 'code', v: 'INFO' }]] })
    expect(b[3]).toMatchObject({ t: 'ol', start: 2 })
    expect(b[4]).toEqual({ t: 'pre', v: 'redis-cli ping\n<b>not bold</b>' })
    expect(b[5]).toEqual({
      t: 'quote',
      c: [
        {
          t: 'p',
          c: [
            { t: 'text', v: 'quoted ' },
            { t: 'em', c: [{ t: 'text', v: 'text' }] },
          ],
        },
      ],
    })
  })

  it('keeps raw HTML as text and follows only http(s) and mailto links', () => {
    const b = parseMarkdown(
      '<img src=x onerror=alert(1)> [bad](javascript:alert(1)) [data](data:text/html,hi) [ok](https://status.examforge.test/x) see https://grafana.test/d/1.',
    )
    expect(hrefs(b)).toEqual(['https://status.examforge.test/x', 'https://grafana.test/d/1'])
    const p = b[0] as Extract<MdBlock, { t: 'p' }>
    expect(text(p.c)).toBe(
      '<img src=x onerror=alert(1)> [bad](javascript:alert(1)) [data](data:text/html,hi) ok see https://grafana.test/d/1.',
    )
    expect(p.c.filter((x) => x.t === 'text').map((x) => (x as { v: string }).v)[0]).toContain('<img')
    expect(safeHref(' JavaScript:alert(1)')).toBeNull()
    expect(safeHref('mailto:oncall@examforge.test')).toBe('mailto:oncall@examforge.test')
  })

  it('leaves snake_case names and lone stars alone', () => {
    expect(parseInline('rule redis_down_now fired, 2 * 3')).toEqual([{ t: 'text', v: 'rule redis_down_now fired, 2 * 3' }])
    // Double underscores inside names (window.__x, __init__.py paths) are not bold.
    expect(parseInline('window.__pwned=1 and window.__pwned=2')).toEqual([{ t: 'text', v: 'window.__pwned=1 and window.__pwned=2' }])
    expect(parseInline('__bold__ here')[0]).toEqual({ t: 'strong', c: [{ t: 'text', v: 'bold' }] })
  })
})
