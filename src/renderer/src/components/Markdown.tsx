import { Fragment, useMemo, type ReactNode } from 'react'
import { parseMarkdown, type MdBlock, type MdInline } from '../../../shared/markdown'

/**
 * An operator's note as safe Markdown: drawn from the tree `parseMarkdown` reads, every text a React text node
 * (so HTML in a note is shown, never run) and links only to http(s)/mailto, opened outside the console.
 */
function inline(xs: MdInline[]): ReactNode[] {
  return xs.map((x, i) =>
    x.t === 'text' ? (
      <Fragment key={i}>{x.v}</Fragment>
    ) : x.t === 'code' ? (
      <code key={i}>{x.v}</code>
    ) : x.t === 'strong' ? (
      <strong key={i}>{inline(x.c)}</strong>
    ) : x.t === 'em' ? (
      <em key={i}>{inline(x.c)}</em>
    ) : x.t === 'br' ? (
      <br key={i} />
    ) : (
      <a key={i} href={x.href} target="_blank" rel="noreferrer noopener">
        {inline(x.c)}
      </a>
    ),
  )
}

function block(b: MdBlock, i: number): ReactNode {
  switch (b.t) {
    case 'p':
      return <p key={i}>{inline(b.c)}</p>
    case 'h':
      return b.level === 1 ? <h4 key={i}>{inline(b.c)}</h4> : <h5 key={i}>{inline(b.c)}</h5>
    case 'ul':
      return (
        <ul key={i}>
          {b.items.map((it, j) => (
            <li key={j}>{inline(it)}</li>
          ))}
        </ul>
      )
    case 'ol':
      return (
        <ol key={i} start={b.start}>
          {b.items.map((it, j) => (
            <li key={j}>{inline(it)}</li>
          ))}
        </ol>
      )
    case 'pre':
      return <pre key={i}>{b.v}</pre>
    case 'quote':
      return <blockquote key={i}>{b.c.map(block)}</blockquote>
  }
}

export function Markdown({ text, testId }: { text: string; testId?: string }) {
  const blocks = useMemo(() => parseMarkdown(text), [text])
  return (
    <div className="md" data-testid={testId}>
      {blocks.map(block)}
    </div>
  )
}
