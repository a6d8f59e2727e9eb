import { create } from 'zustand'
import type { MethodOutput } from '../../../shared/contract'
import type { BackupSetSummary, JobInfo, JobProgress } from '../../../shared/domain'
import { useApp } from './app'
import { jobFollower } from './job-follow'

type Details = MethodOutput<'backups.get'>
type Prerequisites = MethodOutput<'backups.prerequisites'>
type RetentionPlan = MethodOutput<'backups.retention'>
type Report = { setId: string; ok: boolean; objects: { key: string; ok: boolean; problem: string | null }[] }

interface BackupsState {
  location: string | null
  sets: BackupSetSummary[] | null
  selected: Details | null
  running: { jobId: string; kind: 'backup' | 'verify'; setId: string; startedAt: number } | null
  progress: JobProgress | null
  outcome: { kind: 'backup' | 'verify'; job: JobInfo } | null
  report: Report | null
  prerequisites: Prerequisites | null
  retention: RetentionPlan | null
  previewRetention(): Promise<void>
  prune(confirm: string): Promise<void>
  load(): Promise<void>
  dropSlot(slot: string, confirm: string): Promise<boolean>
  open(setId: string | null): Promise<void>
  backupNow(type: 'full' | 'incremental'): Promise<void>
  verify(setId: string): Promise<void>
  cancel(): Promise<void>
}

const api = () => useApp.getState().api!
const fail = (e: unknown) => useApp.setState({ error: (e as Error).message })

type Running = NonNullable<BackupsState['running']>

export const useBackups = create<BackupsState>((set, get) => {
  const jobs = jobFollower<Running['kind']>({
    api,
    kinds: { 'backup.full': 'backup', 'backup.incremental': 'backup', 'backup.verify': 'verify' },
    current: () => get().running,
    onProgress: (progress) => set({ progress }),
    onFinished: (j, r) => {
      set({
        running: null,
        progress: null,
        outcome: { kind: r.kind, job: j },
        report: r.kind === 'verify' ? ((j.result as Report) ?? null) : get().report,
      })
      void get().load()
    },
  })
  /** After a reload: show the backup or verify still running, with its progress and Cancel. */
  const reattach = async () => {
    const found = await jobs.reattach().catch(() => null)
    if (!found || get().running) return
    const setId = found.input.kind === 'backup.verify' ? 'a backup set' : found.input.kind.replace('backup.', '')
    set({ running: { ...found.job, setId }, progress: found.progress, outcome: null })
  }
  const subscribe = () => jobs.subscribe()
  return {
    location: null,
    sets: null,
    selected: null,
    running: null,
    progress: null,
    outcome: null,
    report: null,
    prerequisites: null,
    retention: null,
    async previewRetention() {
      try {
        set({ retention: await api().call('backups.retention', {}) })
      } catch (e) {
        fail(e)
      }
    },
    async prune(confirm) {
      try {
        const r = await api().call('backups.prune', { confirm })
        set({ retention: { ...r, delete: [] } })
        useApp.setState({ error: null })
        await get().load()
      } catch (e) {
        fail(e)
      }
    },
    async load() {
      subscribe()
      await reattach()
      try {
        const r = await api().call('backups.list', {})
        // A set that retention just deleted must not stay open in the details panel.
        const selected = get().selected
        set({
          location: r.location,
          sets: r.sets,
          selected: selected && r.sets.some((x) => x.setId === selected.set.setId) ? selected : null,
        })
      } catch (e) {
        fail(e)
      }
      // The database may be down: the catalog above still shows; only this panel waits.
      api()
        .call('backups.prerequisites', {})
        .then((prerequisites) => set({ prerequisites }))
        .catch(() => set({ prerequisites: null }))
    },
    async dropSlot(slot, confirm) {
      try {
        await api().call('backups.dropSlot', { slot, confirm })
        await get().load()
        return true
      } catch (e) {
        fail(e)
        return false
      }
    },
    async open(setId) {
      if (!setId) return set({ selected: null })
      try {
        set({ selected: await api().call('backups.get', { setId }) })
      } catch (e) {
        fail(e)
      }
    },
    async backupNow(type) {
      subscribe()
      try {
        const { jobId } = await api().call('backups.start', { type })
        set({ running: { jobId, kind: 'backup', setId: type, startedAt: Date.now() }, progress: null, outcome: null })
      } catch (e) {
        fail(e)
      }
    },
    async verify(setId) {
      subscribe()
      try {
        const { jobId } = await api().call('backups.verify', { setId })
        set({ running: { jobId, kind: 'verify', setId, startedAt: Date.now() }, progress: null, outcome: null, report: null })
      } catch (e) {
        fail(e)
      }
    },
    async cancel() {
      const r = get().running
      if (r) await api().call('jobs.cancel', { jobId: r.jobId }).catch(fail)
    },
  }
})
