import { existsSync, readFileSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { OpsError } from '../../shared/contract'
import { registerSecret, urlSecrets } from '../log/scrub'
import { parsePairs } from '../auth/identity'
import { settingKeys } from './keys'

export type Source = 'environment' | 'settings file' | 'secret store' | 'sandbox' | 'default' | 'unset'

export interface Config {
  dataDir: string
  databaseUrl: string | null
  opsDatabaseUrl: string | null
  localBackupPath: string
  s3: {
    bucket: string | null
    region: string
    endpoint: string | null
    prefix: string
    accessKeyId: string | null
    secretAccessKey: string | null
  }
  redisUrl: string | null
  stripe: { secretKey: string | null; apiBase: string }
  app: { url: string | null; healthPath: string; keyword: string | null }
  healthIntervalS: number
  /** DB_CONNECT_TIMEOUT_S: every backup and restore connection gives up connecting after this. */
  connectTimeoutMs: number
  probeTimeoutMs: number
  /** When the host probe calls this machine degraded. */
  host: { loadWarnPerCore: number; memoryWarnRatio: number }
  backupRetainDays: number
  backup: {
    compression: string
    incremental: 'auto' | 'on' | 'off'
    keepFulls: number
    fullEveryMs: number | null
    incrementalEveryMs: number | null
    restoreTestEveryMs: number | null
    slotWarnBytes: number
    /** BACKUP_LOCK_TIMEOUT: the longest a backup waits for locks other sessions hold. */
    lockTimeoutMs: number
    parallelism: number | null
    chunkBytes: number
    encryptionKey: string | null
    encryptionPassphrase: string | null
    s3Sse: 'AES256' | 'aws:kms' | null
    s3KmsKeyId: string | null
  }
  adminEmails: string[]
  /** Administrators' API tokens (OPS_API_TOKENS): each authenticates as its e-mail. */
  apiTokens: { email: string; token: string }[]
  /** OS user name to e-mail (OPS_OS_USERS), so the desktop app and the CLI can be administrators. */
  osUsers: Record<string, string>
  metricsIntervalMs: number
  /** Error tracking: the ingest listener, the DSN key (null: generated), retention, scrubbing, rate. */
  errors: {
    ingestHost: string
    ingestPort: number
    dsnKey: string | null
    retainDays: number
    eventsPerGroup: number
    scrubEmails: boolean
    scrubIps: boolean
    ratePerClient: number
  }
  sandbox: { scale: number; traffic: boolean }
  /** Where each value came from, for the Settings page. */
  sources: Record<string, Source>
  /** The raw values by setting key (secrets included: core only). */
  raw: Record<string, string | undefined>
}

export interface ConfigInput {
  env?: Record<string, string | undefined>
  dataDir?: string
  /** Secrets decrypted by the face (safeStorage in Electron, a 0600 file in the host). */
  secrets?: Record<string, string>
}

export function defaultDataDir(env: Record<string, string | undefined> = process.env): string {
  if (env.OPS_DATA_DIR) return env.OPS_DATA_DIR
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'ExamForge Ops')
  if (process.platform === 'win32') return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'ExamForge Ops')
  return join(env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'examforge-ops')
}

/** Non-secret settings saved from the UI. Secrets are refused here: they belong in the secret store. */
export function readSettingsFile(dataDir: string): Record<string, string> {
  const file = join(dataDir, 'settings.json')
  if (!existsSync(file)) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (e) {
    throw new OpsError(
      'bad_settings',
      `The settings file ${file} is not valid JSON (${(e as Error).message}). Fix or delete it, then start again.`,
    )
  }
  const out: Record<string, string> = {}
  for (const k of settingKeys) {
    const v = (parsed as Record<string, unknown>)[k.key]
    if (typeof v === 'string' && !k.secret) out[k.key] = v
  }
  return out
}

/**
 * Secrets for the headless host: the environment, or a file readable by its owner alone
 * (OPS_SECRETS_FILE, lines of KEY=value). A file others can read is refused, not silently used.
 */
export function readSecretsFile(path: string): Record<string, string> {
  const st = statSync(path)
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    throw new OpsError(
      'secrets_file_mode',
      `The secrets file ${path} can be read by other users (mode ${(st.mode & 0o777).toString(8)}). Run "chmod 600 ${path}" and start again.`,
    )
  }
  const out: Record<string, string> = {}
  for (const line of readFileSync(path, 'utf8').split(/\r?\n/)) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*)\s*$/.exec(line)
    if (m && !line.trimStart().startsWith('#')) out[m[1]] = m[2].replace(/^(['"])(.*)\1$/, '$2')
  }
  return out
}

function num(value: string | undefined, key: string, min: number, max: number): number {
  const n = Number(value)
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new OpsError('bad_setting', `${key} must be a number from ${min} to ${max}; it is "${value}". Fix it and start again.`)
  }
  return n
}

