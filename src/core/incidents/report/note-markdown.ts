/**
 * Operators' notes are Markdown. The reports render a safe subset of it — paragraphs, emphasis
 * (*em*, _em_, **strong**), `code` and fenced code blocks, bulleted and numbered lists, and links shown as
 * their text followed by the URL (never a live link) — and treat everything else as plain text: headings,
 * raw HTML, images, tables come out as the characters that were typed, escaped for the target format.
 *
 * A note is parsed once into blocks of inline pieces; html.ts and markdown.ts each write them out with
 * their own escaping, so a note cannot break the structure of either document.
 */

export type Inline =
  | { t: 'text'; s: string }
  | { t: 'code'; s: string }
  | { t: 'em'; c: Inline[] }
  | { t: 'strong'; c: Inline[] }
  | { t: 'link'; text: string; url: string }

export type Block = { t: 'p'; c: Inline[] } | { t: 'code'; s: string } | { t: 'list'; ordered: boolean; items: Inline[][] }

const LIST_ITEM = /^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/
const FENCE = /^\s{0,3}(```+|~~~+)/

export function parseNote(src: string): Block[] {
  const lines = src.replace(/\r\n?/g, '\n').split('\n')
  const blocks: Block[] = []
  let para: string[] = []
  let list: { ordered: boolean; items: string[] } | null = null
  const flushPara = () => {
    if (para.length) blocks.push({ t: 'p', c: parseInline(para.join(' ')) })
    para = []
  }
  const flushList = () => {
    if (list) blocks.push({ t: 'list', ordered: list.ordered, items: list.items.map(parseInline) })
    list = null
  }
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const fence = FENCE.exec(line)
    if (fence) {
      flushPara()
      flushList()
      const close = fence[1]
      const body: string[] = []
      i++
      while (i < lines.length && !lines[i].trimStart().startsWith(close)) body.push(lines[i++])
      blocks.push({ t: 'code', s: body.join('\n') })
      continue
    }
    if (!line.trim()) {
      flushPara()
      flushList()
      continue
    }
    const item = LIST_ITEM.exec(line)
    if (item) {
      flushPara()
      const ordered = /\d/.test(item[1])
      if (list && list.ordered !== ordered) flushList()
      list ??= { ordered, items: [] }
      list.items.push(item[2])
      continue
    }
    if (list && /^\s+\S/.test(line)) {
      // A continuation line of the last item.
      list.items[list.items.length - 1] += ` ${line.trim()}`
      continue
    }
    flushList()
    para.push(line.trim())
  }
  flushPara()
  flushList()
  return blocks
}

const LINK = /\[([^\]\n]{1,500})\]\(\s*([^()\s]{1,2000})\s*\)/
export function parseInline(s: string): Inline[] {
  const out: Inline[] = []
  // Code spans first: nothing inside them is Markdown.
  const parts = s.split(/(`+[^`]*?`+)/)
  for (const part of parts) {
    const code = /^(`+)([^`]*?)\1$/.exec(part)
    if (code && part.length > 1) out.push({ t: 'code', s: code[2].trim() })
    else if (part) out.push(...parseEmphasis(part))
  }
  return out
}

function parseEmphasis(s: string): Inline[] {
  const out: Inline[] = []
  let rest = s
  const push = (txt: string) => {
    if (!txt) return
    const last = out[out.length - 1]
    if (last?.t === 'text') last.s += txt
    else out.push({ t: 'text', s: txt })
  }
  while (rest) {
    const link = LINK.exec(rest)
    const strong = /(\*\*|__)(?=\S)([\s\S]+?)(?<=\S)\1/.exec(rest)
    const em = /(?<![\w*])([*_])(?=\S)([^*_]+?)(?<=\S)\1(?![\w*])/.exec(rest)
    const found = [link, strong, em].filter((m): m is RegExpExecArray => m !== null).sort((a, b) => a.index - b.index)[0]
    if (!found) {
      push(rest)
      break
    }
    push(rest.slice(0, found.index))
    if (found === link) out.push({ t: 'link', text: found[1], url: found[2] })
    else if (found === strong) out.push({ t: 'strong', c: parseEmphasis(found[2]) })
    else out.push({ t: 'em', c: parseEmphasis(found[2]) })
    rest = rest.slice(found.index + found[0].length)
  }
  return out
}

/** The plain text of inline pieces (for one-line summaries). */
export function inlineText(c: Inline[]): string {
  return c.map((x) => (x.t === 'text' || x.t === 'code' ? x.s : x.t === 'link' ? `${x.text} (${x.url})` : inlineText(x.c))).join('')
}
