import { useState } from 'react'
import { incidentReview, type ActionItem, type IncidentReview } from '../../../../shared/incidents'
import { fmtSpan } from '../../components/format'
import { Time } from '../../components/Time'
import { useApp } from '../../stores/app'
import { fieldOf, useIncidents } from '../../stores/incidents'

const reviewInput = incidentReview.omit({ editedBy: true, editedAt: true })

interface Draft {
  summary: string
  durationMs: number | null
  services: string
  usersAffected: string
  impact: string
  rootCause: string
  wentWell: string
  wentBadly: string
  items: { text: string; owner: string; due: string; done: boolean }[]
}

const draftOf = (r: IncidentReview): Draft => ({
  summary: r.summary,
  durationMs: r.impact.durationMs,
  services: r.impact.services.join(', '),
  usersAffected: r.impact.usersAffected == null ? '' : String(r.impact.usersAffected),
  impact: r.impact.text,
  rootCause: r.rootCause,
  wentWell: r.wentWell,
  wentBadly: r.wentBadly,
  items: r.actionItems.map((a) => ({ text: a.text, owner: a.owner ?? '', due: a.due ?? '', done: a.done })),
})

const inputOf = (d: Draft) => ({
  summary: d.summary,
  impact: {
    durationMs: d.durationMs,
    services: d.services
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    usersAffected: d.usersAffected.trim() === '' ? null : Number(d.usersAffected),
    text: d.impact,
  },
  rootCause: d.rootCause,
  wentWell: d.wentWell,
  wentBadly: d.wentBadly,
  actionItems: d.items.map((a): ActionItem => ({ text: a.text.trim(), owner: a.owner.trim() || null, due: a.due || null, done: a.done })),
})

/**
 * The post-incident review, after resolving: the draft pre-filled from the timeline, edited here, saved with
 * incidents.saveReview. What is wrong is said at its field (checked here with the shared schema, and again by core).
 */
