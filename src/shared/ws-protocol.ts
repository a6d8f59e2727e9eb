/**
 * Frames on the host's WebSocket, and how a browser session proves itself. Requests carry an id;
 * replies echo it; events have none. A browser session is its HttpOnly cookie AND a per-tab secret
 * the page holds (sent as the X-Ops-Session header on HTTP, and as a second WebSocket subprotocol
 * "ops-session.<secret>" in the handshake): a page on another local port is sent the cookie by the
 * browser, but cannot read the secret.
 */
import { z } from 'zod'
import type { ErrorBody } from './contract'

export const clientFrame = z.object({
  id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  method: z.string().max(200),
  input: z.unknown(),
})
export type ClientFrame = z.infer<typeof clientFrame>
export type ServerFrame =
  { id: number; ok: true; value: unknown } | { id: number; ok: false; error: ErrorBody } | { event: string; payload: unknown }

export const WS_PATH = '/ws'
export const SESSION_COOKIE = 'ops_session'
/** The header carrying the page's session secret on HTTP calls. */
export const SESSION_HEADER = 'x-ops-session'
/** The subprotocol the host answers with; the secret rides as a second one, SESSION_PROTOCOL_PREFIX + secret. */
export const WS_PROTOCOL = 'ops.v1'
export const SESSION_PROTOCOL_PREFIX = 'ops-session.'
/** Where the launch redirect puts the secret for the page to take (then removed from the address). */
export const SESSION_FRAGMENT = 'ops-session='
/** Close code when the session ended (signed out or expired): the page shows how to sign in again. */
export const WS_SESSION_ENDED = 4401
/** Host routes outside the contract. */
export const SIGN_OUT_PATH = '/api/session/sign-out'
export const SIGNED_OUT_PATH = '/signed-out'
export const LAUNCH_PATH = '/api/session/launch-link'
