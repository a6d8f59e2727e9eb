import { Layout } from './components/Layout'
import { Alerts } from './pages/Alerts'
import { Backups } from './pages/Backups'
import { Health } from './pages/Health'
import { Overview } from './pages/Overview'
import { Metrics } from './pages/Metrics'
import { Restore } from './pages/restore/Restore'
import { Settings } from './pages/Settings'
import { useEffect } from 'react'
import { Errors } from './pages/errors/Errors'
import { Incidents } from './pages/incidents/Incidents'
import { useIncidents } from './stores/incidents'
import { useApp } from './stores/app'
import { useAlerts } from './stores/alerts'

export function App() {
  const page = useApp((s) => s.page)
  const api = useApp((s) => s.api)
  // The firing count (window title) and desktop notifications follow on every page.
  useEffect(() => {
    if (api) useAlerts.getState().follow()
    // Open incidents (the Overview's summary, the list) follow their event on every page.
    if (api) useIncidents.getState().follow()
  }, [api])
  return (
    <Layout>
      {page === 'overview' ? (
        <Overview />
      ) : page === 'health' ? (
        <Health />
      ) : page === 'settings' ? (
        <Settings />
      ) : page === 'backups' ? (
        <Backups />
      ) : page === 'restore' ? (
        <Restore />
      ) : page === 'metrics' ? (
        <Metrics />
      ) : page === 'alerts' ? (
        <Alerts />
      ) : page === 'errors' ? (
        <Errors />
      ) : page === 'incidents' ? (
        <Incidents />
      ) : (
        <Overview />
      )}
    </Layout>
  )
}
