import { useEffect, useRef, useState } from 'react'
import type { IncidentSeverity } from '../../../shared/incidents'
import { useIncidents } from '../stores/incidents'

export interface DeclareFrom {
  kind: 'alert' | 'error_group' | 'health'
  id: string
}

/**
 * "Declare an incident": a button, and a dialog asking for the title, severity and commander (you, unless
 * named) — from the Incidents page, the Overview, an alert, an error group or a health tile, each passing what
 * it was declared from so the timeline links back. Once declared, the incident opens.
 */
export function DeclareIncident({
  from,
  title: initialTitle = '',
  severity: initialSeverity = 'critical',
  label = 'Declare an incident',
  primary,
  testId = 'declare',
}: {
  from?: DeclareFrom
  title?: string
  severity?: IncidentSeverity
  label?: string
  primary?: boolean
  testId?: string
}) {
  const ref = useRef<HTMLDialogElement>(null)
  const [open, setOpen] = useState(false)
  const [title, setTitle] = useState(initialTitle)
  const [severity, setSeverity] = useState<IncidentSeverity>(initialSeverity)
  const [commander, setCommander] = useState('')
  const [note, setNote] = useState('')
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState<{ field: string; message: string } | null>(null)
  const declare = useIncidents((s) => s.declare)
  useEffect(() => {
    const d = ref.current
    if (!d) return
    if (open && !d.open) d.showModal()
    if (!open && d.open) d.close()
  }, [open])
  const start = () => {
    setTitle(initialTitle)
    setSeverity(initialSeverity)
    setCommander('')
    setNote('')
    setProblem(null)
    setOpen(true)
  }
  const submit = async () => {
    if (!title.trim())
      return setProblem({ field: 'title', message: 'Give the incident a title: what is broken, as you would say it on the phone.' })
    setBusy(true)
    setProblem(null)
    const r = await declare({
      title: title.trim(),
      severity,
      ...(commander.trim() ? { commander: commander.trim() } : {}),
      ...(from ? { from } : {}),
      ...(note.trim() ? { note: note.trim() } : {}),
    })
    setBusy(false)
    if (r) setProblem(r)
    else setOpen(false)
  }
  const err = (field: string) =>
    problem && (problem.field === field || (field === 'form' && !['title', 'commander'].includes(problem.field))) ? (
      <span className="field-error danger-text" role="alert" data-testid={`declare-error-${field}`}>
        {problem.message}
      </span>
    ) : null
  return (
    <>
      <button className={primary ? 'primary' : undefined} onClick={start} data-testid={testId}>
        {label}
      </button>
      <dialog ref={ref} className="modal" onClose={() => setOpen(false)} data-testid="declare-dialog" aria-labelledby="declare-heading">
        {open && (
          <form
            method="dialog"
            onSubmit={(e) => {
              e.preventDefault()
              void submit()
            }}
          >
            <h3 id="declare-heading">Declare an incident</h3>
            {from && (
              <p className="muted" data-testid="declare-from">
                From {from.kind === 'error_group' ? 'the error group' : from.kind === 'alert' ? 'the alert' : 'the service'} {from.id}: its
                timeline will link back to it.
              </p>
            )}
            <label className="field">
              <span>Title</span>
              <input
                autoFocus
                value={title}
                maxLength={200}
                onChange={(e) => setTitle(e.target.value)}
                placeholder="What is broken, as you would say it on the phone"
                data-testid="declare-title"
              />
              {err('title')}
            </label>
            <div className="field-row declare-row">
              <label className="field">
                <span>Severity</span>
                <select value={severity} onChange={(e) => setSeverity(e.target.value as IncidentSeverity)} data-testid="declare-severity">
                  <option value="critical">critical</option>
                  <option value="warning">warning</option>
                  <option value="info">info</option>
                </select>
              </label>
              <label className="field grow">
                <span>Commander</span>
                <input
                  value={commander}
                  onChange={(e) => setCommander(e.target.value)}
                  placeholder="you (leave empty)"
                  maxLength={200}
                  data-testid="declare-commander"
                />
              </label>
              {err('commander')}
            </div>
            <label className="field">
              <span>First note (optional, Markdown)</span>
              <textarea value={note} onChange={(e) => setNote(e.target.value)} rows={3} data-testid="declare-note" />
            </label>
            {err('form')}
            <div className="actions">
              <button type="submit" className="primary" disabled={busy} data-testid="declare-submit">
                {busy ? 'Declaring…' : 'Declare'}
              </button>
              <button type="button" onClick={() => setOpen(false)}>
                Cancel
              </button>
            </div>
          </form>
        )}
      </dialog>
    </>
  )
}
