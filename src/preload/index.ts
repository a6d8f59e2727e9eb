import { contextBridge, ipcRenderer } from 'electron'
import { IPC_EVENT_CHANNEL, eventNames, ipcChannel, isMethodName, methodNames, type Reply } from '../shared/contract'
import type { OpsBridge } from './bridge'

/**
 * window.ops, generated from the contract: a named call per contract method and event
 * subscriptions. Neither ipcRenderer nor process.env is exposed.
 */
const listeners = new Map<string, Set<(payload: unknown) => void>>()
ipcRenderer.on(IPC_EVENT_CHANNEL, (_e, msg: { event: string; payload: unknown }) => {
  listeners.get(msg.event)?.forEach((l) => l(msg.payload))
})

const bridge: OpsBridge = {
  methods: Object.freeze([...methodNames]),
  events: Object.freeze([...eventNames]),
  call(method, input): Promise<Reply<unknown>> {
    if (!isMethodName(method))
      return Promise.resolve({ ok: false, error: { code: 'unknown_method', message: `There is no method "${String(method)}".` } })
    return ipcRenderer.invoke(ipcChannel(method), input) as Promise<Reply<unknown>>
  },
  on(event, listener) {
    if (!(eventNames as string[]).includes(event)) throw new Error(`There is no event "${event}".`)
    const set = listeners.get(event) ?? new Set()
    listeners.set(event, set)
    set.add(listener)
    return () => void set.delete(listener)
  },
}

contextBridge.exposeInMainWorld('ops', bridge)
