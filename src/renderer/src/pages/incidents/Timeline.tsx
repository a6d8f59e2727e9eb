import { useState, type KeyboardEvent } from 'react'
import type { SourceRef, TimelineEntry, TimelineEntryType } from '../../../../shared/incidents'
import { Markdown } from '../../components/Markdown'
import { Time } from '../../components/Time'
import { useApp } from '../../stores/app'
import { useBackups } from '../../stores/backups'
import { useErrors } from '../../stores/errors'
import { useIncidents } from '../../stores/incidents'

/** The filter's groups: what an operator asks for ("only the notes", "hide the audit"). */
const GROUPS: { key: string; label: string; types: TimelineEntryType[] }[] = [
  { key: 'incident', label: 'Incident', types: ['incident.opened', 'incident.status', 'incident.commander'] },
  { key: 'note', label: 'Notes', types: ['incident.note'] },
  { key: 'alert', label: 'Alerts', types: ['alert.transition'] },
  { key: 'health', label: 'Health', types: ['health.change'] },
  { key: 'error', label: 'Errors', types: ['error.new_group', 'error.regressed', 'error.spike'] },
  { key: 'backup', label: 'Backups', types: ['backup'] },
  { key: 'restore', label: 'Restores', types: ['restore'] },
  { key: 'audit', label: 'Settings and audit', types: ['settings.change', 'audit'] },
]
const groupOf = (t: TimelineEntryType) => GROUPS.find((g) => g.types.includes(t))?.key ?? 'audit'

/** The short word in an entry's marker. */
const MARK: Record<TimelineEntryType, string> = {
  'incident.opened': 'opened',
  'incident.status': 'status',
  'incident.commander': 'commander',
  'incident.note': 'note',
  'alert.transition': 'alert',
  'health.change': 'health',
  'error.new_group': 'new error',
  'error.regressed': 'regressed',
  'error.spike': 'error spike',
  backup: 'backup',
  restore: 'restore',
  'settings.change': 'setting',
  audit: 'audit',
}

/** Where an entry's source is in the console, and the words of its link. */
function sourceLink(s: SourceRef | null): { label: string; go: () => void } | null {
  if (!s) return null
  const app = useApp.getState()
  switch (s.kind) {
    case 'alert':
    case 'alert_rule':
      return { label: 'Open in Alerts', go: () => app.go('alerts') }
    case 'error_group':
      return {
        label: 'Open the error group',
        go: () => {
          void useErrors.getState().open(s.id)
          app.go('errors')
        },
      }
    case 'backup_set':
      return {
        label: 'Open the backup set',
        go: () => {
          void useBackups.getState().open(s.id)
          app.go('backups')
        },
      }
    case 'restore':
      return {
        label: 'Open the restore history',
        go: () => {
          app.go('restore')
          // The history is below the wizard: bring it into view once drawn.
          requestAnimationFrame(() => document.querySelector('[data-testid="restore-history"]')?.scrollIntoView())
        },
      }
    case 'health':
      return {
        label: 'Open in Health',
        go: () => {
          void app.select(s.id as never)
          app.go('health')
        },
      }
    case 'setting':
      return { label: 'Open Settings', go: () => app.go('settings') }
    default:
      return null
  }
}

