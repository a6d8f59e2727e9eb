import type { ReactNode } from 'react'
import { useApp, type Page } from '../stores/app'
import { statusText } from './format'
import { useTheme } from '../stores/theme'
import { Time } from './Time'

const nav: { page: Page; label: string; capability: string }[] = [
  { page: 'overview', label: 'Overview', capability: 'health' },
  { page: 'health', label: 'Health', capability: 'health' },
  { page: 'metrics', label: 'Metrics', capability: 'metrics' },
  { page: 'backups', label: 'Backups', capability: 'backups' },
  { page: 'restore', label: 'Restore', capability: 'restore' },
  { page: 'errors', label: 'Errors', capability: 'errors' },
  { page: 'alerts', label: 'Alerts', capability: 'alerts' },
  { page: 'incidents', label: 'Incidents', capability: 'incidents' },
  { page: 'settings', label: 'Settings', capability: 'settings' },
]

export function Layout({ children }: { children: ReactNode }) {
  const { page, go, info, health, connection, lostAt, lastUpdate, error, dismissError, signOut } = useApp()
  // Live data is stale from the moment the connection drops: greyed, with when it was last fresh.
  const stale = connection === 'closed' || connection === 'ended' || (connection === 'connecting' && lostAt !== null)
  const theme = useTheme()
  return (
    <div className="app">
      <aside className="sidebar">
        <div className="brand">
          ExamForge <b>Ops</b>
        </div>
        <nav>
          {nav.map((n) => {
            const ready = info?.capabilities[n.capability] ?? n.capability === 'health'
            return (
              <a
                key={n.page}
                href={`#/${n.page}`}
                className={`${page === n.page ? 'active' : ''}${ready ? '' : ' coming'}`}
                onClick={(e) => {
                  e.preventDefault()
                  go(n.page)
                }}
                data-testid={`nav-${n.page}`}
              >
                {n.label}
                {!ready && <span className="badge">coming</span>}
              </a>
            )
          })}
        </nav>
        <div className="sidebar-foot">
          <div>{info ? `v${info.version} · ${info.face}` : ''}</div>
          <div className="database" title={info?.database ?? ''} data-testid="sidebar-database">
            {/* host:port/ then the name on its own line if it must wrap, never inside the name */}
            {(info?.database ?? '').split('/').map((part, i) => (
              <span key={i}>
                {i > 0 && (
                  <>
                    /<wbr />
                  </>
                )}
                {part}
              </span>
            ))}
          </div>
          <button
            className="theme-toggle"
            onClick={theme.cycle}
            title={`Colour theme: follow the system, light or dark (now ${theme.resolved})`}
            data-testid="theme-toggle"
          >
            Theme: {theme.choice}
          </button>
        </div>
      </aside>
      <main>
        {info?.sandbox.active && (
          <div className="banner sandbox" role="status" data-testid="sandbox-banner">
            <b>Sandbox:</b> {info.sandbox.message}
          </div>
        )}
        {connection === 'ended' ? (
          <div className="banner danger" role="alert" data-testid="connection-banner" data-state="ended">
            <b>This session is gone</b>: the console host is reachable but no longer knows this tab (it restarted, or the session ended).
            The figures below are as they were <Time at={lastUpdate} />. To sign in again, run <code>examforge-ops open</code> on the
            machine running the host and open the link it prints.
          </div>
        ) : stale ? (
          <div className="banner danger" role="alert" data-testid="connection-banner" data-state="lost">
            <b>Lost the connection to the console host</b> <Time at={lostAt} />: the figures below are not live (last updated{' '}
            <Time at={lastUpdate} />
            ). Reconnecting… If the host was stopped, start it again with <code>examforge-ops serve</code>.
          </div>
        ) : null}
        {error && (
          <div className="banner danger" role="alert">
            {error}{' '}
            <button className="link" onClick={dismissError}>
              Dismiss
            </button>
          </div>
        )}
        <header className="topbar">
          <h1>{nav.find((n) => n.page === page)?.label}</h1>
          {health && (
            <span
              className={`pill status-${stale ? 'stale' : health.overall}`}
              data-testid="overall"
              data-stale={stale ? 'true' : undefined}
            >
              Overall: {stale ? 'unknown (not connected)' : statusText[health.overall]}
            </span>
          )}
          {signOut && (
            <button className="sign-out" onClick={signOut} data-testid="sign-out" title="End this browser session on the host">
              Sign out
            </button>
          )}
        </header>
        <div className={`content${stale ? ' stale' : ''}`} data-testid="content" data-stale={stale ? 'true' : undefined}>
          {children}
        </div>
      </main>
    </div>
  )
}
