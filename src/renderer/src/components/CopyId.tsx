import { useState } from 'react'

/** Put text on the clipboard: the Clipboard API where the page may use it, else a selected text area. */
async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text)
    return
  } catch {
    // Not allowed here (no focus, or an older shell): the old way still works.
  }
  const t = document.createElement('textarea')
  t.value = text
  t.setAttribute('readonly', '')
  t.style.position = 'fixed'
  t.style.opacity = '0'
  document.body.appendChild(t)
  t.select()
  document.execCommand('copy')
  t.remove()
}

/**
 * An id the operator may need elsewhere (the CLI's `restore --undo <id>`, `backups verify <set>`, a
 * job in the log): shown in full, selectable, with a button that copies it and says so.
 */
export function CopyId({ id, what, testId }: { id: string; what: string; testId?: string }) {
  const [copied, setCopied] = useState(false)
  return (
    <span className="copy-id" data-testid={testId}>
      <code className="id">{id}</code>
      <button
        type="button"
        className="copy"
        aria-label={`Copy the ${what} ${id}`}
        title={`Copy the ${what}`}
        onClick={(e) => {
          e.stopPropagation()
          void copyText(id).then(() => {
            setCopied(true)
            setTimeout(() => setCopied(false), 1500)
          })
        }}
      >
        {copied ? 'copied' : 'copy'}
      </button>
    </span>
  )
}
