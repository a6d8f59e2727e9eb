import { useEffect, useState } from 'react'
import { incidentStatus, type IncidentStatus, type IncidentView } from '../../../../shared/incidents'
import { fmtSpan } from '../../components/format'
import { Time } from '../../components/Time'
import { useApp } from '../../stores/app'
import { useIncidents } from '../../stores/incidents'
import { IncidentCharts } from './Charts'
import { ExportButtons } from './Export'
import { SeverityPill, statusLabel, useNow } from './Incidents'
import { Review } from './Review'
import { Timeline } from './Timeline'

const STATUSES = incidentStatus.options

/** investigating → identified → monitoring → resolved: each step says when and by whom; a change asks for an optional note. */
function Stepper({ incident }: { incident: IncidentView }) {
  const api = useApp((s) => s.api)
  const refresh = useIncidents((s) => s.refresh)
  const [to, setTo] = useState<IncidentStatus | null>(null)
  const [note, setNote] = useState('')
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState<string | null>(null)
  const at = STATUSES.indexOf(incident.status)
  // The latest change into each status: when and who.
  const last = new Map<IncidentStatus, { at: number; by: string }>()
  for (const c of incident.statusChanges) last.set(c.to, { at: c.at, by: c.by })
  if (!last.has('investigating')) last.set('investigating', { at: incident.openedAt, by: incident.openedBy })
  const change = async () => {
    if (!api || !to) return
    setBusy(true)
    setProblem(null)
    try {
      await api.call('incidents.setStatus', { id: incident.id, status: to, ...(note.trim() ? { note: note.trim() } : {}) })
      setTo(null)
      setNote('')
      await refresh()
    } catch (e) {
      setProblem((e as Error).message)
    } finally {
      setBusy(false)
    }
  }
  return (
    <div className="stepper-wrap">
      <ol className="stepper" data-testid="status-stepper" aria-label="Status">
        {STATUSES.map((s, i) => {
          const done = i < at
          const current = i === at
          const when = i <= at ? last.get(s) : undefined
          return (
            <li
              key={s}
              className={current ? 'current' : done ? 'done' : ''}
              data-testid={`step-${s}`}
              data-state={current ? 'current' : done ? 'done' : 'todo'}
            >
              <button
                className="step"
                onClick={() => {
                  setTo(s)
                  setProblem(null)
                }}
                disabled={current}
                aria-current={current ? 'step' : undefined}
                title={current ? `Now ${statusLabel[s].toLowerCase()}` : `Move to ${statusLabel[s].toLowerCase()}`}
              >
                <span className="step-name">{statusLabel[s]}</span>
                {when ? (
                  <span className="step-when">
                    <Time at={when.at} /> · {when.by}
                  </span>
                ) : (
                  <span className="step-when">{current ? '' : 'not yet'}</span>
                )}
              </button>
            </li>
          )
        })}
      </ol>
      {to && (
        <form
          className="card status-change"
          data-testid="status-change"
          onSubmit={(e) => {
            e.preventDefault()
            void change()
          }}
        >
          <label className="field">
            <span>
              Move to <b>{statusLabel[to].toLowerCase()}</b>
              {to === 'resolved' ? ' (the review opens after)' : incident.status === 'resolved' ? ' (reopens the incident)' : ''}. A note
              for the timeline (optional, Markdown):
            </span>
            <textarea
              autoFocus
              value={note}
              onChange={(e) => setNote(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
                  e.preventDefault()
                  void change()
                }
                if (e.key === 'Escape') setTo(null)
              }}
              rows={2}
              data-testid="status-note"
            />
          </label>
          <div className="actions">
            <button type="submit" className="primary" disabled={busy} data-testid="status-confirm">
              {busy ? 'Changing…' : `Move to ${statusLabel[to].toLowerCase()}`}
            </button>
            <button type="button" onClick={() => setTo(null)}>
              Cancel
            </button>
            {problem && (
              <span className="danger-text" role="alert">
                {problem}
              </span>
            )}
          </div>
        </form>
      )}
    </div>
  )
}