/** "30s", "15m", "24h", "7d" or "off". */
export function every(v: string | undefined, key: string): number | null {
  if (!v || /^(off|no|none|0)$/i.test(v)) return null
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/i.exec(v.trim())
  if (!m) throw new OpsError('bad_setting', `${key} must be an interval like 15m, 6h or 1d, or "off"; it is "${v}".`)
  const ms = Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2].toLowerCase() as 's']
  if (ms < 1000) throw new OpsError('bad_setting', `${key} must be at least 1s.`)
  return ms
}

/** A duration: "90s", "2m", "1h", or a number of seconds; never "off" (a wait must end). */
export function duration(v: string | undefined, key: string, minMs: number, maxMs: number): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i.exec((v ?? '').trim())
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's').toLowerCase() as 's'] : NaN
  if (!Number.isFinite(ms) || ms < minMs || ms > maxMs)
    throw new OpsError(
      'bad_setting',
      `${key} must be a duration like 30s, 2m or 1h, from ${minMs / 1000} s to ${maxMs / 3_600_000} h; it is "${v}". Fix it and start again.`,
    )
  return ms
}

function sse(v: string | undefined): 'AES256' | 'aws:kms' | null {
  if (!v) return null
  if (v === 'AES256' || v === 'aws:kms') return v
  throw new OpsError('bad_setting', `S3_SSE must be "AES256" or "aws:kms"; it is "${v}".`)
}

/** host:port of the error ingest listener ([v6]:port accepted); port 0 picks a free one. */
function ingestAddr(v: string): { ingestHost: string; ingestPort: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v.trim())
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) throw new OpsError('bad_setting', `ERROR_INGEST_ADDR must be host:port (e.g. 127.0.0.1:7481); it is "${v}".`)
  return { ingestHost: m[1] ?? m[2], ingestPort: port }
}