function Entry({ e, fresh }: { e: TimelineEntry; fresh: boolean }) {
  const link = sourceLink(e.source)
  return (
    <li
      className={`tl-entry tl-${e.level}${fresh ? ' tl-fresh' : ''}`}
      data-testid="timeline-entry"
      data-type={e.type}
      data-level={e.level}
    >
      <span className="tl-dot" aria-hidden />
      <div className="tl-head">
        <span className="tl-time">
          <Time at={e.at} seconds />
        </span>
        <span className={`tl-mark tl-mark-${e.level}`}>{MARK[e.type] ?? e.type}</span>
        {/* A note's text is its body, drawn as Markdown below (its title only repeats the first line, unformatted). */}
        {e.type !== 'incident.note' && <span className="tl-title">{e.title}</span>}
        {e.actor && <span className="muted tl-actor">by {e.actor}</span>}
        {link && (
          <a
            className="tl-link"
            href="#"
            onClick={(ev) => {
              ev.preventDefault()
              link.go()
            }}
            data-testid="timeline-link"
            data-kind={e.source?.kind}
          >
            {link.label} →
          </a>
        )}
      </div>
      {e.detail &&
        (e.type === 'incident.note' ? <Markdown text={e.detail} testId="note-body" /> : <div className="tl-detail">{e.detail}</div>)}
    </li>
  )
}

/** A note on the timeline: Markdown, added with the button or Ctrl+Enter. */
function NoteBox({ id }: { id: string }) {
  const api = useApp((s) => s.api)
  const refresh = useIncidents((s) => s.refresh)
  const [text, setText] = useState('')
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState<string | null>(null)
  const add = async () => {
    if (!api || !text.trim() || busy) return
    setBusy(true)
    setProblem(null)
    try {
      await api.call('incidents.note', { id, text })
      setText('')
      await refresh()
    } catch (e) {
      setProblem((e as Error).message)
    } finally {
      setBusy(false)
    }
  }
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault()
      void add()
    }
  }
  return (
    <div className="note-box">
      <label className="field">
        <span>Add a note (Markdown; Ctrl+Enter adds it)</span>
        <textarea
          value={text}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKey}
          rows={3}
          placeholder="What you saw, what you tried, who you called…"
          data-testid="note-text"
        />
      </label>
      <div className="actions">
        <button className="primary" onClick={() => void add()} disabled={busy || !text.trim()} data-testid="note-add">
          {busy ? 'Adding…' : 'Add note'}
        </button>
        {problem && (
          <span className="danger-text" role="alert">
            {problem}
          </span>
        )}
      </div>
    </div>
  )
}

export function Timeline({ entries, id, seen }: { entries: TimelineEntry[]; id: string | null; seen: Set<string> | null }) {
  const [hidden, setHidden] = useState<Set<string>>(new Set())
  const counts = new Map<string, number>()
  for (const e of entries) counts.set(groupOf(e.type), (counts.get(groupOf(e.type)) ?? 0) + 1)
  const shown = entries.filter((e) => !hidden.has(groupOf(e.type))).sort((a, b) => a.at - b.at)
  const toggle = (k: string) => {
    const next = new Set(hidden)
    if (next.has(k)) next.delete(k)
    else next.add(k)
    setHidden(next)
  }
  return (
    <section className="card timeline-card" data-testid="timeline">
      <h3>
        Timeline{' '}
        <span className="muted">({shown.length === entries.length ? entries.length : `${shown.length} of ${entries.length}`})</span>
      </h3>
      <div className="chips" role="group" aria-label="Show entries of type">
        {GROUPS.filter((g) => counts.get(g.key)).map((g) => (
          <button
            key={g.key}
            className={`chip${hidden.has(g.key) ? '' : ' on'}`}
            aria-pressed={!hidden.has(g.key)}
            onClick={() => toggle(g.key)}
            data-testid={`filter-${g.key}`}
          >
            {g.label} {counts.get(g.key)}
          </button>
        ))}
        {hidden.size > 0 && (
          <button className="link" onClick={() => setHidden(new Set())}>
            Show all
          </button>
        )}
      </div>
      {shown.length ? (
        <ol className="incident-timeline" data-testid="timeline-entries">
          {shown.map((e) => (
            <Entry key={e.id} e={e} fresh={!!seen && !seen.has(e.id)} />
          ))}
        </ol>
      ) : (
        <p className="muted">Nothing recorded in this window{hidden.size ? ' of the types shown' : ''}.</p>
      )}
      {id && <NoteBox id={id} />}
    </section>
  )
}
