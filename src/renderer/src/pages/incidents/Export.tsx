import { useEffect, useState } from 'react'
import { formatBytes } from '../../../../shared/format'
import type { ExportFormat } from '../../../../shared/incidents'
import { useApp } from '../../stores/app'
import type { ExportInput, Exported } from '../../stores/incidents'

/** The browser face: the file handed to the browser's downloads (a Blob behind a link with the file's name). */
function download(r: Exported): void {
  const bytes = r.encoding === 'base64' ? Uint8Array.from(atob(r.data), (c) => c.charCodeAt(0)) : r.data
  const url = URL.createObjectURL(new Blob([bytes], { type: r.mimeType }))
  const a = document.createElement('a')
  a.href = url
  a.download = r.fileName
  a.rel = 'noopener'
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 60_000)
}

const FORMATS: { key: string; label: string; format: ExportFormat; paper?: 'A4' | 'Letter' }[] = [
  { key: 'pdf-a4', label: 'PDF (A4)', format: 'pdf', paper: 'A4' },
  { key: 'pdf-letter', label: 'PDF (Letter)', format: 'pdf', paper: 'Letter' },
  { key: 'html', label: 'HTML', format: 'html' },
  { key: 'md', label: 'Markdown', format: 'md' },
  { key: 'json', label: 'JSON', format: 'json' },
]

/**
 * One report, four formats: the desktop app saves through the system's save dialog (app.saveFile), the browser
 * downloads. The PDF takes a few seconds to print: the button says so while it runs; a failure (no Chromium
 * found, nothing in the window) is said here, in full.
 */
export function ExportButtons({
  target,
  testId = 'export',
}: {
  target: { id: string } | { from: number; to: number } | null
  testId?: string
}) {
  const api = useApp((s) => s.api)
  const [busy, setBusy] = useState<{ key: string; since: number } | null>(null)
  const [now, setNow] = useState(Date.now())
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | null>(null)
  useEffect(() => {
    if (!busy) return
    const t = setInterval(() => setNow(Date.now()), 500)
    return () => clearInterval(t)
  }, [busy])
  const run = async (f: (typeof FORMATS)[number]) => {
    if (!api || !target) return
    setBusy({ key: f.key, since: Date.now() })
    setNow(Date.now())
    setOutcome(null)
    try {
      const input: ExportInput = { ...target, format: f.format, ...(f.paper ? { paper: f.paper } : {}) }
      const r = await api.call('incidents.export', input)
      if (window.ops) {
        const s = await api.call('app.saveFile', { fileName: r.fileName, encoding: r.encoding, data: r.data })
        setOutcome({ ok: s.saved, text: s.saved ? `Saved ${s.path} (${formatBytes(r.bytes)}).` : s.message })
      } else {
        download(r)
        setOutcome({ ok: true, text: `Downloaded ${r.fileName} (${formatBytes(r.bytes)}) to this browser's downloads folder.` })
      }
    } catch (e) {
      setOutcome({ ok: false, text: `The ${f.label} export failed: ${(e as Error).message}` })
    } finally {
      setBusy(null)
    }
  }
  const secs = busy ? Math.max(0, Math.round((now - busy.since) / 1000)) : 0
  return (
    <div className="export-buttons" data-testid={testId}>
      <div className="row-actions">
        {FORMATS.map((f) => (
          <button key={f.key} onClick={() => void run(f)} disabled={!!busy || !target} data-testid={`${testId}-${f.key}`}>
            {busy?.key === f.key ? (f.format === 'pdf' ? `Printing the PDF… ${secs} s` : `Exporting… ${secs} s`) : f.label}
          </button>
        ))}
      </div>
      {busy && (
        <p className="muted" role="status" data-testid={`${testId}-progress`}>
          {busy.key.startsWith('pdf')
            ? 'Chromium is printing the report (title page, timeline, charts); this takes a few seconds.'
            : 'Building the report…'}
        </p>
      )}
      {outcome && (
        <p className={outcome.ok ? 'ok' : 'danger-text'} role={outcome.ok ? 'status' : 'alert'} data-testid={`${testId}-outcome`}>
          {outcome.text}
        </p>
      )}
    </div>
  )
}

/** "datetime-local" values in the reader's zone, and back. */
const toLocalInput = (ms: number) => {
  const d = new Date(ms)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`
}

/** A report of a window of time when no incident was declared: everything the store holds between from and to. */
export function WindowExport() {
  const [from, setFrom] = useState(() => toLocalInput(Date.now() - 3_600_000))
  // The field holds minutes: "to" is the next minute, so what happened in this one is in the window too.
  const [to, setTo] = useState(() => toLocalInput(Date.now() + 60_000))
  const f = new Date(from).getTime()
  const t = new Date(to).getTime()
  const problem =
    !from || !to || Number.isNaN(f) || Number.isNaN(t)
      ? 'Give both times.'
      : f >= t
        ? '"From" must be before "to".'
        : t - f > 31 * 86_400_000
          ? 'Choose a window of at most 31 days.'
          : null
  return (
    <div className="card window-export" data-testid="window-export-form">
      <p className="muted">
        For an outage nobody declared: the timeline and charts of any window (alerts, health, errors, backups, restores, settings), as a
        report.
      </p>
      <div className="field-row toolbar">
        <label className="field">
          <span>From</span>
          <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} data-testid="window-from" />
        </label>
        <label className="field">
          <span>To</span>
          <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} data-testid="window-to" />
        </label>
        {problem && (
          <span className="field-error danger-text" role="alert">
            {problem}
          </span>
        )}
      </div>
      <ExportButtons target={problem ? null : { from: f, to: t }} testId="window-export" />
    </div>
  )
}
