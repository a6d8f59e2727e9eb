/** Frames on the host's WebSocket. Requests carry an id; replies echo it; events have none. */
import type { ErrorBody } from './contract'

export type ClientFrame = { id: number; method: string; input: unknown }
export type ServerFrame =
  { id: number; ok: true; value: unknown } | { id: number; ok: false; error: ErrorBody } | { event: string; payload: unknown }

export const WS_PATH = '/ws'
export const SESSION_COOKIE = 'ops_session'
