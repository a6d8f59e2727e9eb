import type { ReactNode } from 'react'
import { useApp, type Page } from '../stores/app'
import { statusText } from './format'
import { useTheme } from '../stores/theme'

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
  const { page, go, info, health, connection, error, dismissError, signOut } = useApp()
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
          <div title={info?.database ?? ''}>{info?.database ?? ''}</div>
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
        {connection === 'closed' && (
          <div className="banner danger" role="alert">
            Lost the connection to the console host. Reconnecting… (is it still running?)
          </div>
        )}
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
            <span className={`pill status-${health.overall}`} data-testid="overall">
              Overall: {statusText[health.overall]}
            </span>
          )}
          {signOut && (
            <button className="sign-out" onClick={signOut} data-testid="sign-out" title="End this browser session on the host">
              Sign out
            </button>
          )}
        </header>
        <div className="content">{children}</div>
      </main>
    </div>
  )
}
