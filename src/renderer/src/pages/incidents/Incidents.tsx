import { useEffect, useState } from 'react'
import type { IncidentView } from '../../../../shared/incidents'
import { DeclareIncident } from '../../components/Declare'
import { fmtSpan } from '../../components/format'
import { Time } from '../../components/Time'
import { useIncidents } from '../../stores/incidents'
import { WindowExport } from './Export'
import { IncidentPage } from './Incident'

/** Now, every `ms`: running durations tick. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms)
    return () => clearInterval(t)
  }, [ms])
  return now
}

export const statusLabel: Record<IncidentView['status'], string> = {
  investigating: 'Investigating',
  identified: 'Identified',
  monitoring: 'Monitoring',
  resolved: 'Resolved',
}

export function SeverityPill({ severity }: { severity: IncidentView['severity'] }) {
  return <span className={`pill small sev-${severity}`}>{severity}</span>
}

/** An incident's title, linking to its page (and, for an open one, the alert that opened it). */
function TitleCell({ incident: i, origin = false }: { incident: IncidentView; origin?: boolean }) {
  const open = useIncidents((s) => s.open)
  return (
    <td className="inc-title">
      <a
        href={`#/incidents/${encodeURIComponent(i.id)}`}
        onClick={(e) => {
          e.preventDefault()
          open(i.id)
        }}
      >
        {i.title}
      </a>
      {origin && i.origin === 'alert' && <div className="muted">opened by the alert {i.alertRule}</div>}
    </td>
  )
}

function OpenTable({ rows }: { rows: IncidentView[] }) {
  const now = useNow(1000)
  return (
    <table className="settings incidents" data-testid="incidents-open">
      <thead>
        <tr>
          <th>Severity</th>
          <th>Incident</th>
          <th>Status</th>
          <th>Commander</th>
          <th className="wide-only">Opened</th>
          <th className="num">Running for</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((i) => (
          <tr key={i.id} data-testid={`incident-${i.id}`}>
            <td>
              <SeverityPill severity={i.severity} />
            </td>
            <TitleCell incident={i} origin />
            <td>
              <span className={`pill small st-${i.status}`}>{statusLabel[i.status]}</span>
            </td>
            <td className="wrap-anywhere">{i.commander ?? '—'}</td>
            <td className="wide-only">
              <Time at={i.openedAt} />
            </td>
            <td className="num" data-testid="running-for">
              {fmtSpan(now - i.openedAt)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function ResolvedTable({ rows }: { rows: IncidentView[] }) {
  return (
    <table className="settings incidents" data-testid="incidents-resolved">
      <thead>
        <tr>
          <th>Severity</th>
          <th>Incident</th>
          <th>Commander</th>
          <th className="wide-only">Opened</th>
          <th>Resolved</th>
          <th className="num">Lasted</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((i) => (
          <tr key={i.id} data-testid={`incident-${i.id}`}>
            <td>
              <SeverityPill severity={i.severity} />
            </td>
            <TitleCell incident={i} />
            <td className="wrap-anywhere">{i.commander ?? '—'}</td>
            <td className="wide-only">
              <Time at={i.openedAt} />
            </td>
            <td>
              <Time at={i.resolvedAt} />
            </td>
            <td className="num">{fmtSpan(i.resolvedAt ? i.resolvedAt - i.openedAt : null)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

/** The Incidents page: the list (open first, then resolved), or one incident when the address names it. */
export function Incidents() {
  const { list, openId, load, follow, problem } = useIncidents()
  useEffect(() => {
    follow()
    void load()
    const t = setInterval(() => void load(), 15_000)
    return () => clearInterval(t)
  }, [load, follow])
  if (openId) return <IncidentPage id={openId} />
  const open = list?.filter((i) => i.status !== 'resolved') ?? []
  const resolved = list?.filter((i) => i.status === 'resolved') ?? []
  return (
    <div data-testid="incidents">
      <div className="toolbar">
        <DeclareIncident primary />
        <span className="muted">
          {list ? `${open.length} open · ${resolved.length} resolved` : 'Loading…'} · a critical alert that fires opens one by itself
        </span>
      </div>
      {problem && (
        <p className="danger-text" role="alert">
          {problem}
        </p>
      )}
      <section>
        <h2>Open</h2>
        {list && !open.length ? <p data-testid="no-open-incidents">No incident is open.</p> : open.length > 0 && <OpenTable rows={open} />}
      </section>
      <section>
        <h2>Resolved</h2>
        {list && !resolved.length ? <p className="muted">None yet.</p> : resolved.length > 0 && <ResolvedTable rows={resolved} />}
      </section>
      <section>
        <h2>Export a window</h2>
        <WindowExport />
      </section>
    </div>
  )
}
