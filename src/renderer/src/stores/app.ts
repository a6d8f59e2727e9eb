import { create } from 'zustand'
import type { ApiClient } from '../../../shared/contract'
import type { AppInfo, HealthChange, HealthSnapshot, JobInfo, JobProgress, ServiceId, SettingView } from '../../../shared/domain'
import type { ConnectionState } from '../api/clients'

export const pages = ['overview', 'health', 'metrics', 'backups', 'restore', 'errors', 'alerts', 'incidents', 'settings'] as const
export type Page = (typeof pages)[number]

/** The page is the address's first part (#/incidents/<id> is the Incidents page, showing one incident). */
const pageFromHash = (): Page => {
  const h = location.hash.replace(/^#\/?/, '').split('/')[0] as Page
  return (pages as readonly string[]).includes(h) ? h : 'overview'
}

interface AppState {
  api: ApiClient | null
  connection: ConnectionState
  /** When the connection was lost (ms), null while connected: live data on the page is from before then. */
  lostAt: number | null
  /** When live data last arrived from the host (ms). */
  lastUpdate: number | null
  info: AppInfo | null
  page: Page
  health: HealthSnapshot | null
  checking: ServiceId | 'all' | null
  selected: ServiceId | null
  history: { service: ServiceId; changes: HealthChange[] } | null
  settings: SettingView[] | null
  jobs: Record<string, JobProgress>
  lastJob: JobInfo | null
  error: string | null
  /** Browser only: end the session on the host. */
  signOut: (() => void) | null
  init(api: ApiClient): Promise<void>
  setConnection(c: ConnectionState): void
  go(page: Page): void
  checkNow(service?: ServiceId): Promise<void>
  select(service: ServiceId | null): Promise<void>
  loadSettings(): Promise<void>
  /** Save a setting; secret confirms moving an endpoint that receives one. The message says what happened, inline. */
  saveSetting(key: string, value: string | null, secret?: string): Promise<{ ok: boolean; message: string; code?: string }>
  /** Regenerate the sandbox; a refusal comes back (shown at the field), not as the page's banner. */
  seed(scale: number): Promise<string | null>
  cancelJob(jobId: string): Promise<void>
  dismissError(): void
}

export const useApp = create<AppState>((set, get) => ({
  api: null,
  connection: 'connecting',
  lostAt: null,
  lastUpdate: null,
  info: null,
  page: pageFromHash(),
  health: null,
  checking: null,
  selected: null,
  history: null,
  settings: null,
  jobs: {},
  lastJob: null,
  error: null,
  signOut: null,

  async init(api) {
    set({ api })
    api.on('health.updated', (health) => set({ health, lastUpdate: Date.now() }))
    api.on('job.progress', (p) => set({ jobs: { ...get().jobs, [p.jobId]: p } }))
    api.on('job.finished', (j) => {
      const jobs = { ...get().jobs }
      delete jobs[j.id]
      set({ jobs, lastJob: j })
    })
    api.on('health.changed', (c) => {
      if (get().selected === c.service) void get().select(c.service)
    })
    window.addEventListener('hashchange', () => set({ page: pageFromHash() }))
    try {
      const [info, health, jobs] = await Promise.all([api.call('app.info', {}), api.call('health.snapshot', {}), api.call('jobs.list', {})])
      // Jobs still running after a reload show again (progress events for them update these entries).
      const running = Object.fromEntries(
        jobs
          .filter((j) => j.state === 'running' && !get().jobs[j.id])
          .map((j) => [j.id, j.progress ?? { jobId: j.id, phase: 'running', done: 0, total: null, unit: 'steps' as const, etaS: null }]),
      )
      set({ info, health, jobs: { ...running, ...get().jobs }, lastUpdate: Date.now() })
    } catch (e) {
      set({ error: (e as Error).message })
    }
  },
  setConnection(connection) {
    const was = get().connection
    if (was === 'ended') return // only a new link (a new page) brings an ended session back
    const live = connection === 'open'
    set({ connection, lostAt: live ? null : (get().lostAt ?? (was === 'connecting' ? null : Date.now())) })
    // After a reconnect, pick up what changed while we were away.
    if (connection === 'open' && was === 'closed')
      void get()
        .api?.call('health.snapshot', {})
        .then((health) => set({ health, lastUpdate: Date.now() }))
  },
  go(page) {
    location.hash = `/${page}`
    set({ page })
  },
  async checkNow(service) {
    const api = get().api
    if (!api) return
    set({ checking: service ?? 'all' })
    try {
      set({ health: await api.call('health.checkNow', service ? { service } : {}) })
    } catch (e) {
      set({ error: (e as Error).message })
    } finally {
      set({ checking: null })
    }
  },
  async select(service) {
    set({ selected: service })
    if (!service) return set({ history: null })
    try {
      const h = await get().api!.call('health.history', { service, limit: 20 })
      set({ history: { service, changes: h.changes } })
    } catch (e) {
      set({ error: (e as Error).message })
    }
  },
  async loadSettings() {
    try {
      set({ settings: await get().api!.call('settings.list', {}) })
    } catch (e) {
      set({ error: (e as Error).message })
    }
  },
  async saveSetting(key, value, secret) {
    try {
      const r = await get().api!.call('settings.update', secret ? { key, value, secret } : { key, value })
      await get().loadSettings()
      return {
        ok: true,
        message: r.overriddenByEnvironment
          ? `Saved, but ${key} is also set in the environment, which wins. Restart after changing the environment.`
          : 'Saved. Restart the console to apply it.',
      }
    } catch (e) {
      return { ok: false, message: (e as Error).message, code: (e as { code?: string }).code }
    }
  },
  async seed(scale) {
    try {
      const { jobId } = await get().api!.call('sandbox.seed', { scale })
      set({ jobs: { ...get().jobs, [jobId]: { jobId, phase: 'starting', done: 0, total: null, unit: 'rows', etaS: null } } })
      return null
    } catch (e) {
      return (e as Error).message
    }
  },
  async cancelJob(jobId) {
    try {
      await get().api!.call('jobs.cancel', { jobId })
    } catch (e) {
      set({ error: (e as Error).message })
    }
  },
  dismissError() {
    set({ error: null })
  },
}))
