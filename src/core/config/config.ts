import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { OpsError } from '../../shared/contract'
import { registerSecret, urlSecrets } from '../log/scrub'
import { parsers, type Parsed } from './parse'
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
    /** How often the agent looks for a schema change, to back up at once (carry it, or end the chain) rather than at the next incremental. */
    schemaWatchMs: number | null
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
  /** Alert rules file, channels (URLs are secrets) and the default grouping times. */
  alerts: {
    rulesFile: string | null
    webhookUrl: string | null
    slackUrl: string | null
    discordUrl: string | null
    smtpUrl: string | null
    emailTo: string[]
    desktop: boolean
    groupWaitMs: number
    groupIntervalMs: number
    repeatIntervalMs: number
  }
  /** Incidents: which alert severities open one, how close an alert must be to join an open one (0: never), the timeline's margin. */
  incidents: {
    autoOpenSeverities: ('critical' | 'warning' | 'info')[]
    joinWindowMs: number
    marginMs: number
  }
  /** Where each value came from, for the Settings page. */
  sources: Record<string, Source>
  /** The raw values by setting key (secrets included: core only). */
  raw: Record<string, string | undefined>
  /** Where the Settings page saves (dataDir/settings.json). */
  settingsFile: string
  /** Values in the settings file the console could not use: it started with their defaults instead. */
  problems: SettingProblem[]
  /** Why the settings file could not be read at all (then every key took its environment value or default). */
  fileProblem: string | null
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

/**
 * The data folder holds settings (which endpoints receive the secrets), the host's control file and, by
 * default, the backups: whoever can write to it can redirect secrets or swap host.json. One that belongs
 * to another user (a folder someone created first under /tmp, or a link to theirs) is refused; one of
 * ours that others may write to or read is made 0700.
 */
