import { HealthTile } from '../components/HealthTile'
import { ago, statusText, transportText } from '../components/format'
import { useApp } from '../stores/app'
import { Time } from '../components/Time'
import { DeclareIncident } from '../components/Declare'

export function Health() {
  const { health, checkNow, checking, selected, select, history, go, info } = useApp()
  const current = health?.results.find((r) => r.service === selected) ?? null
  return (
    <>
      {health?.alerts?.problem && (
        <div className="banner danger" role="alert" data-testid="alerts-not-evaluated">
          {health.alerts.problem}{' '}
          <button className="link" onClick={() => go('alerts')}>
            Open Alerts
          </button>
        </div>
      )}
      <div className="toolbar">
        <button className="primary" onClick={() => void checkNow()} disabled={checking !== null} data-testid="check-all">
          {checking === 'all' ? 'Checking…' : 'Check now'}
        </button>
        <span className="muted">
          Checked {ago(health?.checkedAt)} · every {health?.intervalS ?? '…'} s
        </span>
      </div>
      <div className="split">
        <div className="tiles">
          {health?.results.map((r) => (
            <HealthTile
              key={r.service}
              r={r}
              selected={r.service === selected}
              onOpen={() => void select(r.service === selected ? null : r.service)}
            />
          ))}
        </div>
        {current && (
          <aside className="details" data-testid="details">
            <div className="details-head">
              <h2>{current.label}</h2>
              <button className="link" onClick={() => void select(null)} aria-label="Close details">
                ✕
              </button>
            </div>
            <p className={`pill status-${current.status}`}>{statusText[current.status]}</p>
            <p>{current.reason}</p>
            {current.service === 'backup_slot' && current.details.orphans ? (
              // Dropping needs the slot's name typed back: that form is on the Backups page, next to the slot.
              <button className="danger" onClick={() => go('backups')} data-testid="drop-orphan">
                Drop the unused slot on the Backups page
              </button>
            ) : null}
            <div className="row-actions">
              {current.status !== 'not_configured' && (
                <button onClick={() => void checkNow(current.service)} disabled={checking !== null}>
                  {checking === current.service ? 'Checking…' : `Check ${current.label} now`}
                </button>
              )}
              {info?.capabilities.incidents && (
                <DeclareIncident
                  from={{ kind: 'health', id: current.service }}
                  title={`${current.label} ${statusText[current.status].toLowerCase()}: ${current.reason}`.slice(0, 200)}
                  severity={current.status === 'unhealthy' ? 'critical' : 'warning'}
                  testId="declare-from-health"
                />
              )}
            </div>
            <table className="kv">
              <tbody>
                {Object.entries(current.details).map(([k, v]) => (
                  <tr key={k}>
                    <th>{k}</th>
                    <td>{String(v)}</td>
                  </tr>
                ))}
                {current.transport && (
                  <>
                    <tr>
                      <th>connection</th>
                      <td data-testid="transport-summary">{transportText(current.transport)}</td>
                    </tr>
                    <tr>
                      <th>encrypted</th>
                      <td>{current.transport.encrypted ? 'yes' : 'no'}</td>
                    </tr>
                    <tr>
                      <th>peer verified</th>
                      <td>{current.transport.verified ? 'yes' : 'no'}</td>
                    </tr>
                    <tr>
                      <th>transport</th>
                      <td data-testid="transport-detail">{current.transport.detail}</td>
                    </tr>
                  </>
                )}
                <tr>
                  <th>latency</th>
                  <td>{current.latencyMs == null ? '—' : `${current.latencyMs} ms`}</td>
                </tr>
                <tr>
                  <th>status since</th>
                  <td>
                    <Time at={current.lastChangeAt} />
                  </td>
                </tr>
              </tbody>
            </table>
            <h3>Recent changes</h3>
            {history?.service === current.service && history.changes.length ? (
              <ul className="changes">
                {history.changes.map((c, i) => (
                  <li key={i}>
                    <span className={`pill small status-${c.to}`}>{statusText[c.to]}</span> <Time at={c.at} />
                    <div className="muted">{c.reason}</div>
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">No changes recorded{history?.service === current.service ? '' : ' yet'}.</p>
            )}
          </aside>
        )}
      </div>
    </>
  )
}
