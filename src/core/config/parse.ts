import { OpsError } from '../../shared/contract'
import { parsePairs } from '../auth/identity'
import { DEFAULT_COMPRESSION, parseCompression } from '../backup/compression'
import { settingKeys } from './keys'

/**
 * One function per setting that turns its raw text into the value the console uses, or throws an
 * OpsError('bad_setting') that says what the value must be. The configuration loader (config.ts) and
 * settings.update (settings/update.ts) both call these, so what the Settings page accepts is exactly what
 * the next start accepts. Messages never contain a secret's value.
 */

function num(value: string | undefined, key: string, min: number, max: number): number {
  const n = Number(value)
  if (value === undefined || value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new OpsError('bad_setting', `${key} must be a number from ${min} to ${max}; it is "${value ?? ''}".`)
  }
  return n
}

/** "30s", "15m", "24h", "7d" or "off". */
export function every(v: string | undefined, key: string): number | null {
  if (!v || /^(off|no|none|0)$/i.test(v.trim())) return null
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/i.exec(v.trim())
  if (!m) throw new OpsError('bad_setting', `${key} must be an interval like 15m, 6h or 1d, or "off"; it is "${v}".`)
  const ms = Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2].toLowerCase() as 's']
  if (ms < 1000) throw new OpsError('bad_setting', `${key} must be at least 1s; it is "${v}".`)
  return ms
}

/** A duration: "90s", "2m", "1h", or a number of seconds; never "off" (a wait must end). */
export function duration(v: string | undefined, key: string, minMs: number, maxMs: number): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i.exec((v ?? '').trim())
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's').toLowerCase() as 's'] : NaN
  if (!Number.isFinite(ms) || ms < minMs || ms > maxMs)
    throw new OpsError(
      'bad_setting',
      `${key} must be a duration like 30s, 2m or 1h, from ${minMs / 1000} s to ${maxMs / 3_600_000} h; it is "${v ?? ''}".`,
    )
  return ms
}

function oneOf<T extends string>(v: string | undefined, key: string, choices: Record<T, RegExp>, fallback: NoInfer<T>): T {
  if (v === undefined || v.trim() === '') return fallback
  for (const [name, re] of Object.entries(choices) as [T, RegExp][]) if (re.test(v.trim())) return name
  throw new OpsError('bad_setting', `${key} must be ${Object.keys(choices).join(', ')}; it is "${v}".`)
}

function url(v: string | undefined, key: string, example: string): string | null {
  if (v === undefined || v === '') return null
  try {
    new URL(v)
  } catch {
    // The value is not repeated: a URL may carry a password.
    throw new OpsError('bad_setting', `${key} must be a URL (for example ${example}).`)
  }
  return v
}

const EMAIL = /^[^\s@,;=<>"]+@[^\s@,;=<>"]+\.[^\s@,;=<>"]+$/

function emails(v: string | undefined, key: string): string[] {
  const list = (v ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
  const bad = list.filter((e) => !EMAIL.test(e))
  if (bad.length)
    throw new OpsError(
      'bad_setting',
      `${key} must be comma-separated e-mail addresses (like ops@examforge.com); ${bad.map((b) => `"${b}"`).join(', ')} ${bad.length === 1 ? 'is not one' : 'are not'}.`,
    )
  return list
}

/** ERROR_INGEST_ADDR: host:port, or [v6]:port. */
function ingestAddr(v: string): { ingestHost: string; ingestPort: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v.trim())
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) throw new OpsError('bad_setting', `ERROR_INGEST_ADDR must be host:port (e.g. 127.0.0.1:7481); it is "${v}".`)
  return { ingestHost: m[1] ?? m[2], ingestPort: port }
}

const text = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v)

/** Severities that open an incident: "critical", "critical,warning"; "none" (or "off", "never") opens none. */
function severityList(v: string | undefined, key: string): ('critical' | 'warning' | 'info')[] {
  const raw = (v ?? '').trim()
  if (/^(none|off|never|-)$/i.test(raw) || raw === '') return []
  const list = raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
  const bad = list.filter((s) => s !== 'critical' && s !== 'warning' && s !== 'info')
  if (bad.length)
    throw new OpsError(
      'bad_setting',
      `${key} must be comma-separated severities (critical, warning, info), or "none" to never open an incident by itself; ${bad.map((b) => `"${b}"`).join(', ')} ${bad.length === 1 ? 'is not one' : 'are not'}.`,
    )
  return [...new Set(list)] as ('critical' | 'warning' | 'info')[]
}

