import { Layout } from './components/Layout'
import { Backups } from './pages/Backups'
import { Coming } from './pages/Coming'
import { Health } from './pages/Health'
import { Overview } from './pages/Overview'
import { Metrics } from './pages/Metrics'
import { Restore } from './pages/restore/Restore'
import { Settings } from './pages/Settings'
import { Errors } from './pages/errors/Errors'
import { useApp } from './stores/app'

export function App() {
  const page = useApp((s) => s.page)
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
      ) : page === 'errors' ? (
        <Errors />
      ) : (
        <Coming page={page} />
      )}
    </Layout>
  )
}
