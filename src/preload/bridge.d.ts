import type { Reply } from '../shared/contract'

/** What the preload exposes as window.ops: named calls and event subscriptions, nothing else. */
export interface OpsBridge {
  readonly methods: readonly string[]
  readonly events: readonly string[]
  call(method: string, input: unknown): Promise<Reply<unknown>>
  on(event: string, listener: (payload: unknown) => void): () => void
}

declare global {
  interface Window {
    ops?: OpsBridge
  }
}
