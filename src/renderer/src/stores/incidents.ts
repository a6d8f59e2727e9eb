/**
 * Incidents as the page shows them: the list (open first), the incident opened (its report: timeline, series,
 * review), kept live by `incidents.changed` and, while an incident is open, by reading its timeline again
 * every few seconds (alerts, health changes, errors and backups join it without an incidents event).
 *
 * The incident shown is in the address (#/incidents/<id>), so a reload, a link or Back keeps it.
 */
import { create } from 'zustand'
import type { MethodInput, MethodOutput } from '../../../shared/contract'
import type { IncidentReport, IncidentView } from '../../../shared/incidents'
import { useApp } from './app'

type Declare = MethodInput<'incidents.open'>
export type ExportInput = MethodInput<'incidents.export'>
export type Exported = MethodOutput<'incidents.export'>

/** Where a refusal belongs: the field it names ("at \"review.actionItems.0.due\"", ADMIN_EMAILS → commander), or the form. */
export function fieldOf(message: string): string {
  const at = /at "([^"]+)"/.exec(message)?.[1]
  if (at) return at
  if (/commander|ADMIN_EMAILS|administrator/i.test(message)) return 'commander'
  if (/title/i.test(message)) return 'title'
  return 'form'
}

const idFromHash = (): string | null => {
  const m = /^#\/?incidents\/([^/?#]+)/.exec(location.hash)
  return m ? decodeURIComponent(m[1]) : null
}

interface IncidentsState {
  list: IncidentView[] | null
  openId: string | null
  report: IncidentReport | null
  /** Entry ids seen before the last refresh: what is newer is highlighted. */
  seen: Set<string> | null
  problem: string | null
  load(): Promise<void>
  open(id: string | null): void
  refresh(): Promise<void>
  follow(): void
  /** Declare an incident and open it; a refusal comes back for its field. */
  declare(input: Declare): Promise<{ field: string; message: string } | null>
}

const api = () => useApp.getState().api

let following = false

export const useIncidents = create<IncidentsState>((set, get) => ({
  list: null,
  openId: idFromHash(),
  report: null,
  seen: null,
  problem: null,
  async load() {
    const a = api()
    if (!a) return
    try {
      const { incidents } = await a.call('incidents.list', { status: 'all', limit: 200 })
      set({ list: incidents })
    } catch (e) {
      set({ problem: (e as Error).message })
    }
  },
  open(id) {
    const hash = id ? `#/incidents/${encodeURIComponent(id)}` : '#/incidents'
    if (location.hash !== hash) location.hash = hash
    if (id !== get().openId) set({ openId: id, report: null, seen: null, problem: null })
    if (id) void get().refresh()
    else void get().load()
  },
  async refresh() {
    const a = api()
    const id = get().openId
    if (!a || !id) return
    try {
      const report = await a.call('incidents.get', { id })
      if (get().openId !== id) return // another incident was opened meanwhile
      const before = get().report
      set({ report, problem: null, seen: before ? new Set(before.timeline.map((e) => e.id)) : null })
    } catch (e) {
      if (get().openId === id) set({ problem: (e as Error).message })
    }
  },
  follow() {
    const a = api()
    if (!a || following) return
    following = true
    a.on('incidents.changed', (c) => {
      void get().load()
      if (c.id === get().openId) void get().refresh()
    })
    window.addEventListener('hashchange', () => {
      const id = idFromHash()
      if (useApp.getState().page === 'incidents' && id !== get().openId) get().open(id)
    })
  },
  async declare(input) {
    const a = api()
    if (!a) return { field: 'form', message: 'Not connected to the console yet.' }
    try {
      const inc = await a.call('incidents.open', input)
      useApp.setState({ page: 'incidents' })
      get().open(inc.id)
      void get().load()
      return null
    } catch (e) {
      const message = (e as Error).message
      return { field: fieldOf(message), message }
    }
  },
}))
