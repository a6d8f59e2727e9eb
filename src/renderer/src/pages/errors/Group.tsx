import { useState } from 'react'
import type { ErrorEventView } from '../../../../shared/errors'
import { fmtNumber } from '../../components/format'
import { DeclareIncident } from '../../components/Declare'
import { Time } from '../../components/Time'
import { useErrors } from '../../stores/errors'
import { ErrorSpark } from './Spark'

type Frame = ErrorEventView['exceptions'][number]['frames'][number]

function FrameView({ f, open: initiallyOpen }: { f: Frame; open: boolean }) {
  const [open, setOpen] = useState(initiallyOpen)
  const hasContext = f.contextLine != null
  return (
    <li className={`frame${f.inApp ? ' in-app' : ''}`} data-testid={f.inApp ? 'frame-in-app' : 'frame'}>
      <button className="link frame-head" onClick={() => setOpen(!open)} disabled={!hasContext}>
        <b>{f.function ?? '?'}</b>{' '}
        <span className="muted">
          {f.filename ?? f.module ?? '?'}
          {f.lineno != null ? `:${f.lineno}` : ''}
          {f.colno != null ? `:${f.colno}` : ''}
        </span>
        {!f.inApp && <span className="badge">library</span>}
      </button>
      {open && hasContext && (
        <pre className="context" data-testid="source-context">
          {f.preContext.map((l, i) => (
            <div key={`p${i}`}>
              <span className="ln">{(f.lineno ?? 0) - f.preContext.length + i}</span>
              {l}
            </div>
          ))}
          <div className="hl">
            <span className="ln">{f.lineno}</span>
            {f.contextLine}
          </div>
          {f.postContext.map((l, i) => (
            <div key={`n${i}`}>
              <span className="ln">{(f.lineno ?? 0) + 1 + i}</span>
              {l}
            </div>
          ))}
        </pre>
      )}
    </li>
  )
}

function Kv({ rows }: { rows: [string, unknown][] }) {
  const shown = rows.filter(([, v]) => v != null && v !== '')
  if (!shown.length) return <p className="muted">None.</p>
  return (
    <table className="kv">
      <tbody>
        {shown.map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td>{typeof v === 'string' ? v : JSON.stringify(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

export function GroupView() {
  const { detail: d, open, setState } = useErrors()
  if (!d) return null
  const g = d.group
  const ev = d.event
  const user = ev?.user ?? null
  return (
    <div className="err-group" data-testid="error-group">
      <div className="toolbar">
        <button onClick={() => void open(null)} data-testid="back-to-groups">
          ← All groups
        </button>
        <button onClick={() => void setState([g.id], 'resolved')} data-testid="resolve">
          Resolve
        </button>
        <button onClick={() => void setState([g.id], 'resolved', { inNextRelease: true })}>Resolve in next release</button>
        <button onClick={() => void setState([g.id], 'ignored')} data-testid="ignore">
          Ignore
        </button>
        <button onClick={() => void setState([g.id], 'ignored', { untilCount: 100 })}>Ignore until 100 more</button>
        {g.state !== 'unresolved' && <button onClick={() => void setState([g.id], 'unresolved')}>Reopen</button>}
        <DeclareIncident
          from={{ kind: 'error_group', id: g.id }}
          title={`Errors: ${g.title}`.slice(0, 200)}
          severity={g.level === 'fatal' ? 'critical' : g.level === 'error' ? 'warning' : 'info'}
          testId="declare-from-group"
        />
      </div>
      <h2 className="err-heading">
        <span className={`lvl lvl-${g.level}`}>{g.level}</span> {g.title}
      </h2>
      <p className="muted">
        {g.culprit} ·{' '}
        <span className={`pill small state-${g.state}`} data-testid="group-state">
          {g.state}
        </span>{' '}
        · {fmtNumber(g.count)} events · {fmtNumber(g.users)} users · first <Time at={g.firstSeen} /> · last <Time at={g.lastSeen} />
      </p>
      <div className="cards err-facts">
        <section className="card">
          <h3>Last 24 hours</h3>
          <ErrorSpark counts={g.spark} />
          <p className="muted">
            Releases: {g.releases.join(', ') || '—'} · Environments: {g.environments.join(', ') || '—'}
          </p>
        </section>
        <section className="card" data-testid="why-grouped">
          <h3>Why grouped</h3>
          <p>{d.why.explanation}</p>
          <pre className="fix">{d.why.components.slice(0, 12).join('\n')}</pre>
        </section>
        <section className="card" data-testid="around">
          <h3>Around its first event</h3>
          {d.around.length ? (
            <ul className="changes">
              {d.around.map((a, i) => (
                <li key={i}>
                  <Time at={a.at} /> <span className="badge">{a.kind}</span> {a.text}
                </li>
              ))}
            </ul>
          ) : (
            <p className="muted">Nothing else was recorded within an hour of it (health changes, backups, restores).</p>
          )}
        </section>
      </div>
      {ev ? (
        <section className="card err-event" data-testid="latest-event">
          <div className="toolbar">
            <h3>
              Event {ev.eventId.slice(0, 12)} · <Time at={ev.timestamp} seconds />
            </h3>
            <button disabled={!d.olderId} onClick={() => void open(g.id, d.olderId!)} data-testid="older">
              ← Older
            </button>
            <button disabled={!d.newerId} onClick={() => void open(g.id, d.newerId!)} data-testid="newer">
              Newer →
            </button>
            <span className="muted">{fmtNumber(d.eventCount)} kept</span>
          </div>
          {ev.message && !ev.exceptions.length && <p>{ev.message}</p>}
          {[...ev.exceptions].reverse().map((e, i) => (
            <div key={i} className="exception">
              <h4>
                {e.type}: {e.value}
              </h4>
              <ol className="frames">
                {[...e.frames].reverse().map((f, j) => (
                  <FrameView key={j} f={f} open={f.inApp} />
                ))}
              </ol>
            </div>
          ))}
          <h4>Breadcrumbs</h4>
          {ev.breadcrumbs.length ? (
            <ol className="timeline" data-testid="breadcrumbs">
              {ev.breadcrumbs.map((b, i) => (
                <li key={i} className={`lvl-${b.level ?? 'info'}`}>
                  <span className="muted">{b.timestamp ? <Time at={b.timestamp} seconds /> : '—'}</span>{' '}
                  <span className="badge">{b.category ?? b.type ?? 'log'}</span> {b.message}
                  {b.data && <code className="muted"> {JSON.stringify(b.data).slice(0, 200)}</code>}
                </li>
              ))}
            </ol>
          ) : (
            <p className="muted">None.</p>
          )}
          <div className="cards">
            <section>
              <h4>Request</h4>
              <Kv
                rows={
                  ev.request
                    ? [
                        ['method', ev.request.method],
                        ['url', ev.request.url],
                        ['query', ev.request.query],
                        ...Object.entries(ev.request.headers),
                      ]
                    : []
                }
              />
            </section>
            <section data-testid="event-user">
              <h4>User and team</h4>
              <Kv rows={[...Object.entries(user ?? {}), ['team', ev.tags.team ?? ev.tags.team_id]]} />
            </section>
            <section>
              <h4>Tags</h4>
              <Kv
                rows={[
                  ['release', ev.release],
                  ['environment', ev.environment],
                  ['server', ev.serverName],
                  ['sdk', ev.sdk],
                  ...Object.entries(ev.tags),
                ]}
              />
            </section>
          </div>
        </section>
      ) : (
        <p className="muted">The events of this group have passed retention; its counts remain.</p>
      )}
    </div>
  )
}
