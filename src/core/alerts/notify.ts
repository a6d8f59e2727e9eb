/**
 * Channels and their payloads: Slack incoming webhook (an attachment coloured by severity), Discord
 * webhook (an embed), a generic webhook in Alertmanager's webhook format (version "4", so receivers
 * written for Alertmanager work unchanged), e-mail over SMTP (nodemailer), and the desktop (an event the
 * Electron shell turns into a Notification and the browser face into the Notifications API).
 *
 * Delivery retries with back-off on network errors, timeouts, 5xx and 429 (honouring Retry-After, capped),
 * and reports attempts and the last error. Channel URLs and the SMTP password are secrets: no error
 * message, log line or delivery log names them (errors say the channel and the HTTP status only).
 */
import os from 'node:os'
import { createTransport } from 'nodemailer'
import type { Rule } from './rules'

export type ChannelType = 'webhook' | 'slack' | 'discord' | 'email' | 'desktop'

export interface Channel {
  name: string
  type: ChannelType
  /** The webhook URL or SMTP URL (secrets). */
  url?: string
  to?: string[]
  groupWaitMs: number
  groupIntervalMs: number
  repeatIntervalMs: number
}

export interface NotifiedAlert {
  rule: string
  fingerprint: string
  status: 'firing' | 'resolved'
  severity: Rule['severity']
  labels: Record<string, string>
  annotations: Record<string, string>
  value: number | null
  text: string | null
  startsAt: number
  endsAt: number | null
}

export interface Notification {
  channel: string
  groupKey: string
  status: 'firing' | 'resolved'
  groupLabels: Record<string, string>
  alerts: NotifiedAlert[]
  /** The console's address, for links ("" when not known). */
  externalUrl: string
}

export interface DeliveryResult {
  ok: boolean
  attempts: number
  error: string | null
}

const iso = (t: number) => new Date(t).toISOString()
const ZERO_TIME = '0001-01-01T00:00:00Z'
const COLOUR = { critical: '#d32f2f', warning: '#f9a825', info: '#1e88e5', resolved: '#2e7d32' } as const

function common(alerts: NotifiedAlert[], pick: (a: NotifiedAlert) => Record<string, string>): Record<string, string> {
  if (!alerts.length) return {}
  const out: Record<string, string> = { ...pick(alerts[0]) }
  for (const a of alerts.slice(1)) for (const k of Object.keys(out)) if (pick(a)[k] !== out[k]) delete out[k]
  return out
}

const summaryOf = (a: NotifiedAlert) => a.annotations.summary ?? `${a.rule}: ${a.text ?? a.value ?? ''}`

/** Alertmanager's webhook JSON (version 4). */
export function alertmanagerPayload(n: Notification, receiver: string) {
  return {
    version: '4',
    groupKey: n.groupKey,
    truncatedAlerts: 0,
    status: n.status,
    receiver,
    groupLabels: n.groupLabels,
    commonLabels: common(n.alerts, (a) => a.labels),
    commonAnnotations: common(n.alerts, (a) => a.annotations),
    externalURL: n.externalUrl,
    alerts: n.alerts.map((a) => ({
      status: a.status,
      labels: a.labels,
      annotations: a.annotations,
      startsAt: iso(a.startsAt),
      endsAt: a.endsAt ? iso(a.endsAt) : ZERO_TIME,
      generatorURL: n.externalUrl,
      fingerprint: a.fingerprint,
    })),
  }
}

function title(n: Notification): string {
  const firing = n.alerts.filter((a) => a.status === 'firing').length
  const name = n.groupLabels.alertname ?? n.groupKey
  return n.status === 'firing' ? `[FIRING:${firing}] ${name}` : `[RESOLVED] ${name}`
}

export function slackPayload(n: Notification) {
  return {
    text: title(n),
    attachments: n.alerts.map((a) => ({
      color: a.status === 'resolved' ? COLOUR.resolved : COLOUR[a.severity],
      title: `${a.status === 'resolved' ? 'Resolved' : a.severity.toUpperCase()}: ${a.rule}`,
      text: summaryOf(a),
      fields: [
        { title: 'Service', value: a.labels.service ?? a.labels.host ?? '-', short: true },
        { title: 'Value', value: a.text ?? String(a.value ?? '-'), short: true },
        { title: 'Since', value: iso(a.startsAt), short: true },
        ...(a.annotations.runbook_url ? [{ title: 'Runbook', value: a.annotations.runbook_url, short: false }] : []),
      ],
      ...(n.externalUrl ? { title_link: n.externalUrl } : {}),
      ts: Math.floor((a.endsAt ?? a.startsAt) / 1000),
    })),
  }
}

export function discordPayload(n: Notification) {
  const hex = (c: string) => parseInt(c.slice(1), 16)
  return {
    content: title(n),
    embeds: n.alerts.slice(0, 10).map((a) => ({
      title: `${a.status === 'resolved' ? 'Resolved' : a.severity.toUpperCase()}: ${a.rule}`,
      description: summaryOf(a),
      color: hex(a.status === 'resolved' ? COLOUR.resolved : COLOUR[a.severity]),
      fields: [
        { name: 'Value', value: a.text ?? String(a.value ?? '-'), inline: true },
        { name: 'Since', value: iso(a.startsAt), inline: true },
        ...Object.entries(a.labels)
          .slice(0, 5)
          .map(([k, v]) => ({ name: k, value: v || '-', inline: true })),
      ],
      timestamp: iso(a.endsAt ?? a.startsAt),
      ...(n.externalUrl ? { url: n.externalUrl } : {}),
    })),
  }
}

