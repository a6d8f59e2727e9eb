import { useEffect, useState } from 'react'
import { fmtNumber } from '../../components/format'
import { Time } from '../../components/Time'
import { useErrors } from '../../stores/errors'
import { GroupView } from './Group'
import { ErrorSpark } from './Spark'

/** Where the web app's events go: the DSN to give its SDK, and whether anything takes events sent to it. */
function Dsn() {
  const { dsn, loadDsn } = useErrors()
  const [copied, setCopied] = useState(false)
  useEffect(() => void loadDsn(), [loadDsn])
  if (!dsn) return null
  if (dsn.where === 'other_key')
    return (
      <div className="dsn card dsn-warn" data-testid="dsn" data-where={dsn.where}>
        <span>
          This window runs no error ingest. One listens on {dsn.address}, but with another DSN key than this console's data folder
          holds: give the web app the DSN that <code>examforge-ops errors dsn</code> prints where that agent runs.
        </span>
      </div>
    )
  const says = {
    here: `DSN for the web app's SDK (this console's ingest listens on ${dsn.address}):`,
    agent: `DSN for the web app's SDK. This window runs no ingest: the host/agent on this machine does, listening on ${dsn.address}:`,
    nothing: `Nothing takes events now: the ingest runs in the host/agent ("examforge-ops serve"), and no ingest answers on ${dsn.address}. Start the agent, then give the web app this DSN:`,
    failed: `Nothing takes events now: this console's ingest is not listening (${dsn.problem ?? `on ${dsn.address}`}). Set ERROR_INGEST_ADDR to a free address and restart; the DSN will then be:`,
  }[dsn.where]
  return (
    <div className={`dsn card${dsn.listening ? '' : ' dsn-warn'}`} data-testid="dsn" data-where={dsn.where}>
      <span className={dsn.listening ? 'muted' : undefined} data-testid="dsn-where">
        {says}
      </span>{' '}
      <code data-testid="dsn-value">{dsn.dsn}</code>{' '}
      <button
        onClick={() =>
          void navigator.clipboard.writeText(dsn.dsn).then(
            () => setCopied(true),
            () => setCopied(false),
          )
        }
        data-testid="dsn-copy"
      >
        {copied ? 'Copied' : 'Copy'}
      </button>
    </div>
  )
}

function Filters() {
  const { filter, setFilter, groups } = useErrors()
  const releases = [...new Set(groups?.flatMap((g) => g.releases) ?? [])].sort()
  const envs = [...new Set(groups?.flatMap((g) => g.environments) ?? [])].sort()
  const [text, setText] = useState(filter.text ?? '')
  return (
    <div className="toolbar err-filters">
      <select
        value={filter.state ?? ''}
        onChange={(e) => setFilter({ state: (e.target.value || undefined) as never })}
        data-testid="filter-state"
      >
        <option value="">Any state</option>
        <option value="unresolved">Unresolved</option>
        <option value="regressed">Regressed</option>
        <option value="resolved">Resolved</option>
        <option value="ignored">Ignored</option>
      </select>
      <select value={filter.level ?? ''} onChange={(e) => setFilter({ level: e.target.value || undefined })} data-testid="filter-level">
        <option value="">Any level</option>
        {['fatal', 'error', 'warning', 'info', 'debug'].map((l) => (
          <option key={l}>{l}</option>
        ))}
      </select>
      <select
        value={filter.release ?? ''}
        onChange={(e) => setFilter({ release: e.target.value || undefined })}
        data-testid="filter-release"
      >
        <option value="">Any release</option>
        {releases.map((r) => (
          <option key={r}>{r}</option>
        ))}
      </select>
      <select
        value={filter.environment ?? ''}
        onChange={(e) => setFilter({ environment: e.target.value || undefined })}
        data-testid="filter-environment"
      >
        <option value="">Any environment</option>
        {envs.map((r) => (
          <option key={r}>{r}</option>
        ))}
      </select>
      <form
        onSubmit={(e) => {
          e.preventDefault()
          setFilter({ text: text || undefined })
        }}
      >
        <input placeholder="Search title, culprit or id" value={text} onChange={(e) => setText(e.target.value)} data-testid="filter-text" />
      </form>
    </div>
  )
}

/** Rows drawn before the rest: more than a tall window shows. */
const FIRST_ROWS = 40

export function Errors() {
  const { groups, total, load, checked, toggle, toggleAll, setState, detail, open, dsn } = useErrors()
  const dsnHint = dsn?.listening ? ' Events sent to the DSN above appear here within seconds.' : ''
  // The first screenful is drawn at once and the rest of the (up to 200) rows a frame later: laying out all of
  // them before anything shows took most of the page's time on a busy machine.
  const [allRows, setAllRows] = useState(false)
  const hasGroups = !!groups?.length
  useEffect(() => {
    if (!hasGroups || allRows) return
    let t: ReturnType<typeof setTimeout> | undefined
    const f = requestAnimationFrame(() => (t = setTimeout(() => setAllRows(true), 0)))
    return () => {
      cancelAnimationFrame(f)
      clearTimeout(t)
    }
  }, [hasGroups, allRows])
  useEffect(() => {
    void load()
    const t = setInterval(() => void load(), 5000)
    return () => clearInterval(t)
  }, [load])
  if (detail) return <GroupView />
  return (
    <>
      <Dsn />
      <Filters />
      <div className="toolbar">
        <button disabled={!checked.length} onClick={() => void setState(checked, 'resolved')} data-testid="bulk-resolve">
          Resolve {checked.length || ''}
        </button>
        <button disabled={!checked.length} onClick={() => void setState(checked, 'ignored')} data-testid="bulk-ignore">
          Ignore {checked.length || ''}
        </button>
        <span className="muted">{groups ? `${groups.length} of ${fmtNumber(total)} groups` : 'Loading…'}</span>
      </div>
      {groups && !groups.length && <p className="muted">No error groups match.{dsnHint}</p>}
      {groups && groups.length > 0 && (
        <table className="err-groups" data-testid="error-groups">
          <thead>
            <tr>
              <th>
                <input type="checkbox" aria-label="Select all" checked={checked.length === groups.length} onChange={toggleAll} />
              </th>
              <th>Error</th>
              <th className="num">Events</th>
              <th className="num">Users</th>
              <th className="wide-only">24 h</th>
              <th className="wide-only">First seen</th>
              <th>Last seen</th>
              <th>State</th>
            </tr>
          </thead>
          <tbody>
            {(allRows ? groups : groups.slice(0, FIRST_ROWS)).map((g) => (
              <tr key={g.id} data-testid={`group-${g.id}`}>
                <td>
                  <input type="checkbox" aria-label={`Select ${g.id}`} checked={checked.includes(g.id)} onChange={() => toggle(g.id)} />
                </td>
                <td className="err-title">
                  <button className="link" onClick={() => void open(g.id)}>
                    <span className={`lvl lvl-${g.level}`}>{g.level}</span> {g.title}
                  </button>
                  <div className="muted">{g.culprit}</div>
                </td>
                <td className="num" data-testid="count">
                  {fmtNumber(g.count)}
                </td>
                <td className="num">{fmtNumber(g.users)}</td>
                <td className="wide-only">
                  <ErrorSpark counts={g.spark} />
                </td>
                <td className="wide-only">
                  <Time at={g.firstSeen} />
                </td>
                <td>
                  <Time at={g.lastSeen} />
                </td>
                <td>
                  <span className={`pill small state-${g.state}`}>{g.state}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  )
}
