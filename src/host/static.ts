import { createReadStream, existsSync, statSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { extname, join, normalize, resolve, sep } from 'node:path'

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
}

/** The same CSP as the Electron window, with the WebSocket back to this host allowed. */
export const hostCsp =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

function decode(path: string): string | null {
  try {
    return decodeURIComponent(path)
  } catch {
    return null
  }
}

/**
 * Serve the built renderer; unknown paths fall back to index.html (client-side routes).
 * 'bad_path' for a path that does not decode or leaves the folder; 'not_built' without index.html.
 */
export function serveStatic(root: string, urlPath: string, res: ServerResponse): 'served' | 'bad_path' | 'not_built' {
  const base = resolve(root)
  const decoded = decode(urlPath)
  if (decoded === null || decoded.includes('\0')) return 'bad_path'
  let file = normalize(join(base, decoded))
  if (file !== base && !file.startsWith(base + sep)) return 'bad_path'
  if (!existsSync(file) || statSync(file).isDirectory()) file = join(base, 'index.html')
  if (!existsSync(file)) return 'not_built'
  res.writeHead(200, {
    'Content-Type': types[extname(file)] ?? 'application/octet-stream',
    'Content-Security-Policy': hostCsp,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': file.endsWith('index.html') ? 'no-store' : 'public, max-age=3600',
  })
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res)
  return 'served'
}
