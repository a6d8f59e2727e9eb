import { readFile, stat } from 'node:fs/promises'
import { extname, isAbsolute, relative, resolve, sep } from 'node:path'

/**
 * The console's own origin, app://console: the packaged window loads its UI from here instead of
 * file://, so the page's origin is not "every local file", 'self' in the CSP means exactly the built
 * renderer, and Electron's extra file:// privileges can be switched off by a fuse. The handler
 * serves files under one folder only; anything else (another host, a path that climbs out, plain or
 * percent-encoded, a folder, a file type we do not ship) is a 404. No Electron import: it takes a
 * Request and answers a Response, so tests call it directly.
 */
export const APP_SCHEME = 'app'
export const APP_HOST = 'console'
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`
export const APP_INDEX_URL = `${APP_ORIGIN}/index.html`

/**
 * How the scheme is registered before Electron is ready: standard (relative URLs and an origin of its
 * own, like https), secure (a secure context) and fetch-capable. Not corsEnabled and not bypassCSP:
 * no other origin may read from it, and the CSP applies.
 */
export const APP_SCHEME_PRIVILEGES: { scheme: string; privileges: { standard: boolean; secure: boolean; supportFetchAPI: boolean } } = {
  scheme: APP_SCHEME,
  privileges: { standard: true, secure: true, supportFetchAPI: true },
}

/** The only file types the built renderer contains; anything else is not served. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
}

function plain(status: number, text: string, csp: string): Response {
  return new Response(text, {
    status,
    headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': csp },
  })
}

/** The file under root that an app:// URL names, or null when it names none (never a path outside root). */
export function resolveAppPath(root: string, url: string): string | null {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return null
  }
  if (parsed.protocol !== `${APP_SCHEME}:` || parsed.host.toLowerCase() !== APP_HOST) return null
  let path: string
  try {
    path = decodeURIComponent(parsed.pathname)
  } catch {
    return null // broken percent-encoding
  }
  if (path.includes('\0') || path.includes('\\')) return null
  if (path === '/' || path === '') path = '/index.html'
  const base = resolve(root)
  const file = resolve(base, `.${path}`)
  const rel = relative(base, file)
  if (!rel || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return null
  return file
}

/** The protocol.handle handler for app://: files under root, with their content type; 404 for everything else. */
export function appProtocolHandler(root: string, csp: string): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return plain(405, 'Only GET and HEAD are served here.', csp)
    const file = resolveAppPath(root, request.url)
    const type = file ? CONTENT_TYPES[extname(file).toLowerCase()] : undefined
    if (!file || !type) return plain(404, 'Not found.', csp)
    try {
      if (!(await stat(file)).isFile()) return plain(404, 'Not found.', csp)
      const body = await readFile(file)
      return new Response(request.method === 'HEAD' ? null : new Uint8Array(body), {
        status: 200,
        headers: {
          'Content-Type': type,
          'Content-Length': String(body.length),
          'X-Content-Type-Options': 'nosniff',
          'Content-Security-Policy': csp,
          'Cache-Control': 'no-cache',
        },
      })
    } catch {
      return plain(404, 'Not found.', csp)
    }
  }
}

/** Whether url is on the same origin (scheme, host and port) as appUrl; false for anything unparsable. */
export function sameOrigin(url: string, appUrl: string): boolean {
  try {
    const a = new URL(url)
    const b = new URL(appUrl)
    return a.protocol === b.protocol && a.host === b.host && a.host !== ''
  } catch {
    return false
  }
}
