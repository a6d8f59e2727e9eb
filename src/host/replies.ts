/**
 * The host's refusals: JSON { ok: false, error: { code, message } } for programs and the page's
 * calls, a plain readable page when a browser navigates (Accept: text/html). Each message says
 * what happened and what to do.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

const NEW_LINK = 'Run "examforge-ops open" on the machine running the host and open the link it prints.'

export const messages = {
  notSignedIn: `Not signed in. Open the one-time link "examforge-ops serve" printed, or: ${NEW_LINK}`,
  sessionEnded: (idleMin: number, maxH: number) =>
    `Your session has ended: you signed out, it was idle for ${idleMin} minutes, it is older than ${maxH} hours, or the host restarted. ${NEW_LINK}`,
  linkUsed: `This launch link was already used: each link signs in one browser tab, once. ${NEW_LINK}`,
  linkExpired: (min: number) => `This launch link has expired (an unused link lasts ${min} minutes). ${NEW_LINK}`,
  linkUnknown: `This launch link is not one this host issued (mistyped, or the host restarted since). ${NEW_LINK}`,
  signedOut: `This tab is not signed in: you signed out, the session ended (idle, too old, or the host restarted), or the tab was opened without its launch link. ${NEW_LINK}`,
}

const titles: Record<number, string> = {
  200: 'ExamForge Ops',
  400: 'Bad request',
  401: 'Not signed in',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  413: 'Too large',
  429: 'Too many calls',
  500: 'Host error',
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

export function wantsHtml(req: IncomingMessage): boolean {
  const a = req.headers.accept
  return typeof a === 'string' && a.includes('text/html')
}

/** A small self-contained page (no script) saying what happened and what to do. */
export function sendPage(res: ServerResponse, status: number, message: string): void {
  const title = titles[status] ?? 'ExamForge Ops'
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
  })
  res.end(
    `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escape(title)} · ExamForge Ops</title>` +
      `<body style="font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1b2430">` +
      `<h1 style="font-size:1.3rem">${escape(title)}</h1><p>${escape(message)}</p></body></html>`,
  )
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}

export function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return void res.end()
  // A caller refused for who it is (or where from) keeps no connection open: it cannot hold connections by asking again.
  if (status === 401 || status === 403) res.shouldKeepAlive = false
  if (wantsHtml(req) && req.method === 'GET') return sendPage(res, status, message)
  sendJson(res, status, { ok: false, error: { code, message } }, headers)
}