/** Every setting's parser. A key's raw value is undefined when it is unset and has no default. */
export const parsers = {
  DATABASE_URL: (v: string | undefined) => url(v, 'DATABASE_URL', 'postgres://user:password@host:5432/db'),
  OPS_DATABASE_URL: (v: string | undefined) => url(v, 'OPS_DATABASE_URL', 'postgres://user:password@host:5432/db'),
  LOCAL_BACKUP_PATH: text,
  BACKUP_S3_BUCKET: text,
  AWS_REGION: text,
  S3_ENDPOINT: (v: string | undefined) => url(v, 'S3_ENDPOINT', 'https://s3.example.com'),
  S3_PREFIX: text,
  AWS_ACCESS_KEY_ID: text,
  AWS_SECRET_ACCESS_KEY: text,
  BACKUP_COMPRESSION: (v: string | undefined) => {
    try {
      parseCompression(v)
    } catch (e) {
      throw new OpsError('bad_setting', (e as Error).message)
    }
    return v ?? DEFAULT_COMPRESSION
  },
  BACKUP_INCREMENTAL: (v: string | undefined) =>
    oneOf(v, 'BACKUP_INCREMENTAL', { auto: /^auto$/i, on: /^(on|yes|true|1)$/i, off: /^(off|no|false|0)$/i }, 'auto'),
  BACKUP_SLOT_WARN_MB: (v: string | undefined) => num(v, 'BACKUP_SLOT_WARN_MB', 1, 10_000_000) * 1024 * 1024,
  BACKUP_LOCK_TIMEOUT: (v: string | undefined) => duration(v, 'BACKUP_LOCK_TIMEOUT', 1000, 24 * 3_600_000),
  DB_CONNECT_TIMEOUT_S: (v: string | undefined) => num(v, 'DB_CONNECT_TIMEOUT_S', 1, 300) * 1000,
  BACKUP_PARALLELISM: (v: string | undefined) => (v ? Math.round(num(v, 'BACKUP_PARALLELISM', 1, 32)) : null),
  BACKUP_CHUNK_MB: (v: string | undefined) => num(v, 'BACKUP_CHUNK_MB', 1, 65_536) * 1024 * 1024,
  BACKUP_ENCRYPTION_KEY: text,
  BACKUP_ENCRYPTION_PASSPHRASE: text,
  S3_SSE: (v: string | undefined): 'AES256' | 'aws:kms' | null => {
    if (!v) return null
    if (v === 'AES256' || v === 'aws:kms') return v
    throw new OpsError('bad_setting', `S3_SSE must be "AES256" or "aws:kms" (or empty); it is "${v}".`)
  },
  S3_SSE_KMS_KEY_ID: text,
  BACKUP_RETAIN_DAYS: (v: string | undefined) => num(v, 'BACKUP_RETAIN_DAYS', 0, 36_500),
  BACKUP_KEEP_FULLS: (v: string | undefined) => num(v, 'BACKUP_KEEP_FULLS', 1, 1000),
  BACKUP_FULL_EVERY: (v: string | undefined) => every(v, 'BACKUP_FULL_EVERY'),
  BACKUP_INCREMENTAL_EVERY: (v: string | undefined) => every(v, 'BACKUP_INCREMENTAL_EVERY'),
  RESTORE_TEST_EVERY: (v: string | undefined) => every(v, 'RESTORE_TEST_EVERY'),
  BACKUP_SCHEMA_WATCH: (v: string | undefined) => every(v ?? '1m', 'BACKUP_SCHEMA_WATCH'),
  ADMIN_EMAILS: (v: string | undefined) => emails(v, 'ADMIN_EMAILS'),
  OPS_API_TOKENS: (v: string | undefined) => {
    const pairs = Object.entries(parsePairs(v, 'OPS_API_TOKENS')).map(([email, token]) => ({ email: email.toLowerCase(), token }))
    emails(pairs.map((p) => p.email).join(','), 'OPS_API_TOKENS (the part before each "=")')
    return pairs
  },
  OPS_OS_USERS: (v: string | undefined) => {
    const pairs = Object.entries(parsePairs(v, 'OPS_OS_USERS')).map(([u, e]) => [u, e.toLowerCase()] as const)
    emails(pairs.map((p) => p[1]).join(','), 'OPS_OS_USERS (the part after each "=")')
    return Object.fromEntries(pairs) as Record<string, string>
  },
  REDIS_URL: (v: string | undefined) => url(v, 'REDIS_URL', 'redis://host:6379'),
  STRIPE_SECRET_KEY: text,
  STRIPE_API_BASE: (v: string | undefined) =>
    (url(v, 'STRIPE_API_BASE', 'https://api.stripe.com') ?? 'https://api.stripe.com').replace(/\/+$/, ''),
  APP_URL: (v: string | undefined) => url(v, 'APP_URL', 'https://examforge.example'),
  APP_HEALTH_PATH: (v: string | undefined) => {
    if (!v) return '/api/health'
    if (!v.startsWith('/') || /\s/.test(v))
      throw new OpsError('bad_setting', `APP_HEALTH_PATH must be a path starting with "/" (like /api/health); it is "${v}".`)
    return v
  },
  APP_HEALTH_KEYWORD: text,
  METRICS_INTERVAL_S: (v: string | undefined) => num(v, 'METRICS_INTERVAL_S', 1, 60) * 1000,
  HEALTH_INTERVAL_S: (v: string | undefined) => num(v, 'HEALTH_INTERVAL_S', 1, 3600),
  PROBE_TIMEOUT_MS: (v: string | undefined) => num(v, 'PROBE_TIMEOUT_MS', 100, 120_000),
  HOST_LOAD_WARN_PER_CORE: (v: string | undefined) => num(v, 'HOST_LOAD_WARN_PER_CORE', 0.1, 10_000),
  HOST_MEMORY_WARN_PERCENT: (v: string | undefined) => num(v, 'HOST_MEMORY_WARN_PERCENT', 1, 100) / 100,
  ALERT_RULES_FILE: text,
  ALERT_WEBHOOK_URL: (v: string | undefined) => url(v, 'ALERT_WEBHOOK_URL', 'https://alerts.example/hook'),
  ALERT_SLACK_WEBHOOK_URL: (v: string | undefined) => url(v, 'ALERT_SLACK_WEBHOOK_URL', 'https://hooks.slack.com/services/…'),
  ALERT_DISCORD_WEBHOOK_URL: (v: string | undefined) => url(v, 'ALERT_DISCORD_WEBHOOK_URL', 'https://discord.com/api/webhooks/…'),
  SMTP_URL: (v: string | undefined) => url(v, 'SMTP_URL', 'smtps://user:password@smtp.example:465'),
  ALERT_EMAIL_TO: (v: string | undefined) => emails(v, 'ALERT_EMAIL_TO'),
  ALERT_DESKTOP: (v: string | undefined) =>
    oneOf(v, 'ALERT_DESKTOP', { on: /^(on|1|true|yes)$/i, off: /^(off|0|false|no)$/i }, 'on') === 'on',
  ALERT_GROUP_WAIT: (v: string | undefined) => duration(v ?? '30s', 'ALERT_GROUP_WAIT', 0, 24 * 3_600_000),
  ALERT_GROUP_INTERVAL: (v: string | undefined) => duration(v ?? '5m', 'ALERT_GROUP_INTERVAL', 0, 7 * 24 * 3_600_000),
  ALERT_REPEAT_INTERVAL: (v: string | undefined) => duration(v ?? '4h', 'ALERT_REPEAT_INTERVAL', 1000, 30 * 24 * 3_600_000),
  ERROR_INGEST_ADDR: (v: string | undefined) => ingestAddr(v || '127.0.0.1:7481'),
  ERROR_DSN_KEY: text,
  ERROR_RETAIN_DAYS: (v: string | undefined) => num(v, 'ERROR_RETAIN_DAYS', 1, 3650),
  ERROR_EVENTS_PER_GROUP: (v: string | undefined) => num(v, 'ERROR_EVENTS_PER_GROUP', 1, 1_000_000),
  ERROR_SCRUB_EMAILS: (v: string | undefined) =>
    oneOf(v, 'ERROR_SCRUB_EMAILS', { on: /^(on|1|true|yes)$/i, off: /^(off|0|false|no)$/i }, 'on') === 'on',
  ERROR_SCRUB_IPS: (v: string | undefined) =>
    oneOf(v, 'ERROR_SCRUB_IPS', { on: /^(on|1|true|yes)$/i, off: /^(off|0|false|no)$/i }, 'off') === 'on',
  ERROR_INGEST_RATE: (v: string | undefined) => num(v, 'ERROR_INGEST_RATE', 1, 10_000_000),
  INCIDENT_AUTO_OPEN_SEVERITIES: (v: string | undefined) => severityList(v, 'INCIDENT_AUTO_OPEN_SEVERITIES'),
  INCIDENT_JOIN_WINDOW: (v: string | undefined) => duration(v ?? '15m', 'INCIDENT_JOIN_WINDOW', 0, 24 * 3_600_000),
  INCIDENT_TIMELINE_MARGIN: (v: string | undefined) => duration(v ?? '30m', 'INCIDENT_TIMELINE_MARGIN', 0, 24 * 3_600_000),
  SANDBOX_SCALE: (v: string | undefined) => num(v, 'SANDBOX_SCALE', 0.01, 1000),
  SANDBOX_TRAFFIC: (v: string | undefined) =>
    oneOf(v, 'SANDBOX_TRAFFIC', { on: /^(on|1|true|yes)$/i, off: /^(off|0|false|no)$/i }, 'on') === 'on',
} satisfies Record<string, (v: string | undefined) => unknown>

export type Parsed = { [K in keyof typeof parsers]: ReturnType<(typeof parsers)[K]> }

/**
 * The check settings.update runs before saving: the key's own parser on the new value (null clears it
 * back to its default, always allowed). Throws OpsError('invalid_input') with the parser's message.
 */
export function checkSettingValue(key: string, value: string | null): void {
  const parse = (parsers as Record<string, (v: string | undefined) => unknown>)[key]
  if (!parse || value === null) return
  try {
    parse(value)
  } catch (e) {
    throw new OpsError('invalid_input', `${(e as Error).message} Nothing was saved; enter a valid value or clear it to use the default.`)
  }
}

// Every key in keys.ts has its parser (checked when this module loads, so a new key cannot skip it).
for (const k of settingKeys)
  if (!(k.key in parsers)) throw new Error(`config/parse.ts has no parser for ${k.key}; add one next to the others.`)