export function Review({ id, review }: { id: string; review: IncidentReview }) {
  const api = useApp((s) => s.api)
  const refresh = useIncidents((s) => s.refresh)
  const [d, setD] = useState<Draft>(() => draftOf(review))
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [saved, setSaved] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const set = (k: keyof Draft) => (e: { target: { value: string } }) => {
    setD({ ...d, [k]: e.target.value })
    setSaved(null)
  }
  const setItem = (i: number, patch: Partial<Draft['items'][number]>) => {
    setD({ ...d, items: d.items.map((a, j) => (j === i ? { ...a, ...patch } : a)) })
    setSaved(null)
  }
  const save = async () => {
    const input = inputOf(d)
    const checked = reviewInput.safeParse(input)
    const found: Record<string, string> = {}
    if (d.usersAffected.trim() && !(Number.isInteger(Number(d.usersAffected)) && Number(d.usersAffected) >= 0))
      found['impact.usersAffected'] = 'A count of users: a whole number, or empty when unknown.'
    d.items.forEach((a, i) => {
      if (!a.text.trim()) found[`actionItems.${i}.text`] = 'Say what is to be done (or remove the row).'
    })
    if (!checked.success) for (const issue of checked.error.issues) found[issue.path.join('.')] ??= issue.message
    setErrors(found)
    if (Object.keys(found).length || !api) return
    setBusy(true)
    try {
      const r = await api.call('incidents.saveReview', { id, review: input })
      setSaved(`Saved by ${r.editedBy ?? 'you'}.`)
      await refresh()
    } catch (e) {
      const message = (e as Error).message
      setErrors({ [fieldOf(message).replace(/^review\./, '')]: message })
    } finally {
      setBusy(false)
    }
  }
  const err = (field: string) =>
    errors[field] ? (
      <span className="field-error danger-text" role="alert" data-testid={`review-error-${field}`}>
        {errors[field]}
      </span>
    ) : null
  const known = new Set(['summary', 'impact.text', 'impact.services', 'impact.usersAffected', 'rootCause', 'wentWell', 'wentBadly'])
  const other = Object.entries(errors).filter(([k]) => !known.has(k) && !/^actionItems\.\d+\./.test(k))
  const area = (k: keyof Draft, label: string, field: string, rows = 3) => (
    <label className="field">
      <span>{label}</span>
      <textarea value={d[k] as string} onChange={set(k)} rows={rows} data-testid={`review-${field}`} />
      {err(field)}
    </label>
  )
  return (
    <section className="card review" data-testid="review">
      <h3>Post-incident review</h3>
      <p className="muted" data-testid="review-state">
        {review.editedAt ? (
          <>
            Edited by {review.editedBy} <Time at={review.editedAt} />.
          </>
        ) : (
          'A draft, pre-filled from the timeline: edit it and save it.'
        )}
      </p>
      {area('summary', 'Summary', 'summary', 4)}
      <fieldset className="impact">
        <legend>Impact</legend>
        <div className="field-row toolbar">
          <div className="field">
            <span>Duration</span>
            <b data-testid="review-duration">{fmtSpan(d.durationMs)}</b>
          </div>
          <label className="field grow">
            <span>Services (comma-separated)</span>
            <input value={d.services} onChange={set('services')} data-testid="review-services" />
            {err('impact.services')}
          </label>
          <label className="field">
            <span>Users affected</span>
            <input
              value={d.usersAffected}
              onChange={set('usersAffected')}
              inputMode="numeric"
              placeholder="unknown"
              data-testid="review-users"
            />
            {err('impact.usersAffected')}
          </label>
        </div>
        {area('impact', 'What users saw', 'impact.text')}
      </fieldset>
      {area('rootCause', 'Root cause', 'rootCause')}
      <div className="two-col">
        {area('wentWell', 'What went well', 'wentWell')}
        {area('wentBadly', 'What went badly', 'wentBadly')}
      </div>
      <h4>Action items</h4>
      <div className="action-items" data-testid="action-items" role="list">
        {d.items.length > 0 && (
          <div className="ai-row ai-head" aria-hidden>
            <span>Done</span>
            <span>What</span>
            <span>Owner</span>
            <span>Due</span>
            <span />
          </div>
        )}
        {d.items.map((a, i) => (
          <div key={i} className="ai-row" role="listitem" data-testid="action-item">
            <input
              type="checkbox"
              checked={a.done}
              onChange={(e) => setItem(i, { done: e.target.checked })}
              aria-label={`Action ${i + 1} done`}
            />
            <span className="ai-text">
              <input
                value={a.text}
                onChange={(e) => setItem(i, { text: e.target.value })}
                placeholder="What is to be done"
                aria-label={`Action ${i + 1}`}
                data-testid="action-text"
              />
              {err(`actionItems.${i}.text`)}
            </span>
            <span className="ai-owner">
              <input
                value={a.owner}
                onChange={(e) => setItem(i, { owner: e.target.value })}
                placeholder="owner"
                aria-label={`Action ${i + 1} owner`}
                data-testid="action-owner"
              />
              {err(`actionItems.${i}.owner`)}
            </span>
            <span className="ai-due">
              <input
                type="date"
                value={a.due}
                onChange={(e) => setItem(i, { due: e.target.value })}
                aria-label={`Action ${i + 1} due`}
                data-testid="action-due"
              />
              {err(`actionItems.${i}.due`)}
            </span>
            <button
              className="link"
              onClick={() => setD({ ...d, items: d.items.filter((_, j) => j !== i) })}
              aria-label={`Remove action ${i + 1}`}
            >
              Remove
            </button>
          </div>
        ))}
        {!d.items.length && <p className="muted">No action items yet.</p>}
      </div>
      <div className="actions">
        <button onClick={() => setD({ ...d, items: [...d.items, { text: '', owner: '', due: '', done: false }] })} data-testid="action-add">
          Add an action item
        </button>
        <button className="primary" onClick={() => void save()} disabled={busy} data-testid="review-save">
          {busy ? 'Saving…' : 'Save the review'}
        </button>
        {saved && (
          <span className="ok" role="status" data-testid="review-saved">
            {saved}
          </span>
        )}
        {other.map(([k, m]) => (
          <span key={k} className="danger-text" role="alert">
            {m}
          </span>
        ))}
      </div>
    </section>
  )
}
