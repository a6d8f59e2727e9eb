import type { ApiClient, EventName, EventPayload, MethodInput, MethodName, MethodOutput, Reply } from '../../../shared/contract'
import {
  SESSION_FRAGMENT,
  SESSION_HEADER,
  SESSION_PROTOCOL_PREFIX,
  SIGNED_OUT_PATH,
  SIGN_OUT_PATH,
  WS_PATH,
  WS_PROTOCOL,
  WS_SESSION_ENDED,
  type ServerFrame,
} from '../../../shared/ws-protocol'
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

/**
 * connecting: the first connection; open; closed: lost, retrying (the host is away); ended: the host
 * answers but this tab's session is gone (it restarted, or the session ended): only a new link helps.
 */
export type ConnectionState = 'connecting' | 'open' | 'closed' | 'ended'

const SECRET_KEY = 'ops-session'

/**
 * The tab's session secret: the launch redirect puts it in the address fragment once; it moves to
 * sessionStorage (this tab only, this origin only) and leaves the address bar and history.
 */
function takeSessionSecret(): string | null {
  const h = location.hash
  if (h.startsWith(`#${SESSION_FRAGMENT}`)) {
    sessionStorage.setItem(SECRET_KEY, h.slice(1 + SESSION_FRAGMENT.length))
    history.replaceState(null, '', location.pathname + location.search)
  }
  return sessionStorage.getItem(SECRET_KEY)
}

/** The session is over (signed out, expired, or this tab never had one): show the host's page saying what to do. */
function leave(): void {
  sessionStorage.removeItem(SECRET_KEY)
  location.replace(SIGNED_OUT_PATH)
}

/**
 * Browser: one WebSocket to the host, reconnecting with back-off. The session cookie and the tab's
 * secret (sent as a subprotocol) authenticate it. Calls made while disconnected fail at once with
 * a message that says so. signOut ends the session on the host.
 */
export function wsClient(
  onState: (s: ConnectionState) => void,
  url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WS_PATH}`,
): ApiClient & { signOut(): Promise<void> } {
  const secret = takeSessionSecret()
  let ws: WebSocket | null = null
  let nextId = 1
  let delay = 500
  const pending = new Map<number, { resolve: (r: Reply<unknown>) => void }>()
  const listeners = new Map<string, Set<(p: unknown) => void>>()
  let opened: Promise<void> = new Promise(() => {})
  let markOpen: () => void = () => {}

  /** After a close: is the session still good (the host is just away: retry) or over (say so)? */
  const stillSignedIn = () =>
    fetch('/api/call/app.info', { method: 'POST', headers: { [SESSION_HEADER]: secret ?? '' }, body: '{}' }).then(
      (r) => r.status !== 401,
      () => true,
    )

  let ended = false
  const end = () => {
    ended = true
    onState('ended')
  }

  const connect = () => {
    opened = new Promise((r) => (markOpen = r))
    onState('connecting')
    ws = new WebSocket(url, [WS_PROTOCOL, `${SESSION_PROTOCOL_PREFIX}${secret}`])
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
    ws.onclose = (e) => {
      for (const p of pending.values())
        p.resolve({ ok: false, error: { code: 'disconnected', message: 'The connection to the host was lost; reconnecting.' } })
      pending.clear()
      if (ended) return
      // The host closed this session's socket (signed out elsewhere, idle, too old): the page stays, greyed, and says so.
      if (e.code === WS_SESSION_ENDED) return end()
      onState('closed')
      const retry = () => {
        setTimeout(connect, delay)
        delay = Math.min(delay * 2, 10_000)
      }
      // A refused handshake (401) looks like any other close here: ask the host whether the session is still good.
      void stillSignedIn().then((ok) => (ok ? retry() : end()))
    }
  }
  if (secret) connect()
  else leave()

  return {
    async call<M extends MethodName>(method: M, input: MethodInput<M>) {
      await Promise.race([opened, new Promise((r) => setTimeout(r, 5000))])
      if (ended)
        throw new CallError(
          'session_ended',
          'This session has ended (the host restarted, or the session expired): run "examforge-ops open" on the machine running the host and open the link it prints.',
        )
      if (!ws || ws.readyState !== WebSocket.OPEN)
        throw new CallError('disconnected', 'Not connected to the host: is "examforge-ops serve" still running?')
      const id = nextId++
      const reply = await new Promise<Reply<unknown>>((resolve) => {
        pending.set(id, { resolve })
        ws!.send(JSON.stringify({ id, method, input }))
      })
      return unwrap<MethodOutput<M>>(reply)
    },
    async signOut() {
      await fetch(SIGN_OUT_PATH, { method: 'POST', headers: { [SESSION_HEADER]: secret ?? '' } }).catch(() => {})
      leave()
    },
    on<E extends EventName>(event: E, listener: (p: EventPayload<E>) => void) {
      const set = listeners.get(event) ?? new Set()
      listeners.set(event, set)
      set.add(listener as (p: unknown) => void)
      return () => set.delete(listener as (p: unknown) => void)
    },
  }
}
