import os from 'node:os'
import type pg from 'pg'
import { pgClient, pgPool } from './db/connect'
import type { S3Client } from '@aws-sdk/client-s3'
import type { AppInfo } from '../shared/domain'
import { AuditLog } from './audit/audit'
import { BackupService } from './backup/service'
import { RestoreService } from './restore/service'
import { MetricsService } from './metrics/service'
import { hostCollector } from './metrics/collectors/host'
import { postgresCollector } from './metrics/collectors/postgres'
import { redisCollector } from './metrics/collectors/redis'
import { appCollector } from './metrics/collectors/app'
import { startBackupSchedule } from './backup/schedule'
import type { Config } from './config/config'
import { OpsEvents } from './events'
import { HealthService } from './health/service'
import { appProbe } from './health/probes/app'
import { hostProbe } from './health/probes/host'
import { backupSlotProbe } from './health/probes/backup-slot'
import { postgresProbe } from './health/probes/postgres'
import { redisProbe } from './health/probes/redis'
import { s3Probe } from './health/probes/s3'
import { localStorageProbe } from './health/probes/storage'
import { stripeProbe } from './health/probes/stripe'
import { errorIngestProbe } from './health/probes/error-ingest'
import { JobRunner } from './jobs/runner'
import { createLogger, type Logger } from './log/logger'
import { startSandboxCluster, type SandboxCluster } from './sandbox/cluster'
import { hasSandboxSchema, seedSandbox } from './sandbox/seed'
import { startTrafficSimulator, type TrafficSimulator } from './sandbox/traffic'
import { sandboxServices } from './sandbox/services'
import { openToOthers } from './storage/local'
import { createS3Client } from './storage/s3-client'
import { OpsStore } from './store'
import { errorRuleSources } from './errors/alert-sources'
import { ErrorService } from './errors/service'
import { IncidentService } from './incidents/service'
import { noSecretStore, type SecretStore } from './settings/secret-store'
import { version } from './version'
import { AlertEngine } from './alerts/engine'
import { alertChannels } from './alerts/channels'
import { defaultRules } from './alerts/rules'
import { metricSources } from './alerts/sources'
import { backupFactsReader } from './alerts/backup-facts'
import { tierFor } from './metrics/tiers'
import { saveFile, type SaveFile } from './save-file'
import type { PdfPrinter } from './incidents/report'

export interface OpsOptions {
  config: Config
  face: AppInfo['face']
  log?: Logger
  /** 'auto' starts the sandbox when no DATABASE_URL is configured; 'off' never does. */
  sandbox?: 'auto' | 'off'
  /** Run the periodic health checks (the host/agent and the Electron shell do; a one-shot CLI does not). */
  schedule?: boolean
  /** Run scheduled backups (the headless host/agent does; the Electron window does not, so the two never both run them). */
  backupSchedule?: boolean
  /** Where secrets saved from the UI go (safeStorage in Electron); the host stores none. */
  secrets?: SecretStore
  /** Seed a new sandbox and run its traffic simulator (long-lived faces); one-shot commands skip it. */
  sandboxActivity?: boolean
  /** How this face restarts itself (the Electron shell: app.relaunch() then quit); absent where it cannot (the host). */
  restart?: () => void
  /** How this face saves a file where the operator chooses (the Electron shell: the save dialog, a 0600 write); absent in the host, whose browser downloads. */
  saveFile?: SaveFile
  /** Run the error ingest listener on ERROR_INGEST_ADDR (the host/agent does; one-shot commands do not). */
  errorIngest?: boolean
  /** How this face prints incident reports to PDF (Electron's printToPDF in the app); absent: Playwright + a system Chromium. */
  printPdf?: PdfPrinter
}

export interface SandboxState {
  active: boolean
  message: string
  cluster: SandboxCluster | null
  traffic: TrafficSimulator | null
  seedJobId: string | null
}

export type Ops = Awaited<ReturnType<typeof createOps>>

