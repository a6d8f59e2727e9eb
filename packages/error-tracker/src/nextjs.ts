/**
 * Next.js hooks: a wrapper for route handlers and one for server actions (the error is captured with
 * the request and the user / team ids the app passes, then rethrown so Next.js answers as usual), and
 * `onRequestError` for instrumentation.ts:
 *
 *   // instrumentation.ts
 *   import { errorTracker, onRequestError } from '@examforge/error-tracker'
 *   export function register() { errorTracker.init({ dsn: process.env.ERROR_DSN! }) }
 *   export { onRequestError }
 *
 * Headers are scrubbed before sending (Authorization, Cookie and every sensitive-looking header).
 */
import { errorTracker, type CaptureContext } from './index'

interface RequestLike {
  method?: string
  url?: string
  headers?: Headers | Record<string, string | string[] | undefined> | { forEach(fn: (v: string, k: string) => void): void }
}

function headersOf(h: RequestLike['headers']): Record<string, string> {
  const out: Record<string, string> = {}
  if (!h) return out
  if (typeof (h as Headers).forEach === 'function') (h as Headers).forEach((v, k) => (out[k] = v))
  else for (const [k, v] of Object.entries(h)) if (v != null) out[k] = Array.isArray(v) ? v.join(', ') : String(v)
  return out
}

export function requestContext(req: RequestLike | undefined): CaptureContext['request'] {
  if (!req) return undefined
  return { method: req.method, url: req.url, headers: headersOf(req.headers) }
}

type Ids = (req: unknown) => { userId?: string; teamId?: string } | undefined

/** Wrap an App Router route handler: `export const GET = wrapRouteHandler(async (req) => …, { ids })`. */
export function wrapRouteHandler<A extends unknown[], R>(handler: (...args: A) => Promise<R> | R, o: { ids?: Ids } = {}) {
  return async (...args: A): Promise<R> => {
    try {
      return await handler(...args)
    } catch (e) {
      let ids: ReturnType<Ids> = undefined
      try {
        ids = o.ids?.(args[0])
      } catch {
        /* the app's id lookup failing must not hide the error */
      }
      errorTracker.captureError(e, { request: requestContext(args[0] as RequestLike), ...ids, tags: { handler: 'route' } })
      throw e
    }
  }
}

/** Wrap a server action: `export const save = wrapServerAction('saveQuiz', async (form) => …)`. */
export function wrapServerAction<A extends unknown[], R>(
  name: string,
  action: (...args: A) => Promise<R>,
  o: { ids?: () => { userId?: string; teamId?: string } | undefined } = {},
) {
  return async (...args: A): Promise<R> => {
    try {
      return await action(...args)
    } catch (e) {
      let ids
      try {
        ids = o.ids?.()
      } catch {
        ids = undefined
      }
      errorTracker.captureError(e, { ...ids, tags: { handler: 'server_action', action: name } })
      throw e
    }
  }
}

/** Next.js's instrumentation hook (Next 15): called for errors in routes, pages, actions and middleware. */
export function onRequestError(
  error: unknown,
  request: { path?: string; method?: string; headers?: Record<string, string | string[] | undefined> },
  context?: { routerKind?: string; routePath?: string; routeType?: string; renderSource?: string },
): void {
  try {
    errorTracker.captureError(error, {
      request: { method: request?.method, url: request?.path, headers: headersOf(request?.headers) },
      tags: {
        handler: 'onRequestError',
        ...(context?.routeType ? { route_type: context.routeType } : {}),
        ...(context?.routePath ? { route: context.routePath } : {}),
        ...(context?.routerKind ? { router: context.routerKind } : {}),
      },
    })
  } catch {
    /* never into the app */
  }
}