export function mailText(n: Notification): { subject: string; text: string } {
  const lines = n.alerts.map(
    (a) =>
      `${a.status.toUpperCase()} ${a.severity} ${a.rule}: ${summaryOf(a)}\n  value: ${a.text ?? a.value ?? '-'}\n  since: ${iso(a.startsAt)}` +
      `${a.endsAt ? `\n  resolved: ${iso(a.endsAt)}` : ''}\n  labels: ${Object.entries(a.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
  )
  return { subject: `ExamForge Ops ${title(n)}`, text: lines.join('\n\n') + (n.externalUrl ? `\n\n${n.externalUrl}\n` : '\n') }
}

export interface SendOptions {
  /** Attempts in all (first try included). */
  attempts?: number
  /** First back-off; doubles each retry. */
  backoffMs?: number
  /** The longest a Retry-After is honoured. */
  maxRetryAfterMs?: number
  timeoutMs?: number
  /** The desktop channel: hand the notification to whichever face shows it. */
  desktop?: (n: { title: string; body: string; severity: string }) => void
}

/** Seconds or an HTTP date, as ms from now; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (!header) return null
  const s = Number(header)
  if (Number.isFinite(s)) return Math.max(0, s * 1000)
  const t = Date.parse(header)
  return Number.isNaN(t) ? null : Math.max(0, t - now)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function postJson(channel: Channel, body: unknown, o: SendOptions): Promise<DeliveryResult> {
  const attempts = o.attempts ?? 4
  let backoff = o.backoffMs ?? 1000
  let error = ''
  for (let i = 1; i <= attempts; i++) {
    let wait = backoff
    try {
      const res = await fetch(channel.url!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'examforge-ops' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
        redirect: 'error',
      })
      await res.arrayBuffer().catch(() => {})
      if (res.ok) return { ok: true, attempts: i, error: null }
      error = `the ${channel.name} channel answered HTTP ${res.status}`
      if (res.status !== 429 && res.status < 500) return { ok: false, attempts: i, error: `${error}; check its URL (not retried)` }
      const ra = retryAfterMs(res.headers.get('retry-after'))
      if (ra !== null) wait = Math.min(ra, o.maxRetryAfterMs ?? 60_000)
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } }
      error =
        err.name === 'TimeoutError'
          ? `the ${channel.name} channel did not answer within ${o.timeoutMs ?? 10_000} ms`
          : `the ${channel.name} channel could not be reached (${err.cause?.code ?? err.name})`
    }
    if (i < attempts) await sleep(wait)
    backoff *= 2
  }
  return { ok: false, attempts, error: `${error}, after ${attempts} attempts` }
}

/** Deliver one notification to one channel, with retries; never throws. */
export async function deliver(channel: Channel, n: Notification, o: SendOptions = {}): Promise<DeliveryResult> {
  switch (channel.type) {
    case 'webhook':
      return postJson(channel, alertmanagerPayload(n, channel.name), o)
    case 'slack':
      return postJson(channel, slackPayload(n), o)
    case 'discord':
      return postJson(channel, discordPayload(n), o)
    case 'desktop': {
      const m = mailText(n)
      o.desktop?.({
        title: m.subject.replace('ExamForge Ops ', ''),
        body: n.alerts.map(summaryOf).join('\n'),
        severity: n.alerts[0]?.severity ?? 'info',
      })
      return { ok: true, attempts: 1, error: null }
    }
    case 'email': {
      const attempts = o.attempts ?? 3
      let error = ''
      const m = mailText(n)
      for (let i = 1; i <= attempts; i++) {
        const transport = createTransport(channel.url!)
        try {
          const user = safeUser(channel.url!)
          await transport.sendMail({
            from: `ExamForge Ops <${user && user.includes('@') ? user : `examforge-ops@${os.hostname()}`}>`,
            to: channel.to ?? [],
            subject: m.subject,
            text: m.text,
          })
          return { ok: true, attempts: i, error: null }
        } catch (e) {
          const err = e as Error & { responseCode?: number; code?: string }
          error = `the ${channel.name} channel's SMTP server refused or failed (${err.responseCode ?? err.code ?? 'error'})`
          if (err.responseCode && err.responseCode < 500 && err.responseCode >= 400) {
            /* 4xx: temporary, retry */
          } else if (err.responseCode && err.responseCode >= 500) return { ok: false, attempts: i, error }
        } finally {
          transport.close()
        }
        if (i < attempts) await sleep((o.backoffMs ?? 1000) * 2 ** (i - 1))
      }
      return { ok: false, attempts, error: `${error}, after ${attempts} attempts` }
    }
  }
}

function safeUser(url: string): string | null {
  try {
    return decodeURIComponent(new URL(url).username) || null
  } catch {
    return null
  }
}