/** The composition root: every capability built once, for every face. */
export async function createOps(opts: OpsOptions) {
  const config = opts.config
  const log = opts.log ?? createLogger()
  const events = new OpsEvents()
  // Bad values in the settings file did not stop the start: each is at its default, and said so here.
  if (config.fileProblem) log.warn(config.fileProblem)
  for (const p of config.problems)
    log.warn(
      `Setting ${p.key} in ${p.file} is "${p.value}", which cannot be used: ${p.message} Using the default until it is fixed (Settings page).`,
    )

  let closing = false
  const sandbox: SandboxState = { active: false, message: '', cluster: null, traffic: null, seedJobId: null }
  let databaseUrl = config.databaseUrl
  let opsUrl = config.opsDatabaseUrl
  if (!databaseUrl && (opts.sandbox ?? 'auto') === 'auto') {
    sandbox.cluster = await startSandboxCluster({ dataDir: config.dataDir, log: log.child('sandbox') })
    databaseUrl = sandbox.cluster.url
    opsUrl ??= databaseUrl
    sandbox.active = true
  }
  // Beside the sandbox database: its own Redis and web app (a configured REDIS_URL or APP_URL wins).
  const services = sandbox.active
    ? await sandboxServices({
        dataDir: config.dataDir,
        databaseUrl: databaseUrl!,
        start: opts.sandboxActivity !== false,
        redisUrl: config.redisUrl,
        appUrl: config.app.url,
        log: log.child('sandbox'),
      })
    : null
  const redisUrl = services?.redisUrl ?? config.redisUrl
  const appUrl = services?.appUrl ?? config.app.url
  if (services)
    sandbox.message = `${services.describe}. To watch a real database, set DATABASE_URL (and REDIS_URL, BACKUP_S3_BUCKET, STRIPE_SECRET_KEY, APP_URL) and restart.`

  const store = new OpsStore(opsUrl, log.child('store'))
  await store.ready()
  const errors = new ErrorService({ config, pool: () => store.pool(), log: log.child('errors') })
  if (opts.errorIngest) {
    try {
      const ing = await errors.startIngest()
      log.info('error ingest listening', { url: ing.url })
      services?.reportErrors(errors.dsn())
    } catch (e) {
      // The console still starts; the Errors page and Health say the ingest is not running.
      log.warn(
        `The error ingest could not listen on ${config.errors.ingestHost}:${config.errors.ingestPort} (${(e as Error).message}); set ERROR_INGEST_ADDR to a free address and restart.`,
      )
    }
  }
  const audit = new AuditLog({ store: () => store.pool(), log: log.child('audit') })
  const jobs = new JobRunner({ events, log: log.child('jobs'), store: () => store.pool(), audit })

  const backups = new BackupService({
    config,
    databaseUrl: () => databaseUrl,
    jobs,
    log: log.child('backup'),
    audit,
    store: () => store.pool(),
  })
  const restores = new RestoreService({
    config,
    databaseUrl: () => databaseUrl,
    backups,
    jobs,
    audit,
    store: () => store.pool(),
    log: log.child('restore'),
  })

  // Said at start too (Health shows it as well): the folder holds every backed-up row.
  const openFolder = openToOthers(config.localBackupPath)
  if (openFolder) log.warn(openFolder)

  let s3: Promise<S3Client> | null = null
  const s3Client = () => (s3 ??= createS3Client(config.s3, config.probeTimeoutMs))

  let alertsRef: AlertEngine | null = null
  const health = new HealthService({
    probes: [
      postgresProbe({ url: databaseUrl, timeoutMs: config.probeTimeoutMs }),
      redisProbe({ url: redisUrl, timeoutMs: config.probeTimeoutMs }),
      localStorageProbe({ path: config.localBackupPath }),
      s3Probe({
        bucket: config.s3.bucket,
        prefix: config.s3.prefix,
        client: s3Client,
        region: config.s3.region,
        endpoint: config.s3.endpoint,
      }),
      stripeProbe({ secretKey: config.stripe.secretKey, apiBase: config.stripe.apiBase, timeoutMs: config.probeTimeoutMs }),
      appProbe({ url: appUrl, healthPath: config.app.healthPath, keyword: config.app.keyword, timeoutMs: config.probeTimeoutMs }),
      hostProbe(config.host),
      backupSlotProbe({ url: databaseUrl, warnBytes: config.backup.slotWarnBytes, catalog: () => backups.list() }),
      errorIngestProbe({
        errors,
        runsHere: !!opts.errorIngest,
        address: `${config.errors.ingestHost}:${config.errors.ingestPort}`,
        timeoutMs: config.probeTimeoutMs,
      }),
    ],
    timeoutMs: config.probeTimeoutMs,
    intervalS: config.healthIntervalS,
    events,
    log: log.child('health'),
    pool: () => store.pool(),
    // The alert engine is made below; until then nothing is evaluated yet, which is not a problem to show.
    alertsProblem: () => alertsRef?.problem() ?? null,
  })

  // Records of runs whose process died (killed, crashed) say "interrupted" from the moment any face starts,
  // once the ops store can be reached.
  let reconciled = false
  const reconcile = async () => {
    if (reconciled || !store.pool()) return
    reconciled = true
    await restores.reconcile().catch((e) => log.warn('could not correct interrupted runs', { error: (e as Error).message }))
  }
  await reconcile()
  // The ops store may come up after the console (e.g. the database was down at start): retry each interval.
  const storeRetry = setInterval(() => void store.ready().then(reconcile), config.healthIntervalS * 1000)
  storeRetry.unref()

  /** (Re)generate the sandbox data as a job; the traffic simulator pauses while it runs. */
  function seed(scale: number, actor = 'operator'): string {
    if (!sandbox.active || !databaseUrl) {
      throw new Error('Seeding is only for the sandbox: a configured DATABASE_URL is never overwritten with generated data.')
    }
    const url = databaseUrl
    const id = jobs.start(
      'sandbox.seed',
      { scale },
      async (input: { scale: number }, ctx) => {
        await sandbox.traffic?.stop()
        sandbox.traffic = null
        const client = pgClient(url, { application_name: 'examforge-ops:seed' })
        await client.connect()
        try {
          return await seedSandbox(client, input.scale, ctx)
        } finally {
          await client.end().catch(() => {})
          startTraffic()
        }
      },
      actor,
    )
    sandbox.seedJobId = id
    return id
  }

  let trafficPool: pg.Pool | null = null
  function startTraffic() {
    if (!sandbox.active || !config.sandbox.traffic || sandbox.traffic || closing) return
    trafficPool ??= pgPool(databaseUrl!, { max: 2, application_name: 'examforge-ops:traffic' })
    trafficPool.on('error', () => {})
    sandbox.traffic = startTrafficSimulator(trafficPool, log.child('traffic'))
  }

  if (sandbox.active && opts.sandboxActivity !== false) {
    const client = pgClient(databaseUrl!)
    await client.connect()
    const present = await hasSandboxSchema(client).finally(() => client.end())
    if (!present) seed(config.sandbox.scale, 'sandbox')
    else startTraffic()
  }

  const metrics = new MetricsService({
    collectors: [
      hostCollector(),
      postgresCollector(databaseUrl),
      redisCollector(redisUrl),
      appCollector({ url: appUrl, healthPath: config.app.healthPath, timeoutMs: config.probeTimeoutMs }),
    ],
    intervalMs: config.metricsIntervalMs,
    pool: () => store.pool(),
    events,
    log: log.child('metrics'),
  })

  // Incidents: opened by firing alerts (inside the engine's transaction) or by hand; reports over the store.
  const incidents = new IncidentService({
    pool: () => store.pool(),
    config,
    audit,
    events,
    log: log.child('incidents'),
    metrics: { latest: () => metrics.latest(), history: (s, from, to, points, host) => metrics.history(s, from, to, points, host) },
    rules: () => alerts.rules().map((r) => r.rule),
    printPdf: opts.printPdf,
  })

  // Alerts: evaluated at every collection by whichever process holds the store's notifier lock.
  const alerts: AlertEngine = new AlertEngine({
    onFiring: (client, fired) => incidents.onFiring(client, fired),
    pool: () => store.pool(),
    opsUrl,
    intervalMs: config.metricsIntervalMs,
    log: log.child('alerts'),
    events,
    audit,
    defaults: defaultRules({
      slotWarnMb: config.backup.slotWarnBytes / 1024 / 1024,
      backupsScheduled: config.backup.fullEveryMs !== null || config.backup.incrementalEveryMs !== null,
    }),
    channels: alertChannels(config),
    rulesFile: config.alerts.rulesFile,
    knowsSeries: (s) => metrics.registry.knows(s),
    seriesIds: (series, host) =>
      metrics
        .latest()
        .filter((l) => (l.id === series || l.name === series) && (!host || l.host === host))
        .map((l) => l.id),
    history: (ids, from, to) =>
      Promise.all(ids.map(async (id) => ({ id, points: await metrics.store.read(tierFor(from, to), id, metrics.host, from, to) }))),
    // The notifier evaluates at every collection, so it keeps collection at the interval (not the idle 30 s).
    onLeaderChange: (leading) => void (leading && metrics.watch()),
  })
  alertsRef = alerts
  for (const src of metricSources({
    latest: () => metrics.latest(),
    // Windows longer than an hour read the 1-minute rollups (a 6-hour fit needs no second-by-second samples).
    history: async (id, from, to) =>
      to - from > 3_600_000 ? metrics.store.read('1m', id, metrics.host, from, to) : (await metrics.history(id, from, to, 2000)).points,
    health: () => health.snapshot(),
    healthHistory: (service, from, to) => health.timeline(service, from, to),
    backupFacts: backupFactsReader({ backups, jobs, restores }),
  }))
    alerts.registerSource(src)
  // The error tracker's sources: "≥ N events in M minutes", new group, regression, spike.
  for (const src of errorRuleSources(() => store.pool())) alerts.registerSource(src)
  const offTick = events.on('metrics.tick', () => {
    if (alerts.leader.isLeader) metrics.watch()
    void alerts.evaluate()
  })
  // Rules from ops and ALERT_RULES_FILE; long-lived faces compete for the notifier lock. Sources registered
  // later (the error tracker's) are picked up at the next evaluation.
  await alerts.start({ evaluate: opts.schedule !== false })

  if (opts.schedule !== false) {
    health.start()
    metrics.start()
  }
  const backupSchedule = opts.backupSchedule ? startBackupSchedule({ backups, restores, jobs, config, log: log.child('schedule') }) : null

  const info = (): AppInfo => ({
    version,
    face: opts.face,
    sandbox: { active: sandbox.active, message: sandbox.message },
    database: databaseUrl
      ? (() => {
          const u = new URL(databaseUrl)
          return `${u.hostname}:${u.port || 5432}${u.pathname}`
        })()
      : null,
    hostname: os.hostname(),
    capabilities: {
      health: true,
      metrics: true,
      backups: true,
      restore: true,
      errors: true,
      alerts: true,
      incidents: true,
      settings: true,
    },
  })

  return {
    config,
    log,
    events,
    secrets: opts.secrets ?? noSecretStore,
    /** The face's PDF printer for incident reports (undefined: core/incidents/report prints with Playwright). */
    printPdf: opts.printPdf,
    /** app.restart: the face restarts itself where it can; otherwise the reply says how (settings apply after a restart). */
    restart(): { restarting: boolean; message: string } {
      if (opts.restart) {
        log.info('restart asked for from the console')
        setImmediate(opts.restart)
        return { restarting: true, message: 'The console is restarting: running jobs finish or stop first, then the window reopens.' }
      }
      return {
        restarting: false,
        message:
          'This console runs in a terminal (npm run serve or examforge-ops serve): stop it with Ctrl+C and start it again to apply saved settings.',
      }
    },
    /** app.saveFile: through the face's save dialog where it has one; the host answers that the browser downloads. */
    saveFile: (input: { fileName: string; encoding: 'utf8' | 'base64'; data: string }) => saveFile(opts.saveFile, input),
    store,
    audit,
    jobs,
    health,
    backups,
    restores,
    metrics,
    alerts,
    errors,
    incidents,
    sandbox,
    databaseUrl,
    /** Redis and the web app as watched (the sandbox's own where nothing is configured). */
    redisUrl,
    appUrl,
    info,
    seed,
    async close(): Promise<void> {
      if (closing) return
      closing = true
      health.stop()
      backupSchedule?.stop()
      clearInterval(storeRetry)
      offTick()
      await metrics.stop()
      await alerts.stop()
      await jobs.drain()
      await sandbox.traffic?.stop()
      await trafficPool?.end().catch(() => {})
      await errors.close().catch((e) => log.warn('error tracker stop failed', { error: String(e) }))
      await services?.stop().catch((e) => log.warn('sandbox services stop failed', { error: String(e) }))
      await store.close()
      void s3?.then((c) => c.destroy())
      await sandbox.cluster?.stop().catch((e) => log.warn('sandbox stop failed', { error: String(e) }))
    },
  }
}
