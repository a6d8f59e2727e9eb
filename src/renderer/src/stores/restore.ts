import { create } from 'zustand'
import type { JobInfo, JobProgress } from '../../../shared/domain'
import type { CheckReport, RestorePlan, RestorePoint, RestorePoints, RestoreRecord, RestoreTargetInput } from '../../../shared/restore'
import { useApp } from './app'
import { jobFollower } from './job-follow'

export type Step = 'point' | 'scope' | 'target' | 'preview' | 'confirm' | 'running' | 'result'
export const steps: { step: Step; label: string }[] = [
  { step: 'point', label: 'Point' },
  { step: 'scope', label: 'Scope' },
  { step: 'target', label: 'Target' },
  { step: 'preview', label: 'Preview' },
  { step: 'confirm', label: 'Confirm' },
  { step: 'running', label: 'Restore' },
  { step: 'result', label: 'Check' },
]

export interface RestoreResultView {
  restoreId: string
  report: CheckReport
  safetySetId: string | null
  target: string
  durationMs: number
  rows: number
  bytes: number
  transactions: number
}

interface RestoreState {
  points: RestorePoints | null
  history: RestoreRecord[]
  step: Step
  point: RestorePoint | null
  /** null: the whole database. */
  tables: string[] | null
  target: RestoreTargetInput
  /** The operator acknowledged restoring sets whose manifest is not authenticated (asked only when the plan refuses them). */
  allowUnauthenticated: boolean
  plan: RestorePlan | null
  planning: boolean
  planError: string | null
  running: { jobId: string; kind: 'restore' | 'undo' | 'test'; startedAt: number } | null
  progress: JobProgress | null
  finished: { kind: 'restore' | 'undo' | 'test'; job: JobInfo } | null
  /** The restore whose result is shown (for Undo). */
  shown: RestoreResultView | null
  load(): Promise<void>
  setStep(step: Step): void
  choosePoint(point: RestorePoint): Promise<void>
  setTables(tables: string[] | null): Promise<void>
  setTarget(target: RestoreTargetInput): void
  setAllowUnauthenticated(allow: boolean): Promise<void>
  preview(): Promise<void>
  start(confirm: string, operator: string): Promise<void>
  undo(confirm: string, operator: string): Promise<void>
  runTest(): Promise<void>
  cancel(): Promise<void>
  reset(): void
}

const api = () => useApp.getState().api!
const fail = (e: unknown) => useApp.setState({ error: (e as Error).message })

type Running = NonNullable<RestoreState['running']>

export const useRestore = create<RestoreState>((set, get) => {
  const jobs = jobFollower<Running['kind']>({
    api,
    kinds: { restore: 'restore', 'restore.undo': 'undo', 'restore.test': 'test' },
    current: () => get().running,
    onProgress: (progress) => set({ progress }),
    onFinished: (j, r) => {
      const result = j.state === 'succeeded' ? (j.result as RestoreResultView) : null
      set({
        running: null,
        progress: null,
        finished: { kind: r.kind, job: j },
        shown: result && r.kind !== 'test' ? result : get().shown,
        step: r.kind === 'test' ? get().step : 'result',
      })
      void get().load()
    },
  })
  const subscribe = () => jobs.subscribe()
  /** After a reload: a restore or undo still running is shown (progress, Cancel) instead of step 1. */
  const reattach = async () => {
    const found = await jobs.reattach().catch(() => null)
    if (!found || get().running) return
    set({
      running: found.job,
      progress: found.progress,
      finished: null,
      ...(found.job.kind === 'test' ? {} : { step: 'running' as const, shown: null }),
    })
  }
  /** Plan again for what is chosen now (whole database while choosing a scope, so every table is listed). */
  const replan = async () => {
    const { point, tables, target, allowUnauthenticated } = get()
    if (!point) return
    set({ planning: true, planError: null })
    try {
      const plan = await api().call('restore.plan', {
        point,
        target,
        ...(tables ? { tables } : {}),
        ...(allowUnauthenticated ? { allowUnauthenticated } : {}),
      })
      set({ plan, planning: false })
    } catch (e) {
      set({ plan: null, planning: false, planError: (e as Error).message })
    }
  }
  return {
    points: null,
    history: [],
    step: 'point',
    point: null,
    tables: null,
    target: { kind: 'in-place' },
    allowUnauthenticated: false,
    plan: null,
    planning: false,
    planError: null,
    running: null,
    progress: null,
    finished: null,
    shown: null,
    async load() {
      await reattach()
      try {
        const [points, history] = await Promise.all([api().call('restore.points', {}), api().call('restore.history', {})])
        set({ points, history })
      } catch (e) {
        fail(e)
      }
    },
    setStep(step) {
      set({ step })
      if (step === 'preview' || step === 'scope') void replan()
    },
    async choosePoint(point) {
      set({ point, plan: null, tables: null, allowUnauthenticated: false })
      await replan()
    },
    async setAllowUnauthenticated(allow) {
      set({ allowUnauthenticated: allow })
      await replan()
    },
    async setTables(tables) {
      set({ tables: tables && tables.length ? tables : tables === null ? null : [] })
    },
    setTarget(target) {
      set({ target, plan: get().plan })
    },
    async preview() {
      await replan()
    },
    async start(confirm, operator) {
      subscribe()
      const { point, tables, target, allowUnauthenticated } = get()
      if (!point) return
      try {
        const { jobId } = await api().call('restore.start', {
          point,
          target,
          confirm,
          ...(allowUnauthenticated ? { allowUnauthenticated } : {}),
          ...(tables ? { tables } : {}),
          ...(operator ? { operator } : {}),
        })
        set({ running: { jobId, kind: 'restore', startedAt: Date.now() }, progress: null, finished: null, step: 'running', shown: null })
      } catch (e) {
        fail(e)
      }
    },
    async undo(confirm, operator) {
      subscribe()
      const shown = get().shown
      if (!shown) return
      try {
        const { jobId } = await api().call('restore.undo', { restoreId: shown.restoreId, confirm, ...(operator ? { operator } : {}) })
        set({ running: { jobId, kind: 'undo', startedAt: Date.now() }, progress: null, finished: null, step: 'running', shown: null })
      } catch (e) {
        fail(e)
      }
    },
    async runTest() {
      subscribe()
      try {
        const { jobId } = await api().call('restore.test', {})
        set({ running: { jobId, kind: 'test', startedAt: Date.now() }, progress: null, finished: null })
      } catch (e) {
        fail(e)
      }
    },
    async cancel() {
      const r = get().running
      if (r) await api().call('jobs.cancel', { jobId: r.jobId }).catch(fail)
    },
    reset() {
      set({
        step: 'point',
        point: null,
        tables: null,
        target: { kind: 'in-place' },
        allowUnauthenticated: false,
        plan: null,
        planError: null,
        finished: null,
        shown: null,
      })
    },
  }
})