export function privateDataDir(dataDir: string): void {
  if (process.platform === 'win32' || !existsSync(dataDir)) return
  const st = statSync(dataDir)
  if (typeof process.getuid === 'function' && st.uid !== process.getuid())
    throw new OpsError(
      'data_dir_not_private',
      `The data folder ${dataDir} belongs to another user (uid ${st.uid}), who could change its settings or its control file. Use a folder of your own (OPS_DATA_DIR) and start again.`,
    )
  if ((st.mode & 0o077) !== 0) chmodSync(dataDir, 0o700)
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
      `The settings file ${file} is not valid JSON (${(e as Error).message}). The console started without it (every setting at its environment value or default); fix or delete the file, then restart.`,
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
  let st: ReturnType<typeof statSync>
  try {
    st = statSync(path)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new OpsError(
      'secrets_file_missing',
      code === 'ENOENT'
        ? `OPS_SECRETS_FILE names ${path}, which does not exist. Create it (lines of KEY=value, mode 600) or unset OPS_SECRETS_FILE, and start again.`
        : `The secrets file ${path} (OPS_SECRETS_FILE) cannot be read (${code ?? (e as Error).message}). Check the path and its permissions, and start again.`,
    )
  }
  if (!st.isFile())
    throw new OpsError(
      'secrets_file_missing',
      `OPS_SECRETS_FILE names ${path}, which is not a file. Point it at a file of KEY=value lines (mode 600).`,
    )
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

export { every, duration } from './parse'

/**
 * A value the settings file holds that the console cannot use: the console started with the key's
 * default instead, and says so on the Settings page and in the log.
 */
export interface SettingProblem {
  key: string
  /** What the file holds (never a secret: the settings file holds none). */
  value: string
  message: string
  file: string
}

/** host:port of the error ingest listener ([v6]:port accepted); port 0 picks a free one. */
export function loadConfig(input: ConfigInput = {}): Config {
  const env = input.env ?? process.env
  const dataDir = input.dataDir ?? defaultDataDir(env)
  privateDataDir(dataDir)
  const settingsFile = join(dataDir, 'settings.json')
  const problems: SettingProblem[] = []
  let file: Record<string, string> = {}
  let fileProblem: string | null = null
  try {
    file = readSettingsFile(dataDir)
  } catch (e) {
    // An unreadable settings file does not keep the console from starting: every key takes its
    // environment value or default, and the Settings page and the log say why.
    fileProblem = (e as Error).message
  }
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
  for (const url of [raw.DATABASE_URL, raw.OPS_DATABASE_URL, raw.REDIS_URL, raw.SMTP_URL])
    for (const s of urlSecrets(url)) registerSecret(s)
  // Every key through its parser (config/parse.ts, the same one settings.update uses). A bad value from
  // the settings file falls back to the default; bad values from anywhere else are all collected and
  // refused together, each with where it came from.
  const parsed = {} as Record<string, unknown>
  const fatal: string[] = []
  for (const k of settingKeys) {
    const parse = (parsers as Record<string, (v: string | undefined) => unknown>)[k.key]
    try {
      parsed[k.key] = parse(raw[k.key])
    } catch (e) {
      const message = (e as Error).message
      if (sources[k.key] === 'settings file') {
        problems.push({ key: k.key, value: raw[k.key] ?? '', message, file: settingsFile })
        raw[k.key] = k.default
        sources[k.key] = k.default === undefined ? 'unset' : 'default'
        parsed[k.key] = parse(raw[k.key])
      } else {
        const where =
          sources[k.key] === 'secret store' && fileSecrets[k.key] && !input.secrets?.[k.key]
            ? `the secrets file ${env.OPS_SECRETS_FILE}`
            : sources[k.key] === 'secret store'
              ? 'the secret store'
              : `the ${sources[k.key]}`
        fatal.push(`${message.replace(/\.$/, '')} (from ${where})`)
      }
    }
  }
  if (fatal.length)
    throw new OpsError(
      'bad_setting',
      `The configuration has ${fatal.length === 1 ? 'a problem' : `${fatal.length} problems`}: ${fatal.join('; ')}. Fix ${fatal.length === 1 ? 'it' : 'them'} and start again.`,
    )
  const v = parsed as Parsed
  for (const t of v.OPS_API_TOKENS) registerSecret(t.token)
  if (!raw.LOCAL_BACKUP_PATH) sources.LOCAL_BACKUP_PATH = 'default'
  return {
    dataDir,
    databaseUrl: v.DATABASE_URL,
    opsDatabaseUrl: v.OPS_DATABASE_URL ?? v.DATABASE_URL,
    localBackupPath: v.LOCAL_BACKUP_PATH ?? join(dataDir, 'backups'),
    s3: {
      bucket: v.BACKUP_S3_BUCKET,
      region: v.AWS_REGION ?? 'us-east-1',
      endpoint: v.S3_ENDPOINT,
      prefix: v.S3_PREFIX ?? '',
      accessKeyId: v.AWS_ACCESS_KEY_ID,
      secretAccessKey: v.AWS_SECRET_ACCESS_KEY,
    },
    redisUrl: v.REDIS_URL,
    stripe: { secretKey: v.STRIPE_SECRET_KEY, apiBase: v.STRIPE_API_BASE },
    app: { url: v.APP_URL, healthPath: v.APP_HEALTH_PATH, keyword: v.APP_HEALTH_KEYWORD },
    healthIntervalS: v.HEALTH_INTERVAL_S,
    probeTimeoutMs: v.PROBE_TIMEOUT_MS,
    connectTimeoutMs: v.DB_CONNECT_TIMEOUT_S,
    host: { loadWarnPerCore: v.HOST_LOAD_WARN_PER_CORE, memoryWarnRatio: v.HOST_MEMORY_WARN_PERCENT },
    backupRetainDays: v.BACKUP_RETAIN_DAYS,
    backup: {
      compression: v.BACKUP_COMPRESSION,
      slotWarnBytes: v.BACKUP_SLOT_WARN_MB,
      lockTimeoutMs: v.BACKUP_LOCK_TIMEOUT,
      keepFulls: v.BACKUP_KEEP_FULLS,
      fullEveryMs: v.BACKUP_FULL_EVERY,
      incrementalEveryMs: v.BACKUP_INCREMENTAL_EVERY,
      schemaWatchMs: v.BACKUP_SCHEMA_WATCH,
      restoreTestEveryMs: v.RESTORE_TEST_EVERY,
      incremental: v.BACKUP_INCREMENTAL,
      parallelism: v.BACKUP_PARALLELISM,
      chunkBytes: v.BACKUP_CHUNK_MB,
      encryptionKey: v.BACKUP_ENCRYPTION_KEY,
      encryptionPassphrase: v.BACKUP_ENCRYPTION_PASSPHRASE,
      s3Sse: v.S3_SSE,
      s3KmsKeyId: v.S3_SSE_KMS_KEY_ID,
    },
    metricsIntervalMs: v.METRICS_INTERVAL_S,
    adminEmails: v.ADMIN_EMAILS,
    apiTokens: v.OPS_API_TOKENS,
    osUsers: v.OPS_OS_USERS,
    sandbox: { scale: v.SANDBOX_SCALE, traffic: v.SANDBOX_TRAFFIC },
    alerts: {
      rulesFile: v.ALERT_RULES_FILE,
      webhookUrl: v.ALERT_WEBHOOK_URL,
      slackUrl: v.ALERT_SLACK_WEBHOOK_URL,
      discordUrl: v.ALERT_DISCORD_WEBHOOK_URL,
      smtpUrl: v.SMTP_URL,
      emailTo: v.ALERT_EMAIL_TO.length ? v.ALERT_EMAIL_TO : v.ADMIN_EMAILS,
      desktop: v.ALERT_DESKTOP,
      groupWaitMs: v.ALERT_GROUP_WAIT,
      groupIntervalMs: v.ALERT_GROUP_INTERVAL,
      repeatIntervalMs: v.ALERT_REPEAT_INTERVAL,
    },
    incidents: {
      autoOpenSeverities: v.INCIDENT_AUTO_OPEN_SEVERITIES,
      joinWindowMs: v.INCIDENT_JOIN_WINDOW,
      marginMs: v.INCIDENT_TIMELINE_MARGIN,
    },
    errors: {
      ...v.ERROR_INGEST_ADDR,
      dsnKey: v.ERROR_DSN_KEY,
      retainDays: v.ERROR_RETAIN_DAYS,
      eventsPerGroup: v.ERROR_EVENTS_PER_GROUP,
      scrubEmails: v.ERROR_SCRUB_EMAILS,
      scrubIps: v.ERROR_SCRUB_IPS,
      ratePerClient: v.ERROR_INGEST_RATE,
    },
    sources,
    raw,
    settingsFile,
    problems,
    fileProblem,
  }
}
