import { create } from 'zustand'
import type { MethodOutput } from '../../../shared/contract'
import { useApp } from './app'

type List = MethodOutput<'alerts.list'>
type Rules = MethodOutput<'alerts.rules'>
type History = MethodOutput<'alerts.history'>
type Silences = MethodOutput<'alerts.silences'>

interface AlertsState {
  list: List | null
  rules: Rules | null
  history: History | null
  silences: Silences | null
  /** Firing now (for the window title and the Overview), kept current by events. */
  firing: number
  load(): Promise<void>
  /** Follow alerts.changed and alerts.notify (the browser's Notifications API while a page is open); once. */
  follow(): void
}

const api = () => useApp.getState().api

let following = false

export const useAlerts = create<AlertsState>((set, get) => ({
  list: null,
  rules: null,
  history: null,
  silences: null,
  firing: 0,
  async load() {
    const a = api()
    if (!a) return
    try {
      const [list, rules, history, silences] = await Promise.all([
        a.call('alerts.list', {}),
        a.call('alerts.rules', {}),
        a.call('alerts.history', { limit: 50 }),
        a.call('alerts.silences', {}),
      ])
      set({ list, rules, history, silences, firing: list.alerts.filter((x) => x.phase === 'firing').length })
    } catch (e) {
      useApp.setState({ error: (e as Error).message })
    }
  },
  follow() {
    const a = api()
    if (!a || following) return
    following = true
    a.on('alerts.changed', (c) => {
      set({ firing: c.firing })
      void get().load()
    })
    a.on('alerts.notify', (n) => {
      // The Electron shell shows its own notification; the browser face uses the Notifications API.
      if (typeof Notification === 'undefined' || (window as { ops?: unknown }).ops) return
      if (Notification.permission === 'granted') new Notification(`ExamForge Ops ${n.title}`, { body: n.body })
    })
    void a.call('alerts.list', {}).then(
      (list) => set({ list, firing: list.alerts.filter((x) => x.phase === 'firing').length }),
      () => {},
    )
  },
}))

/** The window title (and so the taskbar / tray entry) shows how many alerts fire. */
useAlerts.subscribe((s) => {
  document.title = s.firing ? `(${s.firing}) ExamForge Ops — ${s.firing} alert${s.firing === 1 ? '' : 's'} firing` : 'ExamForge Ops'
})
