import { useEffect } from 'react'
import { HealthTile } from '../components/HealthTile'
import { Sparkline } from '../components/MetricChart'
import { useApp, type Page } from '../stores/app'
import { useMetrics } from '../stores/metrics'
import { useAlerts } from '../stores/alerts'
import { useErrors } from '../stores/errors'
import { Time } from '../components/Time'
import { DeclareIncident } from '../components/Declare'
import { fmtSpan } from '../components/format'
import { useIncidents } from '../stores/incidents'
import { SeverityPill, statusLabel, useNow } from './incidents/Incidents'

/** Open incidents in the summary: how many, the newest with its status and how long it has run, a link to each. */
function OpenIncidents() {
  const { list, load, open } = useIncidents()
  const now = useNow(5000)
  useEffect(() => {
    void load()
    const t = setInterval(() => void load(), 15_000)
    return () => clearInterval(t)
  }, [load])
  const openOnes = (list ?? []).filter((i) => i.status !== 'resolved').sort((a, b) => b.openedAt - a.openedAt)
  const newest = openOnes[0]
  return (
    <section data-testid="overview-incidents">
      <h2>Incidents</h2>
      <div className={`card incident-summary${openOnes.length ? ' has-open' : ''}`}>
        {!list ? (
          <p className="muted">Loading…</p>
        ) : !newest ? (
          <p className="muted" data-testid="overview-no-incident">
            No incident is open.
          </p>
        ) : (
          <>
            <p data-testid="overview-incident-count">
              <b>
                {openOnes.length} open incident{openOnes.length === 1 ? '' : 's'}
              </b>
              {openOnes.length > 1 ? '; the newest:' : ':'}
            </p>
            <ul className="firing-list">
              {openOnes.slice(0, 3).map((i) => (
                <li key={i.id}>
                  <SeverityPill severity={i.severity} />{' '}
                  <a
                    href={`#/incidents/${encodeURIComponent(i.id)}`}
                    onClick={(e) => {
                      e.preventDefault()
                      open(i.id)
                    }}
                    data-testid="overview-incident-link"
                  >
                    <b>{i.title}</b>
                  </a>{' '}
                  <span className="muted">
                    {statusLabel[i.status].toLowerCase()} · {i.commander ?? 'no commander'} · running for {fmtSpan(now - i.openedAt)}
                  </span>
                </li>
              ))}
            </ul>
          </>
        )}
        <div className="actions">
          <DeclareIncident primary={!openOnes.length} testId="overview-declare" />
          <a
            href="#/incidents"
            onClick={(e) => {
              e.preventDefault()
              open(null)
            }}
          >
            All incidents
          </a>
        </div>
      </div>
    </section>
  )
}

/** Error groups first seen, or regressed, in the last 24 hours. */
function NewErrors() {
  const { recent, loadRecent, open } = useErrors()
  const go = useApp((s) => s.go)
  useEffect(() => {
    void loadRecent()
    const t = setInterval(() => void loadRecent(), 15_000)
    return () => clearInterval(t)
  }, [loadRecent])
  if (!recent) return null
  const regressedIds = new Set(recent.regressed.map((g) => g.id))
  // A group both new and regressed today is shown once, as regressed.
  const rows = [
    ...recent.regressed.map((g) => ({ g, kind: 'regressed' })),
    ...recent.fresh.filter((g) => !regressedIds.has(g.id)).map((g) => ({ g, kind: 'new' })),
  ]
  return (
    <section data-testid="overview-errors">
      <h2>New and regressed errors (24 h)</h2>
      {rows.length ? (
        <ul className="changes">
          {rows.slice(0, 8).map(({ g, kind }) => (
            <li key={`${kind}-${g.id}`}>
              <span className={`pill small state-${kind === 'new' ? 'unresolved' : 'regressed'}`}>{kind}</span>{' '}
              <button
                className="link"
                onClick={() => {
                  void open(g.id)
                  go('errors')
                }}
              >
                {g.title}
              </button>{' '}
              <span className="muted">
                {g.count} event{g.count === 1 ? '' : 's'} · last <Time at={g.lastSeen} />
              </span>
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">No new or regressed error groups in the last 24 hours.</p>
      )}
    </section>
  )
}

/** The key series drawn under a service's tile. */
const SPARK: Partial<Record<string, string>> = {
  postgres: 'pg.tps',
  redis: 'redis.ops_per_s',
  app: 'app.p95_ms',
  host: 'host.cpu_percent',
}

const upcoming: { page: Page; title: string; text: string }[] = [
  {
    page: 'restore',
    title: 'Restore',
    text: 'A guided wizard for whole, selective and point-in-time restores, with preview, safety backup and checks.',
  },
  { page: 'metrics', title: 'Metrics', text: 'Live and historical charts of the host, PostgreSQL, Redis and the web app.' },
  {
    page: 'incidents',
    title: 'Incidents',
    text: 'One timeline of what happened, and incident reports.',
  },
]

export function Overview() {
  const { health, go, select, info } = useApp()
  const { live, init } = useMetrics()
  useEffect(() => void init(), [init])
  const alerts = useAlerts()
  useEffect(() => {
    alerts.follow()
    void alerts.load()
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [])
  const firing = alerts.list?.alerts.filter((a) => a.phase === 'firing') ?? []
  // Only capabilities not built yet are announced; the list shrinks as they land.
  const coming = upcoming.filter((u) => info && !info.capabilities[u.page])
  return (
    <>
      {info?.capabilities.incidents && <OpenIncidents />}
      {info?.capabilities.alerts && (
        <section data-testid="overview-alerts">
          <h2>Alerts</h2>
          {firing.length === 0 ? (
            <p className="muted">Nothing is firing.</p>
          ) : (
            <ul className="firing-list">
              {firing.map((a) => (
                <li key={a.id}>
                  <span className={`pill small status-${a.severity === 'critical' ? 'unhealthy' : 'degraded'}`}>{a.severity}</span>{' '}
                  <a href="#/alerts" onClick={(e) => (e.preventDefault(), go('alerts'))}>
                    <b>{a.rule}</b>
                  </a>{' '}
                  {a.text ?? a.value ?? ''} since <Time at={a.since} />
                </li>
              ))}
            </ul>
          )}
        </section>
      )}
      <section>
        <h2>Services</h2>
        <div className="tiles compact-grid">
          {health?.results.map((r) => (
            <div key={r.service} className="tile-with-spark" data-testid={`spark-${r.service}`}>
              <HealthTile
                r={r}
                compact
                onOpen={() => {
                  void select(r.service)
                  go('health')
                }}
              />
              {SPARK[r.service] && (
                <div className="tile-spark" title={SPARK[r.service]}>
                  <Sparkline points={(live[SPARK[r.service]!] ?? []).slice(-120)} />
                </div>
              )}
            </div>
          )) ?? <p className="muted">Loading…</p>}
        </div>
      </section>
      {info?.capabilities.errors && <NewErrors />}
      {coming.length > 0 && (
        <section>
          <h2>Coming next</h2>
          <div className="cards">
            {coming.map((u) => (
              <div className="card coming-card" key={u.page}>
                <h3>
                  {u.title} <span className="badge">coming</span>
                </h3>
                <p>{u.text}</p>
              </div>
            ))}
          </div>
        </section>
      )}
    </>
  )
}
