import { OpsError, type MethodName, type MethodOutput, type Methods } from '../shared/contract'
import type { z } from 'zod'
import type { Ops } from './ops'
import { destructiveJobKinds, emailOf, requireAdmin, type Identity } from './auth/identity'
import { settingsView } from './settings/view'
import { changeSetting } from './settings/update'
import { summarise } from './backup/summary'
import { readSet } from './backup/catalog'
import { ruleToFile } from './alerts/rules'
import { exportRules } from './alerts/rules-file'

/** What a face hands dispatch: who is calling, as it authenticated them. */
export interface CallContext {
  actor: Identity
}

/** What a handler gets: the identity, and its label for the audit log and jobs. */
export interface HandlerContext {
  identity: Identity
  who: string
}

type Handlers = {
  [M in MethodName]: (ops: Ops, input: z.output<Methods[M]['input']>, ctx: HandlerContext) => Promise<MethodOutput<M>> | MethodOutput<M>
}

/** One core function per contract method. Both transports dispatch through here after validating the input. */
export const handlers: Handlers = {
  'app.info': (ops) => ops.info(),
  'app.restart': (ops) => ops.restart(),
  'app.saveFile': (ops, input) => ops.saveFile(input),
  // Never report a service unhealthy only because it has not been checked yet.
  'health.snapshot': (ops) => ops.health.ready(),
  'health.checkNow': (ops, input) => ops.health.checkNow(input.service),
  'health.history': (ops, input) => ops.health.history(input.service, input.limit),
  'settings.list': (ops) =>
    settingsView(
      ops.config,
      ops.sandbox.active
        ? { DATABASE_URL: ops.databaseUrl, OPS_DATABASE_URL: ops.databaseUrl, REDIS_URL: ops.redisUrl, APP_URL: ops.appUrl }
        : {},
    ),
  'settings.update': (ops, input, ctx) =>
    changeSetting({ config: ops.config, secrets: ops.secrets, env: process.env, audit: ops.audit }, input, ctx.who),
  'jobs.list': (ops) => ops.jobs.list(),
  // Cancelling a destructive job needs whoever could start it; every cancel is recorded with who asked.
  'jobs.cancel': async (ops, input, ctx) => {
    const job = ops.jobs.get(input.jobId)
    if (job?.state === 'running' && destructiveJobKinds.has(job.kind))
      requireAdmin(ops.config, ctx.identity, `Cancelling a ${job.kind} job`)
    const cancelled = ops.jobs.cancel(input.jobId)
    if (cancelled)
      await ops.audit.record({
        actor: ctx.who,
        action: 'jobs.cancel',
        target: input.jobId,
        outcome: 'cancelled',
        details: { kind: job?.kind },
      })
    return { cancelled }
  },
  'backups.list': async (ops) => {
    const [sets, proven] = await Promise.all([ops.backups.list(), ops.restores.proven()])
    const orphans = await ops.backups.orphanedSafety(sets)
    return {
      location: ops.backups.storage().location,
      sets: sets.map((s) => summarise(s, proven.get(s.setId) ?? null, orphans.has(s.setId))),
    }
  },
  'backups.get': async (ops, input) => {
    const set = await readSet(ops.backups.storage(), input.setId, ops.backups.keys())
    if (!set) throw new OpsError('unknown_set', `There is no backup set "${input.setId}" in ${ops.backups.storage().location}.`)
    const m = set.manifest
    return {
      set: summarise(set, (await ops.restores.proven()).get(set.setId) ?? null, (await ops.backups.orphanedSafety([set])).has(set.setId)),
      snapshotLsn: m?.snapshot.lsn ?? null,
      server: m ? `PostgreSQL ${m.server.version}` : null,
      tables: (m?.tables ?? []).map((t) => ({
        schema: t.schema,
        name: t.name,
        rows: t.rows,
        rawBytes: t.rawBytes,
        storedBytes: t.storedBytes,
        chunks: t.chunks.length,
      })),
      changes: m?.changes
        ? { tables: m.changes.tables, firstCommitTime: m.changes.firstCommitTime, lastCommitTime: m.changes.lastCommitTime }
        : null,
    }
  },
  'restore.points': (ops) => ops.restores.points(),
  'restore.plan': (ops, input) => ops.restores.plan(input),
  'restore.start': async (ops, { confirm, operator, ...request }, ctx) => ({
    jobId: (await ops.restores.start(request, confirm, { operator, actor: ctx.who })).jobId,
  }),
  'restore.undo': async (ops, input, ctx) => ({
    jobId: (await ops.restores.undo(input.restoreId, input.confirm, { operator: input.operator, actor: ctx.who })).jobId,
  }),
  'restore.test': (ops, input, ctx) => ops.restores.startTest({ operator: input.operator, actor: ctx.who }),
  'restore.history': (ops) => ops.restores.history(),
  'restore.dropIncomplete': (ops, input, ctx) => ops.restores.dropIncomplete(input.restoreId, input.confirm, ctx.who),
  'restore.get': async (ops, input) => {
    const r = await ops.restores.record(input.restoreId)
    if (!r) throw new OpsError('unknown_restore', `There is no restore "${input.restoreId}".`)
    return r
  },
  'metrics.series': async (ops) => ({
    series: ops.metrics.series(),
    unconfigured: ops.metrics.unconfigured(),
    host: ops.metrics.host,
    hosts: await ops.metrics.hosts(),
    intervalMs: ops.metrics.intervalMs,
  }),
  'metrics.latest': (ops) => ops.metrics.latest(),
  'metrics.history': (ops, i) => ops.metrics.history(i.series, i.from, i.to, i.points, i.host),
  'metrics.watch': (ops) => ops.metrics.watch(),
  'backups.start': (ops, input, ctx) =>
    input.type === 'incremental' ? ops.backups.startIncremental(ctx.who) : ops.backups.startFull(ctx.who),
  'backups.prerequisites': async (ops) => ({ ...(await ops.backups.prerequisites()), slots: await ops.backups.slots() }),
  'backups.retention': (ops) => ops.backups.retentionPlan(),
  'backups.prune': (ops, input, ctx) => ops.backups.prune(input.confirm, ctx.who),
  'backups.dropSlot': async (ops, input, ctx) => {
    await ops.backups.dropSlot(input.slot, input.confirm, ctx.who)
    return { dropped: true }
  },
  'backups.verify': (ops, input, ctx) => ops.backups.startVerify(input.setId, ctx.who),
  'alerts.list': async (ops) => {
    const e = ops.alerts.lastEvaluation
    return {
      alerts: await ops.alerts.active(),
      evaluator: {
        here: ops.alerts.leader.isLeader,
        intervalMs: ops.metrics.collectingEveryMs,
        lastEvaluationAt: e?.at ?? null,
        lastEvaluationMs: e?.ms ?? null,
        problem: ops.alerts.problem(),
      },
      rulesFileProblem: ops.alerts.rulesFileProblem,
    }
  },
  'alerts.rules': (ops) => ({
    rules: ops.alerts.ruleViews().map((v) => ({
      name: v.rule.name,
      kind: v.rule.kind,
      spec: ruleToFile(v.rule),
      origin: v.origin,
      enabled: v.rule.enabled,
      severity: v.rule.severity,
      firing: v.firing,
      pending: v.pending,
      problem: v.problem,
    })),
    kinds: ops.alerts.sourceKinds(),
    channels: ops.alerts.channels(),
    rulesFile: ops.config.alerts.rulesFile,
  }),
  'alerts.history': async (ops, i) => ({
    transitions: await ops.alerts.transitions(i.limit),
    deliveries: await ops.alerts.deliveries(i.limit),
  }),
  'alerts.saveRule': async (ops, i, ctx) => ({ name: (await ops.alerts.saveRule(i.rule, ctx.who)).name }),
  'alerts.deleteRule': (ops, i, ctx) => ops.alerts.deleteRule(i.name, ctx.who),
  'alerts.backtest': (ops, i) => ops.alerts.backtest(i.rule, i.days),
  'alerts.silences': (ops) => ops.alerts.listSilences(),
  'alerts.silence': (ops, i, ctx) => ops.alerts.silence(i.matchers, i.endsAt, ctx.who, i.reason),
  'alerts.expireSilence': (ops, i, ctx) => ops.alerts.expireSilence(i.id, ctx.who),
  'alerts.ack': (ops, i, ctx) => ops.alerts.ack(i.id, ctx.who),
  'alerts.test': (ops, i, ctx) => ops.alerts.testChannel(i.channel, ctx.who),
  'alerts.export': (ops) => ({ text: exportRules(ops.alerts.rules().map((r) => r.rule)) }),
  'errors.list': (ops, input) => ops.errors.list(input),
  'errors.get': (ops, input) => ops.errors.show(input.groupId, input.eventId),
  'errors.setState': async (ops, input, ctx) => {
    const change =
      input.state === 'resolved'
        ? { state: 'resolved' as const, inNextRelease: input.inNextRelease }
        : input.state === 'ignored'
          ? { state: 'ignored' as const, untilMs: input.untilMs, untilCount: input.untilCount }
          : { state: 'unresolved' as const }
    const changed = await ops.errors.setState(input.groupIds, change)
    await ops.audit.record({
      actor: ctx.who,
      action: `errors.${input.state}`,
      target: changed.join(','),
      outcome: 'succeeded',
      details: change,
    })
    return { changed }
  },
  'errors.dsn': async (ops) => {
    const { where, url, problem } = await ops.errors.whereEventsGo()
    return {
      dsn: ops.errors.dsn(),
      listening: where === 'here' || where === 'agent',
      where,
      ...(problem ? { problem } : {}),
      // Where this face listens (its real port when configured as :0), else the configured address.
      address: where === 'here' ? new URL(url).host : `${ops.config.errors.ingestHost}:${ops.config.errors.ingestPort}`,
    }
  },
  'errors.recent': (ops, input) => ops.errors.recent(input.sinceMs),
  'incidents.list': async (ops, input) => ({ incidents: await ops.incidents.list(input.status, input.limit) }),
  'incidents.get': (ops, input, ctx) => ops.incidents.report(input.id, ctx.who),
  // Whoever declares an incident commands it unless they name someone (an administrator when ADMIN_EMAILS is set).
  'incidents.open': (ops, input, ctx) =>
    ops.incidents.open(input, ctx.who, emailOf(ops.config, ctx.identity) ?? ctx.identity.osUser ?? null),
  'incidents.setStatus': (ops, input, ctx) => ops.incidents.setStatus(input.id, input.status, ctx.who, input.note),
  'incidents.setCommander': (ops, input, ctx) => ops.incidents.setCommander(input.id, input.commander, ctx.who),
  'incidents.note': (ops, input, ctx) => ops.incidents.note(input.id, input.text, ctx.who),
  'incidents.pin': (ops, input, ctx) => ops.incidents.pin(input.id, input.series, input.pinned, ctx.who),
  'incidents.saveReview': (ops, input, ctx) => ops.incidents.saveReview(input.id, input.review, ctx.who),
  'incidents.export': (ops, input, ctx) => ops.incidents.export(input, ctx.who),
  'sandbox.seed': (ops, input, ctx) => {
    if (!ops.sandbox.active)
      throw new OpsError('not_sandbox', 'Generating data is only offered in the sandbox; a configured database is never overwritten.')
    return { jobId: ops.seed(input.scale, ctx.who) }
  },
}
