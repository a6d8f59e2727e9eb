/**
 * A small, safe Markdown reader for operators' notes: text in, a tree of blocks and inlines out, never HTML.
 * Whoever draws the tree (the console's React, a report's renderer) escapes every text node, so raw HTML in
 * a note stays text, and only http(s) and mailto links become links (javascript:, data: and the like stay text).
 *
 * Covers what a note at 3 a.m. uses: paragraphs, headings (#, ##, ###), bullet and numbered lists, fenced
 * code, block quotes, `code`, **bold**, *italic* / _italic_, [links](https://…), bare https:// links and
 * line breaks inside a paragraph.
 */

export type MdInline =
  | { t: 'text'; v: string }
  | { t: 'code'; v: string }
  | { t: 'strong'; c: MdInline[] }
  | { t: 'em'; c: MdInline[] }
  | { t: 'link'; href: string; c: MdInline[] }
  | { t: 'br' }

export type MdBlock =
  | { t: 'p'; c: MdInline[] }
  | { t: 'h'; level: 1 | 2 | 3; c: MdInline[] }
  | { t: 'ul'; items: MdInline[][] }
  | { t: 'ol'; start: number; items: MdInline[][] }
  | { t: 'pre'; v: string }
  | { t: 'quote'; c: MdBlock[] }

/** A link target that may be followed: http(s) and mailto only (after trimming; case-insensitive). */
export function safeHref(href: string): string | null {
  const h = href.trim()
  return /^(https?:\/\/|mailto:)[^\s<>"]+$/i.test(h) ? h : null
}

// Order matters: code first (nothing inside it is read), then links, bold, italic, bare URLs.
const INLINE =
  /`([^`\n]+)`|\[([^\]\n]+)\]\(([^)\s]+)\)|\*\*([^*\n]+?)\*\*|(?<![\w])__([^_\n]+?)__(?![\w])|\*([^*\n]+?)\*|(?<![\w])_([^_\n]+?)_(?![\w])|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g

export function parseInline(text: string): MdInline[] {
  const out: MdInline[] = []
  const pushText = (v: string) => {
    if (!v) return
    // Line breaks inside a paragraph are kept.
    v.split('\n').forEach((part, i) => {
      if (i > 0) out.push({ t: 'br' })
      if (part) {
        const last = out.at(-1)
        if (last?.t === 'text') last.v += part
        else out.push({ t: 'text', v: part })
      }
    })
  }
  let at = 0
  for (const m of text.matchAll(INLINE)) {
    pushText(text.slice(at, m.index))
    at = m.index + m[0].length
    if (m[1] !== undefined) out.push({ t: 'code', v: m[1] })
    else if (m[2] !== undefined) {
      const href = safeHref(m[3])
      if (href) out.push({ t: 'link', href, c: parseInline(m[2]) })
      else pushText(m[0]) // a link we will not follow stays as the text it was
    } else if (m[4] !== undefined || m[5] !== undefined) out.push({ t: 'strong', c: parseInline(m[4] ?? m[5]) })
    else if (m[6] !== undefined || m[7] !== undefined) out.push({ t: 'em', c: parseInline(m[6] ?? m[7]) })
    else if (m[8] !== undefined) out.push({ t: 'link', href: m[8], c: [{ t: 'text', v: m[8] }] })
  }
  pushText(text.slice(at))
  return out
}

const BULLET = /^\s{0,3}[-*+]\s+(.*)$/
const NUMBER = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/
const FENCE = /^\s{0,3}(```|~~~)/
const QUOTE = /^\s{0,3}>\s?(.*)$/

export function parseMarkdown(src: string): MdBlock[] {
  const lines = src.replace(/\r\n?/g, '\n').split('\n')
  const blocks: MdBlock[] = []
  let i = 0
  while (i < lines.length) {
    const line = lines[i]
    if (!line.trim()) {
      i++
      continue
    }
    const fence = FENCE.exec(line)
    if (fence) {
      const body: string[] = []
      i++
      while (i < lines.length && !lines[i].trimStart().startsWith(fence[1])) body.push(lines[i++])
      i++ // the closing fence (or the end)
      blocks.push({ t: 'pre', v: body.join('\n') })
      continue
    }
    const h = HEADING.exec(line)
    if (h) {
      blocks.push({ t: 'h', level: Math.min(3, h[1].length) as 1 | 2 | 3, c: parseInline(h[2]) })
      i++
      continue
    }
    if (QUOTE.test(line)) {
      const body: string[] = []
      while (i < lines.length && QUOTE.test(lines[i])) body.push(QUOTE.exec(lines[i++])![1])
      blocks.push({ t: 'quote', c: parseMarkdown(body.join('\n')) })
      continue
    }
    const listOf = (re: RegExp, text: (m: RegExpExecArray) => string) => {
      const items: string[] = []
      while (i < lines.length) {
        const m = re.exec(lines[i])
        if (m) items.push(text(m))
        else if (lines[i].trim() && /^\s{2,}/.test(lines[i]) && items.length) items[items.length - 1] += `\n${lines[i].trim()}`
        else break
        i++
      }
      return items.map(parseInline)
    }
    if (BULLET.test(line)) {
      blocks.push({ t: 'ul', items: listOf(BULLET, (m) => m[1]) })
      continue
    }
    const n = NUMBER.exec(line)
    if (n) {
      blocks.push({ t: 'ol', start: Number(n[1]), items: listOf(NUMBER, (m) => m[2]) })
      continue
    }
    const para: string[] = []
    while (i < lines.length && lines[i].trim() && !FENCE.test(lines[i]) && !HEADING.test(lines[i]) && !QUOTE.test(lines[i])) {
      if (para.length && (BULLET.test(lines[i]) || NUMBER.test(lines[i]))) break
      para.push(lines[i++].trim())
    }
    blocks.push({ t: 'p', c: parseInline(para.join('\n')) })
  }
  return blocks
}
