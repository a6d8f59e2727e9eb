/** Every setting the console reads, with how to show it. Environment variables use these names. */
export type SettingKind = 'url' | 'secret' | 'text' | 'number' | 'path' | 'list'

export interface SettingKey {
  key: string
  label: string
  kind: SettingKind
  /** Secrets are never persisted in the plain settings file and never sent to the renderer unmasked. */
  secret: boolean
  default?: string
}

export const settingKeys: SettingKey[] = [
  { key: 'DATABASE_URL', label: 'Monitored database', kind: 'url', secret: true },
  { key: 'OPS_DATABASE_URL', label: 'Ops store database (default: the monitored database)', kind: 'url', secret: true },
  { key: 'LOCAL_BACKUP_PATH', label: 'Local backup folder', kind: 'path', secret: false },
  { key: 'BACKUP_S3_BUCKET', label: 'S3 bucket for backups', kind: 'text', secret: false },
  { key: 'AWS_REGION', label: 'AWS region', kind: 'text', secret: false, default: 'us-east-1' },
  { key: 'S3_ENDPOINT', label: 'S3-compatible endpoint', kind: 'url', secret: false },
  { key: 'S3_PREFIX', label: 'S3 key prefix', kind: 'text', secret: false, default: 'examforge-ops/' },
  { key: 'AWS_ACCESS_KEY_ID', label: 'AWS access key id', kind: 'secret', secret: true },
  { key: 'AWS_SECRET_ACCESS_KEY', label: 'AWS secret access key', kind: 'secret', secret: true },
  {
    key: 'BACKUP_COMPRESSION',
    label: 'Backup compression (gzip[:1-9], zstd[:1-19] where Node has it, none)',
    kind: 'text',
    secret: false,
    default: 'gzip:6',
  },
  {
    key: 'BACKUP_INCREMENTAL',
    label:
      'Incremental backups (auto: a full starts a slot chain only when incrementals are scheduled, asked for or already followed; on: every full does; off)',
    kind: 'text',
    secret: false,
    default: 'auto',
  },
  {
    key: 'BACKUP_SLOT_WARN_MB',
    label: 'Warn when the backup slot holds more WAL than this (MB)',
    kind: 'number',
    secret: false,
    default: '1024',
  },
  {
    key: 'BACKUP_LOCK_TIMEOUT',
    label: 'Longest a backup waits for table locks held by other sessions (e.g. 60s, 5m)',
    kind: 'text',
    secret: false,
    default: '60s',
  },
  {
    key: 'DB_CONNECT_TIMEOUT_S',
    label: 'Longest a connection to PostgreSQL may take to answer (s)',
    kind: 'number',
    secret: false,
    default: '10',
  },
  { key: 'BACKUP_PARALLELISM', label: 'Parallel connections for backups', kind: 'number', secret: false },
  { key: 'BACKUP_CHUNK_MB', label: 'Split tables larger than this into chunks (MB)', kind: 'number', secret: false, default: '64' },
  { key: 'BACKUP_ENCRYPTION_KEY', label: 'Client-side encryption key (32 bytes, hex or base64)', kind: 'secret', secret: true },
  { key: 'BACKUP_ENCRYPTION_PASSPHRASE', label: 'Client-side encryption passphrase', kind: 'secret', secret: true },
  { key: 'S3_SSE', label: 'S3 server-side encryption (AES256 or aws:kms)', kind: 'text', secret: false },
  { key: 'S3_SSE_KMS_KEY_ID', label: 'KMS key id for aws:kms', kind: 'text', secret: false },
  { key: 'BACKUP_RETAIN_DAYS', label: 'Keep backups for (days)', kind: 'number', secret: false, default: '14' },
  {
    key: 'BACKUP_KEEP_FULLS',
    label: 'Always keep the newest N full backups with their incrementals',
    kind: 'number',
    secret: false,
    default: '2',
  },
  { key: 'BACKUP_FULL_EVERY', label: 'Scheduled full backups in the agent (e.g. 24h, off)', kind: 'text', secret: false, default: 'off' },
  {
    key: 'BACKUP_INCREMENTAL_EVERY',
    label: 'Scheduled incremental backups in the agent (e.g. 15m, off)',
    kind: 'text',
    secret: false,
    default: 'off',
  },
  {
    key: 'RESTORE_TEST_EVERY',
    label: 'Scheduled restore tests in the agent (e.g. 7d, off)',
    kind: 'text',
    secret: false,
    default: 'off',
  },
  { key: 'ADMIN_EMAILS', label: 'Administrators (comma-separated e-mails)', kind: 'list', secret: false },
  { key: 'OPS_API_TOKENS', label: "Administrators' API tokens (email=token, comma-separated)", kind: 'secret', secret: true },
  { key: 'OPS_OS_USERS', label: 'OS users as e-mails, for ADMIN_EMAILS (osuser=email, comma-separated)', kind: 'list', secret: false },
  { key: 'REDIS_URL', label: 'Redis', kind: 'url', secret: true },
  { key: 'STRIPE_SECRET_KEY', label: 'Stripe secret key', kind: 'secret', secret: true },
  { key: 'STRIPE_API_BASE', label: 'Stripe API base', kind: 'url', secret: false, default: 'https://api.stripe.com' },
  { key: 'APP_URL', label: 'ExamForge web app URL', kind: 'url', secret: false },
  { key: 'APP_HEALTH_PATH', label: 'Web app health path', kind: 'text', secret: false, default: '/api/health' },
  { key: 'APP_HEALTH_KEYWORD', label: 'Expected keyword in the health response', kind: 'text', secret: false },
  { key: 'METRICS_INTERVAL_S', label: 'Metrics collection interval (s, 1 to 60)', kind: 'number', secret: false, default: '5' },
  { key: 'HEALTH_INTERVAL_S', label: 'Health check interval (s)', kind: 'number', secret: false, default: '30' },
  { key: 'PROBE_TIMEOUT_MS', label: 'Probe timeout (ms)', kind: 'number', secret: false, default: '5000' },
  {
    key: 'HOST_LOAD_WARN_PER_CORE',
    label: 'Host health degrades when the 1-minute load per core reaches this',
    kind: 'number',
    secret: false,
    default: '2',
  },
  {
    key: 'HOST_MEMORY_WARN_PERCENT',
    label: 'Host health degrades when this much memory is in use (%)',
    kind: 'number',
    secret: false,
    default: '90',
  },
  { key: 'SANDBOX_SCALE', label: 'Sandbox data size (1 ≈ 10 MB, 200 ≈ 2 GB)', kind: 'number', secret: false, default: '1' },
  { key: 'SANDBOX_TRAFFIC', label: 'Sandbox traffic simulator (on/off)', kind: 'text', secret: false, default: 'on' },
  {
    key: 'ERROR_INGEST_ADDR',
    label: 'Error ingest listener (host:port; only the Sentry-compatible ingest routes are served there)',
    kind: 'text',
    secret: false,
    default: '127.0.0.1:7481',
  },
  {
    key: 'ERROR_DSN_KEY',
    label: 'Error ingest DSN key (default: generated on first start, kept 0600 in the data folder)',
    kind: 'secret',
    secret: true,
  },
  { key: 'ERROR_RETAIN_DAYS', label: 'Keep error events for (days; counts stay)', kind: 'number', secret: false, default: '30' },
  { key: 'ERROR_EVENTS_PER_GROUP', label: 'Keep at most this many events per error group', kind: 'number', secret: false, default: '1000' },
  { key: 'ERROR_SCRUB_EMAILS', label: 'Scrub e-mail addresses from error events (on/off)', kind: 'text', secret: false, default: 'on' },
  { key: 'ERROR_SCRUB_IPS', label: 'Scrub IP addresses from error events (on/off)', kind: 'text', secret: false, default: 'off' },
  {
    key: 'ERROR_INGEST_RATE',
    label: 'Error events per second accepted from one client before 429 (bursts of twice this)',
    kind: 'number',
    secret: false,
    default: '500',
  },
]

export const secretKeys = settingKeys.filter((k) => k.secret).map((k) => k.key)
