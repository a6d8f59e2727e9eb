import { create } from 'zustand'
import type { MethodInput, MethodOutput } from '../../../shared/contract'
import type { ErrorGroup, ErrorGroupDetail } from '../../../shared/errors'
import { useApp } from './app'

type Filter = Omit<MethodInput<'errors.list'>, 'limit'>

interface ErrorsState {
  groups: ErrorGroup[] | null
  total: number
  filter: Filter
  checked: string[]
  detail: ErrorGroupDetail | null
  dsn: MethodOutput<'errors.dsn'> | null
  recent: MethodOutput<'errors.recent'> | null
  load(): Promise<void>
  setFilter(f: Partial<Filter>): void
  toggle(id: string): void
  toggleAll(): void
  open(groupId: string | null, eventId?: string): Promise<void>
  setState(
    ids: string[],
    state: 'resolved' | 'ignored' | 'unresolved',
    extra?: { inNextRelease?: boolean; untilCount?: number; untilMs?: number },
  ): Promise<void>
  loadDsn(): Promise<void>
  loadRecent(): Promise<void>
}

const api = () => useApp.getState().api!
const fail = (e: unknown) => useApp.setState({ error: (e as Error).message })

export const useErrors = create<ErrorsState>((set, get) => ({
  groups: null,
  total: 0,
  filter: {},
  checked: [],
  detail: null,
  dsn: null,
  recent: null,
  async load() {
    try {
      const f = Object.fromEntries(Object.entries(get().filter).filter(([, v]) => v !== '' && v != null)) as Filter
      const r = await api().call('errors.list', { ...f, limit: 200 })
      set({ groups: r.groups, total: r.total, checked: get().checked.filter((id) => r.groups.some((g) => g.id === id)) })
    } catch (e) {
      fail(e)
    }
  },
  setFilter(f) {
    set({ filter: { ...get().filter, ...f } })
    void get().load()
  },
  toggle(id) {
    const c = get().checked
    set({ checked: c.includes(id) ? c.filter((x) => x !== id) : [...c, id] })
  },
  toggleAll() {
    const all = get().groups?.map((g) => g.id) ?? []
    set({ checked: get().checked.length === all.length ? [] : all })
  },
  async open(groupId, eventId) {
    if (!groupId) return set({ detail: null })
    try {
      set({ detail: await api().call('errors.get', { groupId, eventId }) })
    } catch (e) {
      fail(e)
    }
  },
  async setState(ids, state, extra = {}) {
    try {
      await api().call('errors.setState', { groupIds: ids, state, ...extra })
      set({ checked: [] })
      await get().load()
      const d = get().detail
      if (d && ids.includes(d.group.id)) await get().open(d.group.id, d.event?.eventId)
    } catch (e) {
      fail(e)
    }
  },
  async loadDsn() {
    try {
      set({ dsn: await api().call('errors.dsn', {}) })
    } catch (e) {
      fail(e)
    }
  },
  async loadRecent() {
    try {
      set({ recent: await api().call('errors.recent', { sinceMs: Date.now() - 24 * 3_600_000 }) })
    } catch {
      set({ recent: null })
    }
  },
}))