export function loadConfig(input: ConfigInput = {}): Config {
  const env = input.env ?? process.env
  const dataDir = input.dataDir ?? defaultDataDir(env)
  const file = readSettingsFile(dataDir)
  const fileSecrets = env.OPS_SECRETS_FILE ? readSecretsFile(env.OPS_SECRETS_FILE) : {}
  const secrets = { ...fileSecrets, ...(input.secrets ?? {}) }
  const raw: Record<string, string | undefined> = {}
  const sources: Record<string, Source> = {}
  for (const k of settingKeys) {
    const fromEnv = env[k.key]
    if (fromEnv !== undefined && fromEnv !== '') {
      raw[k.key] = fromEnv
      sources[k.key] = 'environment'
    } else if (k.secret && secrets[k.key]) {
      raw[k.key] = secrets[k.key]
      sources[k.key] = 'secret store'
    } else if (!k.secret && file[k.key] !== undefined && file[k.key] !== '') {
      raw[k.key] = file[k.key]
      sources[k.key] = 'settings file'
    } else if (k.default !== undefined) {
      raw[k.key] = k.default
      sources[k.key] = 'default'
    } else {
      sources[k.key] = 'unset'
    }
    if (k.secret) registerSecret(raw[k.key])
  }
  // The password alone (it may appear without the URL around it), also when given as ?password=.
  for (const url of [raw.DATABASE_URL, raw.OPS_DATABASE_URL, raw.REDIS_URL]) for (const s of urlSecrets(url)) registerSecret(s)
  const apiTokens = Object.entries(parsePairs(raw.OPS_API_TOKENS, 'OPS_API_TOKENS')).map(([email, token]) => ({
    email: email.toLowerCase(),
    token,
  }))
  for (const t of apiTokens) registerSecret(t.token)
  if (!raw.LOCAL_BACKUP_PATH) sources.LOCAL_BACKUP_PATH = 'default'
  return {
    dataDir,
    databaseUrl: raw.DATABASE_URL ?? null,
    opsDatabaseUrl: raw.OPS_DATABASE_URL ?? raw.DATABASE_URL ?? null,
    localBackupPath: raw.LOCAL_BACKUP_PATH ?? join(dataDir, 'backups'),
    s3: {
      bucket: raw.BACKUP_S3_BUCKET ?? null,
      region: raw.AWS_REGION ?? 'us-east-1',
      endpoint: raw.S3_ENDPOINT ?? null,
      prefix: raw.S3_PREFIX ?? '',
      accessKeyId: raw.AWS_ACCESS_KEY_ID ?? null,
      secretAccessKey: raw.AWS_SECRET_ACCESS_KEY ?? null,
    },
    redisUrl: raw.REDIS_URL ?? null,
    stripe: { secretKey: raw.STRIPE_SECRET_KEY ?? null, apiBase: (raw.STRIPE_API_BASE ?? 'https://api.stripe.com').replace(/\/+$/, '') },
    app: { url: raw.APP_URL ?? null, healthPath: raw.APP_HEALTH_PATH ?? '/api/health', keyword: raw.APP_HEALTH_KEYWORD ?? null },
    healthIntervalS: num(raw.HEALTH_INTERVAL_S, 'HEALTH_INTERVAL_S', 1, 3600),
    probeTimeoutMs: num(raw.PROBE_TIMEOUT_MS, 'PROBE_TIMEOUT_MS', 100, 120_000),
    connectTimeoutMs: num(raw.DB_CONNECT_TIMEOUT_S, 'DB_CONNECT_TIMEOUT_S', 1, 300) * 1000,
    host: {
      loadWarnPerCore: num(raw.HOST_LOAD_WARN_PER_CORE, 'HOST_LOAD_WARN_PER_CORE', 0.1, 10_000),
      memoryWarnRatio: num(raw.HOST_MEMORY_WARN_PERCENT, 'HOST_MEMORY_WARN_PERCENT', 1, 100) / 100,
    },
    backupRetainDays: num(raw.BACKUP_RETAIN_DAYS, 'BACKUP_RETAIN_DAYS', 0, 36_500),
    backup: {
      compression: raw.BACKUP_COMPRESSION ?? 'gzip:6',
      slotWarnBytes: num(raw.BACKUP_SLOT_WARN_MB, 'BACKUP_SLOT_WARN_MB', 1, 10_000_000) * 1024 * 1024,
      lockTimeoutMs: duration(raw.BACKUP_LOCK_TIMEOUT, 'BACKUP_LOCK_TIMEOUT', 1000, 24 * 3_600_000),
      keepFulls: num(raw.BACKUP_KEEP_FULLS, 'BACKUP_KEEP_FULLS', 1, 1000),
      fullEveryMs: every(raw.BACKUP_FULL_EVERY, 'BACKUP_FULL_EVERY'),
      incrementalEveryMs: every(raw.BACKUP_INCREMENTAL_EVERY, 'BACKUP_INCREMENTAL_EVERY'),
      restoreTestEveryMs: every(raw.RESTORE_TEST_EVERY, 'RESTORE_TEST_EVERY'),
      incremental: /^(off|no|false|0)$/i.test(raw.BACKUP_INCREMENTAL ?? 'auto')
        ? 'off'
        : /^(on|yes|true|1)$/i.test(raw.BACKUP_INCREMENTAL ?? '')
          ? 'on'
          : 'auto',
      parallelism: raw.BACKUP_PARALLELISM ? num(raw.BACKUP_PARALLELISM, 'BACKUP_PARALLELISM', 1, 32) : null,
      chunkBytes: num(raw.BACKUP_CHUNK_MB, 'BACKUP_CHUNK_MB', 1, 65_536) * 1024 * 1024,
      encryptionKey: raw.BACKUP_ENCRYPTION_KEY ?? null,
      encryptionPassphrase: raw.BACKUP_ENCRYPTION_PASSPHRASE ?? null,
      s3Sse: sse(raw.S3_SSE),
      s3KmsKeyId: raw.S3_SSE_KMS_KEY_ID ?? null,
    },
    metricsIntervalMs: num(raw.METRICS_INTERVAL_S, 'METRICS_INTERVAL_S', 1, 60) * 1000,
    errors: {
      ...ingestAddr(raw.ERROR_INGEST_ADDR ?? '127.0.0.1:7481'),
      dsnKey: raw.ERROR_DSN_KEY ?? null,
      retainDays: num(raw.ERROR_RETAIN_DAYS, 'ERROR_RETAIN_DAYS', 1, 3650),
      eventsPerGroup: num(raw.ERROR_EVENTS_PER_GROUP, 'ERROR_EVENTS_PER_GROUP', 1, 1_000_000),
      scrubEmails: !/^(off|0|false|no)$/i.test(raw.ERROR_SCRUB_EMAILS ?? 'on'),
      scrubIps: /^(on|1|true|yes)$/i.test(raw.ERROR_SCRUB_IPS ?? 'off'),
      ratePerClient: num(raw.ERROR_INGEST_RATE, 'ERROR_INGEST_RATE', 1, 10_000_000),
    },
    adminEmails: (raw.ADMIN_EMAILS ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
    apiTokens,
    osUsers: Object.fromEntries(Object.entries(parsePairs(raw.OPS_OS_USERS, 'OPS_OS_USERS')).map(([u, e]) => [u, e.toLowerCase()])),
    sandbox: {
      scale: num(raw.SANDBOX_SCALE, 'SANDBOX_SCALE', 0.01, 1000),
      traffic: !/^(off|0|false|no)$/i.test(raw.SANDBOX_TRAFFIC ?? 'on'),
    },
    sources,
    raw,
  }
}