/** The commander: shown, and changed in place; a refusal (not in ADMIN_EMAILS) is said at the field. */
function Commander({ incident }: { incident: IncidentView }) {
  const api = useApp((s) => s.api)
  const refresh = useIncidents((s) => s.refresh)
  const [editing, setEditing] = useState(false)
  const [value, setValue] = useState('')
  const [problem, setProblem] = useState<string | null>(null)
  const save = async () => {
    if (!api) return
    if (!value.trim()) return setProblem("Give the commander's e-mail (an administrator).")
    setProblem(null)
    try {
      await api.call('incidents.setCommander', { id: incident.id, commander: value.trim() })
      setEditing(false)
      await refresh()
    } catch (e) {
      setProblem((e as Error).message)
    }
  }
  if (!editing)
    return (
      <span className="commander" data-testid="commander">
        Commander: <b data-testid="commander-name">{incident.commander ?? 'nobody yet'}</b>{' '}
        <button
          className="link"
          onClick={() => {
            setValue(incident.commander ?? '')
            setProblem(null)
            setEditing(true)
          }}
          data-testid="commander-change"
        >
          change
        </button>
      </span>
    )
  return (
    <form
      className="commander-form"
      onSubmit={(e) => {
        e.preventDefault()
        void save()
      }}
    >
      <label className="field">
        <span>Commander (an administrator's e-mail)</span>
        <span className="inline">
          <input
            autoFocus
            value={value}
            onChange={(e) => setValue(e.target.value)}
            onKeyDown={(e) => e.key === 'Escape' && setEditing(false)}
            maxLength={200}
            data-testid="commander-input"
          />
          <button type="submit" className="primary" data-testid="commander-save">
            Save
          </button>
          <button type="button" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </span>
        {problem && (
          <span className="field-error danger-text" role="alert" data-testid="commander-error">
            {problem}
          </span>
        )}
      </label>
    </form>
  )
}

export function IncidentPage({ id }: { id: string }) {
  const { report, refresh, open, problem, seen } = useIncidents()
  const now = useNow(1000)
  useEffect(() => {
    void refresh()
    // New entries (alerts, health, errors) join the timeline without an incidents event: read it again while open.
    const t = setInterval(() => void refresh(), 10_000)
    return () => clearInterval(t)
  }, [id, refresh])
  const inc = report?.incident ?? null
  return (
    <div className="incident" data-testid="incident">
      <div className="toolbar">
        <a
          href="#/incidents"
          onClick={(e) => {
            e.preventDefault()
            open(null)
          }}
          data-testid="back-to-incidents"
        >
          ← All incidents
        </a>
      </div>
      {problem && (
        <p className="danger-text" role="alert" data-testid="incident-problem">
          {problem}
        </p>
      )}
      {!report || !inc ? (
        !problem && <p className="muted">Loading the incident…</p>
      ) : (
        <>
          <header className="card incident-head" data-testid="incident-head">
            <h2 className="incident-title" data-testid="incident-title">
              <SeverityPill severity={inc.severity} /> {inc.title}
            </h2>
            <p className="muted">
              {inc.origin === 'alert' ? `Opened by the alert ${inc.alertRule}` : `Declared by ${inc.openedBy}`} <Time at={inc.openedAt} /> ·{' '}
              {inc.resolvedAt ? (
                <>
                  resolved <Time at={inc.resolvedAt} />, lasted <b>{fmtSpan(inc.resolvedAt - inc.openedAt)}</b>
                </>
              ) : (
                <>
                  running for <b data-testid="incident-running">{fmtSpan(now - inc.openedAt)}</b>
                </>
              )}
              {inc.alerts.length > 0 && ` · alerts: ${inc.alerts.map((a) => a.rule).join(', ')}`}
            </p>
            <Stepper incident={inc} />
            <Commander incident={inc} />
          </header>
          <IncidentCharts series={report.series} incident={inc} window={report.window} />
          <Timeline entries={report.timeline} id={inc.id} seen={seen} />
          {inc.status === 'resolved' && report.review && <Review key={inc.id} id={inc.id} review={report.review} />}
          <section className="card" data-testid="incident-export">
            <h3>Export the report</h3>
            <p className="muted">
              Title page, timeline, charts{inc.status === 'resolved' ? ' and the review' : ''}; secrets stay scrubbed in every format.
            </p>
            <ExportButtons target={{ id: inc.id }} />
          </section>
        </>
      )}
    </div>
  )
}
