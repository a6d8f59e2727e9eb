import type { ApiClient, EventName, EventPayload, MethodInput, MethodName, MethodOutput, Reply } from '../../../shared/contract'
import { WS_PATH, type ServerFrame } from '../../../shared/ws-protocol'
import type { OpsBridge } from '../../../preload/bridge'

export class CallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

function unwrap<T>(reply: Reply<unknown>): T {
  if (reply.ok) return reply.value as T
  throw new CallError(reply.error.code, reply.error.message)
}

/** Electron: calls cross the preload bridge; the main process validates them. */
export function ipcClient(bridge: OpsBridge): ApiClient {
  return {
    async call<M extends MethodName>(method: M, input: MethodInput<M>) {
      return unwrap<MethodOutput<M>>(await bridge.call(method, input))
    },
    on<E extends EventName>(event: E, listener: (p: EventPayload<E>) => void) {
      return bridge.on(event, listener as (p: unknown) => void)
    },
  }
}

export type ConnectionState = 'connecting' | 'open' | 'closed'

/**
 * Browser: one WebSocket to the host (the session cookie authenticates it), reconnecting with
 * back-off. Calls made while disconnected fail at once with a message that says so.
 */
export function wsClient(
  onState: (s: ConnectionState) => void,
  url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WS_PATH}`,
): ApiClient {
  let ws: WebSocket | null = null
  let nextId = 1
  let delay = 500
  const pending = new Map<number, { resolve: (r: Reply<unknown>) => void }>()
  const listeners = new Map<string, Set<(p: unknown) => void>>()
  let opened: Promise<void>
  let markOpen: () => void = () => {}

  const connect = () => {
    opened = new Promise((r) => (markOpen = r))
    onState('connecting')
    ws = new WebSocket(url)
    ws.onopen = () => {
      delay = 500
      onState('open')
      markOpen()
    }
    ws.onmessage = (m) => {
      const f = JSON.parse(String(m.data)) as ServerFrame
      if ('event' in f) listeners.get(f.event)?.forEach((l) => l(f.payload))
      else {
        pending.get(f.id)?.resolve(f.ok ? { ok: true, value: f.value } : { ok: false, error: f.error })
        pending.delete(f.id)
      }
    }
    ws.onclose = () => {
      onState('closed')
      for (const p of pending.values())
        p.resolve({ ok: false, error: { code: 'disconnected', message: 'The connection to the host was lost; reconnecting.' } })
      pending.clear()
      setTimeout(connect, delay)
      delay = Math.min(delay * 2, 10_000)
    }
  }
  connect()

  return {
    async call<M extends MethodName>(method: M, input: MethodInput<M>) {
      await Promise.race([opened, new Promise((r) => setTimeout(r, 5000))])
      if (!ws || ws.readyState !== WebSocket.OPEN)
        throw new CallError('disconnected', 'Not connected to the host: is "npm run serve" still running?')
      const id = nextId++
      const reply = await new Promise<Reply<unknown>>((resolve) => {
        pending.set(id, { resolve })
        ws!.send(JSON.stringify({ id, method, input }))
      })
      return unwrap<MethodOutput<M>>(reply)
    },
    on<E extends EventName>(event: E, listener: (p: EventPayload<E>) => void) {
      const set = listeners.get(event) ?? new Set()
      listeners.set(event, set)
      set.add(listener as (p: unknown) => void)
      return () => set.delete(listener as (p: unknown) => void)
    },
  }
}
